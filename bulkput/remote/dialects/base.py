"""What every provider dialect shares: request building, header spelling, validation, and the
shape of parsed answers.

A dialect is pure: it turns (endpoint, bucket, key, options) into a :class:`Request` and a
response's (status, headers, body) into values or a :class:`~bulkput.errors.RemoteError`
through :func:`bulkput.errors.error_from_response`. It never does I/O and never signs.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from bulkput.errors import RemoteError, ValidationError, error_from_response
from bulkput.remote.regions import parse_service_host
from bulkput.remote.signing._encoding import uri_encode
from bulkput.remote.store import (
    Body,
    DeleteFailure,
    ObjectHeaders,
    ObjectInfo,
    PartInfo,
    PutResult,
    UploadInfo,
)
from bulkput.remote.target import Endpoint, is_ip_or_localhost, validate_key
from bulkput.suggest import unknown_value

Query = tuple[tuple[str, "str | None"], ...]
# The object settings whose values each service takes from a list of its own.
Choice = Literal["ACL", "storage class", "server-side encryption"]
T = TypeVar("T")

# Header values go on the wire as they are: printable ASCII and tab only, so a value can never
# smuggle a line break (header injection) or be re-encoded differently by the HTTP library.
_HEADER_VALUE = re.compile(r"^[\t\x20-\x7e]*$")
# RFC 9110 token characters: what a header name (hence a metadata name) may hold.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HEX_ETAG = re.compile(r"^[0-9A-Fa-f]{32}(-\d+)?$")


@dataclass(slots=True)  # not frozen: built once per request on the hot path
class Request:
    """One HTTP request as it will be sent, before signing.

    ``path`` and ``url`` are already percent-encoded; ``query`` holds the decoded pairs in send
    order (``None`` for a valueless sub-resource); ``headers`` has lower-case names.
    """

    method: str
    url: str
    host: str
    path: str
    query: Query
    headers: dict[str, str]
    bucket: str
    key: str | None
    body: Body | None = None


@dataclass(frozen=True, slots=True)
class BucketLocation:
    """Where an error answer says the bucket lives: its region, and the service host it named
    (either may be missing; a host that is the provider's implies its region)."""

    region: str | None
    host: str | None = None


# Answers that may say the bucket lives elsewhere: redirects, S3's 400 with the right
# <Region>, OSS's 403 with the <Endpoint> to use.
LOCATION_STATUSES = frozenset({301, 302, 307, 308, 400, 403})


@dataclass(slots=True)
class Page(Generic[T]):
    """One page of a listing: its items and the query parameters of the next page (or None)."""

    items: list[T] = field(default_factory=list)
    next_query: dict[str, str] | None = None


def encode_query(query: Query) -> str:
    """``a=1&uploads``: names and values ``enc()``-encoded, valueless names alone."""
    return "&".join(
        uri_encode(name) if value is None else f"{uri_encode(name)}={uri_encode(value)}"
        for name, value in query
    )


def content_md5(body: bytes) -> str:
    """Base64 MD5 of ``body`` (the Content-MD5 header value)."""
    return base64.b64encode(hashlib.md5(body).digest()).decode("ascii")


def strip_etag(value: str | None) -> str | None:
    """An ETag without quotes; MD5-shaped ETags (``hex`` or ``hex-N``) in lower case, so they
    compare with ``hashlib.md5().hexdigest()`` whatever case the service answered in."""
    if value is None:
        return None
    value = value.strip().strip('"')
    return value.lower() if _HEX_ETAG.match(value) else value


def _snapshot(headers: ObjectHeaders) -> ObjectHeaders:
    """``headers`` with a copy of its metadata dict, to remember it by value."""
    return replace(headers, metadata=dict(headers.metadata)) if headers.metadata else headers


def _canonical(values: Sequence[str]) -> dict[str, str]:
    return {v.lower(): v for v in values}


class Dialect:
    """The base of the three dialects; subclasses set the class attributes and the body formats."""

    name: ClassVar[str]
    meta_prefix: ClassVar[str]
    acl_header: ClassVar[str]
    storage_class_header: ClassVar[str]
    sse_header: ClassVar[str]
    request_id_header: ClassVar[str]
    storage_classes: ClassVar[tuple[str, ...]]
    acls: ClassVar[tuple[str, ...]]
    sse_values: ClassVar[tuple[str, ...]]
    max_metadata_bytes: ClassVar[int]
    # The --signature-version values the service signs with ("v4", the default, names each
    # service's one signature: SigV4, bce-auth-v1; only OSS has two) and that signature's name.
    signature_versions: ClassVar[tuple[str, ...]] = ("v4",)
    signature_name: ClassVar[str]
    # encryption whose ETag is not the MD5 of the bytes (lower case), and the header naming
    # its KMS key (None: the service has no such option)
    kms_values: ClassVar[frozenset[str]] = frozenset()
    kms_key_header: ClassVar[str | None] = None
    # answer headers saying the object is encrypted with a customer's key (SSE-C)
    customer_key_answer_header: ClassVar[str | None] = None
    # the header saying the requester pays (None: the service has no requester-pays buckets)
    request_payer_header: ClassVar[str | None] = None
    # HEAD bucket answers with the bucket's region (S3), so an unknown region is asked first
    finds_region_with_head: ClassVar[bool] = False
    # HEAD on the bucket says whether it exists (200 or 404)
    answers_head_bucket: ClassVar[bool] = False
    # the name the service gives the list "next page" parameter etc. live in subclasses

    def __init__(self) -> None:
        self._storage_class_canon = _canonical(self.storage_classes)
        self._acl_canon = _canonical(self.acls)
        self._sse_canon = _canonical(self.sse_values)
        # One-entry memos for the hot path: a job sends the same headers again and again.
        # Keyed by value (a snapshot, so a metadata dict changed later is not mistaken).
        self._valid_headers: ObjectHeaders | None = None
        self._wire_memo: tuple[ObjectHeaders, dict[str, str]] | None = None

    # --- requests -----------------------------------------------------------------------------

    def signer_name(self, signature_version: str = "v4") -> str:
        raise NotImplementedError

    def request(
        self,
        endpoint: Endpoint,
        method: str,
        bucket: str,
        key: str | None = None,
        query: Query = (),
        headers: dict[str, str] | None = None,
        body: Body | None = None,
    ) -> Request:
        """Build the request for ``bucket`` (and ``key``): path-style or virtual-hosted."""
        if endpoint.path_style:
            host = dial = endpoint.netloc
            path = (
                f"/{bucket}/{uri_encode(key, keep_slash=True)}" if key is not None else f"/{bucket}"
            )
        else:
            host = f"{bucket}.{endpoint.netloc}"
            path = "/" + uri_encode(key, keep_slash=True) if key is not None else "/"
            # a local store (bucket.localhost) is dialled at its own address, with the bucket
            # in the Host header: no resolver is bound to know bucket.localhost
            dial = endpoint.netloc if is_ip_or_localhost(endpoint.host) else host
        url = f"{endpoint.scheme}://{dial}{path}"
        if query:
            url = f"{url}?{encode_query(query)}"
        return Request(
            method,
            url,
            host,
            path,
            query,
            headers if headers is not None else {},
            bucket,
            key,
            body,
        )

    def object_headers(self, headers: ObjectHeaders) -> dict[str, str]:
        """``headers`` spelled for this service (lower-case names), canonical value spelling
        for storage class, ACL and encryption. Call :meth:`validate` first. A new dict each
        call (the caller adds to it)."""
        memo = self._wire_memo
        if memo is not None and memo[0] == headers:
            return dict(memo[1])
        out = self._object_headers(headers)
        self._wire_memo = (_snapshot(headers), out)
        return dict(out)

    def _object_headers(self, headers: ObjectHeaders) -> dict[str, str]:
        out: dict[str, str] = {}
        if headers.content_type:
            out["content-type"] = headers.content_type
        if headers.cache_control:
            out["cache-control"] = headers.cache_control
        if headers.content_disposition:
            out["content-disposition"] = headers.content_disposition
        if headers.content_encoding:
            out["content-encoding"] = headers.content_encoding
        if headers.expires:
            out["expires"] = headers.expires
        if headers.acl:
            out[self.acl_header] = self._acl_canon.get(headers.acl.lower(), headers.acl)
        if headers.storage_class:
            out[self.storage_class_header] = self._storage_class_canon.get(
                headers.storage_class.lower(), headers.storage_class
            )
        if headers.server_side_encryption:
            out[self.sse_header] = self._sse_canon.get(
                headers.server_side_encryption.lower(), headers.server_side_encryption
            )
        if headers.sse_kms_key_id and self.kms_key_header:
            out[self.kms_key_header] = headers.sse_kms_key_id
        prefix = self.meta_prefix
        for name, value in headers.metadata.items():
            out[prefix + name.lower()] = value
        return out

    # --- validation before sending ------------------------------------------------------------

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        """Raise ValidationError when ``key`` or ``headers`` break a rule of this service."""
        validate_key(key, self.name)
        if headers == self._valid_headers:
            return
        self._validate_headers(key, headers)
        self._valid_headers = _snapshot(headers)

    def _validate_headers(self, key: str, headers: ObjectHeaders) -> None:
        for label, value in (
            ("Content-Type", headers.content_type),
            ("Cache-Control", headers.cache_control),
            ("Content-Disposition", headers.content_disposition),
            ("Content-Encoding", headers.content_encoding),
            ("Expires", headers.expires),
        ):
            if value is not None and not _HEADER_VALUE.match(value):
                raise ValidationError(
                    f"{label} {value!r} holds characters a header cannot carry "
                    "(only printable ASCII)",
                    key=key,
                )
        self._check_storage_class(key, headers.storage_class)
        self._check_choice(key, "ACL", headers.acl, self._acl_canon)
        self._check_choice(
            key, "server-side encryption", headers.server_side_encryption, self._sse_canon
        )
        self._check_kms_key(key, headers)
        self.validate_metadata(key, headers.metadata)

    def _check_storage_class(self, key: str, value: str | None) -> None:
        self._check_choice(key, "storage class", value, self._storage_class_canon)

    def unknown_choice(self, what: Choice, value: str) -> str | None:
        """Why ``value`` is not an ``what`` this service takes (with "did you mean" when one
        is close), or None when it is one (any case). A command checks its options with this
        before any work; :meth:`validate` checks each object's own values the same way."""
        canon = {
            "ACL": self._acl_canon,
            "storage class": self._storage_class_canon,
            "server-side encryption": self._sse_canon,
        }[what]
        if value.lower() in canon:
            return None
        return unknown_value(what, value, canon.values(), f"{self.name}://")

    def _check_kms_key(self, key: str, headers: ObjectHeaders) -> None:
        if headers.sse_kms_key_id is None:
            return
        if not _HEADER_VALUE.match(headers.sse_kms_key_id):
            raise ValidationError("the KMS key id holds characters a header cannot carry", key=key)
        if self.kms_key_header is None:
            raise ValidationError(f"{self.name} has no KMS key option (--sse-kms-key-id)", key=key)
        sse = (headers.server_side_encryption or "").lower()
        if sse not in self.kms_values:
            kms = " or ".join(self._sse_canon[v] for v in sorted(self.kms_values))
            raise ValidationError(f"a KMS key id goes with --sse {kms}", key=key)

    def _check_choice(
        self, key: str, what: Choice, value: str | None, canon: Mapping[str, str]
    ) -> None:
        if value is not None and value.lower() not in canon:
            raise ValidationError(
                unknown_value(what, value, canon.values(), f"{self.name}://"), key=key
            )

    def validate_metadata(self, key: str, metadata: Mapping[str, str]) -> None:
        total = 0
        seen: set[str] = set()
        for name, value in metadata.items():
            self._check_metadata_name(key, name)
            lower = name.lower()
            if lower in seen:
                raise ValidationError(
                    f"user metadata name {name!r} given twice (names ignore case)", key=key
                )
            seen.add(lower)
            if not _HEADER_VALUE.match(value):
                raise ValidationError(
                    f"user metadata {name!r} has a value with characters other than printable "
                    "ASCII; encode it (e.g. percent-encoding) before upload",
                    key=key,
                )
            total += len(name.encode()) + len(value.encode())
        if total > self.max_metadata_bytes:
            raise ValidationError(
                f"user metadata is {total} bytes; {self.name} allows at most "
                f"{self.max_metadata_bytes} bytes in all",
                key=key,
            )

    def _check_metadata_name(self, key: str, name: str) -> None:
        if not _TOKEN.match(name):
            raise ValidationError(
                f"user metadata name {name!r} is not a valid header name "
                "(letters, digits and -!#$%&'*+.^_`|~ only)",
                key=key,
            )

    # --- answers ------------------------------------------------------------------------------

    def request_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get(self.request_id_header)

    def parse_error_body(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> tuple[str | None, str | None, str | None]:
        """(code, message, request id) from an error answer; Nones when the body says nothing."""
        raise NotImplementedError

    def error(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        *,
        bucket: str | None = None,
        key: str | None = None,
    ) -> RemoteError:
        """The exception for a failed answer, through the one mapping in bulkput.errors."""
        try:
            code, message, body_request_id = self.parse_error_body(status, headers, body)
        except (
            ValueError,
            SyntaxError,
        ):  # not the dialect's format (a proxy's HTML page, a truncated body)
            code, message, body_request_id = None, None, None
        if message is None and code is None and body:
            snippet = body[:200].decode("utf-8", "replace")
            message = " ".join(snippet.split()) or None
        return error_from_response(
            status,
            code,
            message,
            request_id=self.request_id(headers) or body_request_id,
            bucket=bucket,
            key=key,
        )

    def bucket_location(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> BucketLocation | None:
        """The bucket's region or endpoint when this error answer says it is elsewhere (a
        redirect's ``Location``; dialects add what their error bodies carry), else None."""
        if status not in LOCATION_STATUSES:
            return None
        location = headers.get("location") if 300 <= status < 400 else None
        host = urlsplit(location).hostname if location else None
        if not host:
            return None
        return BucketLocation(self._region_of_host(host), host)

    def _region_of_host(self, host: str) -> str | None:
        service = parse_service_host(self.name, host)
        return service.region if service is not None else None

    # --- encryption ---------------------------------------------------------------------------

    def etag_is_md5(self, headers: Mapping[str, str]) -> bool:
        """False when an answer says the object is encrypted with KMS or a customer's key:
        its ETag is then not the MD5 of its bytes (Content-MD5 still checked them)."""
        if (headers.get(self.sse_header) or "").lower() in self.kms_values:
            return False
        return not (self.customer_key_answer_header and self.customer_key_answer_header in headers)

    def etag_is_md5_for(self, headers: ObjectHeaders, customer_key: bool) -> bool:
        """What :meth:`etag_is_md5` will say of an object written with ``headers`` (and a
        customer's key), known before sending; the bucket's default encryption may still
        make it False."""
        if customer_key:
            return False
        return (headers.server_side_encryption or "").lower() not in self.kms_values

    def put_result(self, headers: Mapping[str, str]) -> PutResult:
        crc = headers.get("x-oss-hash-crc64ecma")
        return PutResult(
            etag=strip_etag(headers.get("etag")),
            request_id=self.request_id(headers),
            crc64=int(crc) if crc and crc.isdigit() else None,
            etag_is_md5=self.etag_is_md5(headers),
        )

    def object_info(self, key: str, headers: Mapping[str, str]) -> ObjectInfo:
        """What a HEAD answer says about ``key``."""
        prefix = self.meta_prefix
        metadata = {
            name.lower()[len(prefix) :]: value
            for name, value in headers.items()
            if name.lower().startswith(prefix)
        }
        length = headers.get("content-length")
        return ObjectInfo(
            key=key,
            size=int(length) if length and length.isdigit() else 0,
            etag=strip_etag(headers.get("etag")),
            last_modified=headers.get("last-modified"),
            metadata=metadata,
            content_type=headers.get("content-type"),
            etag_is_md5=self.etag_is_md5(headers),
        )

    # --- bodies and queries per dialect (subclasses) -------------------------------------------

    def list_objects_query(self, prefix: str, page_size: int) -> Query:
        raise NotImplementedError

    def list_start_after(self, key: str) -> dict[str, str]:
        """The listing parameter that starts after ``key`` (ListObjects V1's marker; S3's V2
        says start-after)."""
        return {"marker": key}

    def parse_list_objects(self, body: bytes) -> Page[ObjectInfo]:
        raise NotImplementedError

    def delete_objects_body(self, keys: Sequence[str]) -> tuple[Query, bytes, dict[str, str]]:
        """(query, body, extra headers) of one multi-object delete."""
        raise NotImplementedError

    def parse_delete_objects(self, body: bytes) -> list[DeleteFailure]:
        raise NotImplementedError

    def parse_initiate(self, body: bytes) -> str:
        raise NotImplementedError

    def complete_body(self, parts: Sequence[PartInfo]) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def parse_complete(
        self, headers: Mapping[str, str], body: bytes, *, bucket: str, key: str
    ) -> PutResult:
        """The result of a complete-multipart answer with status 200; raises when the body is
        an error (the services may answer 200 and then fail while assembling)."""
        raise NotImplementedError

    def list_parts_query(self, upload_id: str) -> Query:
        raise NotImplementedError

    def parse_list_parts(self, body: bytes) -> Page[PartInfo]:
        raise NotImplementedError

    def list_uploads_query(self, prefix: str) -> Query:
        raise NotImplementedError

    def parse_list_uploads(self, body: bytes) -> Page[UploadInfo]:
        raise NotImplementedError

    def create_bucket_body(self, region: str) -> tuple[bytes | None, dict[str, str]]:
        return None, {}


def with_next(query: Query, next_query: Mapping[str, str]) -> Query:
    """``query`` with the next-page parameters set (replacing earlier values)."""
    names = set(next_query)
    kept = tuple((n, v) for n, v in query if n not in names)
    return kept + tuple(next_query.items())
