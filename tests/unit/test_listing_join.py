"""The merge-joins (bulkput/job/listing/join.py): the general join_listing and sync's merge_join."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkput.errors import (
    DuplicateNameError,
    InvalidNameError,
    ListingOrderError,
    SkippedPath,
    UnreadableDirectoryError,
)
from bulkput.job.listing.join import Joined, join_listing, merge_join
from bulkput.local.walk import SkippedFolder, WalkEntry
from bulkput.remote.store import ObjectInfo

T = TypeVar("T")
S = 1_000_000_000


async def aiter_of(items: Iterable[T]) -> AsyncIterator[T]:
    for item in items:
        yield item


def entry(key: str, size: int = 1, mtime_ns: int = 100 * S) -> WalkEntry:
    return WalkEntry(key, f"/src/{key}", size, mtime_ns)


def obj(key: str, size: int = 1) -> ObjectInfo:
    return ObjectInfo(key, size, etag=None)


async def join(local: list, remote: list[ObjectInfo], prefix: str = "p/") -> list[tuple]:
    out = []
    async for pair in merge_join(aiter_of(local), aiter_of(remote), prefix):
        out.append((pair.key, getattr(pair.local, "key", None) if pair.local is not None else None,
                    pair.remote.key if pair.remote is not None else None))
    return out


# --- join_listing: any key-sorted stream against a listing ------------------------------------


async def joined(local: list[tuple[str, int]], remote: list[ObjectInfo]) -> list[Joined[tuple[str, int]]]:
    return [j async for j in join_listing(aiter_of(local), aiter_of(remote), key=lambda rec: rec[0])]


async def test_join_listing_pairs_records_with_objects_by_key() -> None:
    records = [("p/a", 1), ("p/b", 2), ("p/d", 4)]
    listing = [obj("p/b", 2), obj("p/c", 3), obj("p/d", 5)]
    out = await joined(records, listing)
    assert [(j.key, j.local, j.remote.size if j.remote else None) for j in out] == [
        ("p/a", ("p/a", 1), None),
        ("p/b", ("p/b", 2), 2),
        ("p/c", None, 3),
        ("p/d", ("p/d", 4), 5),
    ]


async def test_join_listing_refuses_unsorted_or_repeated_keys_on_either_side() -> None:
    with pytest.raises(ListingOrderError, match="local items out of key order"):
        await joined([("b", 1), ("a", 1)], [])
    with pytest.raises(ListingOrderError, match="local items out of key order"):
        await joined([("a", 1), ("a", 2)], [])
    with pytest.raises(ListingOrderError, match="listing out of key order"):
        await joined([], [obj("b"), obj("a")])


async def test_join_listing_reads_each_side_one_item_ahead_at_most() -> None:
    """Constant memory: the join never pulls more than one item beyond the pair it yields."""
    pulled = {"local": 0, "remote": 0}

    async def counted(name: str, items: Iterable[T]) -> AsyncIterator[T]:
        for item in items:
            pulled[name] += 1
            yield item

    n = 1000
    local = counted("local", ((f"k{i:05d}", i) for i in range(0, n, 2)))
    remote = counted("remote", (obj(f"k{i:05d}") for i in range(n)))
    seen = 0
    async for j in join_listing(local, remote, key=lambda rec: rec[0]):
        seen += 1
        position = int(j.key[1:])
        assert pulled["remote"] <= position + 2 and pulled["local"] <= position // 2 + 2
    assert seen == n


# --- merge_join: sync's walk against the listing ---------------------------------------------


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


async def test_a_folder_not_entered_guards_every_object_under_it() -> None:
    link = SkippedPath("skipped symbolic link", key="ln", path="/src/ln", reason="symlink")
    folder = SkippedFolder("ln/", "/src/ln", "symlink")
    local = [link, entry("ln-x"), folder, entry("z")]
    remote = [obj("p/ln"), obj("p/ln-x"), obj("p/ln/a"), obj("p/ln/b/c"), obj("p/ln0")]
    assert await join(local, remote) == [
        ("p/ln", "ln", "p/ln"),
        ("p/ln-x", "ln-x", "p/ln-x"),
        ("p/ln/a", "ln/", "p/ln/a"),
        ("p/ln/b/c", "ln/", "p/ln/b/c"),
        ("p/ln/", "ln/", None),
        ("p/ln0", None, "p/ln0"),
        ("p/z", "z", None),
    ]


async def test_a_name_equal_to_the_one_before_after_nfc_passes_by_unjoined() -> None:
    """The walk yields it with the key of the name before it: it must not stop the join."""
    duplicate = DuplicateNameError("equals another name after NFC", key="d/é", path="/src/d/e\u0301")
    pairs = [pair async for pair in merge_join(
        aiter_of([entry("d/é"), duplicate, entry("e")]), aiter_of([obj("p/d/é"), obj("p/f")]), "p/")]
    assert [(p.key, p.local is duplicate, p.remote is not None) for p in pairs] == [
        ("p/d/é", False, True), ("p/d/é", True, False), ("p/e", False, False), ("p/f", False, True)]
