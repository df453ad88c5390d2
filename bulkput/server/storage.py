"""Where `bulkput serve` keeps buckets, objects and multipart uploads.

Two backends behind one API:

* :class:`MemoryStorage` keeps everything in dictionaries (fast; for tests and benchmarks).
* :class:`DirStorage` keeps object bytes in files under ``--dir`` and everything else in one
  SQLite database (WAL) beside them.

Safety rules of the directory backend:

* An object's file name is the SHA-256 of ``bucket`` and ``key``, never the key itself, so no
  key (``../``, absolute paths, NUL, ``..`` segments, very long names, names like the store's
  own files) can reach outside ``--dir`` or land on another object's file.
* Every write goes to a temporary file under ``DIR/.bulkput/tmp`` and is renamed into place
  only when complete, after the metadata is ready: a crash never leaves a half object visible.
  Metadata lives in SQLite, which commits atomically; a blob with no row is garbage, never data.

Keys are ordered by code point, which is the same order as their UTF-8 bytes (the order S3,
OSS and BOS list in), so listings are plain sorted scans.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

# A CRC-64 is unsigned; SQLite integers are signed 64-bit: stored as their two's complement.
_TWO_64 = 1 << 64


def _to_sqlite_int64(value: int | None) -> int | None:
    return value - _TWO_64 if value is not None and value >= 1 << 63 else value


def _from_sqlite_int64(value: object) -> int | None:
    if value is None:
        return None
    number = int(value)  # type: ignore[call-overload]
    return number + _TWO_64 if number < 0 else number

@dataclass(slots=True)
class ObjectMeta:
    """Everything kept about one stored object except its bytes."""

    key: str
    size: int
    etag: str  # hex MD5 for single PUTs, "md5-of-part-md5s-N" for multipart; no quotes
    last_modified: float  # seconds since the epoch
    content_type: str = "application/octet-stream"
    content_headers: dict[str, str] = field(default_factory=dict)  # cache-control, expires, ...
    user_metadata: dict[str, str] = field(default_factory=dict)  # lower-case names, no prefix
    storage_class: str | None = None
    acl: str | None = None
    encryption: str | None = None
    multipart: bool = False
    crc64: int | None = None  # CRC-64/ECMA (OSS), computed on demand and cached

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ObjectMeta:
        return cls(**json.loads(text))


@dataclass(slots=True)
class StoredPart:
    number: int
    size: int
    md5_hex: str
    last_modified: float
    crc64: int | None = None


@dataclass(slots=True)
class PendingUpload:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    template: ObjectMeta  # headers and metadata given at initiation; size/etag filled at completion


class BlobWriter(Protocol):
    """An object's bytes on their way in; invisible until committed."""

    size: int

    def write(self, chunk: bytes) -> None: ...

    def abort(self) -> None: ...


class NoSuchBucketError(Exception):
    pass


class NoSuchUploadError(Exception):
    pass


class BucketNotEmptyError(Exception):
    pass


class Storage(Protocol):
    """The API both backends offer the HTTP layer."""

    def create_bucket(self, bucket: str) -> bool: ...
    def bucket_exists(self, bucket: str) -> bool: ...
    def delete_bucket(self, bucket: str) -> None: ...
    def list_buckets(self) -> list[tuple[str, float]]: ...

    def new_writer(self) -> BlobWriter: ...
    def commit_object(self, bucket: str, writer: BlobWriter, meta: ObjectMeta) -> None: ...
    def head_object(self, bucket: str, key: str) -> ObjectMeta | None: ...
    def update_meta(self, bucket: str, meta: ObjectMeta) -> None: ...
    def read_object(self, bucket: str, key: str, start: int, end: int) -> Iterator[bytes]: ...
    def delete_object(self, bucket: str, key: str) -> bool: ...
    def iter_objects(self, bucket: str, prefix: str, after: str) -> Iterator[ObjectMeta]: ...

    def create_upload(self, bucket: str, template: ObjectMeta) -> PendingUpload: ...
    def get_upload(self, bucket: str, upload_id: str) -> PendingUpload: ...
    def put_part(self, upload: PendingUpload, part: StoredPart, writer: BlobWriter) -> None: ...
    def list_parts(self, upload: PendingUpload) -> list[StoredPart]: ...
    def iter_uploads(self, bucket: str, prefix: str) -> Iterator[PendingUpload]: ...
    def complete_upload(
        self, upload: PendingUpload, parts: list[StoredPart], meta: ObjectMeta
    ) -> None: ...
    def abort_upload(self, upload: PendingUpload) -> None: ...
    def close(self) -> None: ...


