"""Resume from the store: a job skips the objects the store already holds, journal or not.

A shard retried on another machine, or a Dask partition run again, has no journal to resume
from. Before its first upload it asks the store instead, once: its items (only the shard's) are
sorted by key on disk (:class:`KeySorter`: sorted runs of bounded size in temporary files, then
``heapq.merge``), and one listing of the slice of the destination they span (from just before
the smallest key, under the keys' common prefix, stopped past the largest) is merge-joined with
them (:func:`~bulkput.job.listing.join.join_listing`, both sides in UTF-8 byte order of keys).
Memory holds one run while sorting, then one page of each side.

For each item, :func:`decide` (the truth table below) says what the listing settles:

* not listed, or listed with another size: sent, without hashing for the comparison;
* listed with the same size (or a size not known before the file is opened): the stored MD5 is
  the ETag when the dialect says the job's objects have MD5 ETags, else the ``md5`` user
  metadata bulkput writes with multipart and encrypted objects, read by a HEAD; the item goes
  to the engine with a :class:`~bulkput.items.StoredCopy`, and the engine, which hashes every
  file it sends (off the event loop) for its Content-MD5, skips it when the MD5 is the same
  (summary reason ``in_store``) and otherwise sends it with that same MD5: nothing is hashed
  twice.

A store that refuses the listing stops the job (exit 3) with the way out,
``--no-resume-from-store``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import heapq
import itertools
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum
from operator import attrgetter
from typing import Any

from bulkput.config import RetryPolicy
from bulkput.errors import AuthError, BulkputError, UnexpectedError
from bulkput.items import StoredCopy, UploadItem
from bulkput.job.batches import next_batch
from bulkput.job.listing.formats import etag_md5, metadata_md5
from bulkput.job.listing.join import join_listing
from bulkput.job.listing.pages import listing_chunks
from bulkput.job.shard import Shard
from bulkput.job.summary import IN_STORE
from bulkput.remote.retry import Retrier
from bulkput.remote.store import ObjectInfo, ObjectStore

log = logging.getLogger("bulkput.store_resume")

RUN_SIZE = 50_000  # items sorted in memory before a run is written out (~20 MB)
PAGE = 1000  # items read back from the runs per executor call
HEAD_WINDOW = 32  # HEADs in flight at once (multipart and encrypted objects of the same size)

# --- the decision ------------------------------------------------------------------------------


class Action(str, Enum):
    UPLOAD = "upload"
    SKIP = "skip"
    HEAD = "head"  # read the object's md5 metadata, then decide again
    HASH = "hash"  # compute the file's MD5, then decide again


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


@dataclass(frozen=True, slots=True)
class ListedObject:
    """What the store says of one key: its size and MD5, and whether that MD5 is settled
    (False until a HEAD read the ``md5`` metadata of an object whose ETag is not its MD5)."""

    size: int
    md5_hex: str | None
    settled: bool

    @classmethod
    def from_listing(cls, info: ObjectInfo, etag_is_md5: bool) -> ListedObject:
        """A listed object: its ETag is its MD5 when the dialect says so for the job's
        objects and it looks like one (a multipart ETag, ``...-N``, does not)."""
        md5 = etag_md5(info.etag) if etag_is_md5 else None
        return cls(info.size, md5, settled=md5 is not None)

    @classmethod
    def from_head(cls, info: ObjectInfo) -> ListedObject:
        """A HEAD's answer: the ETag when the answer says it is the MD5, else the metadata."""
        md5 = etag_md5(info.etag) if info.etag_is_md5 else None
        return cls(info.size, md5 or metadata_md5(info.metadata), settled=True)


_MISSING = Decision(Action.UPLOAD, "missing")
_SIZE = Decision(Action.UPLOAD, "size")
_NO_CHECKSUM = Decision(Action.UPLOAD, "no-stored-checksum")
_CHECKSUM = Decision(Action.UPLOAD, "checksum")
_HEAD = Decision(Action.HEAD, "need-metadata")
_HASH = Decision(Action.HASH, "need-md5")
_IN_STORE = Decision(Action.SKIP, IN_STORE)


