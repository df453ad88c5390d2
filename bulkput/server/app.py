"""The HTTP side of `bulkput serve`: one aiohttp handler that routes, checks and answers.

Every request goes through the same steps: parse the raw target (path-style ``/bucket/key`` or
virtual-hosted ``bucket.localhost``), recognise the dialect, name the operation, verify the
signature, maybe inject a fault, run the operation, and answer in the dialect's format with its
request-id header. Counters are kept in :class:`~bulkput.server.stats.Stats`.

Admin endpoints, unauthenticated (the server binds to loopback by default; bucket names cannot
start with ``_``, so these never collide with a bucket):

* ``GET /_bulkput/stats``: the counters as JSON;
* ``POST /_bulkput/reset-stats``: clear them;
* ``GET /_bulkput/health``: ``ok``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import logging
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import cast
from urllib.parse import unquote, unquote_plus
from xml.etree import ElementTree

from aiohttp import web

from bulkput.local.digest import crc64_ecma
from bulkput.server import validation as checks
from bulkput.server.auth import Authenticator, SignatureAuthenticator
from bulkput.server.config import ServerConfig
from bulkput.server.dialects import Dialect, Page, ServeError, detect_dialect, http_date
from bulkput.server.faults import FaultInjector
from bulkput.server.stats import Stats
from bulkput.server.storage import (
    BlobWriter,
    BucketNotEmptyError,
    DirStorage,
    MemoryStorage,
    NoSuchBucketError,
    NoSuchUploadError,
    ObjectMeta,
    PartRecord,
    Storage,
    UploadRecord,
)

log = logging.getLogger("bulkput.server")

ADMIN_PREFIX = "/_bulkput/"
SMALL_BODY = 1024 * 1024  # read in one call below this; stream above
MAX_LIST = 1000

# Query names that select a sub-resource we do not implement (ACLs, CORS, ...): answered 501.
_UNSUPPORTED_SUBRESOURCES = frozenset(
    {
        "acl",
        "cors",
        "lifecycle",
        "policy",
        "tagging",
        "website",
        "logging",
        "versioning",
        "versions",
        "encryption",
        "replication",
        "append",
        "symlink",
        "restore",
        "select",
        "notification",
        "referer",
        "inventory",
        "accelerate",
        "requestPayment",
        "object-lock",
        "retention",
        "legal-hold",
        "torrent",
        "analytics",
        "metrics",
        "ownershipControls",
        "publicAccessBlock",
        "intelligent-tiering",
        "storageClass",
        "trash",
        "mirroring",
        "copyrightProtection",
        "userQuota",
        "fetch",
        "worm",
        "qos",
        "stat",
        "objectMeta",
    }
)
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-disposition": "content-disposition",
    "response-cache-control": "cache-control",
    "response-content-encoding": "content-encoding",
    "response-content-language": "content-language",
    "response-expires": "expires",
}


@dataclass
class Call:
    """One request, parsed."""

    request: web.Request
    method: str
    host: str
    raw_path: str
    query: list[tuple[str, str | None]]
    params: dict[str, str]
    headers: dict[str, str]  # lower-case names
    dialect: Dialect
    bucket: str | None
    key: str | None
    operation: str
    request_id: str


@dataclass
class BodyInfo:
    size: int
    md5: bytes
    crc64: int | None


def _parse_query(raw: str) -> list[tuple[str, str | None]]:
    """Decoded query pairs; ``+`` is a space, as the services read it (requests-based SDKs such
    as oss2 send spaces that way; signing clients send a literal ``+`` as ``%2B``)."""
    pairs: list[tuple[str, str | None]] = []
    for item in raw.split("&"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value) if sep else None))
    return pairs


def _strip_ns(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(element: ElementTree.Element, name: str) -> Iterator[ElementTree.Element]:
    return (child for child in element if _strip_ns(child.tag) == name)


def _child_text(element: ElementTree.Element, name: str) -> str | None:
    for child in _children(element, name):
        return child.text or ""
    return None


def _encode_token(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ServeError(
            "InvalidArgument", "The continuation token provided is incorrect."
        ) from None


def _int_param(params: dict[str, str], names: tuple[str, ...], default: int, cap: int) -> int:
    for name in names:
        if name in params:
            try:
                value = int(params[name])
            except ValueError:
                raise ServeError("InvalidArgument", f"{name} must be an integer.") from None
            if value < 0:
                raise ServeError("InvalidArgument", f"{name} must not be negative.")
            return min(value, cap)
    return default


def build_page(
    storage: Storage, bucket: str, *, prefix: str, delimiter: str, after: str, max_keys: int
) -> Page:
    """One listing page: objects after ``after`` under ``prefix``, grouped by ``delimiter``."""
    objects: list[ObjectMeta] = []
    prefixes: list[str] = []
    if max_keys == 0:
        return Page(objects, prefixes, False, None)
    last: str | None = None
    position = after
    while True:
        restarted = False
        for meta in storage.iter_objects(bucket, prefix, position):
            common = None
            if delimiter:
                cut = meta.key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = meta.key[: cut + len(delimiter)]
            if common is not None and common <= after:
                continue  # the page before ended on this common prefix
            if len(objects) + len(prefixes) == max_keys:
                return Page(objects, prefixes, True, last)
            if common is not None:
                prefixes.append(common)
                last = common
                # skip the rest of this common prefix without walking it
                position = common + "\U0010ffff"
                restarted = True
                break
            objects.append(meta)
            last = meta.key
        if not restarted:
            return Page(objects, prefixes, False, None)


class BulkputServer:
    """The application: storage, counters, faults and the request handler."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        storage: Storage | None = None,
        authenticator: Authenticator | None = None,
    ) -> None:
        self.config = config
        if storage is None:
            storage = DirStorage(config.directory) if config.directory else MemoryStorage()
        self.storage: Storage = storage
        self.stats = Stats(track_keys=config.track_keys)
        self.faults = FaultInjector(config.faults)
        self.authenticate: Authenticator = authenticator or SignatureAuthenticator(
            config.credentials, config.region
        )
        for bucket in config.buckets:
            try:
                checks.validate_bucket_name(bucket)
            except ServeError as error:
                raise ValueError(error.message) from None
            self.storage.create_bucket(bucket)

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        self.storage.close()

    # -- parsing ---------------------------------------------------------------------------

    def _parse(self, request: web.Request) -> Call:
        raw_target = request.raw_path
        raw_path, _, raw_query = raw_target.partition("?")
        query = _parse_query(raw_query)
        params = {name: (value or "") for name, value in query}
        headers = {name.lower(): value for name, value in request.headers.items()}
        host = headers.get("host", "")
        dialect = detect_dialect(headers.get("authorization"), params, headers)
        bucket: str | None = None
        hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        for suffix in self.config.virtual_host_suffixes:
            if hostname.endswith("." + suffix):
                bucket = hostname[: -len(suffix) - 1]
                break
        try:
            path = unquote(raw_path, errors="strict")
        except UnicodeDecodeError:
            raise ServeError("InvalidObjectName", "The object key is not valid UTF-8.") from None
        path = path[1:] if path.startswith("/") else path
        key: str | None
        if bucket is None:
            bucket_part, slash, key_part = path.partition("/")
            bucket = bucket_part or None
            key = key_part if slash and key_part else None
        else:
            key = path or None
        call = Call(
            request=request,
            method=request.method,
            host=host,
            raw_path=raw_path,
            query=query,
            params=params,
            headers=headers,
            dialect=dialect,
            bucket=bucket,
            key=key,
            operation="",
            request_id=dialect.new_request_id(),
        )
        call.operation = self._operation(call)
        return call

    def _operation(self, call: Call) -> str:
        method, params = call.method, call.params
        unsupported = next((p for p in params if p in _UNSUPPORTED_SUBRESOURCES), None)
        if call.bucket is None:
            return "ListBuckets" if method == "GET" else "MethodNotAllowed"
        if call.key is None:
            if unsupported and not (method == "GET" and "uploads" in params):
                return "NotImplemented"
            if method == "PUT":
                return "CreateBucket"
            if method == "HEAD":
                return "HeadBucket"
            if method == "DELETE":
                return "DeleteBucket"
            if method == "GET":
                if "uploads" in params:
                    return "ListMultipartUploads"
                if "location" in params:
                    return "GetBucketLocation"
                return "ListObjectsV2" if params.get("list-type") == "2" else "ListObjects"
            if method == "POST" and "delete" in params:
                return "DeleteObjects"
            return "NotImplemented"
        if unsupported:
            return "NotImplemented"
        if method == "PUT":
            if "partNumber" in params and "uploadId" in params:
                return "UploadPart"
            if any(
                h in call.headers
                for h in ("x-amz-copy-source", "x-oss-copy-source", "x-bce-copy-source")
            ):
                return "NotImplemented"
            return "PutObject"
        if method == "GET":
            return "ListParts" if "uploadId" in params else "GetObject"
        if method == "HEAD":
            return "HeadObject"
        if method == "DELETE":
            return "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
        if method == "POST":
            if "uploads" in params:
                return "InitiateMultipartUpload"
            if "uploadId" in params:
                return "CompleteMultipartUpload"
        return "NotImplemented"

    # -- the handler -----------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await self._admin(request)
        call: Call | None = None
        try:
            call = self._parse(request)
            response = await self._serve(call)
        except ServeError as error:
            if call is None:  # the target itself was unreadable
                call = Call(
                    request=request,
                    method=request.method,
                    host="",
                    raw_path=request.path,
                    query=[],
                    params={},
                    headers={k.lower(): v for k, v in request.headers.items()},
                    dialect=detect_dialect(
                        request.headers.get("authorization"), {}, request.headers
                    ),
                    bucket=None,
                    key=None,
                    operation="Unknown",
                    request_id="",
                )
                call.request_id = call.dialect.new_request_id()
            response = self._error(call, error)
        except _ConnectionCut:
            # the transport is already aborted: this answer goes nowhere, by design
            self.stats.request(request.method, call.operation if call else "Unknown", 0)
            return web.Response(status=500)
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one too
            # The client went away mid-request (killed, timed out): nothing to answer, and
            # nothing worth a traceback; the partial body was already discarded.
            self.stats.request(request.method, call.operation if call else "Unknown", 0)
            return web.Response(status=499)
        self.stats.request(call.method, call.operation, response.status)
        return response

    async def _serve(self, call: Call) -> web.StreamResponse:
        if call.operation == "MethodNotAllowed":
            raise ServeError("MethodNotAllowed", "The specified method is not allowed.")
        outcome = self.authenticate(
            call.method, call.host, call.raw_path, call.query, call.headers, call.bucket, call.key
        )
        if not outcome.ok:
            raise ServeError(
                outcome.code or "AccessDenied",
                outcome.message or "Access denied.",
                status=outcome.status,
            )
        if call.operation == "NotImplemented":
            raise ServeError(
                "NotImplemented", "This operation is not implemented by bulkput serve."
            )
        if call.bucket is not None:
            checks.validate_bucket_name(call.bucket)
        if call.key is not None:
            checks.validate_key(call.key)
        kind = self.faults.choose(call.operation, call.key)
        delay_after = 0.0
        if kind is not None:
            self.stats.fault(kind)
            if kind == "latency":
                await asyncio.sleep(self.config.faults.latency_ms / 1000)
            elif kind == "slow":
                delay_after = self.config.faults.slow_ms / 1000
            else:
                await self._fail(call, kind)
        handler = getattr(self, "_op_" + call.operation)
        try:
            response = cast(web.StreamResponse, await handler(call))
        except NoSuchBucketError:
            raise ServeError("NoSuchBucket", "The specified bucket does not exist.") from None
        except NoSuchUploadError:
            raise ServeError(
                "NoSuchUpload", "The specified upload does not exist.", key=call.key
            ) from None
        if delay_after:
            await asyncio.sleep(delay_after)
        self._decorate(call, response)
        return response

    async def _fail(self, call: Call, kind: str) -> None:
        if kind == "reset":
            # take part of the body, then cut the connection without an answer
            length = call.request.content_length or 0
            if length > 1:
                with contextlib.suppress(asyncio.TimeoutError, asyncio.IncompleteReadError):
                    await asyncio.wait_for(call.request.content.readexactly(length // 2), 5)
            transport = call.request.transport
            if transport is not None:
                transport.abort()
            raise _ConnectionCut()
        await self._drain(call)
        if kind == "requesttimeout":
            raise ServeError(
                "RequestTimeout",
                "Your socket connection to the server was not "
                "read from or written to within the timeout period. (injected)",
            )
        if kind == "slowdown":
            raise ServeError("SlowDown", "Please reduce your request rate. (injected)")
        raise ServeError(
            "InternalError", "We encountered an internal error. Please try again. (injected)"
        )

    async def _drain(self, call: Call) -> None:
        try:
            while await asyncio.wait_for(call.request.content.readany(), self.config.body_timeout):
                pass
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            pass

    def _decorate(self, call: Call, response: web.StreamResponse) -> None:
        if response.prepared:
            return
        for name, value in call.dialect.request_id_headers(call.request_id).items():
            response.headers[name] = value
        response.headers["date"] = http_date(time.time())

    def _error(self, call: Call, error: ServeError) -> web.Response:
        dialect = call.dialect
        spec = dialect.error_spec(error.name, error.status)
        bodiless = call.method == "HEAD"
        body = dialect.error_body(
            spec,
            error.message,
            call.request_id,
            bucket=call.bucket,
            key=error.key if error.key is not None else call.key,
        )
        headers = dialect.error_headers(spec, body, bodiless=bodiless)
        headers.update(dialect.request_id_headers(call.request_id))
        headers["date"] = http_date(time.time())
        if bodiless:
            response = web.Response(status=spec.status, headers=headers)
        else:
            response = web.Response(status=spec.status, body=body, headers=headers)
        if error.close:
            response.force_close()
        return response

    async def _admin(self, request: web.Request) -> web.Response:
        action = request.path[len(ADMIN_PREFIX) :]
        if action == "stats" and request.method == "GET":
            return web.json_response(self.stats.snapshot().to_json())
        if action == "reset-stats" and request.method == "POST":
            self.stats.reset()
            return web.json_response({"reset": True})
        if action == "health":
            return web.Response(text="ok")
        return web.Response(status=404, text="unknown admin endpoint")

    # -- bodies ----------------------------------------------------------------------------

    async def _read_body(
        self, call: Call, sink: BlobWriter, *, limit: int, want_crc: bool,
        body_checksums: bool = True,
    ) -> BodyInfo:  # fmt: skip
        request = call.request
        length = request.content_length
        chunked = "chunked" in call.headers.get("transfer-encoding", "").lower()
        if "aws-chunked" in call.headers.get("content-encoding", "") or call.headers.get(
            "x-amz-content-sha256", ""
        ).startswith("STREAMING-"):
            raise ServeError("NotImplemented", "aws-chunked uploads are not supported.", close=True)
        if length is None and (not chunked or call.dialect.name == "s3"):
            raise ServeError(
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
                close=True,
            )
        if length is not None and length > limit:
            raise ServeError(
                "EntityTooLarge",
                f"Your proposed upload exceeds the maximum allowed size of {limit} bytes.",
                close=True,
            )
        expected_md5 = checks.parse_content_md5(call.headers.get("content-md5"))
        headers = call.headers
        sha256_hint = headers.get("x-amz-content-sha256", "")
        want_sha256 = (
            len(sha256_hint) == 64
            or "x-amz-checksum-sha256" in headers
            or "x-bce-content-sha256" in headers
        )
        want_crc32 = body_checksums and (
            "x-amz-checksum-crc32" in headers or "x-bce-content-crc32" in headers
        )
        want_sha1 = "x-amz-checksum-sha1" in headers
        md5 = hashlib.md5()
        sha256 = hashlib.sha256() if want_sha256 else None
        sha1 = hashlib.sha1() if want_sha1 else None
        crc32 = 0
        crc64 = 0
        size = 0
        timeout = self.config.body_timeout
        try:
            if length is not None and length <= SMALL_BODY:
                data = (
                    await asyncio.wait_for(request.content.readexactly(length), timeout)
                    if length
                    else b""
                )
                pieces = [data]
            else:
                pieces = []
            def take(piece: bytes) -> None:
                nonlocal size, crc32, crc64
                size += len(piece)
                if size > limit:
                    raise ServeError(
                        "EntityTooLarge",
                        f"Your upload exceeds the maximum allowed size of {limit} bytes.",
                        close=True,
                    )
                md5.update(piece)
                if sha256 is not None:
                    sha256.update(piece)
                if sha1 is not None:
                    sha1.update(piece)
                if want_crc32:
                    crc32 = zlib.crc32(piece, crc32)
                if want_crc:
                    crc64 = crc64_ecma(piece, crc64)
                sink.write(piece)

            for piece in pieces:
                take(piece)
            if not pieces:
                while True:
                    chunk = await asyncio.wait_for(request.content.readany(), timeout)
                    if not chunk:
                        break
                    take(chunk)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError):
            sink.abort()
            raise ServeError(
                "RequestTimeout",
                "Your socket connection to the server was not read "
                "from or written to within the timeout period.",
                close=True,
            ) from None
        except BaseException:
            sink.abort()
            raise
        if length is not None and size < length:
            sink.abort()
            raise ServeError(
                "RequestTimeout",
                "The request body was shorter than its Content-Length.",
                close=True,
            )
        digest = md5.digest()
        problem = None
        if expected_md5 is not None and expected_md5 != digest:
            problem = ("BadDigest", "The Content-MD5 you specified did not match what we received.")
        elif (
            sha256 is not None
            and len(sha256_hint) == 64
            and sha256.hexdigest() != sha256_hint.lower()
        ):
            problem = (
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        elif body_checksums:
            problem = self._check_checksums(headers, sha256, sha1, crc32)
        if problem is not None:
            sink.abort()
            raise ServeError(*problem)
        return BodyInfo(size, digest, crc64 if want_crc else None)

    @staticmethod
    def _check_checksums(
        headers: dict[str, str],
        sha256: hashlib._Hash | None,
        sha1: hashlib._Hash | None,
        crc32: int,
    ) -> tuple[str, str] | None:
        def b64(raw: bytes) -> str:
            return base64.b64encode(raw).decode()

        expected = {
            "x-amz-checksum-crc32": lambda: b64(crc32.to_bytes(4, "big")),
            "x-amz-checksum-sha256": lambda: b64(sha256.digest()) if sha256 else "",
            "x-amz-checksum-sha1": lambda: b64(sha1.digest()) if sha1 else "",
            "x-bce-content-crc32": lambda: str(crc32),
            "x-bce-content-sha256": lambda: sha256.hexdigest() if sha256 else "",
        }
        for name, compute in expected.items():
            given = headers.get(name)
            if given is not None and given.strip() != compute():
                return ("BadDigest", f"The {name} you specified did not match what we received.")
        return None

    # -- operations: service and buckets -----------------------------------------------------

    async def _op_ListBuckets(self, call: Call) -> web.StreamResponse:
        body = call.dialect.list_buckets(
            self.storage.list_buckets(), self.config.region or "us-east-1"
        )
        return web.Response(body=body, content_type=call.dialect.content_type.split(";")[0])

    async def _op_CreateBucket(self, call: Call) -> web.StreamResponse:
        assert call.bucket is not None
        checks.validate_bucket_name(call.bucket)
        await self._drain(call)
        if not self.storage.create_bucket(call.bucket):
            raise ServeError(
                "BucketAlreadyOwnedByYou",
                "Your previous request to create the named "
                "bucket succeeded and you already own it.",
            )
        headers = {"location": f"/{call.bucket}"} if call.dialect.name != "bos" else {}
        return web.Response(status=200, headers=headers)

    async def _op_HeadBucket(self, call: Call) -> web.StreamResponse:
        assert call.bucket is not None
        if not self.storage.bucket_exists(call.bucket):
            raise NoSuchBucketError(call.bucket)
        return web.Response(headers={"x-amz-bucket-region": self.config.region or "us-east-1"})

    async def _op_GetBucketLocation(self, call: Call) -> web.StreamResponse:
        assert call.bucket is not None
        if not self.storage.bucket_exists(call.bucket):
            raise NoSuchBucketError(call.bucket)
        region = self.config.region or "us-east-1"
        if call.dialect.name == "bos":
            return web.Response(
                body=json.dumps({"locationConstraint": region}).encode(),
                content_type="application/json",
            )
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint>{region}</LocationConstraint>'
        return web.Response(body=body.encode(), content_type="application/xml")

    async def _op_DeleteBucket(self, call: Call) -> web.StreamResponse:
        assert call.bucket is not None
        try:
            self.storage.delete_bucket(call.bucket)
        except BucketNotEmptyError:
            raise ServeError(
                "BucketNotEmpty", "The bucket you tried to delete is not empty."
            ) from None
        return web.Response(status=204)

    # -- objects -------------------------------------------------------------------------------

    def _template(self, call: Call, *, metadata: bool = True) -> ObjectMeta:
        """Headers and metadata of a new object, checked (PUT and multipart initiation)."""
        assert call.key is not None
        storage_class, acl, encryption = checks.check_choice(call.dialect, call.headers)
        user_metadata = checks.parse_metadata(call.dialect, call.headers) if metadata else {}
        return ObjectMeta(
            key=call.key,
            size=0,
            etag="",
            last_modified=time.time(),
            content_type=call.headers.get("content-type") or "application/octet-stream",
            content_headers=checks.content_headers(call.headers),
            user_metadata=user_metadata,
            storage_class=storage_class,
            acl=acl,
            encryption=encryption,
        )

    def _require_bucket(self, call: Call) -> str:
        assert call.bucket is not None
        if not self.storage.bucket_exists(call.bucket):
            raise NoSuchBucketError(call.bucket)
        return call.bucket

    async def _op_PutObject(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        template = self._template(call)
        writer = self.storage.new_writer()
        body = await self._read_body(
            call, writer, limit=self.config.max_single_put, want_crc=call.dialect.name == "oss"
        )
        meta = replace(
            template,
            size=body.size,
            etag=body.md5.hex(),
            last_modified=time.time(),
            crc64=body.crc64,
        )
        try:
            self.storage.commit_object(bucket, writer, meta)
        except BaseException:
            writer.abort()
            raise
        self.stats.stored(bucket, meta.key)
        headers = call.dialect.put_headers(meta)
        for name in ("x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-sha1"):
            if name in call.headers:
                headers[name] = call.headers[name]
        return web.Response(status=200, headers=headers)

    async def _object_meta(self, call: Call) -> tuple[str, ObjectMeta]:
        bucket = self._require_bucket(call)
        assert call.key is not None
        meta = self.storage.head_object(bucket, call.key)
        if meta is None:
            raise ServeError("NoSuchKey", "The specified key does not exist.", key=call.key)
        if call.dialect.name == "oss" and meta.crc64 is None:
            meta = await self._fill_crc(bucket, meta)
        return bucket, meta

    async def _fill_crc(self, bucket: str, meta: ObjectMeta) -> ObjectMeta:
        def compute() -> int:
            crc = 0
            for chunk in self.storage.read_object(bucket, meta.key, 0, meta.size):
                crc = crc64_ecma(chunk, crc)
            return crc

        crc = await asyncio.get_running_loop().run_in_executor(None, compute)
        filled = replace(meta, crc64=crc)
        self.storage.update_meta(bucket, filled)
        return filled

    def _object_response_headers(self, call: Call, meta: ObjectMeta) -> dict[str, str]:
        headers = call.dialect.object_headers(meta)
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in call.params:
                headers[header] = call.params[param]
        return headers

    async def _op_HeadObject(self, call: Call) -> web.StreamResponse:
        _, meta = await self._object_meta(call)
        response = web.StreamResponse(status=200, headers=self._object_response_headers(call, meta))
        response.content_length = meta.size
        return response

    async def _op_GetObject(self, call: Call) -> web.StreamResponse:
        bucket, meta = await self._object_meta(call)
        headers = self._object_response_headers(call, meta)
        span = checks.parse_range(call.headers.get("range"), meta.size)
        status = 200
        start, end = 0, meta.size
        if span is not None:
            start, end = span
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{meta.size}"
            headers.pop("x-oss-hash-crc64ecma", None)  # describes the whole object only
        self._decorate(call, response := web.StreamResponse(status=status, headers=headers))
        response.content_length = end - start
        await response.prepare(call.request)
        for chunk in self.storage.read_object(bucket, meta.key, start, end):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def _op_DeleteObject(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        assert call.key is not None
        self.storage.delete_object(bucket, call.key)
        return web.Response(status=204)

    async def _op_DeleteObjects(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        writer = _BytesSink()
        await self._read_body(call, writer, limit=2 * 1024 * 1024, want_crc=False)
        raw = writer.getvalue()
        quiet = False
        keys: list[str] = []
        if call.dialect.name == "bos":
            try:
                document = json.loads(raw or b"{}")
                keys = [str(item["key"]) for item in document["objects"]]
            except (ValueError, KeyError, TypeError):
                raise ServeError(
                    "MalformedXML", "The JSON you provided was not well-formed."
                ) from None
        else:
            try:
                root = ElementTree.fromstring(raw)
            except ElementTree.ParseError:
                raise ServeError(
                    "MalformedXML", "The XML you provided was not well-formed."
                ) from None
            quiet = (_child_text(root, "Quiet") or "").strip().lower() == "true"
            for item in _children(root, "Object"):
                key = _child_text(item, "Key")
                if key is None:
                    raise ServeError("MalformedXML", "Each Object needs a Key.")
                keys.append(key)
        if not keys or len(keys) > 1000:
            raise ServeError("MalformedXML", "Between 1 and 1000 keys can be deleted at once.")
        deleted: list[str] = []
        errors: list[tuple[str, str, str]] = []
        for key in keys:
            try:
                checks.validate_key(key)
            except ServeError as error:
                errors.append((key, call.dialect.error_spec(error.name).code, error.message))
                continue
            self.storage.delete_object(bucket, key)
            deleted.append(key)
        body, content_type = call.dialect.delete_result(
            deleted, errors, quiet=quiet, encode=call.params.get("encoding-type") == "url"
        )
        return web.Response(status=200, body=body, headers={"content-type": content_type})

    # -- listing -------------------------------------------------------------------------------

    async def _op_ListObjects(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        params = call.params
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        marker = params.get("marker", "")
        max_keys = _int_param(params, ("max-keys", "maxKeys"), MAX_LIST, MAX_LIST)
        page = build_page(
            self.storage,
            bucket,
            prefix=prefix,
            delimiter=delimiter,
            after=marker,
            max_keys=max_keys,
        )
        body = call.dialect.list_v1(
            bucket,
            page,
            prefix=prefix,
            marker=marker,
            delimiter=delimiter,
            max_keys=max_keys,
            encode=params.get("encoding-type") == "url",
        )
        return web.Response(body=body, headers={"content-type": call.dialect.content_type})

    async def _op_ListObjectsV2(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        params = call.params
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        token = params.get("continuation-token")
        start_after = params.get("start-after")
        after = _decode_token(token) if token else (start_after or "")
        max_keys = _int_param(params, ("max-keys",), MAX_LIST, MAX_LIST)
        page = build_page(
            self.storage, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
        )
        next_token = (
            _encode_token(page.next_marker) if page.truncated and page.next_marker else None
        )
        body = call.dialect.list_v2(
            bucket,
            page,
            prefix=prefix,
            delimiter=delimiter,
            max_keys=max_keys,
            encode=params.get("encoding-type") == "url",
            continuation=token,
            start_after=start_after,
            next_token=next_token,
        )
        return web.Response(body=body, headers={"content-type": call.dialect.content_type})

    # -- multipart -------------------------------------------------------------------------

    async def _op_InitiateMultipartUpload(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        template = self._template(call)
        await self._drain(call)
        upload = self.storage.create_upload(bucket, template)
        return web.Response(
            body=call.dialect.initiate(upload), headers={"content-type": call.dialect.content_type}
        )

    def _upload(self, call: Call) -> UploadRecord:
        bucket = self._require_bucket(call)
        upload = self.storage.get_upload(bucket, call.params.get("uploadId", ""))
        if upload.key != call.key:
            raise NoSuchUploadError(upload.upload_id)
        return upload

    async def _op_UploadPart(self, call: Call) -> web.StreamResponse:
        number = checks.parse_part_number(call.params.get("partNumber"))
        upload = self._upload(call)
        writer = self.storage.new_writer()
        body = await self._read_body(
            call, writer, limit=self.config.max_single_put, want_crc=call.dialect.name == "oss"
        )
        part = PartRecord(number, body.size, body.md5.hex(), time.time(), body.crc64)
        try:
            self.storage.put_part(upload, part, writer)
        except BaseException:
            writer.abort()
            raise
        self.stats.part_stored(upload.bucket, upload.key, number)
        return web.Response(status=200, headers=call.dialect.part_headers(part))

    async def _op_ListParts(self, call: Call) -> web.StreamResponse:
        upload = self._upload(call)
        params = call.params
        marker = _int_param(params, ("part-number-marker", "partNumberMarker"), 0, 10_000)
        max_parts = _int_param(params, ("max-parts", "maxParts"), MAX_LIST, MAX_LIST)
        parts = [p for p in self.storage.list_parts(upload) if p.number > marker]
        truncated = len(parts) > max_parts
        parts = parts[:max_parts]
        body = call.dialect.list_parts(
            upload, parts, marker=marker, max_parts=max_parts, truncated=truncated
        )
        return web.Response(body=body, headers={"content-type": call.dialect.content_type})

    async def _op_ListMultipartUploads(self, call: Call) -> web.StreamResponse:
        bucket = self._require_bucket(call)
        params = call.params
        prefix = params.get("prefix", "")
        delimiter = params.get("delimiter", "")
        key_marker = params.get("key-marker", params.get("keyMarker", ""))
        id_marker = params.get("upload-id-marker", "")
        max_uploads = _int_param(params, ("max-uploads", "maxUploads"), MAX_LIST, MAX_LIST)
        uploads: list[UploadRecord] = []
        prefixes: list[str] = []
        truncated = False
        passed_id_marker = not id_marker
        for upload in self.storage.iter_uploads(bucket, prefix):
            if key_marker and upload.key < key_marker:
                continue
            if key_marker and upload.key == key_marker:
                if not passed_id_marker:
                    passed_id_marker = upload.upload_id == id_marker
                    continue
                if not id_marker:
                    continue
            common = None
            if delimiter:
                cut = upload.key.find(delimiter, len(prefix))
                if cut >= 0:
                    common = upload.key[: cut + len(delimiter)]
            if common is not None and prefixes and prefixes[-1] == common:
                continue
            if len(uploads) + len(prefixes) == max_uploads:
                truncated = True
                break
            if common is not None:
                prefixes.append(common)
            else:
                uploads.append(upload)
        body = call.dialect.list_uploads(
            bucket,
            uploads,
            prefixes,
            prefix=prefix,
            delimiter=delimiter,
            key_marker=key_marker,
            upload_id_marker=id_marker,
            max_uploads=max_uploads,
            truncated=truncated,
            encode=params.get("encoding-type") == "url",
        )
        return web.Response(body=body, headers={"content-type": call.dialect.content_type})

    async def _op_AbortMultipartUpload(self, call: Call) -> web.StreamResponse:
        upload = self._upload(call)
        self.storage.abort_upload(upload)
        return web.Response(status=204)

    def _requested_parts(self, call: Call, raw: bytes) -> list[tuple[int, str]]:
        requested: list[tuple[int, str]] = []
        try:
            if call.dialect.name == "bos":
                document = json.loads(raw or b"{}")
                for item in document["parts"]:
                    requested.append((int(item["partNumber"]), str(item["eTag"])))
            else:
                root = ElementTree.fromstring(raw)
                for item in _children(root, "Part"):
                    requested.append(
                        (
                            int(_child_text(item, "PartNumber") or ""),
                            _child_text(item, "ETag") or "",
                        )
                    )
        except (ValueError, KeyError, TypeError, ElementTree.ParseError):
            raise ServeError(
                "MalformedXML", "The request body you provided was not well-formed."
            ) from None
        if not requested:
            raise ServeError("MalformedXML", "You must specify at least one part.")
        return requested

    async def _op_CompleteMultipartUpload(self, call: Call) -> web.StreamResponse:
        upload = self._upload(call)
        sink = _BytesSink()
        # The BOS SDK sends the whole object's x-bce-content-crc32 on complete: it describes the
        # assembled object, not this request's part list, so it is not checked against the body.
        await self._read_body(
            call, sink, limit=4 * 1024 * 1024, want_crc=False, body_checksums=False
        )
        requested = self._requested_parts(call, sink.getvalue())
        stored = {p.number: p for p in self.storage.list_parts(upload)}
        min_size = self.config.min_part_size
        if min_size is None:
            min_size = call.dialect.min_part_size
        chosen: list[PartRecord] = []
        previous = 0
        for number, etag in requested:
            if number <= previous:
                raise ServeError(
                    "InvalidPartOrder", "The list of parts was not in ascending order."
                )
            previous = number
            part = stored.get(number)
            if part is None or etag.strip().strip('"').lower() != part.md5_hex:
                raise ServeError(
                    "InvalidPart", f"Part {number} was not found or its ETag did not match.",
                    key=call.key,
                )  # fmt: skip
            chosen.append(part)
        for part in chosen[:-1]:
            if part.size < min_size:
                raise ServeError(
                    "EntityTooSmall", f"Part {part.number} is {part.size} bytes; every part but "
                    f"the last must be at least {min_size} bytes.", key=call.key,
                )  # fmt: skip
        md5s = b"".join(bytes.fromhex(p.md5_hex) for p in chosen)
        etag = f"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}"
        extra_metadata = (
            checks.parse_metadata(call.dialect, call.headers) if call.dialect.name == "bos" else {}
        )
        meta = replace(
            upload.template,
            size=sum(p.size for p in chosen),
            etag=etag,
            last_modified=time.time(),
            multipart=True,
            user_metadata={**upload.template.user_metadata, **extra_metadata},
        )
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.storage.complete_upload, upload, chosen, meta)
        self.stats.stored(upload.bucket, upload.key)
        if call.dialect.name == "oss":
            meta = await self._fill_crc(upload.bucket, meta)
        location = f"http://{call.host}/{upload.bucket}/{upload.key}"
        headers = {"content-type": call.dialect.content_type}
        headers.update(call.dialect.put_headers(meta))
        if call.dialect.name == "s3":
            headers.pop("etag", None)  # S3 gives the ETag in the body only
        return web.Response(
            body=call.dialect.complete(location, upload.bucket, meta), headers=headers
        )


class _BytesSink:
    """A small request body (delete lists, complete lists) kept in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.parts.append(chunk)
        self.size += len(chunk)

    def abort(self) -> None:
        self.parts.clear()

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


class _ConnectionCut(Exception):
    """Raised after an injected connection reset: there is nothing to answer."""


def make_app(config: ServerConfig, **kwargs: object) -> tuple[web.Application, BulkputServer]:
    server = BulkputServer(config, **kwargs)  # type: ignore[arg-type]
    return server.make_app(), server


HANDLER_ARGS: dict[str, object] = {
    # long keys arrive percent-encoded (up to 3 bytes per byte): let them reach our own check
    "max_line_size": 65536,
    "max_field_size": 65536,
}