READ_CHUNK = 256 * 1024


def new_upload_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------------------------
# memory backend


class MemoryWriter:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def abort(self) -> None:
        self.chunks.clear()

    def getvalue(self) -> bytes:
        data = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        return data


class _SortedKeys:
    """A key index that stays cheap under many inserts: new keys wait in a side list and are
    merged (one Timsort over two sorted runs) only when someone lists."""

    def __init__(self) -> None:
        self._sorted: list[str] = []
        self._pending: list[str] = []

    def add(self, key: str) -> None:
        self._pending.append(key)

    def view(self, live: dict[str, ObjectMeta]) -> list[str]:
        if self._pending or len(self._sorted) > 2 * len(live) + 64:
            merged = [k for k in self._sorted if k in live]
            merged.extend(k for k in set(self._pending) if k in live)
            merged.sort()
            # drop duplicates left by re-PUTs of existing keys
            self._sorted = [k for i, k in enumerate(merged) if i == 0 or merged[i - 1] != k]
            self._pending = []
        return self._sorted


@dataclass
class _MemoryBucket:
    created: float
    objects: dict[str, ObjectMeta] = field(default_factory=dict)
    data: dict[str, bytes] = field(default_factory=dict)
    index: _SortedKeys = field(default_factory=_SortedKeys)
    uploads: dict[str, PendingUpload] = field(default_factory=dict)
    parts: dict[str, dict[int, tuple[StoredPart, bytes]]] = field(default_factory=dict)


