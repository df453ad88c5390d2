"""The job journal: what a job has stored and which multipart uploads it has in flight, so that
running the same command again resumes instead of starting over.

One SQLite database per job (WAL, ``synchronous=NORMAL``: a committed transaction survives a
killed process) in a state directory, named by :func:`job_id`: the store (dialect, endpoint,
addressing, region, bucket, prefix, access key id; see :class:`StoreIdentity`), the source and
the shard. Another store is another job, so a journal never answers for a store it has not seen.

Lifecycle: a job that ends with every object stored is marked complete (:meth:`Journal.
mark_complete`); the next run of the same command opens it as a new job (its rows are
forgotten: ``put`` copies again, as ``aws s3 cp`` does, and ``Journal.renewed`` says so). A job
interrupted or partly failed keeps its rows and the next run resumes it. Completed journals
older than :data:`KEEP_COMPLETED_SECONDS` are removed whenever a journal is opened in the same
directory (:func:`prune`; ``bulkput journal list|prune``).

Writes never block the caller: ``record_*`` calls append to an in-memory batch that a dedicated
thread commits every ``flush_interval`` seconds or every ``batch_size`` records, in order, one
transaction per batch. Reads (``is_stored``, ``upload_for``, ``parts_for``) see only committed
rows, so the journal never claims an object it has not durably recorded; the caller records an
object only after the server confirmed it. When a write fails (disk full, I/O error) the journal
keeps the :class:`~bulkput.errors.JournalError` and raises it from every later call, so the job
stops cleanly; rows already committed stay valid. A database that is not a sane SQLite file
raises :class:`~bulkput.errors.JournalDamagedError` when opened (one line, exit 3).

Tables::

    meta    (name PK, value)          schema, store, source, shard, state, completed_at
    stored  (key PK, size, mtime_ns, md5, etag, ino, ctime_ns)  objects confirmed stored
    uploads (key PK, upload_id, part_size, size, mtime_ns, md5)  multipart uploads in flight
    parts   ((upload_id, part_number) PK, key, etag, size)       their confirmed parts

A file is the one recorded when its size, mtime, inode and ctime all match: a file replaced by
``mv`` with the same size and mtime has another inode (and ctime), so it is sent again.
Keys are stored as UTF-8 bytes (``surrogateescape``), so any key the engine can send can be
journaled; their byte order is the order S3, OSS and BOS list keys in, so the stored rows can
be merge-joined with a listing (:mod:`bulkput.job.resume`). Memory stays flat: nothing is cached
beyond the pending batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkput.errors import JournalDamagedError, JournalError, UnexpectedError
from bulkput.remote.store import PartInfo
from bulkput.remote.target import Endpoint, Target

if TYPE_CHECKING:
    from bulkput.job.shard import Shard

SCHEMA_VERSION = "2"
DEFAULT_FLUSH_INTERVAL = 0.5
DEFAULT_BATCH_SIZE = 500
# Completed journals older than this are removed when a journal is opened in their directory.
KEEP_COMPLETED_SECONDS = 30 * 86400
STATE_RUNNING = "running"
STATE_COMPLETE = "complete"

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS stored (key BLOB PRIMARY KEY, size INTEGER NOT NULL,"
    " mtime_ns INTEGER NOT NULL, md5 TEXT, etag TEXT, ino INTEGER, ctime_ns INTEGER)"
    " WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS uploads (key BLOB PRIMARY KEY, upload_id TEXT NOT NULL,"
    " part_size INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,"
    " md5 TEXT, started REAL NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS parts (upload_id TEXT NOT NULL, part_number INTEGER NOT NULL,"
    " key BLOB NOT NULL, etag TEXT NOT NULL, size INTEGER,"
    " PRIMARY KEY (upload_id, part_number)) WITHOUT ROWID",
)


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CACHE_HOME/bulkput``, else ``~/.cache/bulkput``."""
    env = os.environ if env is None else env
    cache = env.get("XDG_CACHE_HOME")
    if cache:
        return Path(cache) / "bulkput"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".cache" / "bulkput"


