"""Aliyun OSS: the S3 XML family with ``x-oss-*`` headers, ListObjects (V1, marker) and errors
that may come base64-encoded in the ``x-oss-err`` header when the answer has no body (HEAD)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from urllib.parse import unquote

from bulkput.errors import ValidationError
from bulkput.remote.dialects.base import Page, Query
from bulkput.remote.dialects.s3 import XmlDialect, text, truthy
from bulkput.remote.store import ObjectInfo

# ../shared/seeds/004: user metadata names take letters, digits and '-' (space and '"' cannot
# appear in a header name); no underscore.
_OSS_META_NAME = re.compile(r"^[A-Za-z0-9-]+$")


class OssDialect(XmlDialect):
    name = "oss"
    meta_prefix = "x-oss-meta-"
    acl_header = "x-oss-object-acl"
    storage_class_header = "x-oss-storage-class"
    sse_header = "x-oss-server-side-encryption"
    request_id_header = "x-oss-request-id"
    signature_versions = ("v4", "v1")
    signature_name = "OSS V4 or V1"
    storage_classes = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")
    acls = ("private", "public-read", "public-read-write", "default")
    sse_values = ("AES256", "KMS", "SM4")
    kms_values = frozenset({"kms"})
    kms_key_header = "x-oss-server-side-encryption-key-id"
    request_payer_header = "x-oss-request-payer"
    max_metadata_bytes = 8 * 1024  # the seed: all user metadata together at most 8 KB
    # OSS writes spaces as %20 and "+" as %2B under encoding-type=url
    _url_decode = staticmethod(unquote)

    def signer_name(self, signature_version: str = "v4") -> str:
        if signature_version not in ("v1", "v4"):
            raise ValueError(f"OSS signature version {signature_version!r}: expected v1 or v4")
        return f"oss-{signature_version}"

    def _check_metadata_name(self, key: str, name: str) -> None:
        if not _OSS_META_NAME.match(name):
            raise ValidationError(
                f"user metadata name {name!r}: OSS allows only letters, digits and '-' "
                "(no '_' or other characters)",
                key=key,
            )

    def parse_error_body(
        self, status: int, headers: Mapping[str, str], body: bytes
    ) -> tuple[str | None, str | None, str | None]:
        if not body.strip():
            encoded = headers.get("x-oss-err")
            if not encoded:
                return None, None, None
            try:
                body = base64.b64decode(encoded, validate=False)
            except (binascii.Error, ValueError):
                return None, None, None
        return super().parse_error_body(status, headers, body)

    def _delete_query(self) -> Query:
        return (("delete", None), ("encoding-type", "url"))

    def list_objects_query(self, prefix: str, page_size: int) -> Query:
        return (("prefix", prefix), ("max-keys", str(page_size)), ("encoding-type", "url"))

    def parse_list_objects(self, body: bytes) -> Page[ObjectInfo]:
        root, items = self._listing(body)
        page = Page(items)
        if truthy(text(root, "IsTruncated")):
            marker = text(root, "NextMarker")
            if marker:
                decode = self._decoder(root, [marker])
                page.next_query = {"marker": decode(marker)}
            elif page.items:
                page.next_query = {"marker": page.items[-1].key}
        return page
