"""SyncRun (bulkput/job/sync/run.py) against an in-memory store."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bulkput.config import RetryPolicy, TransferConfig
from bulkput.errors import AuthError, ConnectError, ServiceError
from bulkput.items import ObjectResult, Status
from bulkput.job.engine import Engine
from bulkput.job.run import build_engine
from bulkput.job.subscriber import Subscriber
from bulkput.job.sync.run import SyncOptions, SyncRun
from bulkput.job.sync.strategies import Checksum
from bulkput.remote.store import (
    Body,
    DeleteFailure,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    ObjectStore,
    PutResult,
)


class MemoryStore:
    """An ObjectStore double: objects in a dict, listed in key order, requests counted."""

    bucket = "bucket"
    dialect_name = "s3"

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, dict[str, str], str]] = {}
        self.puts: list[str] = []
        self.heads: list[str] = []
        self.delete_requests: list[list[str]] = []
        self.now = datetime(2030, 1, 1, tzinfo=timezone.utc)  # uploads happen "later" than files
        self.list_failures = 0

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        pass  # every key and header is valid here

    async def put_object(self, key: str, body: Body, *, content_md5: str | None,
                         headers: ObjectHeaders) -> PutResult:
        if isinstance(body, FileRange):
            with open(body.path, "rb") as handle:
                handle.seek(body.offset)
                data = handle.read(body.length)
        else:
            data = bytes(body)
        self.puts.append(key)
        self.objects[key] = (data, dict(headers.metadata), self.now.isoformat().replace("+00:00", "Z"))
        return PutResult(etag=hashlib.md5(data).hexdigest())

    async def head_object(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        if key not in self.objects:
            return None
        data, meta, modified = self.objects[key]
        return ObjectInfo(key, len(data), hashlib.md5(data).hexdigest(), modified, dict(meta))

    async def list_objects(self, prefix: str, page_size: int = 1000, *, start_after=None):  # type: ignore[no-untyped-def]
        for number, key in enumerate(sorted(k for k in self.objects if k.startswith(prefix))):
            if self.list_failures and number == 1:
                self.list_failures -= 1
                raise ServiceError("try again", code="InternalError", status=500, retryable=True)
            data, _meta, modified = self.objects[key]
            yield ObjectInfo(key, len(data), hashlib.md5(data).hexdigest(), modified)

    async def delete_objects(self, keys: Sequence[str]) -> list[DeleteFailure]:
        assert len(keys) <= 1000
        self.delete_requests.append(list(keys))
        for key in keys:
            self.objects.pop(key, None)
        return []

    async def close(self) -> None:
        pass


class Results(Subscriber):
    def __init__(self) -> None:
        self.results: list[ObjectResult] = []
        self.done = None

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)

    def on_done(self, summary) -> None:  # type: ignore[no-untyped-def]
        self.done = summary

    def by_status(self, status: Status) -> list[str]:
        return sorted(r.key for r in self.results if r.status is status)


FAST = TransferConfig(concurrency=4, max_open_files=4,
                      retry=RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0))


def sync_run(store: ObjectStore, root: Path, prefix: str, options: SyncOptions, *,
             config: TransferConfig, **extra: Any) -> SyncRun:
    """A SyncRun whose uploads go through build_engine on the run's own (limited) store, as
    Job.sync's go through Job.engine on the job's."""
    made: list[SyncRun] = []

    def engine(subscribers: Sequence[Subscriber]) -> Engine:
        return build_engine(made[0].store, config, subscribers=subscribers)

    made.append(SyncRun(store, root, prefix, options, config=config, engine_factory=engine, **extra))
    return made[0]


async def run_sync(store: MemoryStore, root: Path, prefix: str = "dst", **options) -> tuple:  # type: ignore[no-untyped-def]
    results = Results()
    plan = io.StringIO()
    run = sync_run(store, root, prefix, SyncOptions(**options), config=FAST, subscribers=[results],
                   plan_out=plan if options.get("dry_run") else None)
    summary = await run.run()
    assert results.done is summary
    return summary, results, plan.getvalue()


def write(root: Path, key: str, data: bytes, mtime_s: int = 1_700_000_000) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime_s, mtime_s))


async def test_sync_uploads_then_skips_then_picks_up_changes(tmp_path: Path) -> None:
    store = MemoryStore()
    write(tmp_path, "a.txt", b"alpha")
    write(tmp_path, "dir/b.bin", b"beta")
    write(tmp_path, "dir/c", b"gamma")
    summary, results, _ = await run_sync(store, tmp_path)
    assert summary.exit_code == 0 and summary.stored == 3
    assert store.objects["dst/dir/b.bin"][0] == b"beta"
    assert store.objects["dst/a.txt"][1] == {"mtime": "1700000000.000000000"}

    store.puts.clear()
    summary, _, _ = await run_sync(store, tmp_path)
    assert (summary.stored, summary.skipped, store.puts) == (0, 3, [])
    assert summary.skip_reasons == {"unchanged": 3}
    assert store.heads == []  # LastModified after the mtimes: no HEAD needed

    write(tmp_path, "a.txt", b"ALPHA", mtime_s=1_900_000_000)  # same size, touched after upload
    write(tmp_path, "dir/b.bin", b"beta, grown")
    (tmp_path / "dir" / "c").unlink()
    summary, results, _ = await run_sync(store, tmp_path, delete=True)
    assert sorted(store.puts) == ["dst/a.txt", "dst/dir/b.bin"]
    assert store.heads == ["dst/a.txt"]
    assert results.by_status(Status.DELETED) == ["dst/dir/c"]
    assert (summary.stored, summary.deleted, summary.skipped, summary.exit_code) == (2, 1, 0, 0)
    assert store.objects["dst/a.txt"][0] == b"ALPHA"


async def test_dry_run_prints_the_plan_and_changes_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    store.objects["dst/old"] = (b"x", {}, "2030-01-01T00:00:00Z")
    store.objects["dst/same"] = (b"same", {}, "2030-01-01T00:00:00Z")
    write(tmp_path, "new", b"n")
    write(tmp_path, "same", b"same")
    summary, results, plan = await run_sync(store, tmp_path, delete=True, dry_run=True)
    assert plan.splitlines() == [
        "upload  dst/new  (new)",
        "delete  dst/old  (no-local-file)",
        "skip    dst/same  (unchanged)",
    ]
    assert (summary.planned, summary.skipped, summary.exit_code) == (2, 1, 0)
    assert store.puts == [] and store.delete_requests == [] and "dst/old" in store.objects
    assert {r.reason for r in results.results if r.status is Status.PLANNED} == {
        "upload: new", "delete: no-local-file"}


async def test_max_delete_refuses_before_changing_anything(tmp_path: Path) -> None:
    store = MemoryStore()
    for i in range(5):
        store.objects[f"dst/gone{i}"] = (b"x", {}, "2030-01-01T00:00:00Z")
    write(tmp_path, "new", b"n")
    summary, _, _ = await run_sync(store, tmp_path, delete=True, max_delete=4)
    assert summary.exit_code == 3 and "--max-delete 4" in (summary.aborted or "")
    assert store.puts == [] and store.delete_requests == [] and len(store.objects) == 5
    summary, _, _ = await run_sync(store, tmp_path, delete=True, max_delete=5)
    assert (summary.exit_code, summary.deleted, summary.stored) == (0, 5, 1)
    assert sorted(store.objects) == ["dst/new"]


async def test_deletes_go_in_batches_of_at_most_1000(tmp_path: Path) -> None:
    store = MemoryStore()
    for i in range(2500):
        store.objects[f"dst/k{i:05d}"] = (b"", {}, "2030-01-01T00:00:00Z")
    summary, _, _ = await run_sync(store, tmp_path, delete=True)
    assert summary.deleted == 2500 and store.objects == {}
    assert [len(batch) for batch in store.delete_requests] == [1000, 1000, 500]


async def test_checksum_strategy_hashes_and_skips_equal_content(tmp_path: Path) -> None:
    store = MemoryStore()
    write(tmp_path, "same", b"content", mtime_s=1_999_999_999)
    write(tmp_path, "diff", b"CONTENT", mtime_s=1_999_999_999)
    store.objects["dst/same"] = (b"content", {}, "2000-01-01T00:00:00Z")
    store.objects["dst/diff"] = (b"content", {}, "2000-01-01T00:00:00Z")
    summary, _, _ = await run_sync(store, tmp_path, strategy=Checksum())
    # the differing MD5-like ETag is checked with one HEAD (an encrypted object's ETag is not
    # its MD5); the equal one needs none
    assert store.puts == ["dst/diff"] and store.heads == ["dst/diff"]
    assert summary.skip_reasons == {"same-checksum": 1}
    assert store.objects["dst/diff"][0] == b"CONTENT"


async def test_listing_page_failure_is_retried_from_the_last_key(tmp_path: Path) -> None:
    store = MemoryStore()
    for key in ("a", "b", "c"):
        write(tmp_path, key, key.encode())
        store.objects[f"dst/{key}"] = (key.encode(), {}, "2030-01-01T00:00:00Z")
    store.list_failures = 1
    summary, _, _ = await run_sync(store, tmp_path, delete=True)
    assert (summary.skipped, summary.stored, summary.deleted, summary.retries) == (3, 0, 0, 1)


async def test_walk_problems_are_reported_and_protect_remote_objects(tmp_path: Path) -> None:
    store = MemoryStore()
    write(tmp_path, "real", b"r")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    fd = os.open(os.fsencode(tmp_path) + b"/bad\xff", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    store.objects["dst/link"] = (b"old", {}, "2030-01-01T00:00:00Z")
    summary, results, _ = await run_sync(store, tmp_path, delete=True)
    assert "dst/link" in store.objects  # a skipped symlink is not "no local file"
    assert summary.skip_reasons == {"symlink": 1}
    assert summary.failure_codes == {"InvalidNameError": 1}
    assert summary.exit_code == 1
    failed = [r for r in results.results if r.status is Status.FAILED]
    assert "not valid UTF-8" in (failed[0].message or "")


async def test_interrupt_stops_cleanly_deletes_nothing_exit_130(tmp_path: Path) -> None:
    store = MemoryStore()
    store.objects["dst/orphan"] = (b"o", {}, "2030-01-01T00:00:00Z")
    for i in range(20):
        write(tmp_path, f"f{i:02d}", b"x")
    release = asyncio.Event()
    real_put = store.put_object
    holder: list[SyncRun] = []

    async def slow_put(key, body, *, content_md5, headers):  # type: ignore[no-untyped-def]
        if not release.is_set():
            holder[0].stop()  # SIGINT arrives while the first PUT is in flight
            release.set()
        return await real_put(key, body, content_md5=content_md5, headers=headers)

    store.put_object = slow_put  # type: ignore[method-assign]
    run = sync_run(store, tmp_path, "dst", SyncOptions(delete=True), config=FAST)
    holder.append(run)
    summary = await run.run()
    assert summary.exit_code == 130 and summary.interrupted
    assert "dst/orphan" in store.objects and store.delete_requests == []
    assert len(store.puts) < 20


async def test_fatal_error_on_head_aborts_with_exit_3_and_no_deletes(tmp_path: Path) -> None:
    store = MemoryStore()
    write(tmp_path, "same", b"s", mtime_s=1_999_999_999)  # after LastModified: needs a HEAD
    store.objects["dst/same"] = (b"s", {}, "2030-01-01T00:00:00Z")
    store.objects["dst/orphan"] = (b"o", {}, "2030-01-01T00:00:00Z")

    async def denied_head(key: str) -> ObjectInfo | None:
        raise AuthError("Access Denied", code="AccessDenied", status=403, key=key)

    store.head_object = denied_head  # type: ignore[method-assign]
    summary, _, _ = await run_sync(store, tmp_path, delete=True)
    assert summary.exit_code == 3 and "AccessDenied" in (summary.aborted or "")
    assert store.delete_requests == [] and store.puts == []


async def test_a_store_unreachable_while_listing_aborts_after_the_connect_attempts(tmp_path: Path) -> None:
    """The listing goes through the job's one retry loop: a connection never made is tried
    ``connect_attempts`` times, then the job aborts as unreachable (exit 3), deleting nothing."""
    store = MemoryStore()
    store.objects["dst/orphan"] = (b"o", {}, "2030-01-01T00:00:00Z")
    listings: list[str] = []

    async def unreachable(prefix: str, page_size: int = 1000, *, start_after=None):  # type: ignore[no-untyped-def]
        listings.append(prefix)
        raise ConnectError("connection refused", code="ClientConnectorError")
        yield  # an async generator

    store.list_objects = unreachable  # type: ignore[method-assign]
    policy = TransferConfig(concurrency=4, max_open_files=4, retry=RetryPolicy(
        max_attempts=6, base_delay=0.0, throttle_base_delay=0.0, connect_attempts=2))
    summary = await sync_run(store, tmp_path, "dst", SyncOptions(delete=True), config=policy).run()
    assert summary.exit_code == 3 and "unreachable" in (summary.aborted or "")
    assert listings == ["dst/", "dst/"]
    assert "dst/orphan" in store.objects and store.delete_requests == []


async def test_heads_listing_and_deletes_share_the_job_limit_with_uploads(tmp_path: Path) -> None:
    """Every request of a sync (HEAD, PUT, LIST, DELETE) goes through the job's LimitedStore:
    never more in flight than --concurrency, whatever the mix."""
    store = MemoryStore()
    for i in range(40):
        # in key order: a HEAD each (touched after the upload), uploads, deletes; interleaved
        write(tmp_path, f"k{i:02d}-a", b"s", mtime_s=1_999_999_999)
        store.objects[f"dst/k{i:02d}-a"] = (b"s", {}, "2000-01-01T00:00:00Z")
        write(tmp_path, f"k{i:02d}-b", b"n")
        store.objects[f"dst/k{i:02d}-c"] = (b"g", {}, "2000-01-01T00:00:00Z")
    in_flight = peak = 0

    def counted(request):  # type: ignore[no-untyped-def]
        async def call(*args, **kwargs):  # type: ignore[no-untyped-def]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.002)  # long enough for the other tasks to start theirs
                return await request(*args, **kwargs)
            finally:
                in_flight -= 1
        return call

    store.head_object = counted(store.head_object)  # type: ignore[method-assign]
    store.put_object = counted(store.put_object)  # type: ignore[method-assign]
    store.delete_objects = counted(store.delete_objects)  # type: ignore[method-assign]
    config = TransferConfig(concurrency=2, max_open_files=4,
                            retry=RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0))
    summary = await sync_run(store, tmp_path, "dst", SyncOptions(delete=True), config=config).run()
    assert (summary.exit_code, summary.stored, summary.deleted) == (0, 80, 40)
    assert len(store.heads) == 40
    assert peak <= 2


async def test_an_upload_that_aborts_the_job_deletes_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    write(tmp_path, "new", b"n")
    store.objects["dst/orphan"] = (b"o", {}, "2030-01-01T00:00:00Z")

    async def denied_put(key, body, *, content_md5, headers):  # type: ignore[no-untyped-def]
        raise AuthError("Access Denied", code="AccessDenied", status=403, key=key)

    store.put_object = denied_put  # type: ignore[method-assign]
    summary, _, _ = await run_sync(store, tmp_path, delete=True)
    assert summary.exit_code == 3 and "AccessDenied" in (summary.aborted or "")
    assert store.delete_requests == [] and "dst/orphan" in store.objects
