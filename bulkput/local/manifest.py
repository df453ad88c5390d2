"""Streaming manifest readers: plain list, CSV with a header, JSONL.

``read_manifest`` yields one ``UploadItem`` per line, or a ``ManifestError`` (with the line
number) for a line it cannot use, and goes on with the next line. Nothing is kept per line: the
file is read as bytes one line at a time (UTF-8), or through an incremental decoder (UTF-16
with a BOM), so memory is the same for ten lines or ten million.

Formats:

- **list**: one path a line; blank lines and lines starting with ``#`` are skipped (write
  ``./#name`` for a file whose name starts with ``#``).
- **csv**: a header row, then one object a row. Columns: ``path`` (required), ``key``,
  ``content_type``, ``cache_control``, ``content_disposition``, ``content_encoding``,
  ``expires``, ``acl``, ``storage_class``, ``md5``, and ``meta_NAME`` columns for user metadata
  (``-`` may be written for ``_`` in column names). An empty cell means "not given". An unknown
  column stops the read with one error (a misspelt column must not be silently ignored).
- **jsonl**: one JSON object a line with the same fields; ``metadata`` is an object of strings.
  An unknown field fails that line.

The format comes from the extension (``.csv``; ``.jsonl``/``.ndjson``; ``.txt``/``.lst``), and
otherwise from the first line with content: ``{`` means JSONL, a CSV row naming ``path`` means
CSV, anything else a plain list.

Keys: ``dest_prefix`` (a ``/`` is added when it has none) followed by the ``key`` field, or else
by the path: relative to ``base_dir`` when one is given; otherwise a relative path as written (a
leading ``./`` removed) and an absolute path relative to the longest folder common to the
manifest's absolute paths (found by reading the manifest once before the upload; standard input
is spooled to a temporary file for that). A ``\\`` stays a ``\\``: nothing is rewritten silently.

Files: a relative path is taken inside ``base_dir`` when one is given, else inside the
manifest's own folder (so the manifest means the same files from any working directory, a
Dask worker's included); a manifest read from standard input has no folder: its relative paths
are taken from the current directory.

Encodings: UTF-8 (with or without a BOM) and UTF-16 with a BOM. Anything that does not decode
gives one ``ManifestError`` naming the line and the cause, and the read stops there.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from bulkput.errors import BulkputError, ManifestError, UsageError
from bulkput.items import UploadItem
from bulkput.local.keys import common_folder, manifest_key

FORMATS = ("auto", "list", "csv", "jsonl")

# Header fields every format accepts, besides ``path`` and the metadata.
_TEXT_FIELDS = (
    "key",
    "content_type",
    "cache_control",
    "content_disposition",
    "content_encoding",
    "expires",
    "acl",
    "storage_class",
    "md5",
)
_KNOWN_FIELDS = frozenset(("path", *_TEXT_FIELDS))
_EXTENSIONS = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".txt": "list",
    ".lst": "list",
}
# A longer line is refused (and skipped) rather than read whole into memory.
MAX_LINE_BYTES = 1 << 20
# Lines looked at (blank or comments) before giving up on detecting a format: then "list".
_DETECT_LINES = 1000
_READ_SIZE = 64 * 1024
# Stands for a refused over-long line; NUL never occurs in a line that was decoded.
_TOO_LONG = "\0too long\0"


class _StopReading(Exception):
    """Raised inside the line reader when the rest of the file cannot be read."""

    def __init__(self, error: ManifestError) -> None:
        super().__init__(error.message)
        self.error = error


def read_manifest(
    source: str | os.PathLike[str],
    dest_prefix: str,
    *,
    fmt: str = "auto",
    base_dir: str | os.PathLike[str] | None = None,
) -> Iterator[UploadItem | BulkputError]:
    """Yield an ``UploadItem`` per manifest line, or a ``ManifestError`` for a line that cannot be
    used. ``source`` is a file path, or ``-`` for standard input (read as bytes).

    The file is opened at once, so a missing or unreadable manifest raises ``UsageError`` here,
    before any upload starts; lines are read only as the result is iterated."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown manifest format {fmt!r}; expected one of {FORMATS}")
    source_text = os.fspath(source)
    name = "stdin" if source_text == "-" else source_text
    if fmt == "auto":
        fmt = _EXTENSIONS.get(os.path.splitext(source_text)[1].lower(), "auto")
    if base_dir is not None:
        relative_root: str | None = os.fspath(base_dir)
    elif source_text != "-":
        relative_root = os.path.dirname(os.path.abspath(source_text))
    else:
        relative_root = None  # standard input: relative paths from the current directory
    keys = _KeyMaker(dest_prefix, None if base_dir is None else os.fspath(base_dir), relative_root)
    stream: IO[bytes]
    if source_text == "-":
        if keys.base_abs is not None:
            return _read_stream(sys.stdin.buffer, name, fmt, keys)
        # read twice (the common folder of absolute paths first): spooled to disk, not memory
        return _spooled_stdin(name, fmt, keys)
    else:
        try:
            stream = open(source_text, "rb")  # noqa: SIM115 - closed by _closing
        except OSError as exc:
            raise UsageError(f"manifest {source_text}: {exc.strerror or exc}") from None
    if keys.base_abs is not None:
        return _closing(stream, _read_stream(stream, name, fmt, keys))
    return _closing(stream, _surveyed(stream, name, fmt, keys))


