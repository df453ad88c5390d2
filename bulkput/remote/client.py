"""``HttpObjectStore``: the :class:`~bulkput.remote.store.ObjectStore` of one bucket over HTTP, for the
BOS, OSS and S3 dialects.

Each call is exactly one request (a listing: one request per page, fetched as it is consumed),
built by the dialect, signed when it is sent with ``now = clock() + clock_offset``, and sent by
the shared :class:`~bulkput.remote.transport.Transport`. Retrying is the scheduler's job; the store
only learns the clock offset from the server's ``Date`` when an answer says the request time
was skewed, so the retry's fresh signature is accepted.

Two exceptions, both about where the bucket lives (see "region discovery" below): an answer
saying the bucket is in another region moves the store there once (endpoint and signing
region) and the request is sent again; and on AWS with no region named, the first request
waits for one HEAD bucket that reads the bucket's region.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from bulkput import redact
from bulkput.config import TransferConfig
from bulkput.errors import (
    AuthError,
    ConnectError,
    CredentialsUsed,
    NotFoundError,
    RemoteError,
    ServiceError,
    UsageError,
    error_from_response,
)
from bulkput.remote.credentials import Credentials, CredentialSource, RefreshingCredentials
from bulkput.remote.dialects import Dialect, dialect_for_endpoint
from bulkput.remote.dialects.base import BucketLocation, Page, Query, with_next
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.regions import normalize_region
from bulkput.remote.signing import SignableRequest, Signer, signer_for
from bulkput.remote.store import (
    MD5_METADATA,
    Body,
    DeleteFailure,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    PartInfo,
    PutResult,
    UploadInfo,
)
from bulkput.remote.target import Endpoint, Target
from bulkput.remote.transport import (
    PAGE_ANSWER_LIMIT,
    SMALL_ANSWER_LIMIT,
    USER_AGENT,
    Response,
    Transport,
)

T = TypeVar("T")
log = logging.getLogger("bulkput.remote")
Clock = Callable[[], datetime]

# Answers saying our clock is off; BOS calls it RequestExpired.
_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired"})
_ALREADY_EXISTS = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
MAX_DELETE_KEYS = 1000
# the code the transport gives a host name that did not resolve (aiohttp's exception name)
_DNS_FAILURE_CODE = "ClientConnectorDNSError"
# A whole object read back with get_object (a check after upload, never a transfer): bounded too.
WHOLE_OBJECT_ANSWER_LIMIT = 64 * 1024 * 1024
_BODY_METHODS = frozenset({"PUT", "POST", "DELETE"})


def _register_secrets(credentials: CredentialSource) -> Credentials:
    """Hand the secret and token to the scrubber; returns the credentials registered."""
    current = credentials.current() if isinstance(credentials, RefreshingCredentials) else credentials
    redact.register(current.secret_key, current.session_token)
    return current


def _scrub_error(error: RemoteError) -> None:
    clean = redact.scrub(error.message)
    if clean != error.message:
        error.message = clean
        error.args = (clean, *error.args[1:])


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _suggest_path_addressing(error: RemoteError, endpoint: Endpoint) -> None:
    """A virtual-hosted name (``bucket.host``) that does not resolve: many S3-compatible
    servers answer only on their own name, so the message says what to try."""
    if (
        isinstance(error, ConnectError)
        and error.service_code == _DNS_FAILURE_CODE
        and not endpoint.path_style
    ):
        error.message += "; if the endpoint does not serve BUCKET.HOST names, try --addressing path"
        error.args = (error.message,)


def _length(body: Body | None) -> int:
    if body is None:
        return 0
    return body.length if isinstance(body, FileRange) else len(body)


class HttpObjectStore:
    """One bucket of one service. Several stores may share one :class:`Transport`."""

    def __init__(
        self,
        bucket: str,
        *,
        dialect: Dialect,
        endpoint: Endpoint,
        credentials: CredentialSource,
        signer: Signer,
        transport: Transport,
        owns_transport: bool = False,
        clock: Clock = utc_now,
        customer_key: CustomerKey | None = None,
        request_payer: bool = False,
    ) -> None:
        self.bucket = bucket
        # requester pays: every request says so (the header is signed)
        self._payer_header = dialect.request_payer_header if request_payer else None
        self.customer_key = customer_key  # SSE-C: sent with every object write and read
        if customer_key is not None:  # a secret like the credentials: scrubbed from every text
            redact.register(customer_key.headers()["x-amz-server-side-encryption-customer-key"])
        self.dialect = dialect
        self.dialect_name = dialect.name
        self.endpoint = endpoint
        self.signer = signer
        self.transport = transport
        self.clock_offset = timedelta(0)
        self._credentials = credentials
        self._registered = _register_secrets(credentials)
        self._owns_transport = owns_transport
        self._clock = clock
        # region discovery: moved at most once per store (one bucket, one job)
        self._moved_once = False
        self._probe_region = (
            dialect.finds_region_with_head
            and endpoint.service is not None
            and not endpoint.region_known
        )
        self._region_probe: asyncio.Task[None] | None = None
        # a 500 to an object request may hide a missing bucket: asked once (None: not yet)
        self._bucket_missing: bool | None = None
        self._bucket_check = asyncio.Lock()

    @property
    def principal(self) -> str:
        """Who signs, for a job's identity (never a secret): the access key id of long-lived
        keys, so another account is another job; for temporary credentials (with a session
        token, or renewed by a chain) where they come from, since their key id changes with
        every session and the same job must still resume."""
        credentials = self._credentials
        current = credentials.current() if isinstance(credentials, RefreshingCredentials) else credentials
        if current.session_token is not None:
            return f"temporary credentials from {current.source}"
        return current.access_key

    def __repr__(self) -> str:
        return (
            f"HttpObjectStore({self.dialect_name}://{self.bucket} at {self.endpoint.base_url}, "
            f"signer={self.signer.name}, credentials={self._credentials!r})"
        )

    # --- one request --------------------------------------------------------------------------

    async def _send(
        self,
        method: str,
        key: str | None,
        query: Query = (),
        headers: dict[str, str] | None = None,
        body: Body | None = None,
        *,
        answer_limit: int = SMALL_ANSWER_LIMIT,
        answer_size: int = 0,
    ) -> Response:
        """Build, sign (now), send; return a 2xx answer or raise the dialect's error.

        At most ``answer_limit`` bytes of the answer are read (see ``Transport.send``); an
        error's text beyond that is dropped, a 2xx answer the caller reads is refused by
        :meth:`_body`."""
        if self._probe_region and asyncio.current_task() is not self._region_probe:
            await self._find_region()
        if method in _BODY_METHODS:
            # aiohttp would add Content-Length itself; BOS signs it, so it must be there first
            headers = {} if headers is None else headers
            headers.setdefault("content-length", str(_length(body)))
        if self._payer_header is not None:
            headers = {} if headers is None else headers
            headers[self._payer_header] = "requester"
        endpoint = self.endpoint
        unsigned = dict(headers) if headers else None  # signing adds to headers: kept to resend
        request = self.dialect.request(endpoint, method, self.bucket, key, query, headers, body)
        signable = SignableRequest(
            method=method,
            host=request.host,
            path=request.path,
            query=request.query,
            headers=request.headers,
            bucket=self.bucket,
            key=key,
        )
        credentials = self._credentials
        if isinstance(credentials, RefreshingCredentials):  # a chain's, renewed before expiry
            credentials = await credentials.fresh()
            if credentials is not self._registered:
                self._registered = _register_secrets(credentials)
        now = self._clock() + self.clock_offset
        wire_headers = request.headers
        wire_headers.update(self.signer.sign(signable, credentials, now))
        wire_headers["host"] = request.host
        wire_headers["user-agent"] = USER_AGENT  # unsigned, like aiohttp would add it
        try:
            answer = await self.transport.send(
                method,
                request.url,
                wire_headers,
                body,
                answer_limit=answer_limit,
                answer_size=answer_size,
            )
        except RemoteError as error:
            error.bucket = self.bucket
            error.key = key
            _suggest_path_addressing(error, self.endpoint)
            _scrub_error(error)
            raise
        if 200 <= answer.status < 300:
            return answer
        if self._moved(answer, endpoint, key):
            return await self._send(
                method, key, query, unsigned, body,
                answer_limit=answer_limit, answer_size=answer_size,
            )  # fmt: skip
        failure = self._error(answer, key)
        if (
            key is not None
            and failure.status == 500
            and failure.retryable
            and self._bucket_missing is not False
        ):
            failure = await self._unless_bucket_missing(failure)
        raise failure

    async def _unless_bucket_missing(self, error: RemoteError) -> RemoteError:
        """``error`` (a 500 to an object request), or the missing bucket it hides. SeaweedFS
        answers a PUT to a missing bucket with 500 InternalError, which every object would
        retry in full: one HEAD on the bucket per store tells (404: the job stops, as for
        NoSuchBucket; any other answer: the usual retries)."""
        if not self.dialect.answers_head_bucket:
            self._bucket_missing = False
            return error
        async with self._bucket_check:
            if self._bucket_missing is None:
                try:
                    await self._send("HEAD", None)
                    self._bucket_missing = False
                except NotFoundError:
                    self._bucket_missing = True
                except RemoteError:
                    self._bucket_missing = False  # cannot tell
        if not self._bucket_missing:
            return error
        return error_from_response(
            404,
            "NoSuchBucket",
            f"the bucket does not exist (HEAD on it answered 404; the request was answered"
            f" {error.status} {error.code}): create it or check its name",
            request_id=error.request_id,
            bucket=self.bucket,
            key=error.key,
        )

    # --- region discovery -------------------------------------------------------------------

    def _moved(self, answer: Response, sent_to: Endpoint, key: str | None) -> bool:
        """True when ``answer`` says the bucket lives elsewhere and the store now points
        there (the caller sends the request again). Moves once: an answer naming yet another
        place, or one the store cannot reach by region, raises an error naming it."""
        location = self.dialect.bucket_location(answer.status, answer.headers, answer.body)
        if location is None:
            return False
        if self.endpoint != sent_to:
            return True  # another request already moved the store
        region = normalize_region(self.dialect_name, location.region) if location.region else None
        if region is None or region == sent_to.region or self._moved_once:
            raise self._misplaced(answer, key, location)
        self._move_to(region)
        if asyncio.current_task() is self._region_probe:
            return False  # the HEAD's answer named the region: nothing to send again
        log.warning(
            "%s://%s is in region %s, not %s: sending to %s with region %s from now on",
            self.dialect_name, self.bucket, region, sent_to.region,
            self.endpoint.base_url, region,
        )  # fmt: skip
        return True

    def _move_to(self, region: str) -> None:
        self._moved_once = True
        self.endpoint = self.endpoint.for_region(region)
        self.signer = signer_for(self.signer.name, region)

    def _misplaced(
        self, answer: Response, key: str | None, location: BucketLocation
    ) -> RemoteError:
        error = self._error(answer, key)
        if location.region and location.region != self.endpoint.region:
            error.message += f"; the bucket is in region {location.region}: give --region {location.region}"
        elif location.host:
            error.message += (
                f"; the service says to use endpoint {location.host}: "
                f"give --endpoint {self.endpoint.scheme}://{location.host}"
            )
        error.args = (error.message,)
        return error

    async def _find_region(self) -> None:
        """On AWS with no region named, one HEAD bucket before the first request: its answer
        carries the bucket's region (as s5cmd's GetBucketRegion). Requests arriving meanwhile
        wait for it; a failed HEAD leaves the region as it was (the requests' own answers
        still move the store)."""
        if self._region_probe is None:
            self._region_probe = asyncio.ensure_future(self._ask_region())
        await asyncio.shield(self._region_probe)

    async def _ask_region(self) -> None:
        try:
            answer = await self._send("HEAD", None)
        except RemoteError:
            answer = None  # an answer that named the region (301, 403) has moved the store
        finally:
            self._probe_region = False
        location = (
            self.dialect.bucket_location(answer.status, answer.headers, answer.body)
            if answer is not None
            else None
        )
        region = normalize_region(self.dialect_name, location.region or "") if location else ""
        if region and region != self.endpoint.region:
            self._move_to(region)
        elif region:
            self._moved_once = True
        log.info("%s://%s: region %s", self.dialect_name, self.bucket, self.endpoint.region)

    def _error(self, answer: Response, key: str | None) -> RemoteError:
        # a server may echo what it was sent (the session token) in its message
        error = self.dialect.error(
            answer.status, answer.headers, redact.scrub_bytes(answer.body), bucket=self.bucket, key=key
        )
        _scrub_error(error)
        origin = self._registered.origin
        if isinstance(error, AuthError) and origin is not None:  # which credentials, not the secret
            error.credentials = CredentialsUsed.of(origin.describe(), self._registered.access_key)
        if error.service_code in _SKEW_CODES:
            self._learn_clock_offset(answer.headers)
        return error

    def _learn_clock_offset(self, headers: Mapping[str, str]) -> None:
        date = headers.get("date")
        if not date:
            return
        try:
            server_now = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        if server_now.tzinfo is None:
            server_now = server_now.replace(tzinfo=timezone.utc)
        self.clock_offset = server_now - self._clock()

    def _body(self, answer: Response, what: str, key: str | None = None) -> bytes:
        """The body of a 2xx answer the caller reads; refused when it was cut at the limit."""
        if answer.truncated:
            raise ServiceError(
                f"the {what} answer is larger than the {len(answer.body)} bytes bulkput reads "
                "of it; not read",
                code="AnswerTooLarge",
                status=answer.status,
                request_id=self.dialect.request_id(answer.headers),
                bucket=self.bucket,
                key=key,
                retryable=False,
            )
        return answer.body

    def _parse(
        self, parse: Callable[[bytes], T], answer: Response, what: str, key: str | None = None
    ) -> T:
        body = self._body(answer, what, key)
        try:
            return parse(body)
        except (ValueError, SyntaxError, TypeError, AttributeError) as exc:
            raise ServiceError(
                f"malformed {what} answer from the server: {exc}",
                status=answer.status,
                request_id=self.dialect.request_id(answer.headers),
                bucket=self.bucket,
                key=key,
                retryable=True,
            ) from None

    # --- objects ------------------------------------------------------------------------------

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        self.dialect.validate(key, headers)

    def _key_headers(self) -> dict[str, str]:
        """The SSE-C key's headers (every request that writes or reads an object's bytes)."""
        return self.customer_key.headers() if self.customer_key is not None else {}

    async def put_object(
        self, key: str, body: Body, *, content_md5: str | None, headers: ObjectHeaders
    ) -> PutResult:
        self.dialect.validate(key, headers)
        wire = self.dialect.object_headers(headers)
        wire["content-length"] = str(_length(body))
        if content_md5:
            wire["content-md5"] = content_md5
            if not self.dialect.etag_is_md5_for(headers, self.customer_key is not None):
                # the ETag will not be the MD5: keep it as metadata (as multipart does), which
                # sync --checksum compares
                md5_name = self.dialect.meta_prefix + MD5_METADATA
                wire.setdefault(md5_name, base64.b64decode(content_md5).hex())
        if self.customer_key is not None:
            wire.update(self.customer_key.headers())
        answer = await self._send("PUT", key, (), wire, body)
        return self.dialect.put_result(answer.headers)

    async def head_object(self, key: str) -> ObjectInfo | None:
        try:
            answer = await self._send("HEAD", key, (), self._key_headers())
        except NotFoundError as error:
            if error.service_code in (None, "NoSuchKey"):
                return None
            raise
        return self.dialect.object_info(key, answer.headers)

    async def get_object(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        headers = self._key_headers()
        limit = WHOLE_OBJECT_ANSWER_LIMIT
        if byte_range is not None:
            headers["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
            limit = max(0, byte_range[1] - byte_range[0] + 1)
        answer = await self._send("GET", key, (), headers, answer_limit=limit, answer_size=limit)
        return self._body(answer, "get-object (read it in byte ranges)", key)

    def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        query = self.dialect.list_objects_query(prefix, page_size)
        if start_after:
            query = with_next(query, self.dialect.list_start_after(start_after))
        return self._pages(query, self.dialect.parse_list_objects, "list-objects")

    async def _pages(
        self,
        query: Query,
        parse: Callable[[bytes], Page[T]],
        what: str,
        key: str | None = None,
    ) -> AsyncIterator[T]:
        previous: dict[str, str] | None = None
        while True:
            answer = await self._send("GET", key, query, answer_limit=PAGE_ANSWER_LIMIT)
            page = self._parse(parse, answer, what, key)
            for item in page.items:
                yield item
            if page.next_query is None:
                return
            if page.next_query == previous:
                raise ServiceError(
                    f"{what}: the server returned the same next-page marker twice",
                    status=answer.status,
                    bucket=self.bucket,
                )
            previous = page.next_query
            query = with_next(query, page.next_query)

    async def delete_objects(self, keys: Sequence[str]) -> list[DeleteFailure]:
        if not keys:
            return []
        if len(keys) > MAX_DELETE_KEYS:
            raise ValueError(
                f"delete_objects takes at most {MAX_DELETE_KEYS} keys, got {len(keys)}"
            )
        query, body, headers = self.dialect.delete_objects_body(keys)
        headers["content-length"] = str(len(body))
        answer = await self._send(
            "POST", None, query, headers, body, answer_limit=PAGE_ANSWER_LIMIT
        )
        return self._parse(self.dialect.parse_delete_objects, answer, "delete-objects")

    async def create_bucket(self) -> None:
        body, headers = self.dialect.create_bucket_body(self.endpoint.region)
        headers["content-length"] = str(_length(body))
        try:
            await self._send("PUT", None, (), headers, body)
        except ServiceError as error:
            if error.status == 409 and error.service_code in _ALREADY_EXISTS:
                return
            raise

    # --- multipart ----------------------------------------------------------------------------

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        self.dialect.validate(key, headers)
        wire = self.dialect.object_headers(headers)
        wire["content-length"] = "0"
        wire.update(self._key_headers())
        answer = await self._send("POST", key, (("uploads", None),), wire, b"")
        return self._parse(self.dialect.parse_initiate, answer, "initiate-multipart", key)

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, content_md5: str | None
    ) -> PartInfo:
        wire = {"content-length": str(_length(body)), **self._key_headers()}
        if content_md5:
            wire["content-md5"] = content_md5
        query = (("partNumber", str(part_number)), ("uploadId", upload_id))
        answer = await self._send("PUT", key, query, wire, body)
        etag = self.dialect.put_result(answer.headers).etag
        if not etag:
            raise ServiceError(
                f"upload-part {part_number} answered without an ETag",
                status=answer.status,
                request_id=self.dialect.request_id(answer.headers),
                bucket=self.bucket,
                key=key,
                retryable=True,
            )
        # the ETag as the server spelled it (unquoted): complete-multipart sends it back
        raw = answer.headers.get("etag", "").strip().strip('"') or etag
        return PartInfo(
            part_number=part_number,
            etag=raw,
            size=_length(body),
            etag_is_md5=self.dialect.etag_is_md5(answer.headers),
        )

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        query = self.dialect.list_parts_query(upload_id)
        return [
            part
            async for part in self._pages(query, self.dialect.parse_list_parts, "list-parts", key)
        ]

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> PutResult:
        body, headers = self.dialect.complete_body(parts)
        headers["content-length"] = str(len(body))
        answer = await self._send("POST", key, (("uploadId", upload_id),), headers, body)
        # an error document inside a 200 (RemoteError) passes through _parse as it is
        return self._parse(
            lambda content: self.dialect.parse_complete(
                answer.headers, content, bucket=self.bucket, key=key
            ),
            answer, "complete-multipart", key,
        )  # fmt: skip

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        await self._send("DELETE", key, (("uploadId", upload_id),))

    def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]:
        query = self.dialect.list_uploads_query(prefix)
        return self._pages(query, self.dialect.parse_list_uploads, "list-multipart-uploads")

    async def close(self) -> None:
        if self._owns_transport:
            await self.transport.close()

    async def __aenter__(self) -> HttpObjectStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def open_store(
    target: Target,
    *,
    endpoint: Endpoint,
    credentials: CredentialSource,
    config: TransferConfig | None = None,
    signature_version: str = "v4",
    transport: Transport | None = None,
    clock: Clock = utc_now,
    customer_key: CustomerKey | None = None,
    request_payer: bool = False,
) -> HttpObjectStore:
    """The store for ``target``'s bucket. Without ``transport`` the store makes its own (from
    ``config``) and closes it in :meth:`HttpObjectStore.close`; a given transport is shared and
    left open. ``signature_version`` (``v1`` or ``v4``) matters for OSS only; ``customer_key``
    (SSE-C) for S3 only; ``request_payer`` for S3 and OSS."""
    if customer_key is not None and target.scheme != "s3":
        raise UsageError(
            f"--sse-c-key-file: keys held by the customer (SSE-C) are an S3 feature; "
            f"{target.scheme}:// has none (use --sse)"
        )
    dialect = dialect_for_endpoint(target.scheme, endpoint)
    if request_payer and dialect.request_payer_header is None:
        raise UsageError(f"--request-payer: {target.scheme}:// has no requester-pays buckets")
    signer = signer_for(dialect.signer_name(signature_version), endpoint.region)
    owns = transport is None
    return HttpObjectStore(
        target.bucket,
        dialect=dialect,
        endpoint=endpoint,
        credentials=credentials,
        signer=signer,
        transport=transport if transport is not None else Transport(config or TransferConfig()),
        owns_transport=owns,
        clock=clock,
        customer_key=customer_key,
        request_payer=request_payer,
    )