def decide(listed: ListedObject | None, local_size: int | None, local_md5: str | None) -> Decision:
    """Skip or send one item, given what the store holds under its key.

    ``local_size`` is None before the file is opened (a manifest line gives no size);
    ``local_md5`` (hex) None until the file is hashed.

    =======  ========================  ============================  ==========  ================
    listed?  sizes                     stored MD5                    local MD5   decision
    =======  ========================  ============================  ==========  ================
    no       -                         -                             -           upload missing
    yes      differ                    -                             -           upload size
    yes      equal, or local unknown   not settled (ETag not MD5)    -           HEAD
    yes      equal, or local unknown   none (no md5 metadata)        -           upload no-stored-checksum
    yes      equal, or local unknown   known                         unknown     HASH
    yes      equal                     known, equal to local         known       skip in_store
    yes      equal                     known, differs                known       upload checksum
    =======  ========================  ============================  ==========  ================
    """
    if listed is None:
        return _MISSING
    if local_size is not None and local_size != listed.size:
        return _SIZE
    if not listed.settled:
        return _HEAD
    if listed.md5_hex is None:
        return _NO_CHECKSUM
    if local_md5 is None or local_size is None:
        return _HASH
    return _IN_STORE if local_md5.lower() == listed.md5_hex else _CHECKSUM


def already_stored(item: UploadItem, size: int, md5_hex: str | None) -> bool:
    """The engine's question once it has opened (and hashed) a file: does the store hold
    exactly this? (:func:`decide` with the item's :class:`StoredCopy`)."""
    stored = item.stored
    if stored is None or md5_hex is None:
        return False
    listed = ListedObject(stored.size, stored.md5_hex, settled=True)
    return decide(listed, size, md5_hex).action is Action.SKIP


def head_confirms(info: ObjectInfo, size: int, md5_hex: str | None) -> bool:
    """A HEAD's answer holds exactly this file: the same size and MD5 (the ETag where the
    answer says it is the MD5, else the ``md5`` metadata), by :func:`decide`."""
    if md5_hex is None:
        return False
    return decide(ListedObject.from_head(info), size, md5_hex).action is Action.SKIP


def trusted_md5_hex(item: UploadItem) -> str | None:
    """The manifest's own MD5 of the item (base64 Content-MD5) as hex, when it gives one."""
    if item.md5 is None:
        return None
    try:
        return base64.b64decode(item.md5, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


# --- the external sort -------------------------------------------------------------------------


_KEY = attrgetter("key")


class KeySorter:
    """Upload items sorted by key with bounded memory: :meth:`add` keeps up to ``run_size``
    items, then writes them out sorted (a run, one temporary file in ``directory``);
    :meth:`merged` reads every run back through ``heapq.merge`` (stable: items of the same key
    keep their input order). Input that already comes in key order (a directory walk) is not
    sorted again: its runs are read back one after the other. ``close`` removes the files."""

    def __init__(self, run_size: int = RUN_SIZE, directory: str | None = None) -> None:
        self.run_size = max(1, run_size)
        self._directory = directory
        self._folder: str | None = None
        self._runs: list[str] = []
        self._buffer: list[UploadItem] = []
        self.count = 0
        self.smallest: str | None = None
        self.largest: str | None = None
        self.in_order = True  # every key so far >= the one before it
        self._previous: str | None = None

    @property
    def runs_written(self) -> int:
        return len(self._runs)

    def add(self, items: Iterable[UploadItem]) -> None:
        """Take ``items`` (blocking: writes runs; call it in a thread)."""
        for item in items:
            key = item.key
            if self._previous is not None and key < self._previous:
                self.in_order = False
            self._previous = key
            if self.smallest is None or key < self.smallest:
                self.smallest = key
            if self.largest is None or key > self.largest:
                self.largest = key
            self._buffer.append(item)
            self.count += 1
            if len(self._buffer) >= self.run_size:
                self._spill()

    def _spill(self) -> None:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="bulkput-sort-", dir=self._directory)
        path = os.path.join(self._folder, f"run-{len(self._runs):06d}")
        if not self.in_order:
            self._buffer.sort(key=_KEY)
        buffer = self._buffer
        with open(path, "wb") as out:
            # a pickle per chunk: each is read back with a fresh memo (one Unpickler reading
            # many pickles would keep every object it ever loaded)
            for start in range(0, len(buffer), PAGE):
                pickle.dump(buffer[start : start + PAGE], out, protocol=pickle.HIGHEST_PROTOCOL)
        self._runs.append(path)
        self._buffer = []

    def merged(self) -> Iterator[UploadItem]:
        """Every item added, in key order (blocking reads: pull it in a thread)."""
        if not self.in_order:
            self._buffer.sort(key=_KEY)
        sources: list[Iterator[UploadItem]] = [_read_run(path) for path in self._runs]
        sources.append(iter(self._buffer))
        if self.in_order:
            return itertools.chain.from_iterable(sources)
        return heapq.merge(*sources, key=_KEY)

    def close(self) -> None:
        self._buffer = []
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None


