"""How sync stores and reads times and checksums: rclone's ``mtime`` metadata, listing and HEAD
``Last-Modified`` dates, and the MD5 an ETag or the ``md5`` metadata states.

The local mtime is stored on upload as user metadata ``mtime`` in rclone's format, decimal
seconds since the epoch with nine decimals (``1700000000.123456789``), so bulkput and rclone
read each other's modification times. Multipart uploads also store the file's MD5 (hex) as
``md5`` (see :mod:`bulkput.job.multipart`), which ``Checksum`` compares when the ETag is not an MD5.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

MTIME_METADATA = "mtime"
MD5_METADATA = "md5"

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000


def format_mtime(mtime_ns: int) -> str:
    """``1700000000123456789`` -> ``"1700000000.123456789"`` (rclone's ``mtime`` metadata)."""
    seconds, fraction = divmod(mtime_ns, NS_PER_SECOND)
    return f"{seconds}.{fraction:09d}"


_MTIME_RE = re.compile(r"^\s*(\d+)(?:\.(\d{1,9})\d*)?\s*$")


def parse_mtime(text: str | None) -> tuple[int, int] | None:
    """``"1700000000.5"`` -> ``(1700000000500000000, 100000000)``: nanoseconds and the
    precision the writer kept (another tool may store fewer decimals). None when unreadable."""
    if not text:
        return None
    match = _MTIME_RE.match(text)
    if match is None:
        return None
    seconds = int(match.group(1))
    digits = match.group(2) or ""
    precision = 10 ** (9 - len(digits))
    fraction = int(digits.ljust(9, "0")) if digits else 0
    return seconds * NS_PER_SECOND + fraction, precision


def same_mtime(local_ns: int, stored: tuple[int, int]) -> bool:
    """Equal at the precision the stored value was written with (truncated, as writers do)."""
    value, precision = stored
    return local_ns - local_ns % precision == value


_last_modified_cache: dict[str, int | None] = {}


def parse_last_modified(text: str | None) -> int | None:
    """A listing's ISO 8601 or a HEAD's RFC 1123 ``Last-Modified``, as ns since the epoch."""
    if not text:
        return None
    # A listing repeats the same few timestamps (uploads of one second): parse each once.
    cached = _last_modified_cache.get(text, _MISSING)
    if cached is not _MISSING:
        return cached  # type: ignore[return-value]
    value = _parse_last_modified(text.strip())
    if len(_last_modified_cache) >= 4096:
        _last_modified_cache.clear()
    _last_modified_cache[text] = value
    return value


_MISSING = object()


def _parse_last_modified(text: str) -> int | None:
    try:
        if text[:4].isdigit():
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            moment = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000


_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def etag_md5(etag: str | None) -> str | None:
    """The MD5 an ETag states (single PUT objects), lower-case hex; None for multipart ETags."""
    if etag is None:
        return None
    etag = etag.strip().strip('"')
    return etag.lower() if _MD5_HEX.match(etag) else None


def metadata_md5(metadata: Mapping[str, str]) -> str | None:
    """The ``md5`` user metadata as lower-case hex (hex or base64 accepted)."""
    value = {k.lower(): v for k, v in metadata.items()}.get(MD5_METADATA)
    if not value:
        return None
    value = value.strip()
    if _MD5_HEX.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 16 else None