@dataclass(frozen=True, slots=True)
class StoreIdentity:
    """The store half of a job's identity: where the objects go and as whom (never a secret)."""

    dialect: str  # s3, oss, bos
    scheme: str  # http, https
    host: str
    port: int
    path_style: bool
    region: str
    bucket: str
    prefix: str
    principal: str  # who signs: the access key id, or where temporary credentials come from

    @classmethod
    def of(
        cls, dialect: str, endpoint: Endpoint, target: Target, principal: str
    ) -> StoreIdentity:
        return cls(
            dialect=dialect,
            scheme=endpoint.scheme,
            host=endpoint.host.lower(),
            port=endpoint.port,
            path_style=endpoint.path_style,
            region=endpoint.region,
            bucket=target.bucket,
            prefix=target.prefix,
            principal=principal,
        )

    def describe(self) -> str:
        """One line for people: ``s3://bucket/prefix at http://host:port (path, us-east-1) as AK``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        addressing = "path" if self.path_style else "virtual"
        return (
            f"{self.dialect}://{self.bucket}/{self.prefix} at {self.scheme}://{host}:{self.port}"
            f" ({addressing}, {self.region or 'no region'}) as {self.principal}"
        )


def job_id(store: StoreIdentity, source_description: str, shard: Shard | str | None = None) -> str:
    """A stable name for a job: the same store, source and shard give the same id.

    Every field of ``store`` counts: the same command with another ``--endpoint``, region,
    addressing or access key is another job with its own journal. ``shard`` (a ``Shard`` or
    ``"K/N"``) keeps each shard's journal apart; ``None`` and ``"0/1"`` are the same unsharded job.
    """
    shard_text = str(shard) if shard is not None else "0/1"
    store_fields = [
        store.dialect, store.scheme, store.host, store.port, store.path_style, store.region,
        store.bucket, store.prefix, store.principal,
    ]  # fmt: skip
    payload = json.dumps(["v2", store_fields, source_description, shard_text], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()[:24]


def describe_source(paths: Sequence[str] = (), manifest: str | None = None) -> str:
    """The source half of a job's identity: the manifest, or the local paths, made absolute
    (so the same command from another directory is another job only if it names other files)."""
    if manifest is not None:
        return "manifest:" + (manifest if manifest == "-" else os.path.abspath(manifest))
    return "paths:" + json.dumps([os.path.abspath(p) for p in paths], ensure_ascii=False)


def open_job_journal(
    store: StoreIdentity,
    source_description: str,
    *,
    shard: Shard | str | None = None,
    state_dir: str | os.PathLike[str] | None = None,
    restart: bool = False,
    enabled: bool = True,
) -> Journal | None:
    """The journal of one job (None with ``enabled=False``, i.e. ``--no-journal``).

    Call it before the first upload: an unwritable state directory raises
    :class:`JournalError` (exit 3) here, not halfway through the job.
    """
    if not enabled:
        return None
    job = job_id(store, source_description, shard)
    meta = {
        "dest": f"{store.dialect}://{store.bucket}/{store.prefix}",
        "store": store.describe(),
        "source": source_description,
        "shard": str(shard or "0/1"),
    }
    return Journal.open(state_dir, job, restart=restart, meta=meta)


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A multipart upload the journal knows to be in flight."""

    key: str
    upload_id: str
    part_size: int
    size: int
    mtime_ns: int
    md5: str | None  # whole-file MD5 hex sent as metadata at initiate


