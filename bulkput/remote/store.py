"""The one storage interface every command uses (as s5cmd's ``storage.Storage``).

An ``ObjectStore`` is bound to one bucket of one provider. Each method is exactly one HTTP
request (listings: one request per page, driven lazily), signed when it is sent; retrying is
the scheduler's job, never the store's. Failures raise :mod:`bulkput.errors` types.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# The largest object one PUT may carry, in every dialect: larger files always go multipart.
MAX_SINGLE_PUT = 5 * 1024**3


@dataclass(frozen=True, slots=True)
class FileRange:
    """A body streamed from disk: ``length`` bytes of ``path`` from ``offset``. Re-readable,
    so a retry sends it again without holding it in memory."""

    path: str
    offset: int
    length: int


Body = bytes | FileRange


@dataclass(frozen=True, slots=True)
class ObjectHeaders:
    """Dialect-neutral object headers; each dialect spells them its own way."""

    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    expires: str | None = None
    acl: str | None = None
    storage_class: str | None = None
    server_side_encryption: str | None = None
    sse_kms_key_id: str | None = None  # the KMS key of --sse aws:kms (KMS on OSS); None: default
    metadata: dict[str, str] = field(default_factory=dict)  # user metadata, names without prefix


# The user metadata holding an object's MD5 (hex) where its ETag is not the MD5: multipart
# uploads and encrypted objects (SSE-KMS, SSE-C).
MD5_METADATA = "md5"


@dataclass(frozen=True, slots=True)
class PutResult:
    etag: str | None  # without quotes
    request_id: str | None = None
    crc64: int | None = None  # OSS x-oss-hash-crc64ecma when sent
    # False when the answer says the object is stored encrypted in a way (SSE-KMS, SSE-C)
    # that makes its ETag something other than the MD5 of the bytes sent
    etag_is_md5: bool = True


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None  # without quotes
    last_modified: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # filled by HEAD only
    content_type: str | None = None
    etag_is_md5: bool = True  # HEAD only: False for SSE-KMS and SSE-C objects


@dataclass(frozen=True, slots=True)
class PartInfo:
    part_number: int
    etag: str  # without quotes
    size: int | None = None
    etag_is_md5: bool = True  # False for a part of an SSE-KMS or SSE-C upload


@dataclass(frozen=True, slots=True)
class UploadInfo:
    key: str
    upload_id: str
    initiated: str | None = None


@dataclass(frozen=True, slots=True)
class DeleteFailure:
    key: str
    code: str
    message: str


class ObjectStore(Protocol):
    bucket: str
    dialect_name: str  # "bos" | "oss" | "s3"

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        """Raise :class:`~bulkput.errors.ValidationError` when ``key`` or ``headers`` break a
        rule of this service (no request is made)."""
        ...

    async def put_object(
        self, key: str, body: Body, *, content_md5: str | None, headers: ObjectHeaders
    ) -> PutResult:
        """PUT one object. ``content_md5`` is base64 (sent as Content-MD5) or None."""
        ...

    async def head_object(self, key: str) -> ObjectInfo | None:
        """The object's size, ETag and user metadata; None when it does not exist."""
        ...

    async def get_object(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        """The object's bytes (inclusive range); for checks and tests, not the hot path."""
        ...

    def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix`` in key order, one page request at a time; with
        ``start_after``, only the keys after it (S3's start-after, OSS's and BOS's marker)."""
        ...

    async def delete_objects(self, keys: Sequence[str]) -> list[DeleteFailure]:
        """Delete up to 1000 keys (multi-object delete where the dialect has it)."""
        ...

    async def create_bucket(self) -> None: ...

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        """Start a multipart upload; returns the upload id."""
        ...

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, content_md5: str | None
    ) -> PartInfo: ...

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        """All confirmed parts (every page). Raises NotFoundError when the upload is gone."""
        ...

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> PutResult:
        """A 200 whose body is an error raises, as any other failure."""
        ...

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None: ...

    def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]: ...

    async def close(self) -> None: ...