def _spooled_stdin(name: str, fmt: str, keys: _KeyMaker) -> Iterator[UploadItem | BulkputError]:
    """Standard input copied to a temporary file, then read as a file; a read failure part way
    is one error after the lines read before it."""
    failed: ManifestError | None = None
    lines = 0
    with tempfile.TemporaryFile(prefix="bulkput-manifest-") as spool:
        try:
            while line := sys.stdin.buffer.readline(MAX_LINE_BYTES + 1):
                spool.write(line)
                lines += line.endswith(b"\n")
        except OSError as exc:
            failed = _read_error(exc, lines + 1, name)
        spool.seek(0)
        yield from _surveyed(spool, name, fmt, keys)
    if failed is not None:
        yield failed


def _surveyed(
    stream: IO[bytes], name: str, fmt: str, keys: _KeyMaker
) -> Iterator[UploadItem | BulkputError]:
    """The manifest read twice: once for the common folder of its absolute paths, then for the
    items (keys relative to that folder)."""
    keys.surveying = True
    for _ in _read_stream(stream, name, fmt, keys):
        pass
    keys.surveying = False
    stream.seek(0)
    yield from _read_stream(stream, name, fmt, keys)


def _closing(
    stream: IO[bytes], items: Iterator[UploadItem | BulkputError]
) -> Iterator[UploadItem | BulkputError]:
    try:
        yield from items
    finally:
        stream.close()


def count_manifest_lines(source: str | os.PathLike[str]) -> int | None:
    """The number of lines in the file (an upper bound on its objects, for an ETA), counted in
    64 KiB pieces; None for standard input, which can be read only once."""
    source_text = os.fspath(source)
    if source_text == "-":
        return None
    lines = 0
    last = b"\n"
    with open(source_text, "rb") as stream:
        while chunk := stream.read(_READ_SIZE):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (0 if last == b"\n" else 1)


# --- lines -----------------------------------------------------------------------------------


def _read_stream(
    stream: IO[bytes], name: str, fmt: str, keys: _KeyMaker
) -> Iterator[UploadItem | BulkputError]:
    try:
        lines = _text_lines(stream, name)
        if fmt == "auto":
            fmt, lines = _detect(lines)
        if fmt == "csv":
            yield from _read_csv(lines, name, keys)
        elif fmt == "jsonl":
            yield from _read_jsonl(lines, name, keys)
        else:
            yield from _read_list(lines, name, keys)
    except _StopReading as stop:
        yield stop.error


def _text_lines(stream: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    """``(line_number, text)`` for every line, its ending kept (the csv module wants it)."""
    try:
        head = stream.read(4)
    except OSError as exc:
        raise _StopReading(_read_error(exc, 1, name)) from None
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise _StopReading(
            ManifestError("UTF-32 is not supported: convert the manifest to UTF-8", line=1,
                          source=name)
        )
    if head.startswith(codecs.BOM_UTF16_LE):
        return _utf16_lines("utf-16-le", head[2:], stream, name)
    if head.startswith(codecs.BOM_UTF16_BE):
        return _utf16_lines("utf-16-be", head[2:], stream, name)
    if head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8):]
    return _utf8_lines(head, stream, name)


