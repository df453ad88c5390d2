"""One listing of a prefix, read in chunks, each chunk under the job's retry policy.

A listing is a stream of pages; a page request that fails transiently (a 500, a reset
connection, throttling) must not end the job, nor make it start over. :func:`listing_chunks`
reads the store's listing ``chunk_size`` objects at a time, each chunk through the job's
:class:`~bulkput.remote.retry.Retrier` (one retry budget per chunk, so a long listing
with a rare failure is never out of attempts). After a failure the listing is asked again and
the objects up to the last key already handed out are passed over: no object is yielded twice
and none is lost, and memory holds one chunk.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from bulkput.errors import BulkputError
from bulkput.remote.retry import Retrier
from bulkput.remote.store import ObjectInfo, ObjectStore

_END: Any = object()


class _Cursor:
    """Where the listing stands: the open listing (None after a failure) and the last key read."""

    def __init__(
        self, store: ObjectStore, prefix: str, chunk_size: int, start_after: str | None
    ) -> None:
        self.store = store
        self.prefix = prefix
        self.chunk_size = chunk_size
        self.listing: AsyncIterator[ObjectInfo] | None = None
        self.last: str | None = start_after
        self.pending: list[ObjectInfo] = []  # read before a failure, handed out with the next chunk
        self.done = False

    async def next_chunk(self) -> list[ObjectInfo]:
        if self.listing is None:
            # asked again after a failure: from the last key handed out
            self.listing = aiter(self.store.list_objects(self.prefix, start_after=self.last))
        chunk, self.pending = self.pending, []
        try:
            while len(chunk) < self.chunk_size:
                info = await anext(self.listing, _END)
                if info is _END:
                    self.done = True
                    break
                if self.last is not None and info.key <= self.last:
                    continue  # seen before the listing was asked again
                self.last = info.key
                chunk.append(info)
        except BulkputError:
            self.pending = chunk
            self.listing = None  # a failed listing is finished: the retry asks for a new one
            raise
        return chunk


async def listing_chunks(
    store: ObjectStore,
    prefix: str,
    retrier: Retrier,
    *,
    chunk_size: int = 1000,
    start_after: str | None = None,
) -> AsyncIterator[list[ObjectInfo]]:
    """The objects under ``prefix`` (after ``start_after``, when given) in the store's (key)
    order, in lists of at most ``chunk_size``, each read through ``retrier`` (its ``on_retry``
    is told with ``prefix``).
    A failure a retry cannot mend (not retryable, out of budget, the endpoint unreachable) is
    raised from the iteration."""
    cursor = _Cursor(store, prefix, chunk_size, start_after)
    while not cursor.done:
        chunk, _attempts = await retrier.call(prefix, cursor.next_chunk)
        if chunk:
            yield chunk
