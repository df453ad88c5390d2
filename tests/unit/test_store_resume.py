"""Resume from the store (bulkput/job/store_resume.py): the truth table of ``decide`` (one test
per row), what a listing and a HEAD say of the stored MD5, the external sort (with a tiny run
size, so it spills), and the slice of the destination that ``skip_stored`` lists."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bulkput.config import RetryPolicy
from bulkput.errors import AuthError, BulkputError, ManifestError
from bulkput.items import StoredCopy, UploadItem
from bulkput.job.shard import Shard
from bulkput.job.store_resume import (
    Action,
    KeySorter,
    ListedObject,
    already_stored,
    check_listing,
    decide,
    key_before,
    skip_stored,
)
from bulkput.remote.store import ObjectInfo

MD5 = "0123456789abcdef0123456789abcdef"
OTHER = "f" * 32
KNOWN = ListedObject(10, MD5, settled=True)

# --- decide: one test per row of the module's table -------------------------------------------


def test_not_listed_is_uploaded_as_missing() -> None:
    assert decide(None, 10, None).action is Action.UPLOAD
    assert decide(None, 10, None).reason == "missing"


def test_listed_with_another_size_is_uploaded_without_hashing() -> None:
    decision = decide(KNOWN, 11, None)
    assert (decision.action, decision.reason) == (Action.UPLOAD, "size")


def test_listed_with_an_etag_that_is_not_an_md5_asks_for_a_head() -> None:
    unsettled = ListedObject(10, None, settled=False)
    assert decide(unsettled, 10, None).action is Action.HEAD
    assert decide(unsettled, None, None).action is Action.HEAD  # size not known yet


def test_no_stored_md5_after_the_head_is_uploaded() -> None:
    decision = decide(ListedObject(10, None, settled=True), 10, None)
    assert (decision.action, decision.reason) == (Action.UPLOAD, "no-stored-checksum")


def test_a_known_stored_md5_asks_for_the_files_md5() -> None:
    assert decide(KNOWN, 10, None).action is Action.HASH
    assert decide(KNOWN, None, MD5).action is Action.HASH  # the size must be known too


def test_the_same_size_and_md5_is_skipped_as_in_store() -> None:
    decision = decide(KNOWN, 10, MD5.upper())
    assert (decision.action, decision.reason) == (Action.SKIP, "in_store")


def test_the_same_size_and_another_md5_is_uploaded() -> None:
    decision = decide(KNOWN, 10, OTHER)
    assert (decision.action, decision.reason) == (Action.UPLOAD, "checksum")


# --- what the store says the MD5 is -----------------------------------------------------------


def test_a_listed_single_put_etag_is_its_md5_when_the_dialect_says_so() -> None:
    info = ObjectInfo("k", 10, MD5)
    assert ListedObject.from_listing(info, etag_is_md5=True) == KNOWN
    # an SSE-KMS or SSE-C job: the ETag is not the MD5, a HEAD reads the md5 metadata
    assert not ListedObject.from_listing(info, etag_is_md5=False).settled
    # a multipart ETag is never an MD5
    assert not ListedObject.from_listing(ObjectInfo("k", 10, "abc-3"), etag_is_md5=True).settled


def test_a_head_gives_the_md5_metadata_of_multipart_and_encrypted_objects() -> None:
    multipart = ObjectInfo("k", 10, "abc-3", metadata={"md5": MD5})
    assert ListedObject.from_head(multipart) == KNOWN
    encrypted = ObjectInfo("k", 10, OTHER, metadata={"md5": MD5}, etag_is_md5=False)
    assert ListedObject.from_head(encrypted) == KNOWN
    assert ListedObject.from_head(ObjectInfo("k", 10, "abc-3")) == ListedObject(10, None, True)


def test_already_stored_needs_the_copy_the_size_and_the_md5() -> None:
    item = UploadItem(path="p", key="k", stored=StoredCopy(10, MD5))
    assert already_stored(item, 10, MD5)
    assert not already_stored(item, 11, MD5)
    assert not already_stored(item, 10, OTHER)
    assert not already_stored(UploadItem(path="p", key="k"), 10, MD5)


# --- the external sort ------------------------------------------------------------------------


def items_named(keys: list[str]) -> list[UploadItem]:
    return [UploadItem(path=f"/src/{n}", key=key) for n, key in enumerate(keys)]


def test_the_sort_spills_sorted_runs_and_merges_them_in_key_order(tmp_path: Path) -> None:
    keys = [f"k/{n:04d}" for n in range(200)] + ["k/0007", "k/0150"]  # two keys twice
    random.Random(3).shuffle(keys)
    sorter = KeySorter(run_size=16, directory=str(tmp_path))
    sorter.add(items_named(keys))
    assert sorter.runs_written == len(keys) // 16  # never more than 16 items in memory
    assert not sorter.in_order
    assert len(list(tmp_path.glob("bulkput-sort-*/run-*"))) == sorter.runs_written
    merged = list(sorter.merged())
    assert [item.key for item in merged] == sorted(keys)
    # items of the same key keep their input order (the runs merge stably)
    twice = [item.path for item in merged if item.key == "k/0007"]
    assert twice == sorted(twice, key=lambda path: int(path.rsplit("/", 1)[1]))
    assert (sorter.smallest, sorter.largest, sorter.count) == ("k/0000", "k/0199", 202)
    sorter.close()
    assert list(tmp_path.iterdir()) == []


def test_keys_already_in_order_are_read_back_without_sorting(tmp_path: Path) -> None:
    keys = sorted(["a/é", "a/z", "a/Z", "a/ü", "b", "a/b/c"])
    sorter = KeySorter(run_size=2, directory=str(tmp_path))
    sorter.add(items_named(keys))
    assert sorter.in_order and sorter.runs_written == 3
    assert [item.key for item in sorter.merged()] == keys
    # str order is UTF-8 byte order for valid keys: what listings use
    assert keys == sorted(keys, key=lambda key: key.encode())
    sorter.close()


def test_key_before_lists_from_the_key_itself() -> None:
    for key in ("job/a", "job/0", "x", "job/\ue000", "a\x00"):
        before = key_before(key)
        assert before < key
        assert before.encode() < key.encode()
    assert key_before("job/b") == "job/a"


# --- skip_stored against a listing ------------------------------------------------------------


class Store:
    """Lists ``objects`` after ``start_after``; records each listing's prefix and start and how
    many objects it handed out; HEADs answer the md5 metadata given."""

    def __init__(self, objects: list[ObjectInfo], refuse: Exception | None = None) -> None:
        self.objects = sorted(objects, key=lambda info: info.key)
        self.refuse = refuse
        self.listings: list[tuple[str, str | None]] = []
        self.yielded = 0
        self.heads: list[str] = []

    async def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        self.listings.append((prefix, start_after))
        if self.refuse is not None:
            raise self.refuse
        for info in self.objects:
            if info.key.startswith(prefix) and (start_after is None or info.key > start_after):
                self.yielded += 1
                yield info

    async def head_object(self, key: str) -> ObjectInfo | None:
        self.heads.append(key)
        return next((info for info in self.objects if info.key == key), None)


async def collect(store: Store, entries: list[UploadItem | BulkputError], **options: object) -> list[
    UploadItem | BulkputError
]:
    out: list[UploadItem | BulkputError] = []
    async for entry in skip_stored(entries, store, run_size=4, **options):  # type: ignore[arg-type]
        out.append(entry)
    return out


async def test_only_the_slice_is_listed_and_each_item_gets_what_the_store_holds() -> None:
    objects = [
        ObjectInfo("job/a/before", 5, MD5),  # before the smallest key: not listed
        ObjectInfo("job/b/1", 10, MD5),  # same size: compared by MD5 in the engine
        ObjectInfo("job/b/2", 99, MD5),  # another size: sent, no copy
        ObjectInfo("job/b/3", 10, "abc-2", metadata={"md5": MD5}),  # multipart: HEAD
        *(ObjectInfo(f"job/c/{n}", 1, MD5) for n in range(50)),  # past the largest key
    ]
    store = Store(objects)
    bad = ManifestError("line 3: no path", line=3)
    entries: list[UploadItem | BulkputError] = [
        UploadItem(path="/s/4", key="job/b/4"),  # not in the store
        bad,
        UploadItem(path="/s/3", key="job/b/3", size=10),
        UploadItem(path="/s/1", key="job/b/1"),
        UploadItem(path="/s/2", key="job/b/2", size=10),
    ]
    out = await collect(store, entries)
    assert out[0] is bad  # errors go on at once
    by_key = {entry.key: entry for entry in out if isinstance(entry, UploadItem)}
    assert sorted(by_key) == ["job/b/1", "job/b/2", "job/b/3", "job/b/4"]
    assert by_key["job/b/1"].stored == StoredCopy(10, MD5)
    assert by_key["job/b/2"].stored is None and by_key["job/b/4"].stored is None
    assert by_key["job/b/3"].stored == StoredCopy(10, MD5)
    assert store.heads == ["job/b/3"]
    (prefix, start_after), = store.listings
    assert prefix == "job/b/" and start_after is not None and start_after < "job/b/1"
    assert store.yielded < 10  # stopped soon after the largest key, not at the end


async def test_only_the_shards_items_are_kept() -> None:
    keys = [f"job/{n}" for n in range(40)]
    shard = Shard(1, 3)
    out = await collect(Store([]), list(items_named(keys)), shard=shard)
    assert sorted(entry.key for entry in out if isinstance(entry, UploadItem)) == sorted(
        key for key in keys if shard.owns(key)
    )


async def test_a_refused_listing_names_the_way_out() -> None:
    refused = AuthError("Access Denied", code="AccessDenied", status=403)
    with pytest.raises(AuthError, match="--no-resume-from-store"):
        await collect(Store([], refuse=refused), list(items_named(["job/a"])))
    with pytest.raises(AuthError, match="--no-resume-from-store"):
        await check_listing(Store([], refuse=refused), "job/", RetryPolicy(max_attempts=1))  # type: ignore[arg-type]


def test_reading_the_runs_back_holds_a_chunk_per_run_not_every_item(tmp_path: Path) -> None:
    import tracemalloc

    keys = [f"k/{n:06d}" for n in range(60_000)]
    random.Random(5).shuffle(keys)
    sorter = KeySorter(run_size=10_000, directory=str(tmp_path))  # 6 runs
    sorter.add(items_named(keys))
    tracemalloc.start()
    try:
        everything = list(sorter.merged())  # what holding every item costs
        _, holding_all = tracemalloc.get_traced_memory()
        del everything
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        for _item in sorter.merged():
            pass
        _, streaming = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sorter.close()
    # Reading many pickles through one Unpickler kept every item it loaded (its memo).
    assert streaming - start < holding_all / 4
