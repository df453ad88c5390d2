"""Batches of a blocking iterator: read off the event loop's thread, in order, then empty."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from bulkput.job.batches import next_batch, take


def test_take_gives_at_most_count_then_the_rest_then_nothing() -> None:
    iterator = iter(range(5))
    assert take(iterator, 3) == [0, 1, 2]
    assert take(iterator, 3) == [3, 4]
    assert take(iterator, 3) == []


def test_next_batch_reads_in_the_given_worker_thread_not_the_loops() -> None:
    readers: list[str] = []

    def items() -> Iterator[int]:
        for number in range(4):
            readers.append(threading.current_thread().name)
            yield number

    async def read_all(pool: ThreadPoolExecutor) -> list[list[int]]:
        iterator = items()
        batches = []
        while batch := await next_batch(iterator, 3, pool):
            batches.append(batch)
        return batches

    with ThreadPoolExecutor(1, thread_name_prefix="walk-reader") as pool:
        assert asyncio.run(read_all(pool)) == [[0, 1, 2], [3]]
    assert readers and all(name.startswith("walk-reader") for name in readers)
