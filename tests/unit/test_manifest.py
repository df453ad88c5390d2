"""Manifest readers: every format and field, bad lines, encodings, stdin, flat memory."""

from __future__ import annotations

import base64
import codecs
import io
import json
import os
import sys
import tracemalloc
from pathlib import Path

import pytest

from bulkput.errors import ManifestError, UsageError
from bulkput.items import UploadItem
from bulkput.local.manifest import MAX_LINE_BYTES, count_manifest_lines, read_manifest

MD5_HEX = "9e107d9d372bb6826bd81d3542a419d6"
MD5_B64 = base64.b64encode(bytes.fromhex(MD5_HEX)).decode()


def write(tmp_path: Path, name: str, data: bytes | str) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def items_of(results: list[UploadItem | Exception]) -> list[UploadItem]:
    assert all(isinstance(r, UploadItem) for r in results), results
    return [r for r in results if isinstance(r, UploadItem)]


def read(path: str, prefix: str = "", **kwargs: object) -> list:
    return list(read_manifest(path, prefix, **kwargs))  # type: ignore[arg-type]


# --- plain list ------------------------------------------------------------------------------


def test_plain_list_skips_blank_lines_and_comments_and_strips_leading_dot_slash(tmp_path):
    path = write(tmp_path, "files.txt", "a.txt\n\n# a comment\n./b/c.jpg\n/abs/d.bin\r\n  \n")
    items = items_of(read(path, "backup/"))
    assert [(i.path, i.key, i.line) for i in items] == [
        (str(tmp_path / "a.txt"), "backup/a.txt", 1),  # inside the manifest's folder
        (str(tmp_path / "b/c.jpg"), "backup/b/c.jpg", 4),
        ("/abs/d.bin", "backup/d.bin", 5),  # relative to the common folder /abs
    ]


def test_prefix_without_slash_gets_one_and_empty_prefix_adds_nothing(tmp_path):
    path = write(tmp_path, "files.lst", "x/y.txt\n")
    assert items_of(read(path, "photos"))[0].key == "photos/x/y.txt"
    assert items_of(read(path, ""))[0].key == "x/y.txt"


def test_backslash_and_spaces_are_kept_as_written(tmp_path):
    path = write(tmp_path, "files.txt", "dir\\name with space.txt\n")
    item = items_of(read(path, "p/"))[0]
    assert item.key == "p/dir\\name with space.txt"
    assert item.path == str(tmp_path / "dir\\name with space.txt")


def test_unicode_keys_keep_their_characters(tmp_path):
    names = ["été/naïve.txt", "日本語/ファイル.bin", "emoji-😀.png"]
    path = write(tmp_path, "files.txt", "\n".join(names) + "\n")
    assert [i.key for i in items_of(read(path, "u/"))] == [f"u/{n}" for n in names]


def test_base_dir_makes_keys_relative_and_paths_absolute_inside_it(tmp_path):
    base = tmp_path / "root"
    path = write(tmp_path, "files.txt", f"a/b.txt\n{base}/c/d.txt\n../outside.txt\n")
    results = read(path, "k/", base_dir=str(base))
    first, second, third = results
    assert (first.path, first.key) == (os.path.join(str(base), "a/b.txt"), "k/a/b.txt")
    assert (second.path, second.key) == (f"{base}/c/d.txt", "k/c/d.txt")
    assert isinstance(third, ManifestError) and third.line == 3
    assert "outside the base directory" in third.one_line()


def test_relative_paths_are_files_in_the_manifests_folder_from_any_working_directory(
    tmp_path, monkeypatch
):
    lists = tmp_path / "lists"
    (lists / "sub").mkdir(parents=True)
    (lists / "sub" / "a.txt").write_text("a")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(lists, "m.txt", "sub/a.txt\n./sub/a.txt\n")
    monkeypatch.chdir(elsewhere)  # as a Dask worker: another working directory
    first, second = items_of(read(os.path.join("..", "lists", "m.txt"), "k/"))
    # the key is the line as written; the file is the one beside the manifest
    assert (first.path, first.key) == (str(lists / "sub" / "a.txt"), "k/sub/a.txt")
    assert (second.path, second.key) == (str(lists / "sub" / "a.txt"), "k/sub/a.txt")
    assert Path(first.path).read_text() == "a"