def _read_run(path: str) -> Iterator[UploadItem]:
    """A run's items, one chunk in memory at a time."""
    with open(path, "rb") as run:
        while True:
            try:
                chunk: list[UploadItem] = pickle.load(run)
            except EOFError:
                return
            yield from chunk


# --- the join ----------------------------------------------------------------------------------


def key_before(key: str) -> str:
    """A key just before ``key`` in listing order (its last character one code point lower),
    so that listing with start-after (exclusive) begins at ``key``."""
    last = ord(key[-1])
    if last == 0:
        return key[:-1]
    lower = 0xD7FF if last == 0xE000 else last - 1  # (no surrogates in a key)
    return key[:-1] + chr(lower)


@dataclass(slots=True)
class StoreCheck:
    """What the listing found for the job's items (before the engine hashed any)."""

    items: int = 0
    listed: int = 0  # items whose key the store lists
    to_compare: int = 0  # items sent to the engine with a StoredCopy (same size, MD5 known)
    heads: int = 0

    def line(self, prefix: str) -> str:
        """One line for people (``-v``)."""
        return (
            f"resume from the store (listing {prefix or '/'!r}): {self.listed:,} of"
            f" {self.items:,} objects listed, {self.to_compare:,} of the same size compared by"
            f" MD5 ({self.heads:,} HEADs)"
        )


async def skip_stored(
    items: Iterable[UploadItem | BulkputError] | AsyncIterable[UploadItem | BulkputError],
    store: ObjectStore,
    *,
    shard: Shard | None = None,
    etag_is_md5: bool = True,
    retry: RetryPolicy | None = None,
    run_size: int = RUN_SIZE,
    temp_dir: str | None = None,
    check: StoreCheck | None = None,
) -> AsyncIterator[UploadItem | BulkputError]:
    """The job's items for the engine, each one the store may already hold carrying a
    :class:`~bulkput.items.StoredCopy` (see the module doc). Keys of other shards are dropped
    here; error entries pass through at once. ``etag_is_md5``: the dialect says the job's
    objects have MD5 ETags (False for SSE-KMS or SSE-C jobs: their md5 metadata is read).

    Raises the listing's error when the store refuses it (an :class:`AuthError` names
    ``--no-resume-from-store``), and ListingOrderError when it does not list in key order.
    """
    check = check if check is not None else StoreCheck()
    retrier = Retrier(retry or RetryPolicy())
    loop = asyncio.get_running_loop()
    sorter = KeySorter(run_size, temp_dir)
    try:
        # 1. The shard's items, sorted on disk; errors go on at once.
        owned: list[UploadItem] = []
        async for entry in _entries(items):
            if isinstance(entry, UploadItem):
                if shard is None or shard.owns(entry.key):
                    owned.append(entry)
                    if len(owned) >= PAGE:
                        await loop.run_in_executor(None, sorter.add, owned)
                        owned = []
            else:
                yield entry
        if owned:
            await loop.run_in_executor(None, sorter.add, owned)
        if sorter.smallest is None or sorter.largest is None:
            return
        check.items = sorter.count
        log.info(
            "resume from the store: %s items sorted (%s runs on disk)",
            f"{sorter.count:,}", sorter.runs_written,
        )
        # 2. One listing of the slice the keys span, merge-joined with them.
        prefix = os.path.commonprefix([sorter.smallest, sorter.largest])  # noqa: RUF071 (keys)
        groups = _Groups(sorter)
        listing = _listing(store, prefix, key_before(sorter.smallest), retrier)
        joined_keys = join_listing(groups, listing, key=_group_key)
        heads: list[tuple[list[UploadItem], ObjectInfo]] = []
        try:
            async for joined in joined_keys:
                group = joined.local
                if group is None:
                    if groups.done:
                        break  # past the largest key: the rest of the listing is not ours
                    continue  # another shard's object, or one this job does not upload
                info = joined.remote
                if info is None:
                    for item in group:
                        yield item
                    continue
                check.listed += len(group)
                listed = ListedObject.from_listing(info, etag_is_md5)
                waiting: list[UploadItem] = []
                for item in group:
                    decision = decide(listed, item.size, trusted_md5_hex(item))
                    if decision.action is Action.HEAD:
                        waiting.append(item)
                    else:
                        yield _with_copy(item, listed, decision, check)
                if waiting:
                    heads.append((waiting, info))
                    if len(heads) >= HEAD_WINDOW:
                        async for item in _headed(heads, store, retrier, check):
                            yield item
                        heads = []
            async for item in _headed(heads, store, retrier, check):
                yield item
            log.info("%s", check.line(prefix))
        except AuthError as error:
            raise _refused(error, prefix) from None
        finally:
            await joined_keys.aclose()
    finally:
        sorter.close()


