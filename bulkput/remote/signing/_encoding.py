"""Percent-encoding, date formats and key caches shared by the signers.

Everything here is on the per-request hot path, so the common case (a key made only of
unreserved characters and slashes) costs one ``bytes.translate`` and no per-character Python.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Hashable
from datetime import datetime, timezone
from typing import Generic, TypeVar

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
_UNRESERVED_BYTES = _UNRESERVED.encode("ascii")
_UNRESERVED_AND_SLASH_BYTES = _UNRESERVED_BYTES + b"/"


class _EncodingTable(dict[int, str]):
    """``str.translate`` table: code point -> its UTF-8 bytes as ``%XX``; filled on first use."""

    def __missing__(self, code_point: int) -> str:
        encoded = "".join(f"%{byte:02X}" for byte in chr(code_point).encode("utf-8"))
        if len(self) < 4096:  # bounded: keys may hold any of a million code points
            self[code_point] = encoded
        return encoded


def _table(keep: str) -> _EncodingTable:
    table = _EncodingTable()
    for code_point in range(128):  # ASCII fully precomputed
        char = chr(code_point)
        table[code_point] = char if char in keep else f"%{code_point:02X}"
    return table


_TABLE = _table(_UNRESERVED)
_TABLE_KEEP_SLASH = _table(_UNRESERVED + "/")


def uri_encode(s: str, keep_slash: bool = False) -> str:
    """UTF-8, every byte outside ``A-Za-z0-9-._~`` (and ``/`` when kept) as upper-case ``%XX``."""
    if s.isascii() and not s.encode("ascii").translate(
        None, _UNRESERVED_AND_SLASH_BYTES if keep_slash else _UNRESERVED_BYTES
    ):
        return s  # nothing to encode: the usual case for keys and header names
    return s.translate(_TABLE_KEEP_SLASH if keep_slash else _TABLE)


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The three date forms of the last second seen: thousands of requests share one second.
_last_second: list[tuple[int, tuple[str, str, str]]] = [(-(2**62), ("", "", ""))]


def _date_forms(now: datetime) -> tuple[str, str, str]:
    """(basic ISO 8601, extended ISO 8601, RFC 1123) of ``now`` in UTC, to the second."""
    if now.tzinfo is None:
        raise ValueError("signing time must be timezone-aware (UTC)")
    second = int(now.timestamp() // 1)
    cached = _last_second[0]  # one read: safe if another thread replaces it meanwhile
    if cached[0] == second:
        return cached[1]
    t = now.astimezone(timezone.utc)
    forms = (
        f"{t.year:04d}{t.month:02d}{t.day:02d}T{t.hour:02d}{t.minute:02d}{t.second:02d}Z",
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z",
        f"{_WEEKDAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year:04d} "
        f"{t.hour:02d}:{t.minute:02d}:{t.second:02d} GMT",
    )
    _last_second[0] = (second, forms)
    return forms


def iso8601_basic(now: datetime) -> str:
    """``20240102T030405Z``: x-amz-date and x-oss-date."""
    return _date_forms(now)[0]


def iso8601_extended(now: datetime) -> str:
    """``2024-01-02T03:04:05Z``: x-bce-date and the bce-auth-v1 timestamp."""
    return _date_forms(now)[1]


def http_date(now: datetime) -> str:
    """RFC 1123 ``Tue, 02 Jan 2024 03:04:05 GMT``, independent of the locale."""
    return _date_forms(now)[2]


def utf8(text: str, what: str) -> bytes:
    """``text`` as UTF-8; a lone surrogate raises a ValueError that does not carry ``text``
    (a UnicodeEncodeError would hold the whole string: a secret, or a token in a header)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    raise ValueError(f"{what} cannot be encoded as UTF-8 (it holds a lone surrogate)")


_encoded_cache: dict[str, str] = {}


def uri_encode_cached(s: str) -> str:
    """:func:`uri_encode` memoised for the short strings that repeat from request to request
    (header names, hosts, content types); bounded."""
    encoded = _encoded_cache.get(s)
    if encoded is None:
        encoded = uri_encode(s)
        if len(_encoded_cache) >= 1024:
            _encoded_cache.clear()
        _encoded_cache[s] = encoded
    return encoded


_INNER_PAD = bytes(byte ^ 0x36 for byte in range(256))
_OUTER_PAD = bytes(byte ^ 0x5C for byte in range(256))
_HASHES: dict[str, Callable[..., hashlib._Hash]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}


class PreparedHmac:
    """HMAC (RFC 2104) with the key's inner and outer blocks hashed once.

    A signing key signs thousands of requests; starting from copies of the two keyed hash
    states halves the cost of each signature compared with ``hmac.digest``. Holds hash states
    only, never the key, and prints nothing of it.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes, digest: str) -> None:
        constructor = _HASHES[digest]
        block_size = constructor().block_size
        if len(key) > block_size:
            key = constructor(key).digest()
        key = key.ljust(block_size, b"\0")
        self._inner = constructor(key.translate(_INNER_PAD))
        self._outer = constructor(key.translate(_OUTER_PAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def __repr__(self) -> str:
        return f"PreparedHmac({self._inner.name})"


def derive_v4_key(secret: bytes, date: str, scope: tuple[str, ...]) -> PreparedHmac:
    """The V4 signing key: HMAC-SHA256 chained over the date and each scope part.

    ``secret`` carries its algorithm's prefix (``AWS4`` + secret, ``aliyun_v4`` + secret).
    """
    key = hmac.digest(secret, date.encode("ascii"), "sha256")
    for part in scope:
        key = hmac.digest(key, utf8(part, "the region or service"), "sha256")
    return PreparedHmac(key, "sha256")


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SmallCache(Generic[K, V]):
    """A tiny bounded map for derived signing keys.

    Keys hold the ``Credentials`` object (hashed by value, never printed), so a wrong secret
    under the same access key can never hit a right secret's entry. When full it is emptied:
    entries are per date or per second, so old ones are dead anyway.
    """

    __slots__ = ("_entries", "_max_entries")

    def __init__(self, max_entries: int = 64) -> None:
        self._entries: dict[K, V] = {}
        self._max_entries = max_entries

    def get(self, key: K) -> V | None:
        return self._entries.get(key)

    def put(self, key: K, value: V) -> None:
        if len(self._entries) >= self._max_entries:
            self._entries.clear()
        self._entries[key] = value

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:  # never show keys: they contain credentials
        return f"SmallCache({len(self._entries)}/{self._max_entries} entries)"