def test_base_dir_wins_over_the_manifests_folder_for_relative_paths(tmp_path):
    path = write(tmp_path, "m.txt", "a/b.txt\n")
    (item,) = items_of(read(path, base_dir=str(tmp_path / "root")))
    assert (item.path, item.key) == (str(tmp_path / "root" / "a" / "b.txt"), "a/b.txt")


def test_last_line_without_newline_is_read(tmp_path):
    path = write(tmp_path, "files.txt", "a\nb")
    assert [i.key for i in items_of(read(path))] == ["a", "b"]


def test_empty_manifest_yields_nothing(tmp_path):
    assert read(write(tmp_path, "empty.txt", b"")) == []
    assert read(write(tmp_path, "empty", b"")) == []


# --- CSV -------------------------------------------------------------------------------------


CSV_ALL = (
    "path,key,content_type,cache_control,content_disposition,content_encoding,expires,acl,"
    "storage_class,md5,meta_author,Meta-Project\n"
    f'a.txt,docs/a.txt,text/plain,max-age=60,"attachment; filename=""a.txt""",gzip,'
    f"\"Wed, 21 Oct 2026 07:28:00 GMT\",private,STANDARD_IA,{MD5_HEX},Ann,x-1\n"
    "b.bin,,,,,,,,,,,\n"
)


def test_csv_every_column(tmp_path):
    path = write(tmp_path, "objects.csv", CSV_ALL)
    first, second = items_of(read(path, "p/"))
    assert first == UploadItem(
        path=str(tmp_path / "a.txt"),
        key="p/docs/a.txt",
        content_type="text/plain",
        cache_control="max-age=60",
        content_disposition='attachment; filename="a.txt"',
        content_encoding="gzip",
        expires="Wed, 21 Oct 2026 07:28:00 GMT",
        acl="private",
        storage_class="STANDARD_IA",
        metadata={"author": "Ann", "project": "x-1"},
        md5=MD5_B64,
        line=2,
    )
    # empty cells mean "not given"
    assert second == UploadItem(path=str(tmp_path / "b.bin"), key="p/b.bin", line=3)


def test_csv_detected_from_header_without_extension(tmp_path):
    path = write(tmp_path, "objects", "\n\npath,meta_color\nx.png,red\n")
    (item,) = items_of(read(path))
    assert (item.key, item.metadata, item.line) == ("x.png", {"color": "red"}, 4)


def test_csv_quoted_field_with_newline_counts_lines(tmp_path):
    path = write(tmp_path, "o.csv", 'path,key\n"a",k1\n"b","multi\nline"\nc,,\nd,k4\n')
    results = read(path)
    assert [type(r).__name__ for r in results] == ["UploadItem", "UploadItem", "ManifestError",
                                                   "UploadItem"]
    assert results[1].key == "multi\nline"
    assert results[2].line == 5  # the record after the two-line one
    assert results[3].line == 6


def test_csv_wrong_column_count_mid_file_names_its_line_and_the_rest_is_read(tmp_path):
    rows = ["path,key"] + [f"f{i},k{i}" for i in range(1, 6)]
    rows[3] = "f3,k3,extra"
    path = write(tmp_path, "o.csv", "\n".join(rows) + "\n")
    results = read(path)
    bad = [r for r in results if isinstance(r, ManifestError)]
    assert len(bad) == 1 and bad[0].line == 4
    assert "expected 2 columns, found 3" in str(bad[0])
    assert [r.key for r in results if isinstance(r, UploadItem)] == ["k1", "k2", "k4", "k5"]


def test_csv_missing_path_cell_fails_only_that_line(tmp_path):
    path = write(tmp_path, "o.csv", "path,key\n,k1\nb,k2\n")
    first, second = read(path)
    assert isinstance(first, ManifestError) and first.line == 2 and "missing path" in str(first)
    assert second.key == "k2"


