"""listing_chunks (bulkput/job/listing/pages.py): one listing, each chunk under the retry policy."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bulkput.config import RetryPolicy
from bulkput.errors import BulkputError, ConnectError, EndpointUnreachable, ServiceError
from bulkput.job.listing.pages import listing_chunks
from bulkput.remote.retry import Retrier
from bulkput.remote.store import ObjectInfo

POLICY = RetryPolicy(max_attempts=3, base_delay=0.0, throttle_base_delay=0.0, connect_attempts=2)


class FlakyListing:
    """A store whose listing fails once at each position in ``fail_at`` (or always, ``every``)."""

    def __init__(self, keys: list[str], fail_at: set[int] | None = None,
                 every: type[BulkputError] | None = None) -> None:
        self.keys = keys
        self.fail_at = set(fail_at or ())
        self.every = every
        self.requests = 0

    async def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        self.requests += 1
        for position, key in enumerate(self.keys):
            if self.every is not None:
                raise self.every("connection refused", code="ClientConnectorError")
            if position in self.fail_at:
                self.fail_at.discard(position)
                raise ServiceError("try again", code="InternalError", status=500, retryable=True)
            yield ObjectInfo(key, 1)


async def collect(store: FlakyListing, chunk_size: int = 4) -> tuple[list[list[str]], list[BulkputError]]:
    retries: list[BulkputError] = []
    retrier = Retrier(POLICY, sleep=_no_sleep, on_retry=lambda key, error: retries.append(error))
    chunks = [[info.key for info in chunk]
              async for chunk in listing_chunks(store, "", retrier, chunk_size=chunk_size)]  # type: ignore[arg-type]
    return chunks, retries


async def _no_sleep(delay: float) -> None:
    return None


async def test_every_key_once_in_order_across_failures_and_restarts() -> None:
    keys = [f"k{i:02d}" for i in range(10)]
    store = FlakyListing(keys, fail_at={1, 6, 9})
    chunks, retries = await collect(store)
    assert [key for chunk in chunks for key in chunk] == keys
    assert all(len(chunk) <= 4 for chunk in chunks)
    assert len(retries) == 3 and store.requests == 4


async def test_the_retry_budget_is_per_chunk_not_per_listing() -> None:
    # 3 attempts per chunk; 4 failures in all, never more than 2 in one chunk: the listing completes
    keys = [f"k{i:02d}" for i in range(12)]
    store = FlakyListing(keys, fail_at={0, 2, 5, 9})
    chunks, retries = await collect(store)
    assert [key for chunk in chunks for key in chunk] == keys and len(retries) == 4


async def test_a_failure_past_the_budget_is_raised() -> None:
    class Always(FlakyListing):
        async def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
            self.requests += 1
            raise ServiceError("still broken", code="InternalError", status=500, retryable=True)
            yield ObjectInfo("never", 0)  # an async generator

    broken = Always([])
    with pytest.raises(ServiceError, match="still broken"):
        await collect(broken)
    assert broken.requests == POLICY.max_attempts


async def test_an_endpoint_never_reached_is_unreachable_after_the_connect_attempts() -> None:
    store = FlakyListing(["a"], every=ConnectError)
    with pytest.raises(EndpointUnreachable):
        await collect(store)
    assert store.requests == POLICY.connect_attempts