class MemoryStorage:
    """Everything in RAM. Objects are immutable ``bytes``; readers get slices of them."""

    def __init__(self) -> None:
        self._buckets: dict[str, _MemoryBucket] = {}

    def _bucket(self, bucket: str) -> _MemoryBucket:
        found = self._buckets.get(bucket)
        if found is None:
            raise NoSuchBucketError(bucket)
        return found

    def create_bucket(self, bucket: str) -> bool:
        if bucket in self._buckets:
            return False
        self._buckets[bucket] = _MemoryBucket(created=time.time())
        return True

    def bucket_exists(self, bucket: str) -> bool:
        return bucket in self._buckets

    def delete_bucket(self, bucket: str) -> None:
        found = self._bucket(bucket)
        if found.objects or found.uploads:
            raise BucketNotEmptyError(bucket)
        del self._buckets[bucket]

    def list_buckets(self) -> list[tuple[str, float]]:
        return sorted((name, b.created) for name, b in self._buckets.items())

    def new_writer(self) -> MemoryWriter:
        return MemoryWriter()

    def commit_object(self, bucket: str, writer: BlobWriter, meta: ObjectMeta) -> None:
        assert isinstance(writer, MemoryWriter)
        found = self._bucket(bucket)
        found.data[meta.key] = writer.getvalue()
        if meta.key not in found.objects:
            found.index.add(meta.key)
        found.objects[meta.key] = meta

    def head_object(self, bucket: str, key: str) -> ObjectMeta | None:
        return self._bucket(bucket).objects.get(key)

    def update_meta(self, bucket: str, meta: ObjectMeta) -> None:
        found = self._bucket(bucket)
        if meta.key in found.objects:
            found.objects[meta.key] = meta

    def read_object(self, bucket: str, key: str, start: int, end: int) -> Iterator[bytes]:
        data = self._bucket(bucket).data[key]
        view = memoryview(data)
        for offset in range(start, end, READ_CHUNK):
            yield bytes(view[offset : min(end, offset + READ_CHUNK)])

    def delete_object(self, bucket: str, key: str) -> bool:
        found = self._bucket(bucket)
        found.data.pop(key, None)
        return found.objects.pop(key, None) is not None

    def iter_objects(self, bucket: str, prefix: str, after: str) -> Iterator[ObjectMeta]:
        found = self._bucket(bucket)
        keys = found.index.view(found.objects)
        start = max(prefix, after)
        position = (
            bisect.bisect_right(keys, after) if after >= prefix else bisect.bisect_left(keys, start)
        )
        while position < len(keys):
            key = keys[position]
            position += 1
            if not key.startswith(prefix):
                return
            meta = found.objects.get(key)
            if meta is not None:
                yield meta

    def create_upload(self, bucket: str, template: ObjectMeta) -> PendingUpload:
        found = self._bucket(bucket)
        upload = PendingUpload(new_upload_id(), bucket, template.key, time.time(), template)
        found.uploads[upload.upload_id] = upload
        found.parts[upload.upload_id] = {}
        return upload

    def get_upload(self, bucket: str, upload_id: str) -> PendingUpload:
        upload = self._bucket(bucket).uploads.get(upload_id)
        if upload is None:
            raise NoSuchUploadError(upload_id)
        return upload

    def put_part(self, upload: PendingUpload, part: StoredPart, writer: BlobWriter) -> None:
        assert isinstance(writer, MemoryWriter)
        parts = self._bucket(upload.bucket).parts.get(upload.upload_id)
        if parts is None:
            raise NoSuchUploadError(upload.upload_id)
        parts[part.number] = (part, writer.getvalue())

    def list_parts(self, upload: PendingUpload) -> list[StoredPart]:
        parts = self._bucket(upload.bucket).parts.get(upload.upload_id, {})
        return [parts[n][0] for n in sorted(parts)]

    def iter_uploads(self, bucket: str, prefix: str) -> Iterator[PendingUpload]:
        uploads = list(self._bucket(bucket).uploads.values())
        uploads.sort(key=lambda u: (u.key, u.initiated, u.upload_id))
        return (u for u in uploads if u.key.startswith(prefix))

    def part_bytes(self, upload: PendingUpload, number: int) -> bytes:
        return self._bucket(upload.bucket).parts[upload.upload_id][number][1]

    def complete_upload(
        self, upload: PendingUpload, parts: list[StoredPart], meta: ObjectMeta
    ) -> None:
        found = self._bucket(upload.bucket)
        stored = found.parts[upload.upload_id]
        writer = MemoryWriter()
        for part in parts:
            writer.write(stored[part.number][1])
        self.commit_object(upload.bucket, writer, meta)
        self.abort_upload(upload)

    def abort_upload(self, upload: PendingUpload) -> None:
        found = self._bucket(upload.bucket)
        found.uploads.pop(upload.upload_id, None)
        found.parts.pop(upload.upload_id, None)

    def close(self) -> None:
        self._buckets.clear()


# ---------------------------------------------------------------------------------------------
# directory backend