def test_csv_unknown_column_stops_with_one_error(tmp_path):
    path = write(tmp_path, "o.csv", "path,content_typ\na,text/plain\nb,text/plain\n")
    (error,) = read(path)
    assert isinstance(error, ManifestError) and error.line == 1
    assert "unknown column 'content_typ'" in str(error)


def test_csv_header_without_path_column_is_one_error(tmp_path):
    (error,) = read(write(tmp_path, "o.csv", "key,acl\na,private\n"))
    assert isinstance(error, ManifestError) and "no 'path' column" in str(error)


# --- JSONL -----------------------------------------------------------------------------------


def test_jsonl_every_field(tmp_path):
    record = {
        "path": "a.txt",
        "key": "docs/a.txt",
        "content_type": "text/plain",
        "cache_control": "no-cache",
        "content_disposition": "inline",
        "content_encoding": "br",
        "expires": "Thu, 01 Jan 2027 00:00:00 GMT",
        "acl": "public-read",
        "storage_class": "COLD",
        "md5": MD5_B64,
        "metadata": {"owner": "é", "n": "1"},
    }
    path = write(tmp_path, "o.jsonl", json.dumps(record) + "\n" + '{"path": "b"}\n')
    first, second = items_of(read(path, "p"))
    assert first == UploadItem(
        path=str(tmp_path / "a.txt"),
        key="p/docs/a.txt",
        content_type="text/plain",
        cache_control="no-cache",
        content_disposition="inline",
        content_encoding="br",
        expires="Thu, 01 Jan 2027 00:00:00 GMT",
        acl="public-read",
        storage_class="COLD",
        metadata={"owner": "é", "n": "1"},
        md5=MD5_B64,
        line=1,
    )
    assert second == UploadItem(path=str(tmp_path / "b"), key="p/b", line=2)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"path": "x", ', "bad JSON"),
        ('["x"]', "expected a JSON object"),
        ('{"key": "k"}', "missing path"),
        ('{"path": "x", "metadata": {"a": 1}}', "metadata must be an object of strings"),
        ('{"path": "x", "metadata": ["a"]}', "metadata must be an object of strings"),
        ('{"path": "x", "acl": 3}', "acl must be a string"),
        ('{"path": "x", "colour": "red"}', "unknown field 'colour'"),
        ('{"path": "x", "md5": "abc"}', "md5 'abc'"),
    ],
)
def test_jsonl_malformed_line_mid_file_names_its_line_and_the_rest_is_read(tmp_path, line,
                                                                           message):
    lines = ['{"path": "one"}', '{"path": "two"}', line, '{"path": "four"}', '{"path": "five"}']
    path = write(tmp_path, "o.ndjson", "\n".join(lines) + "\n")
    results = read(path)
    assert len(results) == 5
    error = results[2]
    assert isinstance(error, ManifestError)
    assert error.line == 3
    assert message in str(error)
    assert f"line 3: {message}" in error.one_line() or message in error.one_line()
    assert [r.key for r in results if isinstance(r, UploadItem)] == ["one", "two", "four",
                                                                     "five"]


def test_jsonl_detected_from_first_line_without_extension(tmp_path):
    path = write(tmp_path, "objects.data", '\n{"path": "a", "metadata": {"k": "v"}}\n')
    (item,) = items_of(read(path))
    assert (item.key, item.metadata, item.line) == ("a", {"k": "v"}, 2)


def test_explicit_format_overrides_detection(tmp_path):
    path = write(tmp_path, "weird.csv", "path\nx\n")
    assert [i.key for i in items_of(read(path, fmt="list"))] == ["path", "x"]


# --- md5 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", [MD5_HEX, MD5_HEX.upper(), MD5_B64])
def test_md5_hex_or_base64_becomes_base64(tmp_path, given):
    path = write(tmp_path, "o.csv", f"path,md5\nx,{given}\n")
    assert items_of(read(path))[0].md5 == MD5_B64


