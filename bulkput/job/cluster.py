"""One job's items as many small partition tasks on a Dask cluster; Dask schedules and retries.

::

    client: PutSource.items() ──▶ partitions of ~N items ──submit (at most 2 per worker thread
       ▲    (walk or manifest read  (the items themselves,   outstanding, keys
       │     once, here, lazily;     in key order, shipped    bulkput-partition-RUN-K)
       │     sorted on disk when     with the task)
       │     out of key order)
       │                                                             │
       └── as_completed: merge each returned summary ◀── run_partition(spec, partition):
           in memory, print progress, submit the next         run_job of its items, on the
                                                              worker process's one loop and
                                                              open store (worker_runtime)

**A partition is its lines, shipped with the task**, not a byte range of the manifest: keys
are made once, on the client, by the one reader (a manifest's absolute paths are keys relative
to the folder common to the whole manifest, a CSV's header names the columns of every row, a
directory walk has no manifest at all), so a worker needs no access to the manifest and never
reads any of it; a partition of 2,000 items is ~150 KB pickled. Partitions are cut from the
items in key order (:func:`in_key_order`), so that each one's listing of the store covers
its own slice of the destination. The client reads the input
lazily and keeps at most ``2 x worker threads`` partitions outstanding: its memory is the
same for a thousand objects or ten million.

**Nothing is shared but the store.** A task keeps no journal (no state folder, no lock a
killed run could leave behind) and resumes from the store instead (``resume_from_store``):
a partition run again, after its worker died or by a rerun of the whole job, skips the objects
the store already holds, so only the objects in flight at the failure are sent twice. A task
returns a :class:`PartitionOutcome` (its summary's counts, the first
:data:`FAILURES_PER_PARTITION` failed objects with their reasons); the client merges them, and the report is written by the client.

**Exit codes.** Objects that failed are in the returned summary (exit 1). A task that could
not run at all (its source folder unreadable on the worker, the store unreachable, no
credentials there: every cause that aborts a job) raises :class:`~bulkput.errors.PartitionError`
naming the cause, the worker's host and working directory, so Dask's ``retries`` apply; a
partition that failed every try makes the job exit 3, and the client submits no new partition
after it (those would meet the same cause). A worker that dies is Dask's to handle: the
scheduler runs its partitions again elsewhere.

Credentials travel in the spec's :class:`~bulkput.job.spec.StoreSettings` (masked ``repr``),
or stay out of it (``credentials=None``): each worker then uses its own chain.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import stat
import threading
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from bulkput.errors import BulkputError, PartitionError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.spec import JobSpec, JournalSettings, PutSource
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary

if TYPE_CHECKING:
    from distributed import Client, Future
    from distributed import Event as DaskEvent

    from bulkput.job.limited_store import LimitedStore

# A task returns at most this many failed objects (the counts cover them all).
FAILURES_PER_PARTITION = 100
# The client keeps at most this many failed objects for its report and terminal.
FAILURES_KEPT = 1000
# Partitions outstanding (submitted, not yet merged) per worker thread of the cluster.
OUTSTANDING_PER_THREAD = 2
KEY_PREFIX = "bulkput-partition"


# --- how many items a partition holds --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionSize:
    """Items per partition: a few partitions per worker thread, so a slow worker does not hold
    the end back, and many partitions on a big job (a million items are 500), so a partition
    run again is a small part of it and the dashboard shows the job moving; but never small
    partitions: each task costs the cluster ~25 ms of CPU whatever its size (the same 2,000
    objects took 0.55 s of cluster CPU as 2 partitions, 0.9 s as 16, 1.5 s as 40), as much
    as ~100 small objects, so a small job is a few large partitions, not many tiny ones.

    ============  ==============  ==========  =============================================
    given         items known     threads     items per partition
    ============  ==============  ==========  =============================================
    N             any             any         N
    None          None (a walk,   any         ``unknown`` (1,000)
                  stdin)
    None          n               t           ``ceil(n / (per_thread * t))``, at least
                                              ``smallest`` (1,000), at most ``largest``
                                              (2,000)
    ============  ==============  ==========  =============================================
    """

    per_thread: int = 4
    smallest: int = 1000
    largest: int = 2000
    unknown: int = 1000

    def items(self, given: int | None, total: int | None, threads: int) -> int:
        if given is not None:
            return given
        if total is None:
            return self.unknown
        wanted = math.ceil(total / (self.per_thread * max(1, threads)))
        return max(self.smallest, min(self.largest, wanted))


# --- partitions, made on the client ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partition:
    """One task's share of the job: its items (absolute paths, full keys) and the folders of
    those items that the client could see (a worker that cannot see one cannot run it)."""

    index: int
    items: tuple[UploadItem, ...]
    folders: tuple[str, ...]


class _ClientFolders:
    """Whether the client sees a folder, asked once per folder (a bounded cache)."""

    def __init__(self, limit: int = 4096) -> None:
        self._seen: dict[str, bool] = {}
        self._limit = limit

    def visible(self, folder: str) -> bool:
        known = self._seen.get(folder)
        if known is None:
            if len(self._seen) >= self._limit:
                self._seen.clear()
            known = self._seen[folder] = os.path.isdir(folder)
        return known


def in_key_order(
    entries: Iterable[UploadItem | BulkputError], on_error: Callable[[BulkputError], None]
) -> Generator[UploadItem, None, None]:
    """The items of ``entries`` in key order, streamed as long as they come in key order (a
    walk, a sorted manifest); from the first key out of order on, the rest is sorted on disk
    (:class:`~bulkput.job.store_resume.KeySorter`, bounded memory) and then streamed.

    Why: each partition lists the slice of the destination its keys span before it uploads
    (resume from the store). Partitions cut from keys in order span disjoint slices, so the
    listings add up to the destination once; cut from a manifest in random order, every
    partition would span nearly all of it, and a rerun would list it once per partition.
    Errors that came instead of an item go to ``on_error``."""
    entries = iter(entries)
    previous: str | None = None
    for entry in entries:
        if isinstance(entry, BulkputError):
            on_error(entry)
            continue
        if previous is not None and entry.key < previous:
            yield from _sorted_rest(entry, entries, on_error)
            return
        previous = entry.key
        yield entry


def _sorted_rest(
    first: UploadItem,
    rest: Iterator[UploadItem | BulkputError],
    on_error: Callable[[BulkputError], None],
) -> Iterator[UploadItem]:
    from bulkput.job.store_resume import KeySorter

    def items() -> Iterator[UploadItem]:
        yield first
        for entry in rest:
            if isinstance(entry, BulkputError):
                on_error(entry)
            else:
                yield entry

    sorter = KeySorter()
    try:
        sorter.add(items())
        yield from sorter.merged()
    finally:
        sorter.close()


def make_partitions(
    items: Iterable[UploadItem], size: int
) -> Generator[Partition, None, None]:
    """Cut ``items`` into partitions of ``size`` items, lazily. Paths become absolute here
    (the client's working directory is not the workers')."""
    folders = _ClientFolders()
    batch: list[UploadItem] = []
    batch_folders: set[str] = set()
    index = 0
    for entry in items:
        path = os.path.abspath(entry.path)
        if path != entry.path:
            entry = replace(entry, path=path)
        folder = os.path.dirname(path)
        if folders.visible(folder):
            batch_folders.add(folder)
        batch.append(entry)
        if len(batch) >= size:
            yield Partition(index, tuple(batch), tuple(sorted(batch_folders)))
            index += 1
            batch, batch_folders = [], set()
    if batch:
        yield Partition(index, tuple(batch), tuple(sorted(batch_folders)))


# --- the task, on a worker -------------------------------------------------------------------


class _Failures(Subscriber):
    """Keeps a partition's first failed objects for the client."""

    def __init__(self, limit: int) -> None:
        self.kept: list[ObjectResult] = []
        self._limit = limit

    def on_result(self, result: ObjectResult) -> None:
        if result.status is Status.FAILED and len(self.kept) < self._limit:
            self.kept.append(result)


