"""bulkput.config: the one size parser every size option and library call uses."""

from __future__ import annotations

import pytest

from bulkput.config import parse_size
from bulkput.errors import UsageError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("123", 123),
        ("10B", 10),
        ("1K", 1024),
        ("1k", 1024),
        ("1Ki", 1024),
        ("1KiB", 1024),
        ("1KB", 1000),
        ("2M", 2 * 1024**2),
        ("2MB", 2_000_000),
        ("1.5G", 1536 * 1024**2),
        ("1T", 1024**4),
        ("8MiB", 8 * 1024**2),
        ("8mb", 8_000_000),
        ("1GB", 10**9),
        ("1GiB", 1024**3),
        (" 5 MB ", 5_000_000),
    ],
)
def test_parse_size_units(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "K", "1X", "-1", "1 KBB"])
def test_parse_size_rejects_garbage(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)
