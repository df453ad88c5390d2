"""The engine against an in-memory fake store: honest results, failures alone, one abort."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

import pytest

from bulkput.config import RetryPolicy, TransferConfig
from bulkput.errors import (
    BulkputError,
    ConnectError,
    ManifestError,
    ValidationError,
    error_from_response,
)
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job import engine as engine_module
from bulkput.job.engine import Engine
from bulkput.job.journal import Journal, UploadRecord
from bulkput.job.journal_protocol import JobJournal
from bulkput.job.multipart import MultipartResult, TransferContext
from bulkput.job.shard import Shard
from bulkput.job.subscriber import Subscriber
from bulkput.local.read_placement import INLINE_BATCH_SECONDS, INLINE_BODY_LIMIT
from bulkput.remote.store import Body, FileRange, ObjectHeaders, ObjectInfo, PartInfo, PutResult

FAST_RETRY = RetryPolicy(max_attempts=4, base_delay=0.0, throttle_base_delay=0.0, connect_attempts=3)


class FakeDialect:
    def validate(self, key: str, headers: ObjectHeaders) -> None:
        if len(key.encode()) > 1023:
            raise ValidationError("key is longer than 1023 bytes", key=key)
        if headers.storage_class not in (None, "STANDARD", "IA"):
            raise ValidationError(f"unknown storage class {headers.storage_class}", key=key)


class FakeStore:
    """One bucket in memory. ``failures[key]`` lists errors the next PUTs of that key raise;
    ``every_put`` is raised by every PUT."""

    bucket = "bkt"
    dialect_name = "s3"

    def __init__(self) -> None:
        self.dialect = FakeDialect()
        self.validate = self.dialect.validate
        self.objects: dict[str, tuple[bytes, ObjectHeaders]] = {}
        self.failures: dict[str, list[BaseException]] = {}
        self.every_put: BaseException | None = None
        self.puts = 0
        self.wrong_etag: set[str] = set()
        self.streaming = 0
        self.max_streaming = 0
        self.gate: asyncio.Event | None = None
        # set: each PUT stores its object, then its answer waits here (an answer in flight)
        self.answer_gate: asyncio.Event | None = None
        self.heads: list[str] = []

    async def put_object(
        self, key: str, body: Body, *, content_md5: str | None, headers: ObjectHeaders
    ) -> PutResult:
        self.puts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.every_put is not None:
            raise self.every_put
        pending = self.failures.get(key)
        if pending:
            raise pending.pop(0)
        if isinstance(body, FileRange):
            self.streaming += 1
            self.max_streaming = max(self.max_streaming, self.streaming)
            try:
                await asyncio.sleep(0)
                with open(body.path, "rb") as handle:
                    handle.seek(body.offset)
                    data = handle.read(body.length)
            finally:
                self.streaming -= 1
        else:
            data = bytes(body)
        digest = hashlib.md5(data)
        if content_md5 is not None and base64.b64decode(content_md5) != digest.digest():
            raise error_from_response(400, "BadDigest", key=key)
        self.objects[key] = (data, headers)
        if self.answer_gate is not None:
            await self.answer_gate.wait()
        etag = "0" * 32 if key in self.wrong_etag else digest.hexdigest()
        return PutResult(etag=etag, request_id=f"req-{self.puts}")

    async def head_object(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        if key not in self.objects:
            return None
        data = self.objects[key][0]
        return ObjectInfo(key, len(data), etag=hashlib.md5(data).hexdigest())

    async def close(self) -> None:
        pass


class Recorder(Subscriber):
    def __init__(self) -> None:
        self.results: list[ObjectResult] = []
        self.retries: list[tuple[str, str]] = []
        self.bytes = 0
        self.done = None

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)

    def on_bytes(self, n: int) -> None:
        self.bytes += n

    def on_retry(self, key: str, error: BulkputError) -> None:
        self.retries.append((key, error.code))

    def on_done(self, summary) -> None:
        self.done = summary

    def by_key(self) -> dict[str, ObjectResult]:
        return {r.key: r for r in self.results}


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def make_engine(store, config=None, **kwargs) -> tuple[Engine, Recorder]:
    recorder = Recorder()
    config = config or TransferConfig(concurrency=8, max_open_files=4, retry=FAST_RETRY)
    engine = Engine(
        store, config, subscribers=[recorder], sleep=no_sleep, multipart=None, **kwargs
    )
    return engine, recorder


def make_files(root: Path, count: int, size: int = 100) -> list[UploadItem]:
    items = []
    for n in range(count):
        path = root / f"d{n % 3}" / f"file-{n}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size) + str(n).encode())
        items.append(UploadItem(path=str(path), key=f"pre/d{n % 3}/file-{n}.txt"))
    return items


def stored_bytes_equal(store: FakeStore, items: Sequence[UploadItem]) -> bool:
    return all(store.objects[i.key][0] == Path(i.path).read_bytes() for i in items)


async def test_every_file_stored_byte_exact_with_md5_and_etag(tmp_path: Path) -> None:
    store = FakeStore()
    items = make_files(tmp_path, 50)
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    assert stored_bytes_equal(store, items)
    assert len(rec.results) == 50
    for result in rec.results:
        data = store.objects[result.key][0]
        assert result.status is Status.STORED
        assert result.md5 == hashlib.md5(data).hexdigest() == result.etag
        assert result.size == len(data) and result.attempts == 1
        assert result.request_id
    assert summary.exit_code == 0
    assert rec.bytes == sum(len(store.objects[i.key][0]) for i in items)
    assert store.objects["pre/d0/file-0.txt"][1].content_type == "text/plain"
    assert rec.done is summary


async def test_content_type_guessed_unless_given_and_defaults_merged(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    (tmp_path / "b.json").write_text("[]")
    (tmp_path / "noext").write_text("x")
    items = [
        UploadItem(str(tmp_path / "a.json"), "a.json"),
        UploadItem(str(tmp_path / "b.json"), "b.json", content_type="text/x-mine", metadata={"k": "v"}),
        UploadItem(str(tmp_path / "noext"), "dir.d/noext"),
    ]
    store = FakeStore()
    defaults = ObjectHeaders(cache_control="max-age=60", metadata={"job": "7"})
    engine, _ = make_engine(store, defaults=defaults)
    await engine.run(items)
    a, b, c = (store.objects[k][1] for k in ("a.json", "b.json", "dir.d/noext"))
    assert a.content_type == "application/json" and a.cache_control == "max-age=60"
    assert a.metadata == {"job": "7"}
    assert b.content_type == "text/x-mine" and b.metadata == {"job": "7", "k": "v"}
    assert c.content_type == "application/octet-stream"


async def test_bad_inputs_fail_alone_with_one_line_each(tmp_path: Path) -> None:
    good = make_files(tmp_path, 5)
    (tmp_path / "adir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "empty").write_bytes(b"")
    bad = [
        UploadItem(str(tmp_path / "missing.txt"), "missing.txt"),
        UploadItem(str(tmp_path / "adir"), "adir"),
        UploadItem(str(tmp_path / "fifo"), "fifo"),
        UploadItem(good[0].path, "k" * 1024),
        UploadItem(good[0].path, "cold", storage_class="FROZEN"),
        ManifestError("no path field", line=7, source="m.jsonl"),
    ]
    items = [*good[:2], *bad, *good[2:], UploadItem(str(tmp_path / "empty"), "empty")]
    store = FakeStore()
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    results = rec.by_key()
    assert stored_bytes_equal(store, good)
    assert store.objects["empty"][0] == b""
    assert results["empty"].status is Status.STORED
    assert results["missing.txt"].error_code == "LocalInputError"
    assert "no such file" in results["missing.txt"].message
    assert "directory" in results["adir"].message
    assert "not a regular file" in results["fifo"].message
    assert results["k" * 1024].error_code == "ValidationError"
    assert "FROZEN" in results["cold"].message
    manifest_failure = results[""]
    assert manifest_failure.error_code == "ManifestError" and "line 7" in manifest_failure.message
    failed = [r for r in rec.results if r.status is Status.FAILED]
    assert len(failed) == 6 and all("\n" not in r.message for r in failed)
    assert summary.exit_code == 1
    assert store.puts == 6  # failed inputs never reached the store


async def test_unreadable_file_fails_alone(tmp_path: Path, monkeypatch) -> None:
    items = make_files(tmp_path, 3)
    os.chmod(items[1].path, 0)
    real_open = os.open

    def open_as_unprivileged(path, flags, *args):  # the tests may run as root
        if path == items[1].path:
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(engine_module.os, "open", open_as_unprivileged)
    engine, rec = make_engine(FakeStore())
    await engine.run(items)
    assert rec.by_key()[items[1].key].message.endswith("permission denied")
    assert [r.status for r in rec.results].count(Status.STORED) == 2


async def test_a_job_fatal_error_aborts_once_and_stores_nothing_falsely(tmp_path: Path) -> None:
    # More objects than the pipeline's queues hold, so that some are never read into the job.
    items = make_files(tmp_path, 1000, size=10)
    store = FakeStore()
    store.every_put = error_from_response(403, "InvalidAccessKeyId", bucket="bkt")
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    assert summary.exit_code == 3
    assert engine.aborted is not None and engine.aborted.code == "InvalidAccessKeyId"
    assert summary.aborted is not None and "InvalidAccessKeyId" in summary.aborted
    codes = [r.error_code for r in rec.results]
    assert codes.count("InvalidAccessKeyId") == 1
    assert set(codes) <= {"InvalidAccessKeyId", "JobAborted"}
    assert all(r.status is Status.FAILED for r in rec.results)
    assert store.puts <= 8  # the requests already in flight, not one per object
    assert len(rec.results) < 1000  # the rest of the input was never read into the job
    assert len({r.key for r in rec.results}) == len(rec.results)


async def test_unreachable_endpoint_aborts_after_bounded_tries(tmp_path: Path) -> None:
    items = make_files(tmp_path, 30, size=10)
    store = FakeStore()
    store.every_put = ConnectError("connection refused", code="ConnectionRefused")
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    assert summary.exit_code == 3 and engine.aborted.code == "EndpointUnreachable"
    assert store.puts <= 8 * FAST_RETRY.connect_attempts
    assert [r.error_code for r in rec.results].count("EndpointUnreachable") == 1


async def test_transient_errors_are_retried_and_counted(tmp_path: Path) -> None:
    items = make_files(tmp_path, 10)
    store = FakeStore()
    store.failures[items[3].key] = [
        error_from_response(500, "InternalError", key=items[3].key),
        error_from_response(400, "RequestTimeout", key=items[3].key),
    ]
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert rec.by_key()[items[3].key].attempts == 3
    assert rec.retries == [(items[3].key, "InternalError"), (items[3].key, "RequestTimeout")]
    assert summary.retries == 2


async def test_an_object_failing_every_time_fails_alone_after_its_budget(tmp_path: Path) -> None:
    items = make_files(tmp_path, 10)
    store = FakeStore()
    store.failures[items[5].key] = [error_from_response(503, "SlowDown") for _ in range(10)]
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    failed = rec.by_key()[items[5].key]
    assert failed.status is Status.FAILED and failed.error_code == "SlowDown"
    assert failed.attempts == FAST_RETRY.max_attempts
    assert summary.exit_code == 1
    assert sum(r.status is Status.STORED for r in rec.results) == 9
    assert engine.limiter.decreases >= 1  # throttling lowered the concurrency


async def test_etag_not_matching_the_md5_is_a_failure(tmp_path: Path) -> None:
    items = make_files(tmp_path, 3)
    store = FakeStore()
    store.wrong_etag.add(items[1].key)
    engine, rec = make_engine(store)
    summary = await engine.run(items)
    result = rec.by_key()[items[1].key]
    assert result.status is Status.FAILED and result.error_code == "BadDigest"
    assert "does not match" in result.message
    assert summary.exit_code == 1


async def test_large_bodies_stream_and_open_files_stay_bounded(tmp_path: Path) -> None:
    items = make_files(tmp_path, 30, size=5000)
    config = TransferConfig(
        concurrency=16, max_open_files=2, small_body_limit=1024, chunk_size=1024, retry=FAST_RETRY
    )
    store = FakeStore()
    engine, _ = make_engine(store, config)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert 1 <= store.max_streaming <= 2


def peak_calls_at_once(monkeypatch, name: str, hold: float) -> Callable[[], int]:
    """Wrap the executor-side ``Engine.<name>`` so each call lasts at least ``hold`` seconds
    (long enough for others to start, were they allowed to); returns a reader of the most
    calls that ran at once."""
    running = 0
    most = 0
    lock = threading.Lock()  # the calls run in executor threads
    real = getattr(Engine, name)

    def counting(self: Engine, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        try:
            time.sleep(hold)
            return real(self, *args, **kwargs)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(Engine, name, counting)
    return lambda: most


async def test_large_files_are_hashed_no_more_at_once_than_there_are_cpus(
    tmp_path: Path, monkeypatch
) -> None:
    # Hashing is CPU work: with one CPU, one large file at a time, so the first is sent as
    # soon as it is hashed instead of all of them finishing together.
    monkeypatch.setattr(engine_module, "_cpu_count", lambda: 1)
    peak = peak_calls_at_once(monkeypatch, "_hash_large", hold=0.05)
    items = make_files(tmp_path, 6, size=5000)
    config = TransferConfig(
        concurrency=16, max_open_files=8, small_body_limit=1024, retry=FAST_RETRY
    )
    store = FakeStore()
    engine, _ = make_engine(store, config)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert peak() == 1


@pytest.mark.parametrize(("readers", "max_open_files", "expected"), [(1, 8, 1), (3, 8, 3), (3, 2, 2)])
async def test_small_files_are_read_by_as_many_threads_as_readers_says(
    tmp_path: Path, monkeypatch, readers: int, max_open_files: int, expected: int
) -> None:
    # As many reader threads as asked, never more than max_open_files.
    peak = peak_calls_at_once(monkeypatch, "_prepare_batch", hold=0.02)
    items = make_files(tmp_path, 200, size=100)
    config = TransferConfig(
        concurrency=16,
        max_open_files=max_open_files,
        readers=readers,
        inline_reads=False,
        retry=FAST_RETRY,
    )
    store = FakeStore()
    engine, _ = make_engine(store, config)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert peak() == expected


def reads_by_thread(monkeypatch, delay: float = 0.0) -> list[tuple[bool, int]]:
    """Spy on the engine's small-body reads: (read on the event loop's thread, size) each,
    each read lasting at least ``delay`` seconds."""
    reads: list[tuple[bool, int]] = []
    real_read_all = engine_module._read_all

    def spying_read(fd: int, size: int) -> bytes:
        time.sleep(delay)
        reads.append((threading.current_thread() is threading.main_thread(), size))
        return real_read_all(fd, size)

    monkeypatch.setattr(engine_module, "_read_all", spying_read)
    return reads


async def test_small_files_are_read_on_the_loop_and_larger_bodies_in_threads(
    tmp_path: Path, monkeypatch
) -> None:
    # no time limit here: a busy test machine must not send a batch to a thread
    monkeypatch.setattr(engine_module, "INLINE_BATCH_SECONDS", 60.0)
    reads = reads_by_thread(monkeypatch)
    small = make_files(tmp_path / "small", 40, size=100)
    larger = [
        UploadItem(item.path, "larger/" + item.key)
        for item in make_files(tmp_path / "larger", 3, size=INLINE_BODY_LIMIT + 1)
    ]
    store = FakeStore()
    engine, _ = make_engine(store, TransferConfig(concurrency=8, retry=FAST_RETRY))
    summary = await engine.run(small + larger)
    assert summary.exit_code == 0 and stored_bytes_equal(store, small + larger)
    on_the_loop = [size for inline, size in reads if inline]
    in_threads = [size for inline, size in reads if not inline]
    assert len(on_the_loop) == len(small) and max(on_the_loop) <= INLINE_BODY_LIMIT
    assert in_threads == [INLINE_BODY_LIMIT + 2] * 3  # size + its number's one digit


async def test_slow_reads_move_to_threads_after_two_slow_batches(
    tmp_path: Path, monkeypatch
) -> None:
    # Each read takes longer than an inline batch may: the loop reads one file, tries once
    # more (a single slow file may be a pause of the machine), then leaves the rest to threads.
    reads = reads_by_thread(monkeypatch, delay=INLINE_BATCH_SECONDS * 2)
    items = make_files(tmp_path, 60, size=100)
    store = FakeStore()
    engine, _ = make_engine(store, TransferConfig(concurrency=8, retry=FAST_RETRY))
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert [inline for inline, _ in reads].count(True) == 2
    assert len(reads) == 60


async def test_no_inline_reads_reads_every_file_in_a_thread(tmp_path: Path, monkeypatch) -> None:
    reads = reads_by_thread(monkeypatch)
    items = make_files(tmp_path, 50, size=100)
    store = FakeStore()
    config = TransferConfig(concurrency=8, inline_reads=False, retry=FAST_RETRY)
    engine, _ = make_engine(store, config)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and stored_bytes_equal(store, items)
    assert len(reads) == 50 and not any(inline for inline, _ in reads)


async def test_trusted_md5_is_sent_as_given(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"hello")
    right = base64.b64encode(hashlib.md5(b"hello").digest()).decode()
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    items = [UploadItem(str(path), "right", md5=right), UploadItem(str(path), "wrong", md5=wrong)]
    store = FakeStore()
    engine, rec = make_engine(store)
    await engine.run(items)
    assert rec.by_key()["right"].status is Status.STORED
    assert rec.by_key()["wrong"].error_code == "BadDigest"  # the server refused the lie
    assert "wrong" not in store.objects


async def test_file_growing_while_read_is_reread_or_refused(tmp_path: Path, monkeypatch) -> None:
    items = make_files(tmp_path, 2)
    grow_once, grow_always = items[0].path, items[1].path
    reads: dict[str, int] = {}
    real_read_all = engine_module._read_all

    def growing_read(fd: int, size: int) -> bytes:
        data = real_read_all(fd, size)
        path = os.readlink(f"/proc/self/fd/{fd}")
        reads[path] = reads.get(path, 0) + 1
        if path == grow_always or (path == grow_once and reads[path] == 1):
            with open(path, "ab") as handle:
                handle.write(b"more")
        return data

    monkeypatch.setattr(engine_module, "_read_all", growing_read)
    store = FakeStore()
    engine, rec = make_engine(store)
    await engine.run(items)
    first, second = rec.by_key()[items[0].key], rec.by_key()[items[1].key]
    assert first.status is Status.STORED
    assert store.objects[items[0].key][0] == Path(grow_once).read_bytes()
    assert second.error_code == "FileChangedError" and items[1].key not in store.objects


class FakeJournal:
    """The whole :class:`~bulkput.job.journal_protocol.JobJournal` in memory.

    Each record is committed at once, unless ``manual_commit``: then only :meth:`commit` makes
    records durable (as the SQLite journal's writer thread does, later), and :meth:`flush`
    waits until ``flush_gate`` is set.
    """

    def __init__(
        self,
        stored: dict[str, tuple[int, int]] | None = None,
        *,
        manual_commit: bool = False,
        stored_before_open: bool = True,
    ) -> None:
        self.stored = dict(stored or {})
        self.recorded: list[tuple[str, int, int, str | None, str | None]] = []
        self.flushed = 0
        self.commit_listener: Callable[[], None] | None = None
        self.manual_commit = manual_commit
        self.flush_gate = threading.Event()
        self._stored_before_open = stored_before_open
        self._submitted = 0
        self._committed = 0
        self._uploads: dict[str, UploadRecord] = {}
        self._parts: dict[str, list[PartInfo]] = {}

    @property
    def stored_before_open(self) -> bool:
        return self._stored_before_open

    @property
    def submitted(self) -> int:
        return self._submitted

    @property
    def committed(self) -> int:
        return self._committed

    def _submit(self) -> None:
        self._submitted += 1
        if not self.manual_commit:
            self.commit()

    def commit(self, upto: int | None = None) -> None:
        """Make the records up to sequence number ``upto`` (default: all) durable."""
        self._committed = self._submitted if upto is None else upto
        if self.commit_listener is not None:
            self.commit_listener()

    def is_stored(self, key: str, size: int, mtime_ns: int, ino=None, ctime_ns=None) -> bool:
        return self.stored.get(key) == (size, mtime_ns)

    def record_stored(self, key, size, mtime_ns, md5_hex, etag, *, ino=None, ctime_ns=None) -> None:
        self.recorded.append((key, size, mtime_ns, md5_hex, etag))
        self._submit()

    def begin_upload(self, key, upload_id, part_size, size, mtime_ns, md5_hex=None) -> None:
        self._uploads[key] = UploadRecord(key, upload_id, part_size, size, mtime_ns, md5_hex)
        self._parts[upload_id] = []
        self._submit()

    def record_part(self, key, upload_id, part_number, etag, size=None) -> None:
        self._parts.setdefault(upload_id, []).append(PartInfo(part_number, etag, size))
        self._submit()

    def end_upload(self, key: str, upload_id: str) -> None:
        if key in self._uploads and self._uploads[key].upload_id == upload_id:
            del self._uploads[key]
        self._parts.pop(upload_id, None)
        self._submit()

    def upload_for(self, key: str) -> UploadRecord | None:
        return self._uploads.get(key)

    def parts_for(self, key: str, upload_id: str) -> list[PartInfo]:
        return sorted(self._parts.get(upload_id, []), key=lambda p: p.part_number)

    def uploads(self) -> list[UploadRecord]:
        return sorted(self._uploads.values(), key=lambda r: r.key)

    def flush(self, timeout=None) -> None:
        self.flushed += 1
        if self.manual_commit:
            assert self.flush_gate.wait(30), "flush_gate never opened"
        self.commit()


def test_the_fake_and_the_sqlite_journal_have_every_method_of_the_protocol() -> None:
    wanted = {name for name in vars(JobJournal) if not name.startswith("_")}
    wanted |= set(JobJournal.__annotations__)
    assert "committed" in wanted and "commit_listener" in wanted
    assert wanted <= set(dir(FakeJournal(None)))
    assert wanted <= set(dir(Journal)) | {"commit_listener"}  # an attribute set in __init__


async def test_journal_skips_confirmed_objects_without_a_request(tmp_path: Path) -> None:
    items = make_files(tmp_path, 6)
    st = os.stat(items[0].path)
    changed = os.stat(items[1].path)
    journal = FakeJournal(
        {items[0].key: (st.st_size, st.st_mtime_ns), items[1].key: (changed.st_size, 1)}
    )
    store = FakeStore()
    engine, rec = make_engine(store, journal=journal)
    summary = await engine.run(items)
    skipped = rec.by_key()[items[0].key]
    assert skipped.status is Status.SKIPPED and skipped.reason == "journal"
    assert items[0].key not in store.objects and store.puts == 5
    assert sorted(k for k, *_ in journal.recorded) == sorted(i.key for i in items[1:])
    for key, size, _mtime, md5_hex, etag in journal.recorded:
        assert md5_hex == etag == hashlib.md5(store.objects[key][0]).hexdigest()
        assert size == len(store.objects[key][0])
    assert journal.flushed >= 1 and summary.exit_code == 0


async def test_first_run_of_a_job_never_looks_up_the_journal(tmp_path: Path) -> None:
    """A journal with nothing from an earlier run: no per-object lookup (each one costs the
    event loop's thread GIL hand-offs), every object sent and recorded."""

    class FirstRunJournal(FakeJournal):
        def is_stored(self, key: str, size: int, mtime_ns: int) -> bool:
            raise AssertionError(f"looked up {key} on a first run")

    items = make_files(tmp_path, 6)
    journal = FirstRunJournal(stored_before_open=False)
    store = FakeStore()
    engine, _ = make_engine(store, journal=journal)
    summary = await engine.run(items)
    assert summary.exit_code == 0 and store.puts == 6
    assert sorted(k for k, *_ in journal.recorded) == sorted(i.key for i in items)


async def test_a_stored_result_is_reported_only_after_the_journal_commits_its_record(
    tmp_path: Path,
) -> None:
    """Confirmed by the store is not enough: a result is reported stored once its journal
    record is durable, so a kill cannot make an object reported stored be sent again."""
    items = make_files(tmp_path, 5)
    journal = FakeJournal(manual_commit=True)
    store = FakeStore()
    engine, rec = make_engine(store, journal=journal)
    job = asyncio.create_task(engine.run(items))
    while len(journal.recorded) < 5:
        await asyncio.sleep(0.001)
    for _ in range(20):
        await asyncio.sleep(0.001)
    assert len(store.objects) == 5 and rec.results == []
    journal.commit(upto=2)  # the first two records are durable
    for _ in range(20):
        await asyncio.sleep(0.001)
    first_two = {key for key, *_ in journal.recorded[:2]}
    assert {r.key for r in rec.results} == first_two
    assert all(r.status is Status.STORED for r in rec.results)
    journal.flush_gate.set()  # the end-of-job flush commits the rest
    summary = await job
    assert summary.stored == 5 and len(rec.results) == 5


async def test_dry_run_plans_without_requests(tmp_path: Path) -> None:
    items = make_files(tmp_path, 4)
    items.append(UploadItem(str(tmp_path / "nope"), "nope"))
    store = FakeStore()
    engine, rec = make_engine(store, dry_run=True)
    await engine.run(items)
    assert store.puts == 0
    statuses = [r.status for r in rec.results]
    assert statuses.count(Status.PLANNED) == 4 and statuses.count(Status.FAILED) == 1
    assert all(r.size for r in rec.results if r.status is Status.PLANNED)


async def test_shards_split_the_job_without_overlap(tmp_path: Path) -> None:
    items = make_files(tmp_path, 40, size=5)
    seen: list[str] = []
    for index in range(3):
        store = FakeStore()
        engine, _ = make_engine(store, shard=Shard(index, 3))
        await engine.run(list(items))
        seen.extend(store.objects)
    assert sorted(seen) == sorted(i.key for i in items)


async def test_sync_generators_and_async_iterables(tmp_path: Path) -> None:
    items = make_files(tmp_path, 300, size=3)

    def generate():
        yield from items

    async def agenerate() -> AsyncIterator[UploadItem]:
        for item in items:
            yield item

    for source in (generate(), agenerate()):
        store = FakeStore()
        engine, rec = make_engine(store)
        summary = await engine.run(source)
        assert len(store.objects) == 300 and summary.exit_code == 0
        assert len(rec.results) == 300


async def test_stop_lets_in_flight_finish_and_reports_the_rest(tmp_path: Path) -> None:
    items = make_files(tmp_path, 100, size=5)
    store = FakeStore()
    store.gate = asyncio.Event()
    engine, rec = make_engine(store)
    job = asyncio.create_task(engine.run(iter(items)))
    while store.puts < 8:  # every sender holds one object at the gate
        await asyncio.sleep(0.001)
    engine.stop()
    store.gate.set()
    summary = await job
    assert summary.interrupted and summary.exit_code == 130
    stored = [r for r in rec.results if r.status is Status.STORED]
    assert len(stored) == 8 and len(store.objects) == 8
    others = [r for r in rec.results if r.status is not Status.STORED]
    # never sent: "not started", not "failed"; every one of the 100 has its one line
    assert {r.status for r in others} == {Status.NOT_STARTED}
    assert all(r.attempts == 0 and r.key not in store.objects for r in others)
    assert sorted(r.key for r in rec.results) == sorted(item.key for item in items)
    assert (summary.stored, summary.not_started, summary.failed) == (8, 92, 0)
    assert not summary.unread_input


async def test_stop_reports_every_object_even_those_read_and_waiting_for_a_sender(
    tmp_path: Path,
) -> None:
    """One sender held at the gate: the readers have prepared bodies they cannot hand over yet.
    After stop, each of the 200 objects is in the results exactly once."""
    items = make_files(tmp_path, 200, size=5)
    store = FakeStore()
    store.gate = asyncio.Event()
    config = TransferConfig(concurrency=1, max_open_files=4, retry=FAST_RETRY)
    engine, rec = make_engine(store, config)
    job = asyncio.create_task(engine.run(iter(items)))
    while store.puts < 1:
        await asyncio.sleep(0.001)
    for _ in range(50):  # let the readers fill what they may and block
        await asyncio.sleep(0.001)
    engine.stop()
    store.gate.set()
    summary = await job
    assert summary.interrupted
    keys = [r.key for r in rec.results]
    assert sorted(keys) == sorted(item.key for item in items)
    assert summary.stored == len(store.objects) == 1


async def test_stop_cancels_requests_that_outlive_the_grace(tmp_path: Path) -> None:
    items = make_files(tmp_path, 20, size=5)
    store = FakeStore()
    store.gate = asyncio.Event()  # never opened
    engine, rec = make_engine(store, stop_grace=0.01)
    job = asyncio.create_task(engine.run(items))
    while store.puts < 8:
        await asyncio.sleep(0.001)
    engine.stop()
    summary = await job
    assert summary.interrupted and not store.objects
    # the 8 cut off in flight were asked for (HEAD) and are absent: interrupted, not failed
    assert sorted(store.heads) == sorted(r.key for r in rec.results if r.status is Status.INTERRUPTED)
    assert (summary.interrupted_objects, summary.not_started, summary.failed) == (8, 12, 0)


async def test_an_object_cut_off_in_flight_that_the_store_holds_is_reported_stored_and_journaled(
    tmp_path: Path,
) -> None:
    """The store stored the 8 objects in flight, but their answers never came within the
    grace: a HEAD finds each with the file's MD5, so each is stored, journaled (the next run
    skips it), not "failed"."""
    items = make_files(tmp_path, 20, size=5)
    store = FakeStore()
    store.answer_gate = asyncio.Event()  # never opened: the answers are lost
    journal = FakeJournal()
    engine, rec = make_engine(store, journal=journal, stop_grace=0.01)
    job = asyncio.create_task(engine.run(items))
    while store.puts < 8:
        await asyncio.sleep(0.001)
    engine.stop()
    summary = await job
    stored = sorted(r.key for r in rec.results if r.status is Status.STORED)
    assert len(stored) == 8 and stored == sorted(store.objects) == sorted(store.heads)
    assert sorted(k for k, *_ in journal.recorded) == stored
    assert (summary.stored, summary.not_started, summary.interrupted_objects) == (8, 12, 0)
    assert summary.exit_code == 130


async def test_stop_lists_the_rest_of_the_input_as_not_started(tmp_path: Path) -> None:
    """Stopped while most of a generator's items are unread (the queues hold a few hundred):
    the input is read on and each item gets a not_started line; stored + not started is the
    whole input."""
    items = make_files(tmp_path, 800, size=5)
    store = FakeStore()
    store.gate = asyncio.Event()
    engine, rec = make_engine(store)
    job = asyncio.create_task(engine.run(item for item in items))
    while store.puts < 8:
        await asyncio.sleep(0.001)
    engine.stop()
    store.gate.set()
    summary = await job
    assert summary.stored == 8 and summary.failed == 0 and not summary.unread_input
    assert summary.stored + summary.not_started == len(items)
    assert sorted(r.key for r in rec.results) == sorted(item.key for item in items)


async def test_a_stop_before_the_start_sends_nothing_and_lists_every_item(tmp_path: Path) -> None:
    items = make_files(tmp_path, 50, size=5)
    store = FakeStore()
    engine, rec = make_engine(store)
    engine.stop()
    summary = await engine.run(iter(items))
    assert store.puts == 0 and summary.interrupted and summary.exit_code == 130
    assert summary.not_started == 50 and {r.status for r in rec.results} == {Status.NOT_STARTED}


async def test_the_listing_after_a_stop_is_cut_short_on_a_slow_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input that gives nothing more after the stop (a pipe left open): the job ends after
    LIST_REST_SECONDS and says the input had more (``unread_input``)."""
    monkeypatch.setattr(engine_module, "LIST_REST_SECONDS", 0.05)
    items = make_files(tmp_path, 10, size=5)
    never = asyncio.Event()

    async def slow_input() -> AsyncIterator[UploadItem]:
        for item in items:
            yield item
        await never.wait()

    store = FakeStore()
    engine, rec = make_engine(store)
    job = asyncio.create_task(engine.run(slow_input()))
    await asyncio.sleep(0.05)  # the 10 items wait in the producer's batch for more
    engine.stop()
    summary = await asyncio.wait_for(job, 10)
    assert store.puts == 0 and summary.unread_input and summary.exit_code == 130
    assert summary.not_started == 10 and {r.status for r in rec.results} == {Status.NOT_STARTED}


async def test_large_files_go_to_the_multipart_hook(tmp_path: Path) -> None:
    items = make_files(tmp_path, 4, size=10)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3000))
    items.append(UploadItem(str(big), "big.bin"))
    calls: list[tuple[str, int]] = []

    async def fake_upload_file(
        ctx: TransferContext, item: UploadItem, size: int, mtime_ns: int, headers: ObjectHeaders,
        file_id: tuple[int, int] | None,
    ) -> MultipartResult:
        assert file_id == (os.stat(item.path).st_ino, os.stat(item.path).st_ctime_ns)
        calls.append((item.key, size))
        # the job's one store (its limiter and open-file slots) and the hash pass's slots
        assert ctx.store is engine.store and ctx.store.limiter is engine.limiter
        assert ctx.open_files is engine.store.open_files and ctx.hash_slots is not None
        assert headers.content_type == "application/octet-stream"
        assert ctx.on_bytes is not None
        ctx.on_bytes(size)
        return MultipartResult(etag="etag-2", request_id="r", attempts=2)

    store = FakeStore()
    recorder = Recorder()
    config = TransferConfig(concurrency=4, multipart_threshold=2000, retry=FAST_RETRY)
    engine = Engine(store, config, subscribers=[recorder], sleep=no_sleep, multipart=fake_upload_file)
    summary = await engine.run(items)
    assert calls == [("big.bin", 3000)]
    assert recorder.by_key()["big.bin"].etag == "etag-2" and "big.bin" not in store.objects
    assert recorder.by_key()["big.bin"].attempts == 2
    assert summary.exit_code == 0 and recorder.bytes == sum(os.path.getsize(i.path) for i in items)



@pytest.mark.parametrize("begun", [False, True], ids=["not-begun", "begun"])
async def test_a_multipart_upload_cut_off_by_the_stop_is_not_started_or_interrupted_by_its_journal(
    tmp_path: Path, begun: bool
) -> None:
    """A large file whose upload outlives the stop's grace: not_started when the journal holds
    no upload of it (stopped while hashing, before the Initiate), interrupted (resumed by the
    next run) when it does."""
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3000))
    journal = FakeJournal()
    started = asyncio.Event()

    async def hanging_upload(ctx, item, size, mtime_ns, headers, file_id) -> MultipartResult:
        if begun:
            journal.begin_upload(item.key, "upload-1", 1000, size, mtime_ns)
        started.set()
        await asyncio.Event().wait()  # its requests never end
        raise AssertionError("unreachable")

    recorder = Recorder()
    config = TransferConfig(concurrency=4, multipart_threshold=2000, retry=FAST_RETRY)
    engine = Engine(FakeStore(), config, journal=journal, subscribers=[recorder], sleep=no_sleep,
                    multipart=hanging_upload, stop_grace=0.01)  # fmt: skip
    job = asyncio.create_task(engine.run([UploadItem(str(big), "big.bin")]))
    await started.wait()
    engine.stop()
    summary = await job
    [result] = recorder.results
    assert result.status is (Status.INTERRUPTED if begun else Status.NOT_STARTED)
    assert (summary.interrupted_objects, summary.not_started) == ((1, 0) if begun else (0, 1))