def _raw_lines(head: bytes, stream: IO[bytes]) -> Iterator[bytes]:
    """Byte lines of ``head`` + ``stream``, each with its newline; a line over MAX_LINE_BYTES
    comes out in pieces of at most that size without a final newline, so it can be refused."""
    readline = stream.readline
    while (end := head.find(b"\n")) >= 0:
        yield head[: end + 1]
        head = head[end + 1 :]
    if head:
        yield head + readline(MAX_LINE_BYTES - len(head))
    while line := readline(MAX_LINE_BYTES):
        yield line


def _utf8_lines(head: bytes, stream: IO[bytes], name: str) -> Iterator[tuple[int, str]]:
    number = 0
    too_long = False  # inside a line longer than the limit: drop its pieces
    try:
        for raw in _raw_lines(head, stream):
            if too_long:
                too_long = not raw.endswith(b"\n")
                continue
            number += 1
            if len(raw) >= MAX_LINE_BYTES and not raw.endswith(b"\n"):
                too_long = True
                yield number, _TOO_LONG
                continue
            if b"\0" in raw:
                raise _StopReading(
                    ManifestError(
                        "not UTF-8: the line holds NUL bytes (UTF-16 without a BOM?); "
                        "convert the manifest to UTF-8",
                        line=number,
                        source=name,
                    )
                )
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _StopReading(_decode_error("UTF-8", raw, exc, number, name)) from None
    except OSError as exc:  # the disk or the pipe failed: the rest cannot be read
        raise _StopReading(_read_error(exc, number + 1, name)) from None


def _read_error(exc: OSError, line: int, name: str) -> ManifestError:
    return ManifestError(f"read failed: {exc.strerror or exc}", line=line, source=name)


def _utf16_lines(
    encoding: str, head: bytes, stream: IO[bytes], name: str
) -> Iterator[tuple[int, str]]:
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    number = 0
    pending = ""
    data = head
    while True:
        failure: UnicodeDecodeError | None = None
        try:
            pending += decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            # Keep the lines before the bad bytes, so the error names the right line.
            failure = exc
            pending += exc.object[: exc.start].decode(encoding, "ignore")
        start = 0
        while (end := pending.find("\n", start)) >= 0:
            number += 1
            yield number, pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
        if failure is not None:
            raise _StopReading(
                ManifestError(f"not valid UTF-16: {failure.reason}", line=number + 1,
                              source=name)
            )
        if len(pending) > MAX_LINE_BYTES:
            raise _StopReading(
                ManifestError(f"line longer than {MAX_LINE_BYTES} characters", line=number + 1,
                              source=name)
            )
        if not data:
            break
        try:
            data = stream.read(_READ_SIZE)
        except OSError as exc:
            raise _StopReading(_read_error(exc, number + 1, name)) from None
    if pending:
        yield number + 1, pending


def _decode_error(
    encoding: str, raw: bytes, exc: UnicodeDecodeError, number: int, name: str
) -> ManifestError:
    bad = raw[exc.start : exc.end]
    shown = " ".join(f"0x{b:02x}" for b in bad[:4])
    hint = " (Latin-1 or another 8-bit encoding?)" if bad and bad[0] >= 0x80 else ""
    return ManifestError(
        f"not {encoding}: byte {shown} at column {exc.start + 1} ({exc.reason}){hint}; "
        "convert the manifest to UTF-8",
        line=number,
        source=name,
    )


def _is_skipped(text: str) -> bool:
    stripped = text.strip()
    return not stripped or stripped.startswith("#")


def _detect(lines: Iterator[tuple[int, str]]) -> tuple[str, Iterator[tuple[int, str]]]:
    """Decide the format from the first line with content; hand back every line unread."""
    seen: list[tuple[int, str]] = []
    fmt = "list"
    for number, text in lines:
        seen.append((number, text))
        if text is _TOO_LONG:
            break
        if _is_skipped(text):
            if len(seen) >= _DETECT_LINES:
                break
            continue
        stripped = text.strip()
        if stripped.startswith("{"):
            fmt = "jsonl"
        else:
            try:
                row = next(csv.reader([stripped]))
            except (csv.Error, StopIteration):
                row = []
            if "path" in (_normal_name(cell) for cell in row):
                fmt = "csv"
        break
    return fmt, _chain(seen, lines)


def _chain(
    first: list[tuple[int, str]], rest: Iterator[tuple[int, str]]
) -> Iterator[tuple[int, str]]:
    yield from first
    first.clear()
    yield from rest