@dataclass(frozen=True, slots=True)
class PartitionOutcome:
    """What a partition task returns to the client: the worker's host, the job's summary and
    its first failed objects (the summary's counts cover them all)."""

    partition: int
    host: str
    summary: JobSummary
    failures: tuple[ObjectResult, ...]


def _unreadable_folder(folders: Iterable[str]) -> str | None:
    """The first folder this process cannot list, with why; None when it can read them all."""
    for folder in folders:
        try:
            mode = os.stat(folder).st_mode
        except OSError as exc:
            return f"cannot read source folder {folder}: {exc.strerror or exc}"
        if not stat.S_ISDIR(mode):
            return f"cannot read source folder {folder}: not a folder here"
        if not os.access(folder, os.R_OK | os.X_OK):
            return f"cannot read source folder {folder}: permission denied"
    return None


def run_partition(
    spec: JobSpec, partition: Partition, stop_event: str | None = None
) -> PartitionOutcome:
    """The Dask task: ``run_job`` of the partition's items (resuming from the store: one
    listing of the slice its keys span), on the process's loop and with its open store for the
    job's settings (:mod:`bulkput.job.worker_runtime`: the partitions a worker runs reuse one
    connection pool and concurrency limit). When the Dask event named ``stop_event`` is set
    (the client was interrupted), the job stops as Ctrl-C stops one: no new object, the
    requests in flight finish.

    Returns its :class:`PartitionOutcome`; raises :class:`PartitionError` (the cause, this
    host and working directory) when the partition could not run, so that Dask's ``retries``
    apply."""
    from bulkput.job.worker_runtime import worker_runtime

    host, cwd = socket.gethostname(), os.getcwd()
    unreadable = _unreadable_folder(partition.folders)
    if unreadable is not None:
        raise PartitionError(
            f"partition {partition.index}: {unreadable}; every worker must see the source at "
            "the path the client gave",
            host=host,
            cwd=cwd,
        )
    failures = _Failures(FAILURES_PER_PARTITION)
    items = list(partition.items)
    watched = _dask_event(stop_event) if stop_event is not None else None
    try:
        summary = worker_runtime().run(
            spec, lambda store: _run_until_stopped(spec, items, failures, watched, store)
        )
    except BulkputError as error:  # before the first upload: credentials, endpoint...
        raise PartitionError(f"partition {partition.index}: {error.one_line()}", host=host,
                             cwd=cwd) from None  # fmt: skip
    if summary.aborted is not None or summary.interrupted:
        cause = summary.aborted or "interrupted on the worker"
        raise PartitionError(f"partition {partition.index}: {cause}", host=host, cwd=cwd)
    return PartitionOutcome(partition.index, host, summary, tuple(failures.kept))


