"""Time and checksum formats sync reads and writes (bulkput/job/listing/formats.py)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from bulkput.job.listing.formats import (
    etag_md5,
    format_mtime,
    metadata_md5,
    parse_last_modified,
    parse_mtime,
)

S = 1_000_000_000
T0 = 1_700_000_000 * S + 123_456_789
MD5 = hashlib.md5(b"hello").hexdigest()


def test_mtime_round_trips_in_rclone_format() -> None:
    assert format_mtime(T0) == "1700000000.123456789"
    assert format_mtime(5) == "0.000000005"
    assert parse_mtime(format_mtime(T0)) == (T0, 1)
    assert parse_mtime("1700000000.5") == (1_700_000_000_500_000_000, 100_000_000)
    assert parse_mtime("1700000000") == (1_700_000_000 * S, S)
    for bad in (None, "", "abc", "-1", "1.2.3"):
        assert parse_mtime(bad) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-02T03:04:05.000Z", 1704164645 * S),
        ("2024-01-02T03:04:05.250Z", 1704164645 * S + 250_000_000),
        ("2024-01-02T03:04:05Z", 1704164645 * S),
        ("2024-01-02T03:04:05+00:00", 1704164645 * S),
        ("Tue, 02 Jan 2024 03:04:05 GMT", 1704164645 * S),
        ("garbage", None),
        (None, None),
    ],
)
def test_last_modified_formats_of_the_three_dialects(text: str | None, expected: int | None) -> None:
    assert parse_last_modified(text) == expected


def test_etag_and_metadata_md5_forms() -> None:
    assert etag_md5(f'"{MD5.upper()}"') == MD5
    assert etag_md5(f"{MD5}-4") is None
    assert etag_md5(None) is None
    assert metadata_md5({"MD5": MD5.upper()}) == MD5
    assert metadata_md5({"md5": base64.b64encode(bytes.fromhex(MD5)).decode()}) == MD5
    assert metadata_md5({"md5": "nonsense"}) is None