async def check_listing(store: ObjectStore, prefix: str, retry: RetryPolicy | None = None) -> None:
    """Ask for one listed object under ``prefix``, before any work: a store that refuses
    listings stops the job here with one line and the way out (``--no-resume-from-store``)
    rather than after the input was read."""
    retrier = Retrier(retry or RetryPolicy())

    async def first() -> None:
        listing = aiter(store.list_objects(prefix, 1))
        try:
            await anext(listing, None)
        finally:
            if isinstance(listing, AsyncGenerator):  # one object is enough: close the listing
                await listing.aclose()

    try:
        await retrier.call(prefix, first)
    except AuthError as error:
        raise _refused(error, prefix) from None
    except BulkputError:
        raise
    except Exception as error:  # a bug: the job stops (exit 3), named
        raise UnexpectedError.during(LISTING_STAGE, error) from error


LISTING_STAGE = "the listing for resume from the store"


def _refused(error: AuthError, prefix: str) -> AuthError:
    return error.reworded(
        f"listing {prefix or '/'!r} to skip what the store already holds was refused"
        f" ({error.code}): run with --no-resume-from-store to upload without listing"
    )


def _with_copy(
    item: UploadItem, listed: ListedObject, decision: Decision, check: StoreCheck
) -> UploadItem:
    """The item as the engine gets it: with a StoredCopy when only the file's MD5 can tell."""
    if decision.action is Action.UPLOAD or listed.md5_hex is None:
        return item
    check.to_compare += 1
    return replace(item, stored=StoredCopy(listed.size, listed.md5_hex))


async def _headed(
    heads: list[tuple[list[UploadItem], ObjectInfo]],
    store: ObjectStore,
    retrier: Retrier,
    check: StoreCheck,
) -> AsyncIterator[UploadItem]:
    """HEAD the objects whose ETag is not their MD5 (a window of them at once), then decide."""

    async def head(info: ObjectInfo) -> ObjectInfo | None:
        try:
            found, _attempts = await retrier.call(info.key, lambda: store.head_object(info.key))
        except BulkputError as error:
            if error.fatal_for_job:
                raise
            return None  # cannot tell: the item is sent
        return found

    # every HEAD of the window ends before a fatal one is raised (none left unawaited)
    answers = await asyncio.gather(*(head(info) for _group, info in heads), return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    check.heads += len(heads)
    for (group, _info), answer in zip(heads, answers, strict=True):
        assert not isinstance(answer, BaseException)
        listed = ListedObject.from_head(answer) if answer is not None else None
        for item in group:
            if listed is None:
                yield item
            else:
                yield _with_copy(item, listed, decide(listed, item.size, None), check)


def _group_key(group: list[UploadItem]) -> str:
    return group[0].key


class _Groups:
    """The sorted items, items of one key together, read from the runs a page at a time in a
    thread; ``done`` once the last group was handed out."""

    def __init__(self, sorter: KeySorter) -> None:
        self.sorter = sorter
        self.done = False

    async def __aiter__(self) -> AsyncIterator[list[UploadItem]]:
        merged = self.sorter.merged()
        group: list[UploadItem] = []
        while True:
            page = await next_batch(merged, PAGE)
            if not page:
                break
            for item in page:
                if group and item.key != group[0].key:
                    yield group
                    group = []
                group.append(item)
        if group:
            yield group
        # only now: a listed key before the last group's is not "past the largest"
        self.done = True


async def _listing(
    store: ObjectStore, prefix: str, start_after: str, retrier: Retrier
) -> AsyncIterator[ObjectInfo]:
    try:
        async for chunk in listing_chunks(store, prefix, retrier, start_after=start_after):
            for info in chunk:
                yield info
    except BulkputError:
        raise
    except Exception as error:  # named: the listing, not the input it is joined with
        raise UnexpectedError.during(LISTING_STAGE, error) from error


async def _entries(
    items: Iterable[UploadItem | BulkputError] | AsyncIterable[UploadItem | BulkputError],
) -> AsyncIterator[UploadItem | BulkputError]:
    """The input one entry at a time; a plain iterator (a manifest being read) is pulled a
    page at a time in a thread, so a slow input never blocks the loop."""
    if isinstance(items, AsyncIterable):
        async for entry in items:
            yield entry
        return
    iterator: Iterator[Any] = iter(items)
    while True:
        page = await next_batch(iterator, PAGE)
        if not page:
            return
        for entry in page:
            yield entry