def _dask_event(name: str) -> DaskEvent | None:
    """The Dask event ``name``, through this worker's client (made in the task's thread, where
    Dask knows the worker); None outside a worker."""
    try:
        from distributed import Event, get_client

        return Event(name, client=get_client())  # (Event alone finds its client lazily)
    except (ImportError, ValueError):
        return None


async def _run_until_stopped(
    spec: JobSpec,
    items: list[UploadItem],
    failures: _Failures,
    stop_event: DaskEvent | None,
    store: LimitedStore | None,
) -> JobSummary:
    import asyncio

    from bulkput.job.run import JobControl, run_job

    control = JobControl()
    finished = threading.Event()
    if stop_event is not None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            if not finished.is_set():
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(control.stop)

        threading.Thread(target=_wait_for_stop, args=(stop_event, stop, finished), daemon=True,
                         name=f"{stop_event.name}-watch").start()  # fmt: skip
    try:
        return await run_job(spec, items, [failures], control=control, store=store)
    finally:
        finished.set()


def _wait_for_stop(event: DaskEvent, stop: Callable[[], None], finished: threading.Event) -> None:
    """Call ``stop`` when ``event`` is set; return soon after ``finished``."""
    try:
        while not finished.is_set():
            if event.wait(timeout=1.0):  # the scheduler answers at once when it is set
                stop()
                return
    except Exception:  # the scheduler went away: nothing to stop for
        return


def task_spec(spec: JobSpec) -> JobSpec:
    """What each task runs: the job's spec resuming from the store (a partition run again, on
    any worker, skips what the store holds), without a journal (nothing shared, no lock left
    by a killed run), without a shard (the partition is the task's share), and ``remote``
    (a file it cannot read is reported with the worker's host and working directory)."""
    return replace(spec, journal=JournalSettings(), shard=None, resume_from_store=True,
                   remote=True)  # fmt: skip


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionFailure:
    """A partition that could not run after its retries: why (one line, from the worker)."""

    index: int
    cause: str


@dataclass(frozen=True, slots=True)
class ClusterProgress:
    """Where the job is, after each partition the client merged."""

    partitions_done: int
    partitions_submitted: int
    partitions_failed: int
    total_objects: int | None  # when the input's size is known (a manifest file's lines)
    summary: JobSummary  # merged so far (do not change it)
    host: str | None  # the worker that ran the last partition


@dataclass
class ClusterResult:
    """The merged outcome. ``summary.exit_code`` is the job's: 3 when a partition could not run
    (``summary.aborted`` says how many; :attr:`failed_partitions` why, one each), 1 when
    objects failed (the first :data:`FAILURES_KEPT` in :attr:`failures`), 130 interrupted."""

    summary: JobSummary
    failures: list[ObjectResult] = field(default_factory=list)
    failed_partitions: list[PartitionFailure] = field(default_factory=list)
    partitions: int = 0  # submitted
    # the client stopped submitting before the input's end (a partition failed, Ctrl-C)
    not_submitted: bool = False


