"""The strict checks of `bulkput serve`, as pure functions of a request's parts.

Each raises :class:`~bulkput.server.services.ServeError` with the generic error name; the
service turns it into its own code and status. Limits follow the services (see
../shared/seeds/004 and PROTOCOLS.md): keys at most 1023 bytes; user metadata at most 8 KB on
OSS and 2 KB on S3 and BOS (names and values, without the prefix); OSS metadata names only
``[A-Za-z0-9-]``; values printable ASCII; a single PUT at most 5 GiB.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from bulkput.server.services import EmulatedService, ServeError

MAX_KEY_BYTES = 1023
MAX_PART_NUMBER = 10_000
CONTENT_HEADERS = (
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
)

_OSS_META_NAME = re.compile(r"^[A-Za-z0-9-]+$")
_PRINTABLE = re.compile(r"^[\t\x20-\x7e]*$")


def check_bucket_name(bucket: str) -> None:
    if not re.fullmatch(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket) or ".." in bucket:
        raise ServeError("InvalidBucketName", f"The specified bucket is not valid: {bucket!r}")


def check_key(key: str) -> None:
    """Keys the services refuse: too long, empty, not UTF-8, NUL."""
    if not key:
        raise ServeError("InvalidObjectName", "The object key must not be empty.")
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ServeError("InvalidObjectName", "The object key is not valid UTF-8.") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ServeError(
            "KeyTooLongError",
            f"Your key is too long: {len(encoded)} bytes, at most {MAX_KEY_BYTES}.",
            key=key[:64],
        )
    if "\x00" in key:
        raise ServeError("InvalidObjectName", "The object key must not contain NUL.")


def parse_metadata(service: EmulatedService, headers: Mapping[str, str]) -> dict[str, str]:
    """User metadata (names lower-case, prefix removed), checked for size and characters."""
    prefix = service.meta_prefix
    metadata: dict[str, str] = {}
    total = 0
    for raw_name, value in headers.items():
        name = raw_name.lower()
        if not name.startswith(prefix):
            continue
        short = name[len(prefix) :]
        if not short:
            raise ServeError("InvalidArgument", "A user metadata name must not be empty.")
        if service.name == "oss" and not _OSS_META_NAME.match(short):
            raise ServeError(
                "InvalidArgument",
                f"User metadata name {short!r} has characters outside A-Z a-z 0-9 and '-'.",
            )
        if not _PRINTABLE.match(value):
            raise ServeError(
                "InvalidArgument",
                f"User metadata {short!r} has characters outside printable ASCII.",
            )
        total += len(short.encode()) + len(value.encode())
        metadata[short] = value
    if total > service.max_metadata_bytes:
        raise ServeError(
            "MetadataTooLarge",
            f"Your metadata headers exceed the maximum allowed metadata size: {total} bytes, "
            f"at most {service.max_metadata_bytes}.",
        )
    return metadata


def check_choice(
    service: EmulatedService, headers: Mapping[str, str]
) -> tuple[str | None, str | None, str | None]:
    """Storage class, ACL and server-side encryption, each checked against the service's set."""
    storage_class = headers.get(service.storage_class_header)
    if storage_class is not None and storage_class not in service.storage_classes:
        raise ServeError(
            "InvalidStorageClass", f"The storage class {storage_class!r} is not valid."
        )
    acl = headers.get(service.acl_header)
    if acl is not None and acl not in service.acls:
        raise ServeError("InvalidArgument", f"The ACL {acl!r} is not valid.")
    encryption = headers.get(service.encryption_header)
    if encryption is not None and encryption not in service.encryptions:
        raise ServeError(
            "InvalidEncryptionAlgorithmError",
            f"The encryption method specified is not supported: {encryption!r}.",
        )
    return storage_class, acl, encryption


def parse_content_md5(value: str | None) -> bytes | None:
    """The 16 MD5 bytes of a Content-MD5 header; InvalidDigest when it is not one."""
    if value is None:
        return None
    try:
        digest = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != 16:
        raise ServeError("InvalidDigest", "The Content-MD5 you specified was invalid.")
    return digest


def content_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {name: headers[name] for name in CONTENT_HEADERS if name in headers}


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for a single ``bytes=`` range; None to serve everything.

    A syntactically odd or multi-range header is ignored (the services answer the whole
    object); a range that starts past the end is InvalidRange (416).
    """
    if not value:
        return None
    match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", value)
    if not match or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0:
            raise ServeError("InvalidRange", "The requested range is not satisfiable.")
        return max(0, size - length), size
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if last and int(last) < start:
        return None
    if start >= size:
        raise ServeError("InvalidRange", "The requested range is not satisfiable.")
    return start, end + 1


def parse_part_number(text: str | None) -> int:
    try:
        number = int(text or "")
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise ServeError(
            "InvalidArgument", f"Part number must be an integer between 1 and {MAX_PART_NUMBER}."
        )
    return number