@pytest.mark.parametrize("given", ["zz" * 16, MD5_B64[:-2] + "!!", "abc", MD5_HEX + "00"])
def test_bad_md5_fails_that_line(tmp_path, given):
    path = write(tmp_path, "o.csv", f"path,md5\nx,{given}\ny,\n")
    error, item = read(path)
    assert isinstance(error, ManifestError) and error.line == 2
    assert error.path == "x" and error.key == "x" and error.one_line().startswith("x: ")
    assert item.key == "y"


# --- encodings -------------------------------------------------------------------------------


def test_utf8_with_bom(tmp_path):
    path = write(tmp_path, "o.csv", codecs.BOM_UTF8 + "path,key\né.txt,ключ\n".encode())
    (item,) = items_of(read(path))
    assert (item.path, item.key) == (str(tmp_path / "é.txt"), "ключ")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_bom(tmp_path, encoding):
    text = "path,meta_x\r\nnaïve.txt,日本\r\nb.txt,\r\n"
    data = text.encode(encoding)
    if encoding != "utf-16":  # the explicit-endian codecs write no BOM: add it
        bom = codecs.BOM_UTF16_LE if encoding.endswith("le") else codecs.BOM_UTF16_BE
        data = bom + data
    first, second = items_of(read(write(tmp_path, "o.csv", data)))
    assert (first.key, first.metadata, first.line) == ("naïve.txt", {"x": "日本"}, 2)
    assert (second.key, second.line) == ("b.txt", 3)


def test_latin1_manifest_gives_one_clear_error_at_the_first_bad_line(tmp_path):
    data = "a.txt\nb.txt\ncafé.txt\nd.txt\nnaïve.txt\n".encode("latin-1")
    results = read(write(tmp_path, "files.txt", data))
    assert [r.key for r in results[:2]] == ["a.txt", "b.txt"]
    assert len(results) == 3
    error = results[2]
    assert isinstance(error, ManifestError) and error.line == 3
    assert "not UTF-8" in error.one_line() and "0xe9" in error.one_line()


def test_utf16_without_bom_is_refused_not_misread(tmp_path):
    results = read(write(tmp_path, "files.txt", "a.txt\nb.txt\n".encode("utf-16-le")))
    assert len(results) == 1
    assert isinstance(results[0], ManifestError) and "UTF-16 without a BOM" in str(results[0])


def test_utf16_bad_surrogate_names_its_line(tmp_path):
    good = "a\nb\n".encode("utf-16-le")
    bad = b"\x00\xdc" + "c\n".encode("utf-16-le")  # a lone low surrogate on line 3
    results = read(write(tmp_path, "f.txt", codecs.BOM_UTF16_LE + good + bad))
    assert [r.key for r in results[:2]] == ["a", "b"]
    assert isinstance(results[2], ManifestError) and results[2].line == 3
    assert "not valid UTF-16" in str(results[2])


def test_utf32_is_refused(tmp_path):
    (error,) = read(write(tmp_path, "f.txt", "a\n".encode("utf-32")))
    assert isinstance(error, ManifestError) and "UTF-32" in str(error)


def test_over_long_line_fails_alone(tmp_path):
    data = b"a\n" + b"x" * (MAX_LINE_BYTES + 10) + b"\nc\n"
    results = read(write(tmp_path, "f.txt", data))
    assert results[0].key == "a"
    assert isinstance(results[1], ManifestError) and results[1].line == 2
    assert results[2].key == "c" and results[2].line == 3


# --- stdin -----------------------------------------------------------------------------------


class _FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BufferedReader(io.BytesIO(data))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "keys"),
    [
        (b"a\nb/c\n", ["s/a", "s/b/c"]),
        (b"path,key\nx,y\n", ["s/y"]),
        (b'{"path": "x"}\n', ["s/x"]),
        (codecs.BOM_UTF8 + b"z\n", ["s/z"]),
    ],
)
def test_stdin_dash_is_read_as_bytes(monkeypatch, data, keys):
    monkeypatch.setattr(sys, "stdin", _FakeStdin(data))
    assert [i.key for i in items_of(list(read_manifest("-", "s")))] == keys


