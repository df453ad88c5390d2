from __future__ import annotations

import asyncio
import hashlib
import io
import os
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkput.config import RetryPolicy, TransferConfig
from bulkput.errors import AuthError, BulkputError, LocalInputError, ServiceError
from bulkput.items import ObjectResult, Status
from bulkput.job.shard import Shard
from bulkput.job.sync import (
    Checksum,
    ListingOrderError,
    Pair,
    PlanAction,
    PlanRules,
    Reason,
    SizeAndMtime,
    SizeOnly,
    SyncOptions,
    SyncRun,
    decide_entry,
    format_mtime,
    merge_join,
    plan_pair,
)
from bulkput.local.filters import Filter
from bulkput.local.walk import (
    InvalidNameError,
    SkippedPath,
    SymlinkLoopError,
    UnreadableDirectoryError,
    WalkEntry,
)
from bulkput.remote.store import (
    Body,
    DeleteFailure,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    PutResult,
)

T = TypeVar("T")
S = 1_000_000_000


async def aiter_of(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def entry(key: str, size: int = 1, mtime_ns: int = 100 * S, excluded: str | None = None) -> WalkEntry:
    return WalkEntry(key, f"/src/{key}", size, mtime_ns, excluded=excluded)


def obj(key: str, size: int = 1, last_modified: str | None = None) -> ObjectInfo:
    return ObjectInfo(key, size, etag=None, last_modified=last_modified)


async def join(local: list, remote: list[ObjectInfo], prefix: str = "p/") -> list[tuple]:
    out = []
    async for pair in merge_join(aiter_of(local), aiter_of(remote), prefix):
        out.append((pair.key, getattr(pair.local, "key", None) if pair.local is not None else None,
                    pair.remote.key if pair.remote is not None else None))
    return out


async def test_merge_join_pairs_equal_keys_and_keeps_order() -> None:
    local = [entry("a-b"), entry("a.txt"), entry("a/b"), entry("é")]
    remote = [obj("p/a.txt"), obj("p/a/"), obj("p/a/a"), obj("p/a/b"), obj("p/z")]
    assert await join(local, remote) == [
        ("p/a-b", "a-b", None),
        ("p/a.txt", "a.txt", "p/a.txt"),
        ("p/a/a", None, "p/a/a"),  # the folder marker "p/a/" is passed over
        ("p/a/b", "a/b", "p/a/b"),
        ("p/z", None, "p/z"),
        ("p/é", "é", None),
    ]


async def test_merge_join_with_empty_sides() -> None:
    assert await join([], []) == []
    assert await join([entry("x")], []) == [("p/x", "x", None)]
    assert await join([], [obj("p/x")]) == [("p/x", None, "p/x")]


async def test_unreadable_directory_guards_every_object_under_it() -> None:
    guard = UnreadableDirectoryError("cannot read", key="d/", path="/src/d")
    local = [entry("c"), guard, entry("d0")]
    remote = [obj("p/c"), obj("p/d/1"), obj("p/d/2/3"), obj("p/d0"), obj("p/d1")]
    assert await join(local, remote) == [
        ("p/c", "c", "p/c"),
        ("p/d/1", "d/", "p/d/1"),
        ("p/d/2/3", "d/", "p/d/2/3"),
        ("p/d/", "d/", None),
        ("p/d0", "d0", "p/d0"),
        ("p/d1", None, "p/d1"),
    ]


async def test_unreadable_root_guards_everything() -> None:
    guard = UnreadableDirectoryError("cannot read", key="", path="/src")
    pairs = await join([guard], [obj("p/a"), obj("p/b/c")])
    assert [(p[0], p[1]) for p in pairs] == [("p/a", ""), ("p/b/c", ""), ("p/", "")]


async def test_keyless_errors_are_passed_through() -> None:
    bad = InvalidNameError("not UTF-8", path="/src/x\\xff")
    pairs = [pair async for pair in merge_join(aiter_of([entry("a"), bad, entry("b")]), aiter_of([]), "")]
    assert [p.key for p in pairs] == ["a", None, "b"]
    assert pairs[1].local is bad


async def test_out_of_order_listing_stops_the_join() -> None:
    with pytest.raises(ListingOrderError, match="out of key order"):
        await join([], [obj("p/b"), obj("p/a")])
    with pytest.raises(ListingOrderError):
        await join([entry("b"), entry("a")], [])


@settings(max_examples=100, deadline=None)
@given(
    local_keys=st.sets(st.text(alphabet="ab/.-é😀", min_size=1, max_size=5)),
    remote_keys=st.sets(st.text(alphabet="ab/.-é😀", min_size=1, max_size=5)),
)
async def test_merge_join_sees_every_key_once(local_keys: set[str], remote_keys: set[str]) -> None:
    remote_keys = {k for k in remote_keys if not k.endswith("/")}
    local = [entry(k) for k in sorted(local_keys, key=lambda k: k.encode())]
    remote = [obj("p/" + k) for k in sorted(remote_keys, key=lambda k: k.encode())]
    pairs = await join(local, remote)
    assert [p[0] for p in pairs] == sorted((f"p/{k}" for k in local_keys | remote_keys), key=lambda k: k.encode())
    for key, local_key, remote_key in pairs:
        assert (local_key is not None) == (key[2:] in local_keys)
        assert (remote_key is not None) == (key[2:] in remote_keys)


# --- plan_pair --------------------------------------------------------------------------------

RULES = PlanRules(strategy=SizeAndMtime(), prefix="p/")
DELETE_RULES = PlanRules(strategy=SizeAndMtime(), prefix="p/", delete=True)


def test_plan_new_local_file_uploads() -> None:
    planned = plan_pair(Pair("p/a", entry("a"), None), RULES)
    assert (planned.action, planned.reason) == (PlanAction.UPLOAD, Reason.NEW)


def test_plan_remote_only_deletes_only_with_delete() -> None:
    pair = Pair("p/gone", None, obj("p/gone"))
    assert plan_pair(pair, RULES).action is PlanAction.IGNORE
    planned = plan_pair(pair, DELETE_RULES)
    assert (planned.action, planned.reason) == (PlanAction.DELETE, Reason.NO_LOCAL)


def test_plan_excluded_remote_is_never_deleted() -> None:
    rules = PlanRules(SizeOnly(), "p/", delete=True, filter=Filter.from_patterns([("exclude", "*.log")]))
    assert plan_pair(Pair("p/x.log", None, obj("p/x.log")), rules).action is PlanAction.IGNORE
    assert plan_pair(Pair("p/x.txt", None, obj("p/x.txt")), rules).action is PlanAction.DELETE
    # a local file excluded (reported by the walk) keeps its object too
    excluded = entry("big", excluded="excluded: larger than --max-size 1")
    assert plan_pair(Pair("p/big", excluded, obj("p/big")), rules).action is PlanAction.IGNORE


def test_plan_shard_owns_only_its_keys() -> None:
    shard_keys = {k: [Shard(i, 3).owns(k) for i in range(3)] for k in (f"p/k{i}" for i in range(30))}
    for key, owners in shard_keys.items():
        assert sum(owners) == 1
        for index in range(3):
            rules = PlanRules(SizeOnly(), "p/", delete=True, shard=Shard(index, 3))
            uploaded = plan_pair(Pair(key, entry(key[2:]), None), rules).action
            deleted = plan_pair(Pair(key, None, obj(key)), rules).action
            expected_upload = PlanAction.UPLOAD if owners[index] else PlanAction.IGNORE
            expected_delete = PlanAction.DELETE if owners[index] else PlanAction.IGNORE
            assert (uploaded, deleted) == (expected_upload, expected_delete)


def test_plan_skipped_symlink_is_a_warning_and_protects_its_object() -> None:
    link = SkippedPath("skipped symbolic link", key="ln", path="/src/ln", reason="symlink")
    planned = plan_pair(Pair("p/ln", link, obj("p/ln")), DELETE_RULES)
    assert (planned.action, planned.reason, planned.warning) == (PlanAction.SKIP, "symlink", True)


def test_plan_walk_errors_fail_and_guard() -> None:
    loop = SymlinkLoopError("loop", key="d/loop/", path="/src/d/loop")
    assert plan_pair(Pair("p/d/loop/x", loop, obj("p/d/loop/x")), DELETE_RULES).action is PlanAction.IGNORE
    failed = plan_pair(Pair("p/d/loop/", loop, None), DELETE_RULES)
    assert failed.action is PlanAction.FAIL and failed.error is loop
    bad: BulkputError = LocalInputError("cannot stat", key="f", path="/src/f")
    assert plan_pair(Pair("p/f", bad, obj("p/f")), DELETE_RULES).action is PlanAction.FAIL


def test_plan_existing_object_goes_to_the_strategy_and_resolves_with_head() -> None:
    local = entry("a", size=5, mtime_ns=100 * S)
    same_size_old_upload = obj("p/a", size=5, last_modified="1970-01-01T00:00:50Z")
    planned = plan_pair(Pair("p/a", local, same_size_old_upload), RULES)
    assert (planned.action, planned.reason) == (PlanAction.RESOLVE, Reason.NEED_HEAD)
    head = ObjectInfo("p/a", 5, last_modified="Thu, 01 Jan 1970 00:00:50 GMT",
                      metadata={"mtime": format_mtime(100 * S)})
    resolved = decide_entry(planned, RULES.strategy, headed=head)
    assert (resolved.action, resolved.reason) == (PlanAction.SKIP, Reason.UNCHANGED)

    grown = plan_pair(Pair("p/a", entry("a", size=6), same_size_old_upload), RULES)
    assert (grown.action, grown.reason) == (PlanAction.UPLOAD, Reason.SIZE)
    later = obj("p/a", size=5, last_modified="1970-01-01T00:03:00Z")
    assert plan_pair(Pair("p/a", local, later), RULES).action is PlanAction.SKIP


# --- SyncRun against an in-memory store -------------------------------------------------------




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

    async def list_objects(self, prefix: str, page_size: int = 1000):  # type: ignore[no-untyped-def]
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


class Results:
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


async def run_sync(store: MemoryStore, root: Path, prefix: str = "dst", **options) -> tuple:  # type: ignore[no-untyped-def]
    results = Results()
    plan = io.StringIO()
    run = SyncRun(store, root, prefix, SyncOptions(**options), config=FAST, subscribers=[results],
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
    assert store.puts == ["dst/diff"] and store.heads == []
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
    run = SyncRun(store, tmp_path, "dst", SyncOptions(delete=True), config=FAST)
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