def blob_name(*parts: str) -> str:
    """A file name for a bucket/key (or upload/part) that no key can influence beyond its hash."""
    digest = hashlib.sha256("\x00".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest


class FileWriter:
    """Bytes go to a private temporary file; only :meth:`DirStorage` renames it into place."""

    def __init__(self, tmp_dir: Path) -> None:
        self.path = tmp_dir / f"{uuid.uuid4().hex}.part"
        self._file: BinaryIO | None = open(self.path, "xb")  # noqa: SIM115 - closed in finish/abort
        self.size = 0

    def write(self, chunk: bytes) -> None:
        assert self._file is not None
        self._file.write(chunk)
        self.size += len(chunk)

    def finish(self) -> Path:
        if self._file is not None:
            self._file.close()
            self._file = None
        return self.path

    def abort(self) -> None:
        self.finish()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


_STORE_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS objects (
    bucket TEXT NOT NULL, key TEXT NOT NULL, meta TEXT NOT NULL, PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS uploads (
    upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
    template TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, md5 TEXT NOT NULL,
    modified REAL NOT NULL, crc64 INTEGER, PRIMARY KEY (upload_id, number)
) WITHOUT ROWID;
"""


class DirStorage:
    """Objects as files named by hash under ``root/.bulkput/objects``; metadata in SQLite.

    Layout (nothing under ``root`` is named after a key or a bucket)::

        root/.bulkput/meta.sqlite3         buckets, objects, uploads, parts
        root/.bulkput/objects/ab/abcd...   one file per object (sha256 of bucket NUL key)
        root/.bulkput/parts/ab/abcd...     one file per uploaded part (sha256 of upload NUL n)
        root/.bulkput/tmp/                 writes in progress; emptied at start
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()
        self._base = self.root / ".bulkput"
        self._objects = self._base / "objects"
        self._parts = self._base / "parts"
        self._tmp = self._base / "tmp"
        for path in (self._objects, self._parts, self._tmp):
            path.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp.iterdir():  # half-written bodies from a crash
            with contextlib.suppress(OSError):
                leftover.unlink()
        self._db = sqlite3.connect(
            self._base / "meta.sqlite3", isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_STORE_SCHEMA)

    # helpers --------------------------------------------------------------------------------

    def _path(self, base: Path, name: str) -> Path:
        return base / name[:2] / name

    def _object_path(self, bucket: str, key: str) -> Path:
        return self._path(self._objects, blob_name("object", bucket, key))

    def _part_path(self, upload_id: str, number: int) -> Path:
        return self._path(self._parts, blob_name("part", upload_id, str(number)))

    def _install(self, writer: BlobWriter, target: Path) -> None:
        assert isinstance(writer, FileWriter)
        source = writer.finish()
        target.parent.mkdir(exist_ok=True)
        os.replace(source, target)

    def _query(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _require_bucket(self, bucket: str) -> None:
        if not self.bucket_exists(bucket):
            raise NoSuchBucketError(bucket)

    # buckets --------------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> bool:
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO buckets VALUES (?, ?)", (bucket, time.time())
            )
            return cursor.rowcount == 1

    def bucket_exists(self, bucket: str) -> bool:
        return bool(self._query("SELECT 1 FROM buckets WHERE name = ?", (bucket,)))

    def delete_bucket(self, bucket: str) -> None:
        self._require_bucket(bucket)
        if self._query("SELECT 1 FROM objects WHERE bucket = ? LIMIT 1", (bucket,)) or self._query(
            "SELECT 1 FROM uploads WHERE bucket = ? LIMIT 1", (bucket,)
        ):
            raise BucketNotEmptyError(bucket)
        self._query("DELETE FROM buckets WHERE name = ?", (bucket,))

    def list_buckets(self) -> list[tuple[str, float]]:
        rows = self._query("SELECT name, created FROM buckets ORDER BY name")
        return [(str(name), float(created)) for name, created in rows]

    # objects --------------------------------------------------------------------------------

    def new_writer(self) -> FileWriter:
        return FileWriter(self._tmp)

    def commit_object(self, bucket: str, writer: BlobWriter, meta: ObjectMeta) -> None:
        self._require_bucket(bucket)
        # rename and row under one lock, so a reader never sees one without the other
        with self._lock:
            self._install(writer, self._object_path(bucket, meta.key))
            self._db.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?)",
                (bucket, meta.key, meta.to_json()),
            )

    def head_object(self, bucket: str, key: str) -> ObjectMeta | None:
        self._require_bucket(bucket)
        rows = self._query("SELECT meta FROM objects WHERE bucket = ? AND key = ?", (bucket, key))
        return ObjectMeta.from_json(str(rows[0][0])) if rows else None

    def update_meta(self, bucket: str, meta: ObjectMeta) -> None:
        self._query(
            "UPDATE objects SET meta = ? WHERE bucket = ? AND key = ?",
            (meta.to_json(), bucket, meta.key),
        )

    def read_object(self, bucket: str, key: str, start: int, end: int) -> Iterator[bytes]:
        with open(self._object_path(bucket, key), "rb") as handle:
            handle.seek(start)
            remaining = end - start
            while remaining > 0:
                chunk = handle.read(min(READ_CHUNK, remaining))
                if not chunk:
                    return
                remaining -= len(chunk)
                yield chunk

    def delete_object(self, bucket: str, key: str) -> bool:
        self._require_bucket(bucket)
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM objects WHERE bucket = ? AND key = ?", (bucket, key)
            )
            with contextlib.suppress(FileNotFoundError):
                self._object_path(bucket, key).unlink()
            return cursor.rowcount == 1

    def iter_objects(self, bucket: str, prefix: str, after: str) -> Iterator[ObjectMeta]:
        self._require_bucket(bucket)
        position = after
        include_position = after < prefix
        if include_position:
            position = prefix
        while True:
            op = ">=" if include_position else ">"
            rows = self._query(
                f"SELECT key, meta FROM objects WHERE bucket = ? AND key {op} ? "
                "ORDER BY key LIMIT 500",
                (bucket, position),
            )
            if not rows:
                return
            for key, meta in rows:
                if not str(key).startswith(prefix):
                    return
                yield ObjectMeta.from_json(str(meta))
            position = str(rows[-1][0])
            include_position = False

    # multipart ------------------------------------------------------------------------------

    def create_upload(self, bucket: str, template: ObjectMeta) -> PendingUpload:
        self._require_bucket(bucket)
        upload = PendingUpload(new_upload_id(), bucket, template.key, time.time(), template)
        self._query(
            "INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
            (upload.upload_id, bucket, template.key, upload.initiated, template.to_json()),
        )
        return upload

    def get_upload(self, bucket: str, upload_id: str) -> PendingUpload:
        self._require_bucket(bucket)
        rows = self._query(
            "SELECT key, initiated, template FROM uploads WHERE upload_id = ? AND bucket = ?",
            (upload_id, bucket),
        )
        if not rows:
            raise NoSuchUploadError(upload_id)
        key, initiated, template = rows[0]
        return PendingUpload(
            upload_id,
            bucket,
            str(key),
            float(initiated),
            ObjectMeta.from_json(str(template)),
        )

    def put_part(self, upload: PendingUpload, part: StoredPart, writer: BlobWriter) -> None:
        with self._lock:
            if not self._db.execute(
                "SELECT 1 FROM uploads WHERE upload_id = ?", (upload.upload_id,)
            ).fetchall():
                writer.abort()
                raise NoSuchUploadError(upload.upload_id)
            self._install(writer, self._part_path(upload.upload_id, part.number))
            self._db.execute(
                "INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?, ?, ?)",
                (
                    upload.upload_id,
                    part.number,
                    part.size,
                    part.md5_hex,
                    part.last_modified,
                    _to_sqlite_int64(part.crc64),
                ),
            )

    def list_parts(self, upload: PendingUpload) -> list[StoredPart]:
        rows = self._query(
            "SELECT number, size, md5, modified, crc64 FROM parts WHERE upload_id = ? ORDER BY number",
            (upload.upload_id,),
        )
        return [
            StoredPart(int(n), int(s), str(m), float(t), _from_sqlite_int64(c))
            for n, s, m, t, c in rows
        ]

    def iter_uploads(self, bucket: str, prefix: str) -> Iterator[PendingUpload]:
        self._require_bucket(bucket)
        rows = self._query(
            "SELECT upload_id, key, initiated, template FROM uploads WHERE bucket = ? "
            "ORDER BY key, initiated, upload_id",
            (bucket,),
        )
        for upload_id, key, initiated, template in rows:
            if str(key).startswith(prefix):
                yield PendingUpload(
                    str(upload_id),
                    bucket,
                    str(key),
                    float(initiated),
                    ObjectMeta.from_json(str(template)),
                )

    def part_path(self, upload: PendingUpload, number: int) -> Path:
        return self._part_path(upload.upload_id, number)

    def complete_upload(
        self, upload: PendingUpload, parts: list[StoredPart], meta: ObjectMeta
    ) -> None:
        writer = self.new_writer()
        try:
            for part in parts:
                with open(self._part_path(upload.upload_id, part.number), "rb") as handle:
                    while chunk := handle.read(1 << 20):
                        writer.write(chunk)
        except BaseException:
            writer.abort()
            raise
        self.commit_object(upload.bucket, writer, meta)
        self.abort_upload(upload)

    def abort_upload(self, upload: PendingUpload) -> None:
        with self._lock:
            numbers = [
                int(row[0])
                for row in self._db.execute(
                    "SELECT number FROM parts WHERE upload_id = ?", (upload.upload_id,)
                ).fetchall()
            ]
            self._db.execute("DELETE FROM parts WHERE upload_id = ?", (upload.upload_id,))
            self._db.execute("DELETE FROM uploads WHERE upload_id = ?", (upload.upload_id,))
        for number in numbers:
            with contextlib.suppress(FileNotFoundError):
                self._part_path(upload.upload_id, number).unlink()

    def close(self) -> None:
        with self._lock:
            self._db.close()