def _k(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


# One pending write: (sql, parameters), applied in order.
_Op = tuple[str, tuple[Any, ...]]

_STORED_VALUES = "(?, ?, ?, ?, ?, ?, ?)"
_SQL_STORED = (
    "INSERT OR REPLACE INTO stored (key, size, mtime_ns, md5, etag, ino, ctime_ns)"
    f" VALUES {_STORED_VALUES}"
)
# 142 rows x 7 values stays under SQLite's oldest limit of 999 variables per statement.
_STORED_ROWS_PER_INSERT = 142


@functools.lru_cache(maxsize=8)
def _stored_insert(rows: int) -> str:
    """``_SQL_STORED`` for ``rows`` rows at once (later rows replace earlier ones, as in order)."""
    return _SQL_STORED.replace(
        f"VALUES {_STORED_VALUES}", "VALUES " + ", ".join([_STORED_VALUES] * rows)
    )


def _runs_of_same_statement(batch: Sequence[_Op]) -> list[tuple[str, list[Any]]]:
    """Consecutive operations with the same statement, grouped, in order."""
    runs: list[tuple[str, list[Any]]] = []
    for sql, params in batch:
        if runs and runs[-1][0] is sql:
            runs[-1][1].append(params)
        else:
            runs.append((sql, [params]))
    return runs


_SQL_BEGIN = (
    "INSERT OR REPLACE INTO uploads (key, upload_id, part_size, size, mtime_ns, md5, started)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SQL_DROP_PARTS_OF_KEY = "DELETE FROM parts WHERE key = ?"
_SQL_PART = (
    "INSERT OR REPLACE INTO parts (upload_id, part_number, key, etag, size) VALUES (?, ?, ?, ?, ?)"
)
_SQL_END = "DELETE FROM uploads WHERE key = ? AND upload_id = ?"
_SQL_END_PARTS = "DELETE FROM parts WHERE upload_id = ?"
_SQL_FORGET_STORED = "DELETE FROM stored WHERE key = ?"
_SQL_META = "INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)"


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One object the journal holds as stored (for the check against a listing)."""

    key: str
    size: int
    md5: str | None  # hex MD5 of the file
    etag: str | None  # the ETag the store answered (a multipart ETag is not an MD5)


@dataclass(frozen=True, slots=True)
class JournalInfo:
    """One journal file in a state directory, as ``bulkput journal list`` shows it."""

    path: Path
    job: str
    state: str  # running (interrupted or partly failed: the next run resumes), complete, damaged
    modified: float  # the file's mtime (its last commit)
    completed_at: float | None
    stored: int
    uploads: int
    store: str
    source: str
    shard: str


class Journal:
    """The journal of one job. Open with :meth:`open`; always :meth:`close` (or use ``with``).

    ``write_fault`` is a test hook called before each batch is committed; whatever it raises is
    treated like a failed disk write.
    """

    def __init__(
        self,
        path: Path,
        *,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        write_fault: Callable[[], None] | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> None:
        self.path = path
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._write_fault = write_fault
        self._lock_file: int | None = None
        self._error: JournalError | None = None
        self._pending: list[_Op] = []
        self._submitted = 0  # ops handed to record_* so far
        self._committed = 0  # ops committed so far
        # Called from the writer thread after each batch commit (the engine releases the
        # "stored" results it held back until their records were durable).
        self.commit_listener: Callable[[], None] | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._read_lock = threading.Lock()
        self._closed = False
        # When the journal held a job that had completed: (when it completed, UNIX time). The
        # rows were forgotten, so this run is a new upload of everything.
        self.renewed: float | None = None
        self._lock_file = self._take_lock(path)
        existed = _has_content(path)
        try:
            self._writer = self._connect(path)
            if existed:
                self._check_sane(self._writer, path)
            for statement in _SCHEMA:
                self._writer.execute(statement)
            with self._writer:
                old = dict(self._writer.execute("SELECT name, value FROM meta").fetchall())
                if old.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
                    raise JournalError(
                        f"journal at {path} was written by another version of bulkput (schema"
                        f" {old['schema']}): run with --restart to start over",
                        path=str(path),
                    )
                if old.get("state") == STATE_COMPLETE:
                    self.renewed = float(old.get("completed_at") or 0.0)
                    for table in ("stored", "uploads", "parts"):
                        self._writer.execute(f"DELETE FROM {table}")
                rows = {
                    "schema": SCHEMA_VERSION,
                    "created": old.get("created", "") if self.renewed is None else "",
                    **(meta or {}),
                    "state": STATE_RUNNING,
                    "completed_at": "",
                }
                rows["created"] = rows["created"] or repr(time.time())
                self._writer.executemany(_SQL_META, rows.items())
            self._reader = self._connect(path)
            self._reader.execute("PRAGMA query_only=ON")
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            if existed and _is_damage(exc):
                raise JournalDamagedError(str(path)) from None
            raise JournalError(f"journal: cannot write: {exc}", path=str(path)) from None
        except BaseException:
            self._release_lock()
            raise
        # A fresh job has nothing to skip: answer is_stored without a query until the first
        # batch commits (the common case of a first run costs no read at all).
        self._maybe_stored = (
            self._reader.execute("SELECT 1 FROM stored LIMIT 1").fetchone() is not None
        )
        self._stored_before_open = self._maybe_stored
        self._thread = threading.Thread(
            target=self._flush_loop, name="bulkput-journal", daemon=True
        )
        self._thread.start()

    # --- opening -------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        state_dir: str | os.PathLike[str] | None,
        job: str,
        *,
        restart: bool = False,
        meta: Mapping[str, str] | None = None,
        flush_interval: float = DEFAULT_FLUSH_INTERVAL,
        batch_size: int = DEFAULT_BATCH_SIZE,
        write_fault: Callable[[], None] | None = None,
    ) -> Journal:
        """Open (creating) the journal of job ``job`` in ``state_dir`` (default
        :func:`default_state_dir`). ``restart`` forgets what an earlier run recorded.

        Raises :class:`JournalError` (exit 3) when the directory or database cannot be written,
        so a job fails before its first upload rather than losing track of it later.
        """
        directory = Path(state_dir) if state_dir is not None else default_state_dir()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(
                f"state directory cannot be created: {exc.strerror or exc}",
                path=str(directory),
            ) from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise JournalError("state directory is not writable", path=str(directory))
        path = directory / f"{job}.sqlite"
        with contextlib.suppress(OSError):  # housekeeping never stops a job
            prune(directory, keep=path)
        if restart:
            cls.forget(path)
        return cls(path, meta=meta, flush_interval=flush_interval, batch_size=batch_size,
                   write_fault=write_fault)

    @staticmethod
    def forget(path: Path) -> None:
        """Delete a journal's files (``--restart``)."""
        for suffix in ("", "-wal", "-shm"):
            try:
                os.unlink(f"{path}{suffix}")
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise JournalError(
                    f"journal: cannot remove: {exc}", path=str(path)
                ) from None

    @staticmethod
    def _check_sane(connection: sqlite3.Connection, path: Path) -> None:
        """Raise :class:`JournalDamagedError` unless the database passes SQLite's quick check
        (run only when resuming: it reads every page once, a fraction of a second per 100 MB)."""
        try:
            rows = connection.execute("PRAGMA quick_check(1)").fetchall()
        except sqlite3.DatabaseError:
            raise JournalDamagedError(str(path)) from None
        if rows != [("ok",)]:
            raise JournalDamagedError(str(path))

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=10000")
        # Autocommit mode; batches open their own transaction.
        return connection

    @staticmethod
    def _take_lock(path: Path) -> int:
        """One process per job: two runs of the same job would upload everything twice."""
        lock_path = f"{path}.lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise JournalError(
                f"journal: cannot write: {exc.strerror or exc}", path=str(path)
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise JournalError(
                "journal is in use by another bulkput process running the same job",
                path=str(path),
            ) from None
        return fd

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
                os.close(self._lock_file)
            self._lock_file = None

    # --- writes (batched) ----------------------------------------------------------------

    @property
    def submitted(self) -> int:
        """How many records were handed to ``record_*`` so far (a sequence number)."""
        return self._submitted

    @property
    def committed(self) -> int:
        """How many of them are committed (durable); compare with :attr:`submitted`."""
        return self._committed

    @property
    def error(self) -> JournalError | None:
        """The write failure that stopped the journal, if any."""
        return self._error

    def _submit(self, ops: Iterable[_Op]) -> None:
        with self._cond:
            if self._error is not None:
                raise self._error
            if self._closing:
                raise JournalError("journal is closed", path=str(self.path))
            before = len(self._pending)
            self._pending.extend(ops)
            self._submitted += len(self._pending) - before
            if len(self._pending) >= self.batch_size:
                self._cond.notify_all()

    def record_stored(
        self,
        key: str,
        size: int,
        mtime_ns: int,
        md5_hex: str | None,
        etag: str | None,
        *,
        ino: int | None = None,
        ctime_ns: int | None = None,
    ) -> None:
        """Record one object the server confirmed stored. Call only after the confirmation.

        ``ino`` and ``ctime_ns`` (from the same ``stat`` as size and mtime) make a file
        replaced with the same size and mtime count as changed."""
        self._submit([(_SQL_STORED, (_k(key), size, mtime_ns, md5_hex, etag, ino, ctime_ns))])

    def forget_stored(self, keys: Iterable[str]) -> None:
        """Forget that ``keys`` were stored (the store no longer holds them as recorded)."""
        self._submit([(_SQL_FORGET_STORED, (_k(key),)) for key in keys])

    def mark_complete(self) -> None:
        """The job stored every object: commit everything pending, then mark the journal
        complete, so the next run of the same command is a new upload, not a resume."""
        self._submit([(_SQL_META, ("state", STATE_COMPLETE)), (_SQL_META, ("completed_at", repr(time.time())))])
        self.flush()

    def begin_upload(
        self,
        key: str,
        upload_id: str,
        part_size: int,
        size: int,
        mtime_ns: int,
        md5_hex: str | None = None,
    ) -> None:
        """Record a multipart upload just initiated (replacing any older one of ``key``)."""
        kb = _k(key)
        self._submit(
            [
                (_SQL_DROP_PARTS_OF_KEY, (kb,)),
                (_SQL_BEGIN, (kb, upload_id, part_size, size, mtime_ns, md5_hex, time.time())),
            ]
        )

    def record_part(
        self, key: str, upload_id: str, part_number: int, etag: str, size: int | None = None
    ) -> None:
        """Record one part the server confirmed."""
        self._submit([(_SQL_PART, (upload_id, part_number, _k(key), etag, size))])

    def end_upload(self, key: str, upload_id: str) -> None:
        """Forget a multipart upload (completed, aborted, or found gone)."""
        self._submit([(_SQL_END, (_k(key), upload_id)), (_SQL_END_PARTS, (upload_id,))])

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                if not self._pending and not self._closing:
                    self._cond.wait(self.flush_interval)
                elif len(self._pending) < self.batch_size and not self._closing:
                    # Let a batch fill up, but never hold a record longer than the interval.
                    self._cond.wait(self.flush_interval)
                batch, self._pending = self._pending, []
                closing = self._closing
            durable = bool(batch) and self._error is None and self._commit(batch)
            with self._cond:
                if durable:  # a failed batch never counts as committed
                    self._committed += len(batch)
                self._cond.notify_all()
                listener = self.commit_listener
                finished = closing and not self._pending
            if batch and listener is not None:
                listener()
            if finished:
                return

    def _commit(self, batch: list[_Op]) -> bool:
        try:
            if self._write_fault is not None:
                self._write_fault()
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                for sql, rows in _runs_of_same_statement(batch):
                    if sql is _SQL_STORED:
                        # Many rows per statement: each sqlite3 step hands the GIL back and forth
                        # with the event loop's thread, and one step a row slowed the whole job.
                        for start in range(0, len(rows), _STORED_ROWS_PER_INSERT):
                            chunk = rows[start : start + _STORED_ROWS_PER_INSERT]
                            self._writer.execute(
                                _stored_insert(len(chunk)), [v for row in chunk for v in row]
                            )
                    else:
                        self._writer.executemany(sql, rows)
                self._writer.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("ROLLBACK")
                raise
            if not self._maybe_stored and any(sql is _SQL_STORED for sql, _ in batch):
                self._maybe_stored = True
            return True
        except (sqlite3.Error, OSError) as exc:
            with self._cond:
                if isinstance(exc, sqlite3.DatabaseError) and _is_damage(exc):
                    self._error = JournalDamagedError(str(self.path))
                else:
                    self._error = JournalError(
                        f"journal: write failed, job stopped: {exc}", path=str(self.path)
                    )
                self._cond.notify_all()
            return False
        except Exception as exc:  # a dead writer would leave every flush waiting
            unexpected = UnexpectedError.during("the journal's writer", exc)
            with self._cond:
                self._error = JournalError(
                    f"journal: write failed, job stopped: {unexpected.message}", path=str(self.path)
                )
                self._cond.notify_all()
            return False

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record submitted before this call is committed.

        Raises the journal's :class:`JournalError` if a write failed. From asyncio code, call it
        in an executor (or use :meth:`aflush`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            target = self._submitted
            self._cond.notify_all()
            while self._committed < target and self._error is None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise JournalError("journal flush timed out", path=str(self.path))
                # Wake the writer at once instead of waiting for its interval.
                self._cond.notify_all()
                self._cond.wait(remaining if remaining is not None else 0.05)
            if self._error is not None:
                raise self._error

    async def aflush(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.flush)

    def close(self) -> None:
        """Flush what is pending, stop the writer thread, close the database.

        Raises the journal's :class:`JournalError` if the final flush (or an earlier one) failed;
        the files are closed either way.
        """
        if self._lock_file is None:
            return
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        try:
            # Executor threads of an aborted job may still be reading: closing a connection
            # under a running query crashes the interpreter, so close only between reads.
            with self._read_lock:
                self._closed = True
                for connection in (self._reader, self._writer):
                    with contextlib.suppress(sqlite3.Error):
                        connection.close()
        finally:
            self._release_lock()
        if self._error is not None:
            raise self._error

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reads (committed rows only) ------------------------------------------------------

    def _read(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        try:
            with self._read_lock:
                if self._closed:
                    raise JournalError("journal is closed", path=str(self.path))
                return self._reader.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            if _is_damage(exc):  # damaged since it was opened: the same one line
                raise JournalDamagedError(str(self.path)) from None
            raise JournalError(f"journal: read failed: {exc}", path=str(self.path)) from None
        except sqlite3.Error as exc:
            raise JournalError(f"journal: read failed: {exc}", path=str(self.path)) from None

    @property
    def stored_before_open(self) -> bool:
        """Whether an earlier run of the job had recorded any stored object.

        The engine asks :meth:`is_stored` only then: on a first run every lookup would be a
        query answering "no", and each query's GIL hand-offs cost the event loop's thread more
        than the query (about 10% of a small-file job's wall time, measured).
        """
        return self._stored_before_open

    def is_stored(
        self,
        key: str,
        size: int,
        mtime_ns: int,
        ino: int | None = None,
        ctime_ns: int | None = None,
        *,
        md5_hex: str | None = None,
    ) -> bool:
        """True when an earlier batch committed ``key`` as stored from this file: the same
        size and mtime, and the same inode and ctime where both the record and the caller have
        them (a file replaced by ``mv`` has another inode); with ``md5_hex`` (the MD5 the
        store says it holds), the same recorded MD5."""
        if not self._maybe_stored:
            return False
        rows = self._read(
            "SELECT size, mtime_ns, ino, ctime_ns, md5 FROM stored WHERE key = ?", (_k(key),)
        )
        if not rows:
            return False
        stored_size, stored_mtime, stored_ino, stored_ctime, stored_md5 = rows[0]
        return (
            (md5_hex is None or (stored_md5 or "").lower() == md5_hex.lower())
            and stored_size == size
            and stored_mtime == mtime_ns
            and (ino is None or stored_ino is None or stored_ino == ino)
            and (ctime_ns is None or stored_ctime is None or stored_ctime == ctime_ns)
        )

    def stored_page(self, after: str | None, limit: int = 1000) -> list[StoredRecord]:
        """Up to ``limit`` committed stored objects with keys after ``after``, in key (byte)
        order: page through every row in constant memory."""
        if after is None:
            rows = self._read(
                "SELECT key, size, md5, etag FROM stored ORDER BY key LIMIT ?", (limit,)
            )
        else:
            rows = self._read(
                "SELECT key, size, md5, etag FROM stored WHERE key > ? ORDER BY key LIMIT ?",
                (_k(after), limit),
            )
        return [
            StoredRecord(bytes(k).decode("utf-8", "surrogateescape"), int(size), md5, etag)
            for k, size, md5, etag in rows
        ]

    def stored_record(self, key: str) -> tuple[int, int, str | None, str | None] | None:
        """``(size, mtime_ns, md5, etag)`` of a committed stored object, or None."""
        rows = self._read("SELECT size, mtime_ns, md5, etag FROM stored WHERE key = ?", (_k(key),))
        if not rows:
            return None
        size, mtime_ns, md5, etag = rows[0]
        return int(size), int(mtime_ns), md5, etag

    def upload_for(self, key: str) -> UploadRecord | None:
        """The committed multipart upload in flight for ``key``, if any."""
        rows = self._read(
            "SELECT upload_id, part_size, size, mtime_ns, md5 FROM uploads WHERE key = ?",
            (_k(key),),
        )
        if not rows:
            return None
        upload_id, part_size, size, mtime_ns, md5 = rows[0]
        return UploadRecord(key, upload_id, part_size, size, mtime_ns, md5)

    def parts_for(self, key: str, upload_id: str) -> list[PartInfo]:
        """The committed parts of one upload, in part order."""
        rows = self._read(
            "SELECT part_number, etag, size FROM parts WHERE upload_id = ? AND key = ?"
            " ORDER BY part_number",
            (upload_id, _k(key)),
        )
        return [PartInfo(number, etag, size) for number, etag, size in rows]

    def uploads(self) -> list[UploadRecord]:
        """Every multipart upload in flight (for reports and clean-up)."""
        rows = self._read(
            "SELECT key, upload_id, part_size, size, mtime_ns, md5 FROM uploads ORDER BY key", ()
        )
        return [
            UploadRecord(bytes(k).decode("utf-8", "surrogateescape"), u, p, s, m, d)
            for k, u, p, s, m, d in rows
        ]

    def stored_count(self) -> int:
        return int(self._read("SELECT count(*) FROM stored", ())[0][0])


# --- the state directory ----------------------------------------------------------------------


def _has_content(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    """A corrupt file, as opposed to one that cannot be written (full disk, permissions)."""
    if isinstance(error, (sqlite3.OperationalError, sqlite3.IntegrityError)):
        text = str(error).lower()
        return "malformed" in text or "not a database" in text
    return True  # plain DatabaseError: "file is not a database", "database disk image is malformed"


def read_info(path: Path) -> JournalInfo:
    """What one journal file holds, read without taking its lock (``damaged`` when SQLite
    cannot read it)."""
    job = path.name.removesuffix(".sqlite")
    try:
        modified = path.stat().st_mtime
        wal = Path(f"{path}-wal")
        if wal.exists():
            modified = max(modified, wal.stat().st_mtime)
    except OSError:
        modified = 0.0
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(connection.execute("SELECT name, value FROM meta").fetchall())
            stored = int(connection.execute("SELECT count(*) FROM stored").fetchone()[0])
            uploads = int(connection.execute("SELECT count(*) FROM uploads").fetchone()[0])
        finally:
            connection.close()
    except sqlite3.Error:
        return JournalInfo(path, job, "damaged", modified, None, 0, 0, "", "", "")
    completed = meta.get("completed_at") or ""
    return JournalInfo(
        path=path,
        job=job,
        state=meta.get("state") or STATE_RUNNING,
        modified=modified,
        completed_at=float(completed) if completed else None,
        stored=stored,
        uploads=uploads,
        store=meta.get("store") or meta.get("dest", ""),
        source=meta.get("source", ""),
        shard=meta.get("shard", ""),
    )


def list_journals(state_dir: str | os.PathLike[str] | None = None) -> list[JournalInfo]:
    """Every journal in ``state_dir`` (default :func:`default_state_dir`), oldest first."""
    directory = Path(state_dir) if state_dir is not None else default_state_dir()
    if not directory.is_dir():
        return []
    infos = [read_info(path) for path in directory.glob("*.sqlite")]
    return sorted(infos, key=lambda info: (info.modified, info.job))


def prune(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    older_than: float = KEEP_COMPLETED_SECONDS,
    now: float | None = None,
    keep: Path | None = None,
) -> list[Path]:
    """Remove the completed journals in ``state_dir`` last written more than ``older_than``
    seconds ago (never a journal another process holds, nor ``keep``); the paths removed.

    Only completed jobs go: an unfinished journal is what lets its job resume, and it names
    the multipart uploads the store still holds."""
    directory = Path(state_dir) if state_dir is not None else default_state_dir()
    limit = (time.time() if now is None else now) - older_than
    removed: list[Path] = []
    for path in directory.glob("*.sqlite"):
        if path == keep:
            continue
        try:
            if path.stat().st_mtime > limit:  # cheap first: most journals are recent
                continue
        except OSError:
            continue
        info = read_info(path)
        if info.state != STATE_COMPLETE or (info.completed_at or info.modified) > limit:
            continue
        try:
            lock = Journal._take_lock(path)
        except JournalError:
            continue  # in use
        try:
            Journal.forget(path)
            with contextlib.suppress(OSError):
                os.unlink(f"{path}.lock")
            removed.append(path)
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)
                os.close(lock)
    return removed
