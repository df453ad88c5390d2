"""Baidu BOS: JSON bodies (errors, listings, multi-delete, multipart), ``x-bce-*`` headers,
bce-auth-v1 signatures. Formats follow ``baidubce/services/bos/bos_client.py``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from bulkput.errors import error_from_response
from bulkput.remote.dialects.base import Dialect, Page, Query, strip_etag
from bulkput.remote.store import DeleteFailure, ObjectInfo, PartInfo, PutResult, UploadInfo

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


def _json(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _dump(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class BosDialect(Dialect):
    name = "bos"
    meta_prefix = "x-bce-meta-"
    acl_header = "x-bce-acl"
    storage_class_header = "x-bce-storage-class"
    sse_header = "x-bce-server-side-encryption"
    request_id_header = "x-bce-request-id"
    signature_name = "bce-auth-v1"
    storage_classes = (
        "STANDARD",
        "STANDARD_IA",
        "COLD",
        "ARCHIVE",
        "MAZ_STANDARD",
        "MAZ_STANDARD_IA",
        "MAZ_COLD",
    )
    acls = ("private", "public-read", "public-read-write")
    sse_values = ("AES256", "SM4")
    max_metadata_bytes = 2 * 1024  # BOS: all x-bce-meta-* together at most 2 KB

    def signer_name(self, signature_version: str = "v4") -> str:
        return "bce-v1"

    def parse_error_body(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> tuple[str | None, str | None, str | None]:
        document = _json(body)
        code = document.get("code")
        message = document.get("message")
        request_id = document.get("requestId")
        return (
            str(code) if code else None,
            str(message) if message else None,
            str(request_id) if request_id else None,
        )

    # --- listing ------------------------------------------------------------------------------

    def list_objects_query(self, prefix: str, page_size: int) -> Query:
        return (("maxKeys", str(page_size)), ("prefix", prefix))

    def parse_list_objects(self, body: bytes) -> Page[ObjectInfo]:
        document = _json(body)
        page: Page[ObjectInfo] = Page()
        for item in document.get("contents") or ():
            page.items.append(
                ObjectInfo(
                    key=str(item.get("key", "")),
                    size=_int(item.get("size")) or 0,
                    etag=strip_etag(item.get("eTag")),
                    last_modified=item.get("lastModified"),
                )
            )
        if document.get("isTruncated"):
            marker = document.get("nextMarker") or (page.items[-1].key if page.items else None)
            if marker:
                page.next_query = {"marker": str(marker)}
        return page

    # --- multi-object delete ------------------------------------------------------------------

    def delete_objects_body(self, keys: Sequence[str]) -> tuple[Query, bytes, dict[str, str]]:
        body = _dump({"objects": [{"key": key} for key in keys]})
        return (("delete", None),), body, {"content-type": JSON_CONTENT_TYPE}

    def parse_delete_objects(self, body: bytes) -> list[DeleteFailure]:
        document = _json(body)
        return [
            DeleteFailure(
                key=str(item.get("key", "")),
                code=str(item.get("code") or "Error"),
                message=str(item.get("message") or ""),
            )
            for item in document.get("errors") or ()
        ]

    # --- multipart ----------------------------------------------------------------------------

    def parse_initiate(self, body: bytes) -> str:
        upload_id = _json(body).get("uploadId")
        if not upload_id:
            raise ValueError("initiate-multipart answer has no uploadId")
        return str(upload_id)

    def complete_body(self, parts: Sequence[PartInfo]) -> tuple[bytes, dict[str, str]]:
        ordered = sorted(parts, key=lambda p: p.part_number)
        body = _dump({"parts": [{"partNumber": p.part_number, "eTag": p.etag} for p in ordered]})
        return body, {"content-type": JSON_CONTENT_TYPE}

    def parse_complete(
        self, headers: Mapping[str, str], body: bytes, *, bucket: str, key: str
    ) -> PutResult:
        document = _json(body)
        if document.get("code") and not document.get("eTag"):
            raise error_from_response(
                500,
                str(document["code"]),
                f"{document.get('message') or 'complete-multipart failed'} (in a 200 answer)",
                request_id=self.request_id(headers) or document.get("requestId"),
                bucket=bucket,
                key=key,
            )
        return PutResult(
            etag=strip_etag(document.get("eTag") or headers.get("etag")),
            request_id=self.request_id(headers),
        )

    def list_parts_query(self, upload_id: str) -> Query:
        return (("uploadId", upload_id),)

    def parse_list_parts(self, body: bytes) -> Page[PartInfo]:
        document = _json(body)
        page: Page[PartInfo] = Page()
        for item in document.get("parts") or ():
            number = _int(item.get("partNumber"))
            if number is None:
                continue
            page.items.append(
                PartInfo(number, strip_etag(item.get("eTag")) or "", _int(item.get("size")))
            )
        if document.get("isTruncated"):
            marker = document.get("nextPartNumberMarker") or (
                page.items[-1].part_number if page.items else None
            )
            if marker:
                page.next_query = {"partNumberMarker": str(marker)}
        return page

    def list_uploads_query(self, prefix: str) -> Query:
        return (("uploads", None), ("prefix", prefix))

    def parse_list_uploads(self, body: bytes) -> Page[UploadInfo]:
        document = _json(body)
        page: Page[UploadInfo] = Page()
        for item in document.get("uploads") or ():
            page.items.append(
                UploadInfo(
                    key=str(item.get("key", "")),
                    upload_id=str(item.get("uploadId", "")),
                    initiated=item.get("initiated"),
                )
            )
        if document.get("isTruncated"):
            marker = document.get("nextKeyMarker") or (page.items[-1].key if page.items else None)
            if marker:
                page.next_query = {"keyMarker": str(marker)}
        return page