# --- records ---------------------------------------------------------------------------------


class _KeyMaker:
    """Keys of manifest lines (rules in bulkput/local/keys.py). ``folder`` is the longest folder
    common to the manifest's absolute paths, found by a first read (``surveying``), so that
    ``find /data ... | bulkput put --manifest -`` gives ``sub/p3.parquet``, not
    ``data/sub/p3.parquet``."""

    def __init__(
        self, dest_prefix: str, base_dir: str | None, relative_root: str | None = None
    ) -> None:
        if dest_prefix and not dest_prefix.endswith("/"):
            dest_prefix += "/"
        self.prefix = dest_prefix
        self.base_dir = base_dir
        self.base_abs = os.path.abspath(base_dir) if base_dir is not None else None
        # where a relative path's file is: base_dir, the manifest's folder, or None (the cwd)
        self.relative_root = base_dir if base_dir is not None else relative_root
        self.surveying = False
        self.folder: str | None = None  # common folder of the absolute paths (no base given)

    def local_path(self, path: str) -> str:
        if self.relative_root is not None and not os.path.isabs(path):
            inside = path
            while inside.startswith("./"):
                inside = inside[2:]
            return os.path.join(self.relative_root, inside)
        return path

    def key_for(self, path: str, key: str | None) -> str:
        """The full key; raises ValueError with the reason when there is none."""
        if self.surveying:
            if key is None and self.base_abs is None and path.startswith("/"):
                self.folder = common_folder(self.folder, path)
            return path
        if key is not None:
            return self.prefix + key
        if self.base_abs is None and path[:1] not in ("/", ".") and path[-1:] != "/":
            return self.prefix + path  # the common case, at once
        if self.base_abs is not None:
            full = os.path.abspath(self.local_path(path))
            relative = os.path.relpath(full, self.base_abs)
            if relative == os.curdir or relative.startswith(os.pardir + os.sep) or (
                relative == os.pardir
            ):
                raise ValueError(f"path {path!r} is outside the base directory; give a key")
            name: str | None = relative if os.sep == "/" else relative.replace(os.sep, "/")
        else:
            name = manifest_key(path, self.folder if path.startswith("/") else None)
        if not name or name.endswith("/"):
            raise ValueError(f"path {path!r} names no file; give a key")
        return self.prefix + name


def _normal_name(column: str) -> str:
    return column.strip().lower().replace("-", "_")


def _normal_md5(value: str) -> str:
    """Content-MD5 as base64, from base64 (24 characters) or hex (32)."""
    text = value.strip()
    try:
        if len(text) == 32:
            return base64.b64encode(binascii.unhexlify(text)).decode("ascii")
        if len(text) == 24:
            digest = base64.b64decode(text, validate=True)
            if len(digest) == 16:
                return text
    except (binascii.Error, ValueError):
        pass
    raise ValueError(f"md5 {value!r} is neither 32 hex digits nor 24 base64 characters")


def _make_item(
    fields: dict[str, str],
    metadata: dict[str, str],
    number: int,
    name: str,
    keys: _KeyMaker,
) -> UploadItem | ManifestError:
    """An item from the non-empty ``fields`` of one line (names as in ``_KNOWN_FIELDS``)."""
    path = fields.pop("path", None)
    if not path:
        return ManifestError("missing path", line=number, source=name)
    key: str | None = None
    try:
        key = keys.key_for(path, fields.pop("key", None))
        md5 = fields.pop("md5", None)
        # what is left are the header fields, named as UploadItem names them
        headers: dict[str, Any] = fields
        return UploadItem(
            path=keys.local_path(path),
            key=key,
            metadata=metadata,
            md5=_normal_md5(md5) if md5 else None,
            line=number,
            **headers,
        )
    except ValueError as exc:
        error = ManifestError(str(exc), line=number, source=name)
        error.path = path
        error.key = key  # known when only a later field was wrong: the report names the object
        return error


def _read_list(
    lines: Iterable[tuple[int, str]], name: str, keys: _KeyMaker
) -> Iterator[UploadItem | BulkputError]:
    for number, text in lines:
        if text is _TOO_LONG:
            yield _too_long(number, name)
            continue
        stripped = text.strip()
        if not stripped or stripped[0] == "#":
            continue
        path = text.rstrip("\r\n")
        try:
            yield UploadItem(path=keys.local_path(path), key=keys.key_for(path, None),
                             line=number)
        except ValueError as exc:
            error = ManifestError(str(exc), line=number, source=name)
            error.path = path
            yield error