def run_partitions(
    spec: JobSpec,
    client: Client,
    source: PutSource,
    *,
    partition_size: int | None = None,
    retries: int = 2,
    on_progress: Callable[[ClusterProgress], None] | None = None,
    rule: PartitionSize = PartitionSize(),
) -> ClusterResult:
    """Run the job ``spec`` of ``source``'s items on the cluster of ``client``, partition by
    partition, and merge what the partitions return.

    ``source`` is read here, on the client, lazily (give absolute paths, or paths relative to
    this process's working directory). ``retries`` re-runs a partition whose task raised
    (Dask re-runs those of a dead worker by itself). Ctrl-C or SIGTERM cancels every future
    of the job and returns an interrupted result."""
    started = time.monotonic()
    run = uuid.uuid4().hex[:12]
    threads = max(1, sum(client.nthreads().values()))
    total = _known_total(source)
    size = rule.items(partition_size, total, threads)
    result = ClusterResult(summary=JobSummary())
    merged = result.summary

    def client_side(error: BulkputError) -> None:  # bad input found by the client's read
        from bulkput.job.engine import error_item_result

        item = error_item_result(error)
        merged.add_result(item.status, item.size, item.reason, item.error_code)
        if item.status is Status.FAILED:
            _keep_failure(result, item)

    ordered = in_key_order(source.items(spec.target, spec.filters), client_side)
    pending = make_partitions(ordered, size)
    work = task_spec(spec)
    stop_event = f"bulkput-stop-{run}"
    outstanding: dict[Future, int] = {}
    from distributed import as_completed

    completed = as_completed()

    exhausted = False

    def submit_next() -> bool:
        nonlocal exhausted
        partition = next(pending, None)
        if partition is None:
            exhausted = True
            return False
        future = client.submit(run_partition, work, partition, stop_event,
                               key=f"{KEY_PREFIX}-{run}-{partition.index}", retries=retries,
                               pure=False)  # fmt: skip
        outstanding[future] = partition.index
        completed.add(future)
        result.partitions += 1
        return True

    done = 0
    try:
        with _sigterm_as_interrupt():
            while len(outstanding) < OUTSTANDING_PER_THREAD * threads and submit_next():
                pass
            while outstanding:
                future = next(completed)
                index = outstanding.pop(future)
                host = _merge(result, future, index)
                future.release()  # the scheduler forgets it: the summary is merged
                done += 1
                if result.failed_partitions:  # the next ones would meet the same cause
                    result.not_submitted = not exhausted
                elif len(outstanding) < OUTSTANDING_PER_THREAD * threads:
                    submit_next()
                if on_progress is not None:
                    on_progress(ClusterProgress(done, result.partitions, len(result.failed_partitions),
                                                total, merged, host))  # fmt: skip
    except KeyboardInterrupt:
        from distributed import Event

        with contextlib.suppress(Exception):  # tasks running stop; the scheduler drops the rest
            Event(stop_event, client=client).set()
        client.cancel(list(outstanding), force=True)
        merged.interrupted = True
        result.not_submitted = not exhausted
    finally:
        with contextlib.suppress(Exception):
            pending.close()
            ordered.close()  # (a sort's temporary files)
    if result.failed_partitions:
        count = len(result.failed_partitions)
        merged.aborted = f"{count} partition{'s' if count > 1 else ''} could not run"
    merged.elapsed = time.monotonic() - started
    return result


def _merge(result: ClusterResult, future: Future, index: int) -> str | None:
    """Add one finished future's summary (or its failure) to ``result``; the worker's host."""
    if future.status != "finished":
        error = future.exception()
        if isinstance(error, BulkputError):
            cause = error.one_line()
        else:  # not bulkput's: Dask's (a worker killed too often, a task it could not unpickle)
            from bulkput.redact import scrub

            cause = scrub(f"partition {index}: {type(error).__name__}: {' '.join(str(error).split())}")
        result.failed_partitions.append(PartitionFailure(index, cause))
        return None
    outcome: PartitionOutcome = future.result()
    result.summary.merge(outcome.summary)
    for failed in outcome.failures:
        _keep_failure(result, failed)
    return outcome.host


def _keep_failure(result: ClusterResult, failed: ObjectResult) -> None:
    if len(result.failures) < FAILURES_KEPT:
        result.failures.append(failed)


def _known_total(source: PutSource) -> int | None:
    """The number of items when it costs one quick read (a manifest file's lines), else None."""
    if source.manifest is None or source.manifest == "-":
        return None
    from bulkput.local.manifest import count_manifest_lines

    try:
        return count_manifest_lines(source.manifest)
    except OSError:
        return None  # the reader says why, as one usage error


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the client as Ctrl-C does (its futures cancelled), in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
