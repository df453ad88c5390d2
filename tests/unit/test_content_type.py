"""The one MIME guess (bulkput.local.content_type)."""

from __future__ import annotations

import pytest

from bulkput.local.content_type import DEFAULT_CONTENT_TYPE, EXTRA_TYPES, guess_content_type


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("conf/app.yaml", "application/yaml"),
        ("conf/APP.YML", "application/yaml"),
        ("data/part-0.parquet", "application/vnd.apache.parquet"),
        ("data/rows.avro", "application/avro"),
        ("web/app.wasm", "application/wasm"),
        ("img/a.webp", "image/webp"),
        ("img/a.avif", "image/avif"),
        ("logs/x.jsonl", "application/jsonl"),
        ("logs/x.ndjson", "application/x-ndjson"),
        ("README.md", "text/markdown"),
        ("a/b.json", "application/json"),
        ("a/b.txt", "text/plain"),
        ("a/b.html", "text/html"),
    ],
)
def test_known_suffixes(name: str, expected: str) -> None:
    assert guess_content_type(name) == expected


@pytest.mark.parametrize("name", ["noext", "dir.d/noext", ".hidden", "a/.bashrc", "x.unknownsuffix"])
def test_no_usable_suffix_is_octet_stream(name: str) -> None:
    assert guess_content_type(name) == DEFAULT_CONTENT_TYPE


def test_every_extra_type_wins_over_the_standard_library() -> None:
    for suffix, expected in EXTRA_TYPES.items():
        assert guess_content_type("some/key" + suffix) == expected