def test_stdin_relative_paths_are_taken_from_the_current_directory(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _FakeStdin(b"a/b.txt\n"))
    (item,) = items_of(list(read_manifest("-", "s")))
    assert (item.path, item.key) == ("a/b.txt", "s/a/b.txt")


def test_stdin_errors_name_stdin(monkeypatch):
    monkeypatch.setattr(sys, "stdin", _FakeStdin(b'{"path": "a"}\n{oops\n'))
    results = list(read_manifest("-", ""))
    assert isinstance(results[1], ManifestError) and "stdin line 2" in str(results[1])


# --- counting and memory ---------------------------------------------------------------------


def test_count_manifest_lines(tmp_path, monkeypatch):
    assert count_manifest_lines(write(tmp_path, "a.txt", "a\nb\nc")) == 3
    assert count_manifest_lines(write(tmp_path, "b.txt", "a\nb\n")) == 2
    assert count_manifest_lines(write(tmp_path, "c.txt", "")) == 0
    assert count_manifest_lines("-") is None


# tracemalloc slows every allocation, so the parsing-heavy formats read fewer lines; each file
# is still many times larger than the peak allowed.
@pytest.mark.parametrize(("fmt", "lines"), [("list", 200_000), ("csv", 20_000), ("jsonl", 20_000)])
def test_memory_stays_flat_over_many_lines(tmp_path, fmt, lines):
    path = tmp_path / f"big.{ 'txt' if fmt == 'list' else fmt}"
    with open(path, "w", encoding="utf-8") as out:
        if fmt == "csv":
            out.write("path,key,content_type,meta_n\n")
        for n in range(lines):
            if fmt == "list":
                out.write(f"data/dir{n % 97}/file-{n:07d}.bin\n")
            elif fmt == "csv":
                out.write(f"data/file-{n:07d}.bin,k/{n},text/plain,{n}\n")
            else:
                out.write(f'{{"path": "data/file-{n:07d}.bin", "metadata": {{"n": "{n}"}}}}\n')
    assert path.stat().st_size > 700_000  # far bigger than the memory allowed below
    tracemalloc.start()
    try:
        count = 0
        last = None
        for item in read_manifest(str(path), "p/"):
            assert isinstance(item, UploadItem)
            count += 1
            last = item
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == lines
    assert last is not None and last.path.endswith(f"{lines - 1:07d}.bin")
    assert peak < 128 * 1024, f"peak {peak} bytes"


# --- the file itself -------------------------------------------------------------------------


def test_missing_or_unopenable_manifest_is_a_usage_error_at_once(tmp_path):
    with pytest.raises(UsageError, match="No such file"):
        read_manifest(str(tmp_path / "nope.txt"), "p/")
    with pytest.raises(UsageError, match="manifest"):
        read_manifest(str(tmp_path), "p/")  # a directory


class _FailingStream:
    """Reads fine for a few lines, then the disk (or pipe) fails."""

    def __init__(self, data: bytes, good_reads: int) -> None:
        self.inner = io.BytesIO(data)
        self.reads_left = good_reads

    def read(self, size: int = -1) -> bytes:
        return self.inner.read(size)

    def readline(self, limit: int = -1) -> bytes:
        if self.reads_left == 0:
            raise OSError(5, "Input/output error")
        self.reads_left -= 1
        return self.inner.readline(limit)


def test_a_read_failure_mid_way_is_one_error_naming_the_line(monkeypatch):
    stdin = _FakeStdin(b"")
    stdin.buffer = _FailingStream(b"a1\nb2\nc3\nd4\ne5\n", good_reads=2)  # type: ignore[assignment]
    monkeypatch.setattr(sys, "stdin", stdin)
    results = list(read_manifest("-", ""))
    keys = [r.key for r in results[:-1]]  # the lines read before the failure (spooled first)
    assert keys and keys == ["a1", "b2", "c3", "d4", "e5"][: len(keys)] and len(keys) < 5
    error = results[-1]
    assert isinstance(error, ManifestError) and error.line == len(keys) + 1
    assert "read failed: Input/output error" in str(error)
