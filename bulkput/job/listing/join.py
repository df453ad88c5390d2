"""Merge-joins by key: a key-sorted local stream against a key-sorted object listing.

S3, OSS and BOS list objects in ascending order of their keys' UTF-8 bytes. For valid Unicode
(no lone surrogates) that is the order Python compares ``str`` in, so the join compares keys as
strings. Both sides are read one item at a time and only the current item of each is held:
memory stays constant whatever the size of the tree, the journal or the listing.

* :func:`join_listing`: the general join of any key-sorted stream with a listing, for every
  caller that must compare "what we have" with "what the store has" (sync; a resumed job's
  journal checked against one listing of the destination; a shard skipping stored objects).
* :func:`merge_join`: sync's join of the directory walk with the listing, which adds what a walk
  needs: errors for a whole directory cover every object under it, errors with no key pass
  through, folder markers are passed over.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bulkput.errors import (
    BulkputError,
    DuplicateNameError,
    ListingOrderError,
    UnreadableDirectoryError,
)
from bulkput.local.walk import SkippedFolder, WalkEntry, WalkItem
from bulkput.remote.store import ObjectInfo

L = TypeVar("L")
_END: Any = object()  # what anext() returns when a side is exhausted


@dataclass(frozen=True, slots=True)
class Joined(Generic[L]):
    """One key of a :func:`join_listing`: the local item, the listed object, or both."""

    key: str
    local: L | None
    remote: ObjectInfo | None


async def join_listing(
    local: AsyncIterable[L],
    listing: AsyncIterable[ObjectInfo],
    *,
    key: Callable[[L], str],
) -> AsyncGenerator[Joined[L], None]:
    """Pair the items of ``local`` with the objects of ``listing`` that have the same key.

    ``key(item)`` is a local item's full object key, as ``ObjectInfo.key`` spells it (add the
    destination prefix there if the items hold relative keys). Both sides must come in
    ascending key order with no key twice. Yields one :class:`Joined` per distinct key seen on
    either side, in ascending key order: ``local`` and ``remote`` both set when the key is on
    both sides, else only the side that has it. Holds one item of each side at a time.

    Raises :class:`ListingOrderError` as soon as either side repeats a key or goes backwards:
    pairs joined from unsorted input would be wrong (an object would look absent), so the
    caller must stop rather than act on them. Exceptions from either side propagate as they are.
    """
    # Written out flat, without helper coroutines: this loop runs once per key of a tree of
    # millions of files.
    local_items = aiter(local)
    listed = aiter(listing)
    item: Any = await anext(local_items, _END)
    here: str | None = None if item is _END else key(item)
    info: Any = await anext(listed, _END)
    there: str | None = None if info is _END else info.key
    while True:
        if here is not None and (there is None or here < there):
            yield Joined(here, item, None)
            take_local = True
            take_remote = False
        elif there is not None and (here is None or there < here):
            yield Joined(there, None, info)
            take_local = False
            take_remote = True
        elif here is None:
            return
        else:
            yield Joined(here, item, info)
            take_local = take_remote = True
        if take_local:
            assert here is not None
            previous = here
            item = await anext(local_items, _END)
            if item is _END:
                here = None
            else:
                here = key(item)
                if here <= previous:
                    raise ListingOrderError(f"local items out of key order: {here!r} after {previous!r}",
                                            found=here, after=previous)
        if take_remote:
            assert there is not None
            previous = there
            info = await anext(listed, _END)
            if info is _END:
                there = None
            else:
                there = info.key
                if there <= previous:
                    raise ListingOrderError(
                        f"listing out of key order: {there!r} after {previous!r}; "
                        "this store does not list in UTF-8 byte order, so it cannot be compared safely",
                        found=there, after=previous)


# --- sync's join: the walk against the listing -------------------------------------------------


@dataclass(slots=True)
class Pair:
    """One key seen on either side. ``local`` is a WalkEntry, a folder the walk did not enter,
    or the error the walk reported for that key (or for a whole directory holding it);
    ``remote`` the listed object."""

    key: str | None  # full object key; None for a local error with no key (undecodable name)
    local: WalkItem | None
    remote: ObjectInfo | None


def guard_prefix(item: WalkItem) -> str | None:
    """The key prefix (relative) a walk item covers: a folder not entered, or an error for a
    whole directory; None for a one-key item."""
    if isinstance(item, SkippedFolder):
        return item.key
    if not isinstance(item, BulkputError):
        return None
    key = item.key
    if key is None:
        return None
    if isinstance(item, UnreadableDirectoryError) or key == "" or key.endswith("/"):
        return key
    return None


async def merge_join(
    local: AsyncIterable[WalkItem], remote: AsyncIterable[ObjectInfo], prefix: str
) -> AsyncGenerator[Pair, None]:
    """Pair the walk's items (relative keys) with listed objects (full keys, all under
    ``prefix``) by key, both sides in UTF-8 byte order; built on :func:`join_listing`.

    A folder the walk did not enter, or an error for a whole directory (a key ending with
    ``/``), is paired with every object under it, so nothing there is mistaken for "no local
    file"; its own pair follows them. Local errors with no key, and names that equal the one
    before them after NFC (:class:`~bulkput.errors.DuplicateNameError`, whose key the first
    name has), are passed through in walk order, unjoined. Objects whose key ends with ``/``
    (folder markers) are passed over. Out-of-order input raises ListingOrderError.
    """
    aside: list[Pair] = []

    async def keyed() -> AsyncIterator[WalkItem]:
        async for item in local:
            if item.key is None:
                aside.append(Pair(None, item, None))  # yielded in place by the loop below
            elif isinstance(item, DuplicateNameError):
                aside.append(Pair(prefix + item.key, item, None))
            else:
                yield item

    guard: tuple[str, WalkItem] | None = None  # the folder whose objects come now
    async for joined in join_listing(keyed(), remote, key=lambda item: prefix + (item.key or "")):
        item, info = joined.local, joined.remote
        if info is not None and info.key.endswith("/"):  # a folder marker, not a file
            if item is None:
                continue
            info = None
        if guard is not None:
            if item is None and joined.key.startswith(guard[0]):
                yield Pair(joined.key, guard[1], info)
                continue
            yield Pair(guard[0], guard[1], None)
            guard = None
        while aside:
            yield aside.pop(0)
        if item is not None and not isinstance(item, WalkEntry):
            covered = guard_prefix(item)
            if covered is not None:
                guard = (prefix + covered, item)
                if info is not None:  # an object whose key is the directory's prefix
                    yield Pair(joined.key, item, info)
                continue
        yield Pair(joined.key, item, info)
    if guard is not None:
        yield Pair(guard[0], guard[1], None)
    while aside:
        yield aside.pop(0)