def _too_long(number: int, name: str) -> ManifestError:
    return ManifestError(f"line longer than {MAX_LINE_BYTES} bytes", line=number, source=name)


def _read_jsonl(
    lines: Iterable[tuple[int, str]], name: str, keys: _KeyMaker
) -> Iterator[UploadItem | BulkputError]:
    for number, text in lines:
        if text is _TOO_LONG:
            yield _too_long(number, name)
            continue
        if _is_skipped(text):
            continue
        yield _jsonl_record(text, number, name, keys)


def _jsonl_record(
    text: str, number: int, name: str, keys: _KeyMaker
) -> UploadItem | ManifestError:
    def fail(message: str) -> ManifestError:
        return ManifestError(message, line=number, source=name)

    try:
        record: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        return fail(f"bad JSON: {exc.msg} (column {exc.colno})")
    if not isinstance(record, dict):
        return fail(f"expected a JSON object, got {type(record).__name__}")
    fields: dict[str, str] = {}
    metadata: dict[str, str] = {}
    for raw_name, value in record.items():
        field = _normal_name(raw_name)
        if field == "metadata":
            if value is None:
                continue
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                return fail("metadata must be an object of strings")
            metadata = value
        elif field in _KNOWN_FIELDS:
            if value is None or value == "":
                continue
            if not isinstance(value, str):
                return fail(f"{raw_name} must be a string, got {type(value).__name__}")
            fields[field] = value
        else:
            return fail(f"unknown field {raw_name!r}")
    return _make_item(fields, metadata, number, name, keys)


class _Columns:
    """A CSV header: which column holds which field."""

    def __init__(self, header: list[str]) -> None:
        self.fields: list[tuple[int, str]] = []
        self.meta: list[tuple[int, str]] = []
        problems: list[str] = []
        seen: set[str] = set()
        for index, column in enumerate(header):
            normal = _normal_name(column)
            if normal.startswith("meta_") and len(normal) > 5:
                meta_name = column.strip()[5:].strip().lower()
                self.meta.append((index, meta_name))
                label = "meta_" + meta_name
            elif normal in _KNOWN_FIELDS:
                self.fields.append((index, normal))
                label = normal
            elif normal == "":
                problems.append(f"column {index + 1} has no name")
                continue
            else:
                problems.append(f"unknown column {column.strip()!r}")
                continue
            if label in seen:
                problems.append(f"column {label!r} appears twice")
            seen.add(label)
        if "path" not in seen:
            problems.append("no 'path' column")
        self.problems = problems
        self.width = len(header)


def _read_csv(
    lines: Iterator[tuple[int, str]], name: str, keys: _KeyMaker
) -> Iterator[UploadItem | BulkputError]:
    state = {"number": 0, "too_long": False}

    def texts() -> Iterator[str]:
        for number, text in lines:
            state["number"] = number
            if text is _TOO_LONG:
                # Keep the csv module in step: an empty row stands for the refused line.
                state["too_long"] = True
                yield "\n"
                continue
            yield text

    reader = csv.reader(texts(), strict=True)
    columns: _Columns | None = None
    while True:
        start = state["number"] + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            yield ManifestError(f"bad CSV: {exc}", line=start, source=name)
            continue
        if state["too_long"]:
            state["too_long"] = False
            yield _too_long(state["number"], name)
            continue
        if not row or all(not cell.strip() for cell in row):
            continue
        if columns is None:
            if row[0].lstrip().startswith("#"):
                continue  # comments before the header, as in the other formats
            columns = _Columns(row)
            if columns.problems:
                yield ManifestError(
                    "bad CSV header: " + "; ".join(columns.problems)
                    + f" (known columns: path, {', '.join(_TEXT_FIELDS)}, meta_NAME)",
                    line=start,
                    source=name,
                )
                return
            continue
        if len(row) != columns.width:
            yield ManifestError(
                f"expected {columns.width} columns, found {len(row)}", line=start, source=name
            )
            continue
        fields = {field: row[index] for index, field in columns.fields if row[index] != ""}
        metadata = {meta: row[index] for index, meta in columns.meta if row[index] != ""}
        yield _make_item(fields, metadata, start, name, keys)
