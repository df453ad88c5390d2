"""The services `bulkput serve` emulates (S3, OSS, BOS): recognising which one a request talks
to, each service's limits and accepted values, and the format of every answer.

A request's service is recognised by its Authorization (``bce-auth-v1/``, ``OSS ``,
``OSS4-HMAC-SHA256``, ``AWS4-HMAC-SHA256``) or, for BOS query-string auth, by the
``authorization`` query parameter. Every answer (errors, listings, multipart results, header
names) is then written the way that service writes it, down to the details the official SDKs
parse: OSS XML has no namespace and dates end in ``.000Z``; OSS ETags are upper-case hex; BOS
answers JSON with camelCase names; S3 XML carries the 2006-03-01 namespace.

This module is pure: it turns values into bytes and headers, and knows no I/O.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from urllib.parse import quote
from xml.sax.saxutils import escape

from bulkput.server.listing import ListingPage
from bulkput.server.storage import ObjectMeta, PendingUpload, StoredPart

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
OWNER_ID = "bulkput"
OWNER_NAME = "bulkput"


def iso_ms(timestamp: float) -> str:
    """``2024-01-02T03:04:05.000Z``: the form S3 and OSS use (oss2 parses exactly this)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def iso_s(timestamp: float) -> str:
    """``2024-01-02T03:04:05Z``: the form BOS uses."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def format_http_date(timestamp: float) -> str:
    return formatdate(timestamp, usegmt=True)


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _x(text: str | int | None) -> str:
    # XML 1.0 cannot carry most control characters at all: show them as U+FFFD
    return "" if text is None else escape(_XML_INVALID.sub("\ufffd", str(text)))


def _el(name: str, value: str | int | None) -> str:
    return f"<{name}>{_x(value)}</{name}>"


def _bool(value: bool) -> str:
    return "true" if value else "false"


def url_encode(text: str) -> str:
    # "/" stays, "+" and " " are encoded, so both unquote and unquote_plus give the key back
    return quote(text, safe="/")


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    status: int
    code: str


# Generic error names (S3's where they exist) -> per-service (status, code) when it differs.
_DEFAULT_STATUS: dict[str, int] = {
    "AccessDenied": 403,
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "InvalidSecurityToken": 403,
    "RequestExpired": 403,
    "NoSuchBucket": 404,
    "NoSuchKey": 404,
    "NoSuchUpload": 404,
    "BucketNotEmpty": 409,
    "BucketAlreadyOwnedByYou": 409,
    "InvalidBucketName": 400,
    "InvalidObjectName": 400,
    "KeyTooLongError": 400,
    "InvalidDigest": 400,
    "BadDigest": 400,
    "XAmzContentSHA256Mismatch": 400,
    "MissingContentLength": 411,
    "RequestTimeout": 400,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "MetadataTooLarge": 400,
    "InvalidStorageClass": 400,
    "InvalidArgument": 400,
    "InvalidEncryptionAlgorithmError": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "InvalidRange": 416,
    "MalformedXML": 400,
    "InvalidRequest": 400,
    "NotImplemented": 501,
    "MethodNotAllowed": 405,
    "InternalError": 500,
    "SlowDown": 503,
}

_OVERRIDES: dict[str, dict[str, str]] = {
    "s3": {
        "InvalidSecurityToken": "InvalidToken",
        "InvalidEncryptionAlgorithmError": "InvalidArgument",
    },
    "oss": {
        # the seed document: bad storage class and a body over 5 GB are InvalidArgument
        "InvalidStorageClass": "InvalidArgument",
        "EntityTooLarge": "InvalidArgument",
        "KeyTooLongError": "InvalidObjectName",
        "BucketAlreadyOwnedByYou": "BucketAlreadyExists",
    },
    "bos": {
        "KeyTooLongError": "InvalidObjectName",
        "InvalidEncryptionAlgorithmError": "InvalidArgument",
        "BucketAlreadyOwnedByYou": "BucketAlreadyExists",
        "MalformedXML": "MalformedJSON",
        "RequestTimeTooSkewed": "RequestExpired",
    },
}


class ServeError(Exception):
    """An answer other than success, named generically; the service picks code and status."""

    def __init__(
        self,
        name: str,
        message: str = "",
        *,
        key: str | None = None,
        close: bool = False,
        status: int | None = None,
    ) -> None:
        super().__init__(message or name)
        self.name = name
        self.status = status  # overrides the usual status of ``name`` (e.g. from the verifier)
        self.message = message or name
        self.key = key
        self.close = close  # drop the connection after answering (body left unread)


class EmulatedService:
    """One service as the store emulates it: S3's behaviour here; subclasses override what
    their service does differently. Stateless: one shared instance per service."""

    name = "s3"
    meta_prefix = "x-amz-meta-"
    header_prefix = "x-amz-"
    storage_class_header = "x-amz-storage-class"
    acl_header = "x-amz-acl"
    encryption_header = "x-amz-server-side-encryption"
    max_metadata_bytes = 2 * 1024
    min_part_size = 5 * 1024 * 1024
    storage_classes: frozenset[str] = frozenset(
        {
            "STANDARD",
            "REDUCED_REDUNDANCY",
            "STANDARD_IA",
            "ONEZONE_IA",
            "INTELLIGENT_TIERING",
            "GLACIER",
            "DEEP_ARCHIVE",
            "OUTPOSTS",
            "GLACIER_IR",
            "SNOW",
            "EXPRESS_ONEZONE",
        }
    )
    default_storage_class = "STANDARD"
    acls: frozenset[str] = frozenset(
        {
            "private",
            "public-read",
            "public-read-write",
            "authenticated-read",
            "aws-exec-read",
            "bucket-owner-read",
            "bucket-owner-full-control",
        }
    )
    encryptions: frozenset[str] = frozenset({"AES256", "aws:kms", "aws:kms:dsse"})
    content_type = "application/xml"

    # -- identity ------------------------------------------------------------------------

    def new_request_id(self) -> str:
        return uuid.uuid4().hex[:16].upper()

    def request_id_headers(self, request_id: str) -> dict[str, str]:
        return {"x-amz-request-id": request_id, "x-amz-id-2": request_id}

    def etag(self, meta_etag: str) -> str:
        return f'"{meta_etag}"'

    # -- errors --------------------------------------------------------------------------

    def error_spec(self, name: str, status: int | None = None) -> ErrorSpec:
        code = _OVERRIDES.get(self.name, {}).get(name, name)
        return ErrorSpec(status or _DEFAULT_STATUS.get(name, 400), code)

    def error_body(
        self, spec: ErrorSpec, message: str, request_id: str, *, bucket: str | None, key: str | None
    ) -> bytes:
        extra = (_el("BucketName", bucket) if bucket else "") + (_el("Key", key) if key else "")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"{_el('Code', spec.code)}{_el('Message', message)}{extra}"
            f"{_el('RequestId', request_id)}{_el('HostId', request_id)}</Error>"
        ).encode()

    def error_headers(self, spec: ErrorSpec, body: bytes, *, bodiless: bool) -> dict[str, str]:
        return {"content-type": self.content_type}

    # -- object headers ------------------------------------------------------------------

    def object_headers(self, meta: ObjectMeta) -> dict[str, str]:
        headers = {
            "content-type": meta.content_type,
            "etag": self.etag(meta.etag),
            "last-modified": format_http_date(meta.last_modified),
            "accept-ranges": "bytes",
        }
        headers.update(meta.content_headers)
        for name, value in meta.user_metadata.items():
            headers[self.meta_prefix + name] = value
        if meta.storage_class and meta.storage_class != self.default_storage_class:
            headers[self.storage_class_header] = meta.storage_class
        if meta.encryption:
            headers[self.encryption_header] = meta.encryption
        return headers

    def put_headers(self, meta: ObjectMeta) -> dict[str, str]:
        headers = {"etag": self.etag(meta.etag)}
        if meta.encryption:
            headers[self.encryption_header] = meta.encryption
        return headers

    def part_headers(self, part: StoredPart) -> dict[str, str]:
        return {"etag": self.etag(part.md5_hex)}

    # -- bodies --------------------------------------------------------------------------

    def _xml(self, root: str, inner: str) -> bytes:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">{inner}</{root}>'.encode()

    def _owner(self) -> str:
        return f"<Owner>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_NAME)}</Owner>"

    def list_buckets(self, buckets: Iterable[tuple[str, float]], region: str) -> bytes:
        items = "".join(
            f"<Bucket>{_el('Name', name)}{_el('CreationDate', iso_ms(created))}</Bucket>"
            for name, created in buckets
        )
        return self._xml("ListAllMyBucketsResult", f"{self._owner()}<Buckets>{items}</Buckets>")

    def _contents(self, meta: ObjectMeta, encode: bool) -> str:
        key = url_encode(meta.key) if encode else meta.key
        return (
            f"<Contents>{_el('Key', key)}{_el('LastModified', iso_ms(meta.last_modified))}"
            f"{_el('ETag', self.etag(meta.etag))}{_el('Size', meta.size)}"
            f"{_el('StorageClass', meta.storage_class or self.default_storage_class)}"
            f"{self._owner()}</Contents>"
        )

    def _common_prefixes(self, prefixes: Sequence[str], encode: bool) -> str:
        return "".join(
            f"<CommonPrefixes>{_el('Prefix', url_encode(p) if encode else p)}</CommonPrefixes>"
            for p in prefixes
        )

    def list_v1(
        self,
        bucket: str,
        page: ListingPage,
        *,
        prefix: str,
        marker: str,
        delimiter: str,
        max_keys: int,
        encode: bool,
    ) -> bytes:
        enc = url_encode if encode else (lambda s: s)
        inner = (
            f"{_el('Name', bucket)}{_el('Prefix', prefix)}{_el('Marker', enc(marker))}"
            f"{_el('MaxKeys', max_keys)}"
            + (_el("Delimiter", enc(delimiter)) if delimiter else "")
            + (_el("EncodingType", "url") if encode else "")
            + _el("IsTruncated", _bool(page.truncated))
            + (
                _el("NextMarker", enc(page.next_marker))
                if page.truncated and page.next_marker
                else ""
            )
            + "".join(self._contents(m, encode) for m in page.objects)
            + self._common_prefixes(page.prefixes, encode)
        )
        return self._xml("ListBucketResult", inner)

    def list_v2(
        self,
        bucket: str,
        page: ListingPage,
        *,
        prefix: str,
        delimiter: str,
        max_keys: int,
        encode: bool,
        continuation: str | None,
        start_after: str | None,
        next_token: str | None,
    ) -> bytes:
        enc = url_encode if encode else (lambda s: s)
        inner = (
            f"{_el('Name', bucket)}{_el('Prefix', enc(prefix))}{_el('MaxKeys', max_keys)}"
            + (_el("Delimiter", enc(delimiter)) if delimiter else "")
            + (_el("EncodingType", "url") if encode else "")
            + _el("IsTruncated", _bool(page.truncated))
            + _el("KeyCount", len(page.objects) + len(page.prefixes))
            + (_el("ContinuationToken", continuation) if continuation else "")
            + (_el("NextContinuationToken", next_token) if next_token else "")
            + (_el("StartAfter", enc(start_after)) if start_after else "")
            + "".join(self._contents(m, encode) for m in page.objects)
            + self._common_prefixes(page.prefixes, encode)
        )
        return self._xml("ListBucketResult", inner)

    def initiate(self, upload: PendingUpload) -> bytes:
        return self._xml(
            "InitiateMultipartUploadResult",
            f"{_el('Bucket', upload.bucket)}{_el('Key', upload.key)}{_el('UploadId', upload.upload_id)}",
        )

    def complete(self, location: str, bucket: str, meta: ObjectMeta) -> bytes:
        return self._xml(
            "CompleteMultipartUploadResult",
            f"{_el('Location', location)}{_el('Bucket', bucket)}{_el('Key', meta.key)}"
            f"{_el('ETag', self.etag(meta.etag))}",
        )

    def list_parts(
        self,
        upload: PendingUpload,
        parts: Sequence[StoredPart],
        *,
        marker: int,
        max_parts: int,
        truncated: bool,
    ) -> bytes:
        next_marker = parts[-1].number if parts else marker
        items = "".join(
            f"<Part>{_el('PartNumber', p.number)}{_el('LastModified', iso_ms(p.last_modified))}"
            f"{_el('ETag', self.etag(p.md5_hex))}{_el('Size', p.size)}</Part>"
            for p in parts
        )
        return self._xml(
            "ListPartsResult",
            f"{_el('Bucket', upload.bucket)}{_el('Key', upload.key)}{_el('UploadId', upload.upload_id)}"
            f"<Initiator>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_NAME)}</Initiator>"
            f"{self._owner()}"
            f"{_el('StorageClass', upload.template.storage_class or self.default_storage_class)}"
            f"{_el('PartNumberMarker', marker)}{_el('NextPartNumberMarker', next_marker)}"
            f"{_el('MaxParts', max_parts)}{_el('IsTruncated', _bool(truncated))}{items}",
        )

    def list_uploads(
        self,
        bucket: str,
        uploads: Sequence[PendingUpload],
        prefixes: Sequence[str],
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
        truncated: bool,
        encode: bool,
    ) -> bytes:
        enc = url_encode if encode else (lambda s: s)
        next_key = uploads[-1].key if uploads else ""
        next_id = uploads[-1].upload_id if uploads else ""
        items = "".join(
            f"<Upload>{_el('Key', enc(u.key))}{_el('UploadId', u.upload_id)}"
            f"<Initiator>{_el('ID', OWNER_ID)}{_el('DisplayName', OWNER_NAME)}</Initiator>"
            f"{self._owner()}"
            f"{_el('StorageClass', u.template.storage_class or self.default_storage_class)}"
            f"{_el('Initiated', iso_ms(u.initiated))}</Upload>"
            for u in uploads
        )
        return self._xml(
            "ListMultipartUploadsResult",
            f"{_el('Bucket', bucket)}{_el('KeyMarker', enc(key_marker))}"
            f"{_el('UploadIdMarker', upload_id_marker)}{_el('NextKeyMarker', enc(next_key))}"
            f"{_el('NextUploadIdMarker', next_id)}{_el('Prefix', enc(prefix))}"
            + (_el("Delimiter", enc(delimiter)) if delimiter else "")
            + (_el("EncodingType", "url") if encode else "")
            + f"{_el('MaxUploads', max_uploads)}{_el('IsTruncated', _bool(truncated))}{items}"
            + self._common_prefixes(prefixes, encode),
        )

    def delete_result(
        self,
        deleted: Sequence[str],
        errors: Sequence[tuple[str, str, str]],
        *,
        quiet: bool,
        encode: bool,
    ) -> tuple[bytes, str]:
        enc = url_encode if encode else (lambda s: s)
        items = (
            "" if quiet else "".join(f"<Deleted>{_el('Key', enc(k))}</Deleted>" for k in deleted)
        )
        items += "".join(
            f"<Error>{_el('Key', enc(k))}{_el('Code', c)}{_el('Message', m)}</Error>"
            for k, c, m in errors
        )
        if encode:
            items = _el("EncodingType", "url") + items
        return self._xml("DeleteResult", items), self.content_type


class OssService(EmulatedService):
    name = "oss"
    meta_prefix = "x-oss-meta-"
    header_prefix = "x-oss-"
    storage_class_header = "x-oss-storage-class"
    acl_header = "x-oss-object-acl"
    encryption_header = "x-oss-server-side-encryption"
    max_metadata_bytes = 8 * 1024
    min_part_size = 100 * 1024
    storage_classes = frozenset({"Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"})
    default_storage_class = "Standard"
    acls = frozenset({"private", "public-read", "public-read-write", "default"})
    encryptions = frozenset({"AES256", "KMS", "SM4"})

    def new_request_id(self) -> str:
        return os.urandom(12).hex().upper()

    def request_id_headers(self, request_id: str) -> dict[str, str]:
        return {"x-oss-request-id": request_id, "server": "AliyunOSS"}

    def etag(self, meta_etag: str) -> str:
        return f'"{meta_etag.upper()}"'

    def _xml(self, root: str, inner: str) -> bytes:
        return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'.encode()

    def error_body(
        self, spec: ErrorSpec, message: str, request_id: str, *, bucket: str | None, key: str | None
    ) -> bytes:
        extra = (_el("BucketName", bucket) if bucket else "") + (_el("Key", key) if key else "")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"{_el('Code', spec.code)}{_el('Message', message)}{_el('RequestId', request_id)}"
            f"{_el('HostId', '127.0.0.1')}{extra}{_el('EC', self._ec(spec))}</Error>"
        ).encode()

    @staticmethod
    def _ec(spec: ErrorSpec) -> str:
        return f"{spec.status:04d}-00000001"

    def error_headers(self, spec: ErrorSpec, body: bytes, *, bodiless: bool) -> dict[str, str]:
        headers = {"content-type": self.content_type, "x-oss-ec": self._ec(spec)}
        if bodiless:  # HEAD: oss2 reads the error from this header
            headers["x-oss-err"] = base64.b64encode(body).decode()
        return headers

    def object_headers(self, meta: ObjectMeta) -> dict[str, str]:
        headers = super().object_headers(meta)
        headers[self.storage_class_header] = meta.storage_class or self.default_storage_class
        headers["x-oss-object-type"] = "Multipart" if meta.multipart else "Normal"
        if meta.crc64 is not None:
            headers["x-oss-hash-crc64ecma"] = str(meta.crc64)
        return headers

    def put_headers(self, meta: ObjectMeta) -> dict[str, str]:
        headers = super().put_headers(meta)
        if meta.crc64 is not None:
            headers["x-oss-hash-crc64ecma"] = str(meta.crc64)
        if not meta.multipart:
            headers["content-md5"] = base64.b64encode(bytes.fromhex(meta.etag)).decode()
        return headers

    def part_headers(self, part: StoredPart) -> dict[str, str]:
        headers = super().part_headers(part)
        if part.crc64 is not None:
            headers["x-oss-hash-crc64ecma"] = str(part.crc64)
        headers["content-md5"] = base64.b64encode(bytes.fromhex(part.md5_hex)).decode()
        return headers

    def _contents(self, meta: ObjectMeta, encode: bool) -> str:
        key = url_encode(meta.key) if encode else meta.key
        return (
            f"<Contents>{_el('Key', key)}{_el('LastModified', iso_ms(meta.last_modified))}"
            f"{_el('ETag', self.etag(meta.etag))}"
            f"{_el('Type', 'Multipart' if meta.multipart else 'Normal')}{_el('Size', meta.size)}"
            f"{_el('StorageClass', meta.storage_class or self.default_storage_class)}"
            f"{self._owner()}</Contents>"
        )

    def list_v1(
        self,
        bucket: str,
        page: ListingPage,
        *,
        prefix: str,
        marker: str,
        delimiter: str,
        max_keys: int,
        encode: bool,
    ) -> bytes:
        enc = url_encode if encode else (lambda s: s)
        inner = (
            f"{_el('Name', bucket)}{_el('Prefix', enc(prefix))}{_el('Marker', enc(marker))}"
            f"{_el('MaxKeys', max_keys)}{_el('Delimiter', enc(delimiter))}"
            + (_el("EncodingType", "url") if encode else "")
            + _el("IsTruncated", _bool(page.truncated))
            + (
                _el("NextMarker", enc(page.next_marker))
                if page.truncated and page.next_marker
                else ""
            )
            + "".join(self._contents(m, encode) for m in page.objects)
            + self._common_prefixes(page.prefixes, encode)
        )
        return self._xml("ListBucketResult", inner)

    def list_buckets(self, buckets: Iterable[tuple[str, float]], region: str) -> bytes:
        items = "".join(
            f"<Bucket>{_el('CreationDate', iso_ms(created))}"
            f"{_el('ExtranetEndpoint', '127.0.0.1')}{_el('IntranetEndpoint', '127.0.0.1')}"
            f"{_el('Location', 'oss-' + region)}{_el('Name', name)}{_el('Region', region)}"
            f"{_el('StorageClass', 'Standard')}</Bucket>"
            for name, created in buckets
        )
        return self._xml("ListAllMyBucketsResult", f"{self._owner()}<Buckets>{items}</Buckets>")


class BosService(EmulatedService):
    name = "bos"
    meta_prefix = "x-bce-meta-"
    header_prefix = "x-bce-"
    storage_class_header = "x-bce-storage-class"
    acl_header = "x-bce-acl"
    encryption_header = "x-bce-server-side-encryption"
    max_metadata_bytes = 2 * 1024
    min_part_size = 5 * 1024 * 1024
    storage_classes = frozenset(
        {"STANDARD", "STANDARD_IA", "COLD", "ARCHIVE", "MAZ_STANDARD", "MAZ_STANDARD_IA"}
    )
    default_storage_class = "STANDARD"
    acls = frozenset({"private", "public-read", "public-read-write"})
    encryptions = frozenset({"AES256", "SM4"})
    content_type = "application/json; charset=utf-8"

    def new_request_id(self) -> str:
        return str(uuid.uuid4())

    def request_id_headers(self, request_id: str) -> dict[str, str]:
        return {"x-bce-request-id": request_id, "x-bce-debug-id": request_id, "server": "BceBos"}

    def etag(self, meta_etag: str) -> str:
        return meta_etag

    def error_body(
        self, spec: ErrorSpec, message: str, request_id: str, *, bucket: str | None, key: str | None
    ) -> bytes:
        return json.dumps({"code": spec.code, "message": message, "requestId": request_id}).encode()

    def object_headers(self, meta: ObjectMeta) -> dict[str, str]:
        headers = super().object_headers(meta)
        headers[self.storage_class_header] = meta.storage_class or self.default_storage_class
        return headers

    @staticmethod
    def _json(value: object) -> bytes:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()

    @staticmethod
    def _owner_json() -> dict[str, str]:
        return {"id": OWNER_ID, "displayName": OWNER_NAME}

    def list_buckets(self, buckets: Iterable[tuple[str, float]], region: str) -> bytes:
        return self._json(
            {
                "owner": self._owner_json(),
                "buckets": [
                    {"name": n, "location": region, "creationDate": iso_s(c)} for n, c in buckets
                ],
            }
        )

    def list_v1(
        self,
        bucket: str,
        page: ListingPage,
        *,
        prefix: str,
        marker: str,
        delimiter: str,
        max_keys: int,
        encode: bool,
    ) -> bytes:
        body: dict[str, object] = {
            "name": bucket,
            "prefix": prefix,
            "delimiter": delimiter,
            "marker": marker,
            "maxKeys": max_keys,
            "isTruncated": page.truncated,
            "contents": [
                {
                    "key": m.key,
                    "lastModified": iso_s(m.last_modified),
                    "eTag": m.etag,
                    "size": m.size,
                    "storageClass": m.storage_class or self.default_storage_class,
                    "owner": self._owner_json(),
                }
                for m in page.objects
            ],
            "commonPrefixes": [{"prefix": p} for p in page.prefixes],
        }
        if page.truncated and page.next_marker:
            body["nextMarker"] = page.next_marker
        return self._json(body)

    def initiate(self, upload: PendingUpload) -> bytes:
        return self._json(
            {"bucket": upload.bucket, "key": upload.key, "uploadId": upload.upload_id}
        )

    def complete(self, location: str, bucket: str, meta: ObjectMeta) -> bytes:
        return self._json(
            {"location": location, "bucket": bucket, "key": meta.key, "eTag": meta.etag}
        )

    def list_parts(
        self,
        upload: PendingUpload,
        parts: Sequence[StoredPart],
        *,
        marker: int,
        max_parts: int,
        truncated: bool,
    ) -> bytes:
        return self._json(
            {
                "bucket": upload.bucket,
                "key": upload.key,
                "uploadId": upload.upload_id,
                "initiated": iso_s(upload.initiated),
                "owner": self._owner_json(),
                "storageClass": upload.template.storage_class or self.default_storage_class,
                "partNumberMarker": marker,
                "nextPartNumberMarker": parts[-1].number if parts else marker,
                "maxParts": max_parts,
                "isTruncated": truncated,
                "parts": [
                    {
                        "partNumber": p.number,
                        "lastModified": iso_s(p.last_modified),
                        "eTag": p.md5_hex,
                        "size": p.size,
                    }
                    for p in parts
                ],
            }
        )

    def list_uploads(
        self,
        bucket: str,
        uploads: Sequence[PendingUpload],
        prefixes: Sequence[str],
        *,
        prefix: str,
        delimiter: str,
        key_marker: str,
        upload_id_marker: str,
        max_uploads: int,
        truncated: bool,
        encode: bool,
    ) -> bytes:
        return self._json(
            {
                "bucket": bucket,
                "keyMarker": key_marker,
                "nextKeyMarker": uploads[-1].key if uploads else "",
                "prefix": prefix,
                "delimiter": delimiter,
                "maxUploads": max_uploads,
                "isTruncated": truncated,
                "uploads": [
                    {
                        "key": u.key,
                        "uploadId": u.upload_id,
                        "owner": self._owner_json(),
                        "initiated": iso_s(u.initiated),
                        "storageClass": u.template.storage_class or self.default_storage_class,
                    }
                    for u in uploads
                ],
                "commonPrefixes": [{"prefix": p} for p in prefixes],
            }
        )

    def delete_result(
        self,
        deleted: Sequence[str],
        errors: Sequence[tuple[str, str, str]],
        *,
        quiet: bool,
        encode: bool,
    ) -> tuple[bytes, str]:
        if not errors:  # BOS answers an empty body when every key was deleted
            return b"", self.content_type
        return (
            self._json({"errors": [{"key": k, "code": c, "message": m} for k, c, m in errors]}),
            self.content_type,
        )


class S3Service(EmulatedService):
    """S3 itself: the base behaviour, unchanged."""


SERVICES: dict[str, EmulatedService] = {"s3": S3Service(), "oss": OssService(), "bos": BosService()}


def detect_service(
    authorization: str | None, query: Mapping[str, str], header_names: Iterable[str]
) -> EmulatedService:
    """Which service a request talks to: by its Authorization, else by its headers."""
    auth = (authorization or "").lstrip()
    if auth.startswith("bce-auth-v1/") or "authorization" in query:
        return SERVICES["bos"]
    if auth.startswith(("OSS4-HMAC-SHA256", "OSS ")):
        return SERVICES["oss"]
    if auth.startswith(("AWS4-HMAC-SHA256", "AWS ")) or "X-Amz-Algorithm" in query:
        return SERVICES["s3"]
    if "OSSAccessKeyId" in query or "x-oss-signature-version" in query:
        return SERVICES["oss"]
    for name in header_names:
        lower = name.lower()
        if lower.startswith("x-bce-"):
            return SERVICES["bos"]
        if lower.startswith("x-oss-"):
            return SERVICES["oss"]
    return SERVICES["s3"]
