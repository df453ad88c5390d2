"""uri_encode and the date formats every signer relies on."""

from __future__ import annotations

import hmac
import unicodedata
from datetime import datetime, timedelta, timezone

import pytest

from bulkput.remote.signing._encoding import (
    PreparedHmac,
    SmallCache,
    http_date,
    iso8601_basic,
    iso8601_extended,
    uri_encode,
)


@pytest.mark.parametrize(
    ("text", "encoded", "encoded_keep_slash"),
    [
        ("plain-key_1.txt~", "plain-key_1.txt~", "plain-key_1.txt~"),
        ("a b/c", "a%20b%2Fc", "a%20b/c"),
        ("+=&#?%", "%2B%3D%26%23%3F%25", "%2B%3D%26%23%3F%25"),
        ("//lead", "%2F%2Flead", "//lead"),
        (unicodedata.normalize("NFC", "é"), "%C3%A9", "%C3%A9"),
        (unicodedata.normalize("NFD", "é"), "e%CC%81", "e%CC%81"),
        ("😀", "%F0%9F%98%80", "%F0%9F%98%80"),
        ("中/文", "%E4%B8%AD%2F%E6%96%87", "%E4%B8%AD/%E6%96%87"),
        ("", "", ""),
    ],
)
def test_uri_encode(text: str, encoded: str, encoded_keep_slash: str) -> None:
    assert uri_encode(text) == encoded
    assert uri_encode(text, keep_slash=True) == encoded_keep_slash


def test_uri_encode_handles_many_distinct_code_points() -> None:
    text = "".join(chr(c) for c in range(0x4E00, 0x4E00 + 6000))
    assert uri_encode(text) == "".join(f"%{b:02X}" for b in text.encode("utf-8"))


def test_date_formats() -> None:
    now = datetime(2024, 1, 2, 3, 4, 5, 999999, tzinfo=timezone.utc)
    assert iso8601_basic(now) == "20240102T030405Z"
    assert iso8601_extended(now) == "2024-01-02T03:04:05Z"
    assert http_date(now) == "Tue, 02 Jan 2024 03:04:05 GMT"


def test_dates_convert_other_offsets_to_utc() -> None:
    beijing = datetime(2024, 1, 2, 11, 4, 5, tzinfo=timezone(timedelta(hours=8)))
    assert iso8601_basic(beijing) == "20240102T030405Z"


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        iso8601_basic(datetime(2024, 1, 2))


def test_small_cache_stays_bounded() -> None:
    cache: SmallCache[int, int] = SmallCache(max_entries=4)
    for number in range(10):
        cache.put(number, number)
        assert len(cache) <= 4
    assert cache.get(9) == 9
    assert "4" in repr(cache)


@pytest.mark.parametrize("digest", ["sha1", "sha256"])
@pytest.mark.parametrize("key", [b"", b"k", b"x" * 64, b"y" * 65, b"z" * 200])
def test_prepared_hmac_equals_hmac(digest: str, key: bytes) -> None:
    prepared = PreparedHmac(key, digest)
    for message in (b"", b"abc", b"q" * 1000):
        assert prepared.digest(message) == hmac.digest(key, message, digest)
    assert "PreparedHmac" in repr(prepared) and repr(key) not in repr(prepared)
