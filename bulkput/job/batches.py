"""Reading a blocking iterator (a walk, a manifest, sorted runs on disk) a batch at a time.

A batch is read in a worker thread, so a disk wait never blocks the event loop; one hop to the
thread per batch, not per item, keeps the hand-over cheap.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import Executor
from itertools import islice
from typing import TypeVar

T = TypeVar("T")


def take(iterator: Iterator[T], count: int) -> list[T]:
    """The next ``count`` items (fewer at the end, none once it is exhausted)."""
    return list(islice(iterator, count))


async def next_batch(iterator: Iterator[T], count: int, executor: Executor | None = None) -> list[T]:
    """:func:`take`, run in ``executor`` (the loop's default one when None)."""
    return await asyncio.get_running_loop().run_in_executor(executor, take, iterator, count)
