"""One event loop, and one open store per destination, for every partition a process runs.

::

    worker thread 1: run_partition ──┐                     ┌─ store (s3, endpoint E, key K1,
    worker thread 2: run_partition ──┼─▶ the loop thread ──┤   limits L): one connection pool,
    worker thread N: run_partition ──┘   "bulkput-worker-  │   one learned concurrency limit
                                          loop"            └─ store (..., key K2): another

A Dask worker runs many partition tasks, in one or more threads. Each used to make its own
event loop, open its own store (a new aiohttp session: new connections), start its concurrency
limit from the initial value again, and close it all at the end. Here the process keeps one
loop in a thread of its own and, on it, one open :class:`~bulkput.job.limited_store.LimitedStore`
per destination: every partition of a job (and of later jobs with the same settings) reuses its
connections and the limit the earlier ones learned.

**Stores are never shared across settings.** The key is the job's target (bucket, prefix),
its :class:`~bulkput.job.spec.StoreSettings` (endpoint, region, addressing, credentials with
their secret, profile, SSE-C key, requester-pays) and its
:class:`~bulkput.config.TransferConfig` (limits, timeouts, TLS), compared by value: two jobs
share a store only when all of those are equal. Settings that cannot be compared (a
credential source without value equality) give the job a store of its own, opened and closed
by the job as in a single process.

A store no partition has used for :data:`IDLE_CLOSE_SECONDS` is closed (a long-lived worker
that served many jobs keeps no connections to them). :func:`close_worker_runtime` closes every
store and stops the loop: at the process's exit (``atexit``) and, with
``dask worker --preload bulkput.cluster``, when the worker closes.

The loop in a thread of its own also pays on a Dask worker: the worker's statistical profiler
samples the stack of each thread running a task every 10 ms; a partition's loop in that
thread gave it deep asyncio stacks to walk (1,000-object partitions took 0.29-0.52 s with the
profiler on, 0.17-0.43 s with it off), a task thread that only waits here has a shallow one
(0.18-0.45 s with the profiler on; see docs/dev/design.md).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bulkput import runtime

if TYPE_CHECKING:
    from bulkput.job.limited_store import LimitedStore
    from bulkput.job.spec import JobSpec

T = TypeVar("T")

# A store no partition used for this long is closed.
IDLE_CLOSE_SECONDS = 60.0
# How long closing waits for the stores to close and the loop thread to end.
CLOSE_TIMEOUT_SECONDS = 10.0


def store_key(spec: JobSpec) -> Hashable | None:
    """What two jobs must share to share a store (see the module doc); None when the settings
    cannot be compared by value."""
    key = (spec.target, spec.store, spec.transfer)
    try:
        hash(key)
    except TypeError:
        return None
    return key


@dataclass
class _SharedStore:
    store: LimitedStore
    users: int = 0
    idle_timer: asyncio.TimerHandle | None = None


class WorkerRuntime:
    """The process's loop thread and its open stores; use :func:`worker_runtime`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # read and changed on the loop's thread only
        self._stores: dict[Hashable, _SharedStore] = {}
        self._running = 0
        self._gc_thresholds: tuple[int, ...] | None = None

    @property
    def open_stores(self) -> int:
        """How many stores are open now."""
        return len(self._stores)

    def start(self) -> asyncio.AbstractEventLoop:
        """The loop, started in its thread on first use."""
        with self._lock:
            if self._loop is None:
                loop = runtime.new_event_loop()
                loop.set_exception_handler(runtime.quiet_connection_failures)
                ready = threading.Event()
                thread = threading.Thread(target=_run_loop, args=(loop, ready),
                                          name="bulkput-worker-loop", daemon=True)  # fmt: skip
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def run(self, spec: JobSpec, job: Callable[[LimitedStore | None], Awaitable[T]]) -> T:
        """``job(store)`` on the loop, with the open store for ``spec`` (opened here on first
        use; None when ``spec``'s settings cannot share one); blocks this thread until it ends.
        What opening the store raises (a bad endpoint, no credentials) is raised here."""
        loop = self.start()
        return asyncio.run_coroutine_threadsafe(self._with_store(spec, job), loop).result()

    async def _with_store(
        self, spec: JobSpec, job: Callable[[LimitedStore | None], Awaitable[T]]
    ) -> T:
        key = store_key(spec)
        shared: _SharedStore | None = None
        if key is not None:
            shared = self._stores.get(key)
            if shared is None:
                from bulkput.job.run import open_job_store

                shared = self._stores[key] = _SharedStore(open_job_store(spec))
            shared.users += 1
            if shared.idle_timer is not None:
                shared.idle_timer.cancel()
                shared.idle_timer = None
        self._job_started()
        try:
            return await job(shared.store if shared is not None else None)
        finally:
            self._job_ended()
            if shared is not None:
                shared.users -= 1
                if shared.users == 0:
                    shared.idle_timer = asyncio.get_running_loop().call_later(
                        IDLE_CLOSE_SECONDS, self._close_idle, key, shared
                    )

    def _job_started(self) -> None:
        # As run_async does for one job: young collections less often while jobs run.
        self._running += 1
        if self._running == 1:
            self._gc_thresholds = gc.get_threshold()
            first, *rest = self._gc_thresholds
            gc.set_threshold(max(first, runtime.GC_YOUNG_THRESHOLD), *rest)

    def _job_ended(self) -> None:
        self._running -= 1
        if self._running == 0 and self._gc_thresholds is not None:
            gc.set_threshold(*self._gc_thresholds)
            self._gc_thresholds = None

    def _close_idle(self, key: Hashable, shared: _SharedStore) -> None:
        if shared.users == 0 and self._stores.get(key) is shared:
            del self._stores[key]
            asyncio.get_running_loop().create_task(shared.store.close())

    async def _close_all(self) -> None:
        current = asyncio.current_task()
        running = [task for task in asyncio.all_tasks() if task is not current]
        for task in running:  # partitions still running (the process is going away)
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        stores, self._stores = list(self._stores.values()), {}
        for shared in stores:
            if shared.idle_timer is not None:
                shared.idle_timer.cancel()
            with contextlib.suppress(Exception):  # closing anyway
                await shared.store.close()

    def close(self) -> None:
        """Close every store and stop the loop (partitions still running are cancelled); the
        next :meth:`run` starts a new loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._close_all(), loop).result(
                CLOSE_TIMEOUT_SECONDS
            )
        with contextlib.suppress(RuntimeError):  # closed meanwhile
            loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_TIMEOUT_SECONDS)


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


_runtime = WorkerRuntime()


def worker_runtime() -> WorkerRuntime:
    """This process's runtime."""
    return _runtime


def close_worker_runtime() -> None:
    """Close this process's stores and stop its loop (at exit, or when the Dask worker closes)."""
    _runtime.close()


def _forget_in_child() -> None:
    # A forked child has the parent's loop object but not its thread: start afresh.
    global _runtime
    _runtime = WorkerRuntime()


atexit.register(close_worker_runtime)
if sys.platform != "win32":  # (Windows does not fork)
    os.register_at_fork(after_in_child=_forget_in_child)
