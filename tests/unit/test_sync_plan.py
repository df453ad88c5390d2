from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkput.errors import BulkputError, LocalInputError
from bulkput.filters import Filter
from bulkput.shard import Shard
from bulkput.store import ObjectInfo
from bulkput.sync import (
    ListingOrderError,
    Pair,
    PlanAction,
    PlanRules,
    Reason,
    SizeAndMtime,
    SizeOnly,
    decide_entry,
    format_mtime,
    merge_join,
    plan_pair,
)
from bulkput.walk import (
    InvalidNameError,
    SkippedPath,
    SymlinkLoopError,
    UnreadableDirectoryError,
    WalkEntry,
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


@settings(max_examples=150, deadline=None)
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
