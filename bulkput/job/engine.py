"""The upload engine: items in, one honest result per object out.

Pipeline (three stages, long-lived tasks, bounded queues)::

    items ──producer──▶ pending (batches) ──P preparers──▶ ready ──C senders──▶ results
          (sync iterators     (executor: open, fstat,         (AIMD limiter, retry loop,
           pulled in a         read + MD5, re-check,           PUT, ETag check, journal)
           thread)             journal skip, validate)

- The **producer** reads the items (a sync iterator is pulled in a worker thread, a batch at a
  time, so a slow stdin never blocks the loop), drops keys another shard owns, and turns error
  items (a bad manifest line) into failed results.
- **Preparers** (``config.readers`` of them, 4 by default) take a batch at a time and read
  it on the loop's own thread while its files are small and quick to read, or else in one
  executor call (:mod:`bulkput.local.read_placement` decides which, batch by batch):
  for each file one ``open``, ``fstat``, one read and MD5 for bodies up to
  ``small_body_limit`` (larger files are hashed in ``chunk_size`` pieces and streamed later
  as a ``FileRange``), a second ``fstat`` to catch a file that changed while it was read
  (re-read once, then ``FileChangedError``), the journal check, header building and dialect
  validation. A semaphore of ``max_open_files`` covers every
  file descriptor opened for reading: each executor call holds one at a time, and each send of
  a ``FileRange`` body holds one (the job's :class:`~bulkput.job.limited_store.LimitedStore`
  takes it), so the job never has more open.
- **Senders** (``concurrency`` of them, further limited by the store's
  :class:`~bulkput.remote.retry.AdaptiveLimiter`) PUT through the ``LimitedStore`` (which
  signs at send time, so every retry is signed afresh) in the job's retry loop
  (:class:`~bulkput.remote.retry.Retrier`), compare the ETag with the MD5, record the object
  in the journal, and report it. A large file goes to :func:`bulkput.job.multipart.upload_file`
  with the job's :class:`~bulkput.job.multipart.TransferContext` (same store, same retry loop).

Honest results. ``stored`` only after the server confirmed the PUT (and the ETag matched).
When a job-fatal error happens (auth, missing bucket, unreachable endpoint, journal write), the
job stops at once with that one error in ``summary.aborted``: the object that met it is
reported failed with its own code, and every other object the engine had taken in but not
confirmed is reported failed with code ``JobAborted`` (no storm of identical errors, and no
object silently missing from the report). Items not yet read from the input are not reported.
An interrupt (:meth:`Engine.stop`, SIGINT/SIGTERM) sends nothing more and lets requests in
flight finish for ``stop_grace`` seconds; each object ends as what it is:

- ``stored``: the store confirmed it (journaled, so the next run skips it);
- ``failed``: its request ended in an error within the grace (it is not in the store);
- ``not_started``: no request was made for it. Objects already read from the input, and the
  rest of the input read on for at most ``LIST_REST_SECONDS`` (a sync iterator's entries are
  cheap to list; a file is not opened), each get a ``not_started`` line, so the report holds
  one line per object; ``summary.unread_input`` says the input had more than that;
- cut off in flight (its request outlived the grace): one HEAD each, all within
  ``CHECK_SECONDS``, asks the store. The object there with this file's MD5 is ``stored`` (and
  journaled); otherwise ``interrupted`` (absent, or the store could not tell), which the next
  run sends again.

Then the journal is flushed and ``summary.interrupted`` set (exit 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import stat
import time
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bulkput.config import TransferConfig
from bulkput.errors import (
    BulkputError,
    FileChangedError,
    LocalInputError,
    ReadStopped,
    RemoteError,
    ServiceError,
    UnexpectedError,
    ValidationError,
)
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.batches import next_batch, take
from bulkput.job.collector import SummaryCollector
from bulkput.job.headers import HeaderBuilder
from bulkput.job.journal_protocol import JobJournal
from bulkput.job.limited_store import LimitedStore
from bulkput.job.multipart import (
    MultipartUploader,
    TransferContext,
    needs_multipart,
    upload_file,
)
from bulkput.job.shard import Shard
from bulkput.job.store_resume import already_stored, head_confirms, trusted_md5_hex
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import IN_STORE, JobSummary
from bulkput.local.digest import b64, md5_file
from bulkput.local.names import refuse_unsafe_key
from bulkput.local.read_placement import (
    INLINE_BATCH_SECONDS,
    INLINE_BODY_LIMIT,
    InlineBatch,
    ReadPlacement,
)
from bulkput.remote.retry import Retrier
from bulkput.remote.store import (
    MAX_SINGLE_PUT,
    Body,
    FileRange,
    ObjectHeaders,
    ObjectStore,
    PutResult,
)

log = logging.getLogger("bulkput.job.engine")

T = TypeVar("T")
R = TypeVar("R")

BATCH_SIZE = 32  # items per executor call
# After an interrupt: how long the input is read on to list the objects not started, and how
# long the HEAD checks of the objects cut off in flight may take (a Ctrl-C should not wait).
LIST_REST_SECONDS = 2.0
CHECK_SECONDS = 3.0
# Bodies one executor call may read into memory before handing them over (see _prepare_batch).
PREPARE_BYTES_PER_CALL = 4 * 1024 * 1024

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
_HEX_DIGITS = frozenset("0123456789abcdef")


def _cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


ItemSource = Iterable["UploadItem | BulkputError"] | AsyncIterable["UploadItem | BulkputError"]


class _Prepared:
    """One file read (or hashed) and ready to send."""

    __slots__ = (
        "body", "file_id", "headers", "item", "md5_b64", "md5_hex", "mtime_ns", "multipart", "size",
    )

    def __init__(
        self,
        item: UploadItem,
        size: int,
        mtime_ns: int,
        body: Body | None,
        md5_b64: str | None,
        md5_hex: str | None,
        headers: ObjectHeaders,
        multipart: bool = False,
        file_id: tuple[int, int] | None = None,  # (inode, ctime_ns): journaled with size, mtime
    ) -> None:
        self.file_id = file_id
        self.item = item
        self.size = size
        self.mtime_ns = mtime_ns
        self.body = body
        self.md5_b64 = md5_b64
        self.md5_hex = md5_hex
        self.headers = headers
        self.multipart = multipart


_STOP = object()  # end-of-stream marker in the queues


class _LeaveToAThread:
    """What an inline read returns for a body too large to read on the loop's thread."""


_LEAVE_TO_A_THREAD = _LeaveToAThread()


def _failed(item: UploadItem, error: BulkputError, attempts: int = 0) -> ObjectResult:
    return ObjectResult(
        key=item.key,
        path=item.path,
        status=Status.FAILED,
        size=item.size,
        attempts=attempts,
        error_code=error.code,
        message=error.one_line(),
        request_id=error.request_id if isinstance(error, RemoteError) else None,
    )


def _in_store(item: UploadItem, size: int, md5_hex: str | None) -> ObjectResult:
    """Skipped: the store already holds this file's bytes (resume from the store)."""
    return ObjectResult(
        key=item.key, path=item.path, status=Status.SKIPPED, size=size, md5=md5_hex,
        reason=IN_STORE,
    )


def error_item_result(error: BulkputError) -> ObjectResult:
    """The result of an error that came instead of an item: failed (a bad manifest line), or
    skipped when the error is only a warning (a symbolic link not followed, a fifo)."""
    if error.warning:
        return ObjectResult(
            key=error.key or "",
            path=error.path,
            status=Status.SKIPPED,
            reason=error.reason or error.code,
            message=error.one_line(),
        )
    return ObjectResult(
        key=error.key or "",
        path=error.path,
        status=Status.FAILED,
        error_code=error.code,
        message=error.one_line(),
    )


class Engine:
    """Uploads items to one store. One ``run`` per engine.

    ``store`` is wrapped in a :class:`~bulkput.job.limited_store.LimitedStore` sized by
    ``config`` (pass a ``LimitedStore`` to share its limiter and open-file slots with other
    requests of the job, as sync's listings and deletes do). ``defaults`` are the job's object
    headers (``--cache-control``, ``--acl``, ``--meta`` ...; see
    :class:`~bulkput.job.headers.HeaderBuilder`). ``clock``, ``sleep`` and ``rng`` go to the
    retry loop (tests inject them). ``multipart`` is the large-file uploader
    (:func:`bulkput.job.multipart.upload_file`; ``None`` turns it off).
    """

    def __init__(
        self,
        store: ObjectStore,
        config: TransferConfig | None = None,
        *,
        journal: JobJournal | None = None,
        subscribers: Sequence[Subscriber] = (),
        shard: Shard | None = None,
        dry_run: bool = False,
        defaults: ObjectHeaders | None = None,
        stop_grace: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        multipart: MultipartUploader | None = upload_file,
        read_from: str | None = None,
        store_confirms_journal: bool = False,
    ) -> None:
        self.config = config or TransferConfig()
        # Where files are read from ("host H, working directory D"), named in the error of a
        # file that cannot be read when the job runs as a task elsewhere; None: not named.
        self._read_from = read_from
        # Every request of the job goes through one LimitedStore (the caller's, when given).
        self.store = (
            store
            if isinstance(store, LimitedStore)
            else LimitedStore.for_config(store, self.config, clock=clock)
        )
        self.limiter = self.store.limiter
        self._open_files = self.store.open_files
        self.journal = journal
        # Where to look up objects an earlier run stored (none on a job's first run).
        self._skip_lookup = journal if journal is not None and journal.stored_before_open else None
        # Keys with a multipart upload an earlier run left in flight: they go the multipart
        # way whatever their size now (it resumes the upload, or aborts it if the file changed),
        # so raising --multipart-threshold between runs leaves no upload behind on the server.
        self._uploads_in_flight: frozenset[str] = (
            frozenset(record.key for record in journal.uploads())
            if journal is not None
            else frozenset()
        )
        self.shard = shard if shard is not None and shard.count > 1 else None
        # Items come through bulkput.job.store_resume: a journal skip needs the listing's word
        # (their StoredCopy), since the journal itself was not checked against the store.
        self.store_confirms_journal = store_confirms_journal
        self.dry_run = dry_run
        self._headers = HeaderBuilder(defaults)
        self.stop_grace = stop_grace
        self._multipart = multipart
        self._collector = SummaryCollector()
        self._subscribers: tuple[Subscriber, ...] = (self._collector, *subscribers)
        # bound once: _emit and on_bytes run per object
        self._on_result = [s.on_result for s in self._subscribers]
        self._on_bytes = [s.on_bytes for s in self._subscribers]
        self._on_retry = [s.on_retry for s in self._subscribers]
        self._retrier = Retrier(self.config.retry, clock, sleep, rng, self._report_retry)
        self._validate = store.validate
        self._aborted: BulkputError | None = None
        self._stopping = False
        self._started = False
        self._producer: asyncio.Task[None] | None = None
        self._preparers: list[asyncio.Task[None]] = []
        self._senders: list[asyncio.Task[None]] = []
        self._pending: asyncio.Queue[Any] | None = None
        self._ready: asyncio.Queue[Any] | None = None
        self._read_ahead = asyncio.Semaphore(1)  # replaced in run()
        self._grace_timer: asyncio.TimerHandle | None = None
        self._listing_timer: asyncio.TimerHandle | None = None
        self._unread_input = False  # the stop cut the listing of the input short
        self._cut_off: list[_Prepared] = []  # in flight when the stop's grace ran out
        # "stored" results waiting for their journal record to be committed: (sequence, result)
        self._held: deque[tuple[int, ObjectResult]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transfer: TransferContext | None = None  # built in run()
        self.summary: JobSummary | None = None

    # --- public ---------------------------------------------------------------------------

    async def run(
        self,
        items: ItemSource,
        *,
        total_objects: int | None = None,
        total_bytes: int | None = None,
        most_objects: int | None = None,
    ) -> JobSummary:
        """Upload ``items``; the totals, when known, go to subscribers' ``on_start``.
        ``most_objects``: no more items than this come (fewer senders are started: one object
        needs one, its parts go in parallel inside it)."""
        if self._started:
            raise RuntimeError("an Engine runs once")
        self._started = True
        config = self.config
        preparer_count = max(1, min(config.max_open_files, config.readers))
        sender_count = self.limiter.maximum  # each waits for a slot of the limiter
        if most_objects is not None:
            sender_count = max(1, min(sender_count, most_objects))
        self._pending = asyncio.Queue(maxsize=preparer_count * 2)
        self._ready = asyncio.Queue(maxsize=sender_count)  # room for a stop mark per sender
        # Prepared bodies waiting for a sender: a few keep the senders fed, and each may hold a
        # 1 MiB body, so fewer wait than there are senders.
        self._read_ahead = asyncio.Semaphore(max(4, sender_count // 4))
        # Hashing is CPU work: more large files hashed at once than there are CPUs would only
        # make every one of them finish (and start sending) later.
        cpus = _cpu_count()
        self._hash_slots = asyncio.Semaphore(cpus)
        # readers, large files hashed at once (one per CPU), and one for the input's iterator
        self._pool = ThreadPoolExecutor(
            max(preparer_count, cpus) + 1, thread_name_prefix="bulkput-read"
        )
        self._preparers_left = preparer_count
        self._transfer = TransferContext(
            store=self.store,
            config=config,
            retrier=self._retrier,
            journal=self.journal,
            open_files=self._open_files,
            hash_slots=self._hash_slots,
            on_bytes=self._report_bytes,
            executor_run=self._executor_run,
            should_stop=self._should_stop,
        )
        self._placement = ReadPlacement(enabled=config.inline_reads)
        self._loop = asyncio.get_running_loop()
        journal = self.journal
        if journal is not None:
            journal.commit_listener = self._on_journal_commit
        for subscriber in self._subscribers:
            subscriber.on_start(total_objects, total_bytes)
        # Stopped before it started: the pipeline starts and stops at once, so the input is
        # listed as not started like any stopped job's.
        stopped_before_start, self._stopping = self._stopping, False
        aborted_before_start, self._aborted = self._aborted, None
        try:
            # Each stage guarded: an exception it does not handle aborts the job (exit 3)
            # instead of ending one task quietly and the job "successfully" without its work.
            self._producer = asyncio.create_task(
                self._guarded("reading the input", lambda: self._produce(items, preparer_count))
            )
            self._preparers = [
                asyncio.create_task(self._guarded("preparing files", lambda: self._prepare_loop(sender_count)))
                for _ in range(preparer_count)
            ]
            self._senders = [
                asyncio.create_task(self._guarded("sending objects", self._send_loop))
                for _ in range(sender_count)
            ]
            if aborted_before_start is not None:
                self._abort(aborted_before_start)
            elif stopped_before_start:
                self.stop()
            tasks = [self._producer, *self._preparers, *self._senders]
            await asyncio.gather(*tasks, return_exceptions=True)
            self._drain_unsent()
            if self._cut_off:
                await self._check_cut_off()
            if self.journal is not None and not self.dry_run:
                await self._flush_journal()
        finally:
            for timer in (self._grace_timer, self._listing_timer):
                if timer is not None:
                    timer.cancel()
            if journal is not None:
                journal.commit_listener = None
            # Flushed (or failed): every held result goes out now, "stored" only if its record
            # was committed (what the report calls stored is what a resumed run skips).
            self._release_held(final=True)
            self._pool.shutdown(wait=False, cancel_futures=True)
        self.summary = self._collector.summary(
            aborted=self._aborted, interrupted=self._stopping, unread_input=self._unread_input
        )
        for subscriber in self._subscribers[1:]:  # not the collector: it made the summary
            subscriber.on_done(self.summary)
        return self.summary

    def stop(self) -> None:
        """Send nothing more; let requests in flight finish for ``stop_grace`` seconds; list
        the rest of the input as not started for at most ``LIST_REST_SECONDS``."""
        if self._stopping or self._producer is None:
            self._stopping = True
            return
        self._stopping = True
        # The producer is not cancelled: it reads on, listing each entry as not started.
        for task in self._preparers:
            task.cancel()
        self._drain_unsent()
        ready = self._ready
        if ready is not None:
            for _ in self._senders:
                ready.put_nowait(_STOP)  # idle senders leave; busy ones leave after this object
        loop = asyncio.get_running_loop()
        self._grace_timer = loop.call_later(self.stop_grace, self._cancel_senders)
        self._listing_timer = loop.call_later(LIST_REST_SECONDS, self._cut_listing)

    def abort(self, error: BulkputError) -> None:
        """Stop the job at once because of ``error`` (a part of the job outside the engine
        failed); before ``run``, the run starts aborted and sends nothing."""
        self._abort(error)

    @property
    def aborted(self) -> BulkputError | None:
        return self._aborted

    async def _guarded(self, stage: str, work: Callable[[], Awaitable[None]]) -> None:
        """Run one stage's task; an exception it let through aborts the job, named. (``work``
        is called here: a task cancelled before it ran leaves no coroutine unawaited.)"""
        try:
            await work()
        except Exception as error:  # any: the job must not end as if done
            self._abort(error if isinstance(error, BulkputError) and error.fatal_for_job
                        else UnexpectedError.during(stage, error))

    # --- stages ---------------------------------------------------------------------------

    async def _produce(self, items: ItemSource, preparer_count: int) -> None:
        assert self._pending is not None
        pending = self._pending
        try:
            if isinstance(items, AsyncIterable):
                await self._produce_async(items, pending)
            elif isinstance(items, (list, tuple)):
                await self._produce_from(iter(items), pending, pull=None)
            else:
                await self._produce_from(iter(items), pending, pull=self._pool)
        except BulkputError as error:  # the input itself failed (e.g. manifest unreadable)
            if error.fatal_for_job:
                self._abort(error)
            else:
                self._emit(error_item_result(error))
        finally:
            if not self._stopping and self._aborted is None:
                for _ in range(preparer_count):
                    await pending.put(_STOP)

    async def _produce_from(
        self, iterator: Iterator[Any], pending: asyncio.Queue[Any], pull: ThreadPoolExecutor | None
    ) -> None:
        chunk: list[Any] = []
        batch: list[UploadItem] = []
        index = 0
        try:
            while True:
                if pull is None:
                    chunk = take(iterator, BATCH_SIZE * 8)
                else:
                    chunk = await next_batch(iterator, BATCH_SIZE * 8, pull)
                if not chunk:
                    return
                for index, entry in enumerate(chunk, 1):  # noqa: B007 (read on cancel)
                    if self._stopping:
                        self._list_not_started(entry)
                    elif self._accept(entry, batch) and len(batch) >= BATCH_SIZE:
                        await pending.put(batch)
                        batch = []
                index = len(chunk)
                batch = await self._hand_on(batch, pending)
        except asyncio.CancelledError:
            self._report_held(batch, chunk[index:])
            raise

    async def _produce_async(
        self, items: AsyncIterable[Any], pending: asyncio.Queue[Any]
    ) -> None:
        batch: list[UploadItem] = []
        try:
            async for entry in items:
                if self._stopping:
                    self._list_not_started(entry)
                elif self._accept(entry, batch) and len(batch) >= BATCH_SIZE:
                    await pending.put(batch)
                    batch = []
            batch = await self._hand_on(batch, pending)
        except asyncio.CancelledError:
            self._report_held(batch, [])
            raise

    async def _hand_on(self, batch: list[UploadItem], pending: asyncio.Queue[Any]) -> list[UploadItem]:
        """The last items of a chunk to the preparers (listed as not started once stopping);
        returns the batch to fill next."""
        if batch:
            if self._stopping:
                for item in batch:
                    self._emit(self._unsent(item))
            else:
                await pending.put(batch)
        return []

    def _report_held(self, batch: list[UploadItem], unread: Sequence[object]) -> None:
        """The producer was cancelled (an abort, or a stop's listing out of time): the items it
        read but did not hand on are reported, so the report stays whole."""
        if self._stopping and self._aborted is None:
            self._unread_input = True  # the listing timer cut it: the input had more
        held = batch + [e for e in unread if isinstance(e, UploadItem)]
        for item in held:
            if self.shard is None or self.shard.owns(item.key):
                self._emit(self._unsent(item))

    def _list_not_started(self, entry: object) -> None:
        """An entry read after the stop: a ``not_started`` line for an item this shard owns
        (no file is opened), the usual result for an error entry."""
        if isinstance(entry, UploadItem):
            if self.shard is None or self.shard.owns(entry.key):
                self._emit(self._unsent(entry))
        else:
            self._accept(entry, [])

    def _cut_listing(self) -> None:
        """The stop's listing time is over: the producer stops reading the input."""
        producer = self._producer
        if producer is not None and not producer.done():
            producer.cancel()

    def _accept(self, entry: Any, batch: list[UploadItem]) -> bool:
        """Add one input entry to ``batch``; report error entries. True when one was added."""
        if isinstance(entry, UploadItem):
            if self.shard is None or self.shard.owns(entry.key):
                batch.append(entry)
                return True
            return False
        if isinstance(entry, BulkputError):
            self._emit(error_item_result(entry))
            return False
        raise TypeError(f"engine items must be UploadItem or BulkputError, not {type(entry)!r}")

    async def _prepare_loop(self, sender_count: int) -> None:
        assert self._pending is not None and self._ready is not None
        pending, ready = self._pending, self._ready
        placement = self._placement
        loop = asyncio.get_running_loop()
        batch: list[UploadItem] = []
        unhashed: list[_Prepared] = []  # large files of this batch not yet hashed and queued
        waiting: deque[_Prepared | ObjectResult] = deque()  # prepared, not yet handed over
        try:
            while True:
                batch = await pending.get()
                if batch is _STOP:
                    break
                while batch:
                    inline = placement.inline()
                    async with self._open_files:
                        if inline:
                            prepared, done, outcome = self._prepare_batch(batch, inline=True)
                            placement.record_inline(outcome)
                        else:
                            prepared, done, _ = await loop.run_in_executor(
                                self._pool, self._prepare_batch, batch
                            )
                            placement.record_threaded()
                    batch = batch[done:]
                    waiting.extend(prepared)
                    if inline:
                        await asyncio.sleep(0)  # let the senders run between batches
                    while waiting:
                        entry = waiting[0]
                        if isinstance(entry, ObjectResult):
                            self._emit(entry)
                        elif entry.body is None and not entry.multipart:
                            unhashed.append(entry)
                        else:
                            await self._read_ahead.acquire()
                            await ready.put(entry)
                        waiting.popleft()
                if unhashed:
                    await self._hash_into(unhashed, ready)
        except asyncio.CancelledError:
            # Everything this preparer holds is reported, so a stopped job's report is whole.
            for item in batch if isinstance(batch, list) else ():
                self._emit(self._unsent(item))
            for entry in waiting:
                if isinstance(entry, ObjectResult):
                    self._emit(entry)
                else:
                    self._emit(self._unsent(entry.item, entry.size))
            for entry in unhashed:
                self._emit(self._unsent(entry.item, entry.size))
            raise
        finally:
            self._preparers_left -= 1
            if self._preparers_left == 0 and not self._stopping and self._aborted is None:
                for _ in range(sender_count):
                    await ready.put(_STOP)

    async def _hash_into(self, unhashed: list[_Prepared], ready: asyncio.Queue[Any]) -> None:
        """Hash the large files of a batch in parallel executor calls (one open-file slot each)
        and queue each as soon as it is hashed; ``unhashed`` shrinks as they leave (what is
        left when cancelled is reported unsent by the caller)."""
        loop = asyncio.get_running_loop()

        async def hash_one(entry: _Prepared) -> _Prepared | ObjectResult:
            async with self._open_files, self._hash_slots:
                try:
                    return await loop.run_in_executor(self._pool, self._hash_large, entry)
                except ReadStopped:
                    return self._unsent(entry.item, entry.size)
                except BulkputError as error:
                    return _failed(entry.item, error)

        pending = {asyncio.ensure_future(hash_one(entry)): entry for entry in unhashed}
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for future in done:
                    entry = pending.pop(future)
                    result = future.result()
                    if isinstance(result, ObjectResult):
                        self._emit(result)
                    else:
                        await self._read_ahead.acquire()
                        await ready.put(result)
                    unhashed.remove(entry)
        finally:
            for future in pending:
                future.cancel()

    async def _send_loop(self) -> None:
        assert self._ready is not None
        ready = self._ready
        send = self._send
        emit = self._emit
        journal = self.journal
        read_ahead = self._read_ahead
        while not self._stopping and self._aborted is None:
            prepared = await ready.get()
            if prepared is _STOP:
                return
            read_ahead.release()
            try:
                result = await send(prepared)
            except asyncio.CancelledError:
                if self._stopping and self._aborted is None:
                    self._cut_off.append(prepared)  # sent, outcome unknown: ask the store
                else:
                    emit(self._unsent(prepared.item, prepared.size))
                raise
            if journal is not None and result.status is Status.STORED:
                self._hold(result, journal)
            else:
                emit(result)

    # --- one object -----------------------------------------------------------------------

    def _prepare_batch(
        self, batch: list[UploadItem], inline: bool = False
    ) -> tuple[list[_Prepared | ObjectResult], int, InlineBatch]:
        """Stat, read, hash, check the items of a batch (one fd at a time), in a reader thread
        or, with ``inline``, on the loop's thread (see :mod:`bulkput.local.read_placement`).

        Stops early once ``PREPARE_BYTES_PER_CALL`` of bodies are in memory, so each preparer
        holds a few MiB, not a batch of 1 MiB bodies. Inline, it also stops before reading a
        body over ``INLINE_BODY_LIMIT`` and after ``INLINE_BATCH_SECONDS``. Returns the
        results, how many items it took, and how the batch ended (for the read placement).
        """
        out: list[_Prepared | ObjectResult] = []
        in_memory = 0
        done = 0
        outcome = InlineBatch.WHOLE
        inline_limit = INLINE_BODY_LIMIT if inline else None
        deadline = time.perf_counter() + INLINE_BATCH_SECONDS if inline else 0.0
        for item in batch:
            try:
                prepared = self._prepare_one(item, inline_limit)
            except BulkputError as error:
                prepared = _failed(item, error)
            except OSError as exc:
                prepared = _failed(item, _local_error(item, exc, self._read_from))
            if isinstance(prepared, _LeaveToAThread):
                outcome = InlineBatch.LARGE_BODY
                break
            done += 1
            out.append(prepared)
            if inline and time.perf_counter() > deadline:
                outcome = InlineBatch.OUT_OF_TIME
                break
            if isinstance(prepared, _Prepared) and isinstance(prepared.body, bytes):
                in_memory += len(prepared.body)
                if in_memory >= PREPARE_BYTES_PER_CALL:
                    break
        return out, done, outcome

    def _prepare_one(
        self, item: UploadItem, inline_limit: int | None = None
    ) -> _Prepared | ObjectResult | _LeaveToAThread:
        """One file: open, fstat, journal check, headers, and for a small body read and MD5.
        With ``inline_limit``, a body larger than that is not read: ``_LEAVE_TO_A_THREAD``."""
        config = self.config
        try:
            fd = os.open(item.path, _OPEN_FLAGS)
        except OSError as exc:
            raise _local_error(item, exc, self._read_from) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
                raise LocalInputError(f"{item.path} is {kind}", key=item.key, path=item.path)
            size, mtime_ns = info.st_size, info.st_mtime_ns
            file_id = (info.st_ino, info.st_ctime_ns)
            journal = self._skip_lookup
            if journal is not None and self._journal_skips(journal, item, size, mtime_ns, file_id):
                return ObjectResult(
                    key=item.key, path=item.path, status=Status.SKIPPED, size=size, reason="journal"
                )
            headers = self._headers.for_item(item)
            self._validate(item.key, headers)
            if not config.allow_dot_segments:
                refuse_unsafe_key(item.key, item.path)
            multipart = self._multipart is not None and (
                needs_multipart(size, config) or item.key in self._uploads_in_flight
            )
            if not multipart and size > MAX_SINGLE_PUT:
                raise ValidationError(
                    f"{size} bytes is over the 5 GiB limit of a single PUT (multipart not available)",
                    key=item.key,
                    path=item.path,
                )
            if self.dry_run:
                return ObjectResult(
                    key=item.key,
                    path=item.path,
                    status=Status.PLANNED,
                    size=size,
                    reason="multipart" if multipart else "put",
                )
            if multipart:
                return _Prepared(
                    item, size, mtime_ns, None, None, None, headers, True, file_id
                )
            trusted = item.md5
            trusted_hex = trusted_md5_hex(item)
            if trusted_hex is not None and already_stored(item, size, trusted_hex):
                return _in_store(item, size, trusted_hex)  # the manifest's MD5: not read
            if size <= config.body_in_memory_limit:
                if inline_limit is not None and size > inline_limit:
                    return _LEAVE_TO_A_THREAD
                data, size, mtime_ns = _read_stable(fd, item, size, mtime_ns)
                if trusted is None:
                    digest = hashlib.md5(data)
                    md5_hex = digest.hexdigest()
                    if already_stored(item, size, md5_hex):
                        return _in_store(item, size, md5_hex)
                    return _Prepared(
                        item,
                        size,
                        mtime_ns,
                        data,
                        b64(digest.digest()),
                        md5_hex,
                        headers,
                        file_id=file_id,
                    )
                return _Prepared(
                    item, size, mtime_ns, data, trusted, trusted_hex, headers,
                    file_id=file_id,
                )
        finally:
            os.close(fd)
        if trusted is None:
            # A large body is hashed by its own executor call (see _prepare_loop), so several
            # large files hash in parallel and each is sent as soon as it is hashed.
            return _Prepared(item, size, mtime_ns, None, None, None, headers, file_id=file_id)
        body = FileRange(item.path, 0, size)
        return _Prepared(
            item, size, mtime_ns, body, trusted, trusted_hex, headers, file_id=file_id
        )

    def _journal_skips(
        self,
        journal: JobJournal,
        item: UploadItem,
        size: int,
        mtime_ns: int,
        file_id: tuple[int, int],
    ) -> bool:
        """The journal's fast path: this file was stored by an earlier run (no hashing).
        Resuming from the store, only where the listing confirms it: the store holds an
        object of this size whose MD5 is the one the journal recorded."""
        if not self.store_confirms_journal:
            return journal.is_stored(item.key, size, mtime_ns, *file_id)
        stored = item.stored
        if stored is None or stored.size != size:
            return False
        return journal.is_stored(item.key, size, mtime_ns, *file_id, md5_hex=stored.md5_hex)

    def _hash_large(self, prepared: _Prepared) -> _Prepared | ObjectResult:
        """Executor side: the MD5 of a large file (re-checked for changes), then stream it
        (or skip it: the store already holds these bytes)."""
        config = self.config
        item = prepared.item
        size, mtime_ns = prepared.size, prepared.mtime_ns
        try:
            md5_bytes, hashed = md5_file(item.path, config.chunk_size, self._should_stop)
            after = os.stat(item.path)
            if hashed != size or after.st_size != size or after.st_mtime_ns != mtime_ns:
                # Changed while hashed: hash once more, then give up on this object.
                size, mtime_ns = after.st_size, after.st_mtime_ns
                md5_bytes, hashed = md5_file(item.path, config.chunk_size, self._should_stop)
                again = os.stat(item.path)
                if hashed != size or again.st_size != size or again.st_mtime_ns != mtime_ns:
                    raise FileChangedError(
                        "changed while it was read (size or mtime moved); not sent",
                        key=item.key,
                        path=item.path,
                    )
        except OSError as exc:
            raise _local_error(item, exc, self._read_from) from None
        if already_stored(item, size, md5_bytes.hex()):
            return _in_store(item, size, md5_bytes.hex())
        body = FileRange(item.path, 0, size)
        return _Prepared(
            item, size, mtime_ns, body, b64(md5_bytes), md5_bytes.hex(), prepared.headers,
            file_id=prepared.file_id,
        )

    def _report_retry(self, key: str, error: BulkputError) -> None:
        for callback in self._on_retry:
            callback(key, error)

    def _report_bytes(self, n: int) -> None:
        for callback in self._on_bytes:
            callback(n)

    async def _send(self, prepared: _Prepared) -> ObjectResult:
        item = prepared.item
        key = item.key
        try:
            if prepared.multipart:
                return await self._multipart_upload(prepared)
            put, attempts = await self._retrier.call(key, lambda: self._put_once(prepared))
        except BulkputError as error:
            if error.fatal_for_job:
                first = self._abort(error)
                if not first:
                    return self._unsent(item, prepared.size)
            elif self._aborted is not None:
                return self._unsent(item, prepared.size)
            result = _failed(item, error, error.attempts)
            result.size = prepared.size
            result.md5 = prepared.md5_hex
            return result
        for callback in self._on_bytes:
            callback(prepared.size)
        result = ObjectResult(
            key=key,
            path=item.path,
            status=Status.STORED,
            size=prepared.size,
            md5=prepared.md5_hex,
            etag=put.etag,
            attempts=attempts,
            request_id=put.request_id,
        )
        journal = self.journal
        if journal is not None:
            ino, ctime_ns = prepared.file_id or (None, None)
            try:
                journal.record_stored(
                    key, prepared.size, prepared.mtime_ns, prepared.md5_hex, put.etag,
                    ino=ino, ctime_ns=ctime_ns,
                )
            except BulkputError as error:  # JournalError: the job stops; this one is not recorded
                self._abort(error)
                return self._not_journaled(result)
        return result

    async def _put_once(self, prepared: _Prepared) -> PutResult:
        """One attempt (the store holds the limiter and open-file slots), ETag checked."""
        put = await self.store.put_object(
            prepared.item.key,
            prepared.body,  # type: ignore[arg-type]
            content_md5=prepared.md5_b64 if self.config.content_md5 else None,
            headers=prepared.headers,
        )
        etag = put.etag
        md5_hex = prepared.md5_hex
        if put.etag_is_md5 and md5_hex is not None and etag is not None and etag != md5_hex:
            lowered = etag.lower()
            if lowered != md5_hex and len(lowered) == 32 and _HEX_DIGITS.issuperset(lowered):
                raise ServiceError(
                    f"stored ETag {etag} does not match the MD5 {md5_hex} of what was sent",
                    code="BadDigest",
                    request_id=put.request_id,
                    key=prepared.item.key,
                    retryable=True,
                )
        return put

    async def _multipart_upload(self, prepared: _Prepared) -> ObjectResult:
        """A large file through ``multipart.upload_file`` with the job's TransferContext: its
        requests share the store's limiter and open-file slots and the job's retry loop; it
        journals the object once confirmed and reports bytes part by part."""
        assert self._multipart is not None and self._transfer is not None
        item = prepared.item
        put = await self._multipart(
            self._transfer, item, prepared.size, prepared.mtime_ns, prepared.headers,
            prepared.file_id,
        )
        if put.in_store:
            return _in_store(item, prepared.size, put.md5_hex)
        return ObjectResult(
            key=item.key,
            path=item.path,
            status=Status.STORED,
            size=prepared.size,
            md5=put.md5_hex or None,
            etag=put.etag,
            attempts=put.attempts,
            request_id=put.request_id,
        )

    def _should_stop(self) -> bool:
        return self._stopping or self._aborted is not None

    def _executor_run(self, fn: Callable[[], R]) -> Awaitable[R]:
        return asyncio.get_running_loop().run_in_executor(self._pool, fn)

    # --- results, abort, stop -------------------------------------------------------------

    def _emit(self, result: ObjectResult) -> None:
        for callback in self._on_result:
            callback(result)

    # A "stored" result is reported only once the journal has committed its record, so that
    # what the report calls stored is exactly what a resumed run will skip: a kill can never
    # make an object reported stored be sent again.
    def _hold(self, result: ObjectResult, journal: JobJournal) -> None:
        sequence = journal.submitted
        if journal.committed >= sequence and not self._held:
            self._emit(result)
        else:
            self._held.append((sequence, result))

    def _on_journal_commit(self) -> None:
        """Writer thread: a batch is durable; release its results on the loop's thread."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop closing at the very end of a run
                loop.call_soon_threadsafe(self._release_committed)

    def _release_committed(self) -> None:
        """The loop's side of a commit: a subscriber that raises aborts the job (a callback's
        exception would otherwise only be logged by the loop, the result lost)."""
        try:
            self._release_held()
        except Exception as error:  # see _guarded
            self._abort(UnexpectedError.during("reporting results", error))

    def _release_held(self, final: bool = False) -> None:
        held = self._held
        if not held:
            return
        journal = self.journal
        committed = journal.committed if journal is not None else 0
        while held and held[0][0] <= committed:
            self._emit(held.popleft()[1])
        while final and held:  # the journal failed before committing these records
            self._emit(self._not_journaled(held.popleft()[1]))

    def _not_journaled(self, result: ObjectResult) -> ObjectResult:
        """A result the store confirmed but the journal never committed: not reported stored,
        since the next run cannot know it and sends it again."""
        why = self._aborted.code if self._aborted is not None else "JournalError"
        result.status = Status.FAILED
        result.error_code = "JobAborted"
        result.message = (
            f"{result.key}: sent, but its journal record was not written (the job aborted:"
            f" {why}); the next run sends it again"
        )
        return result

    def _unsent(self, item: UploadItem, size: int | None = None) -> ObjectResult:
        """An object the job stopped before it was confirmed: failed (``JobAborted``) when the
        job aborted, else ``not_started`` (an interrupt stops before sending it)."""
        if self._aborted is not None:
            return ObjectResult(
                key=item.key,
                path=item.path,
                status=Status.FAILED,
                size=size if size is not None else item.size,
                error_code="JobAborted",
                message=f"{item.key}: not confirmed: the job aborted ({self._aborted.code})",
            )
        return ObjectResult(
            key=item.key,
            path=item.path,
            status=Status.NOT_STARTED,
            size=size if size is not None else item.size,
            message=f"{item.key}: not started: the job was interrupted; the next run sends it",
        )

    async def _check_cut_off(self) -> None:
        """The objects whose request outlived the stop's grace: one HEAD each, all within
        ``CHECK_SECONDS``. Found with this file's MD5: stored (and journaled, so the next run
        skips it); otherwise interrupted, which the next run sends again."""
        cut_off, self._cut_off = self._cut_off, []
        checks = {asyncio.ensure_future(self._check_one(p)): p for p in cut_off}
        done, late = await asyncio.wait(checks, timeout=CHECK_SECONDS)
        for check in late:
            check.cancel()
        journal = self.journal
        for check, prepared in checks.items():
            result = (
                check.result()
                if check in done and check.exception() is None
                else self._interrupted(prepared, "the store did not answer a HEAD in time")
            )
            if journal is not None and result.status is Status.STORED:
                self._hold(result, journal)
            else:
                self._emit(result)

    async def _check_one(self, prepared: _Prepared) -> ObjectResult:
        item = prepared.item
        if prepared.multipart:
            journal = self.journal
            if journal is not None and journal.upload_for(item.key) is None:
                # stopped before its upload began (the intent is journaled before the Initiate)
                return self._unsent(item, prepared.size)
            if journal is None:  # no journal to tell whether its upload began
                return self._interrupted(prepared, "its multipart upload may have begun")
            return self._interrupted(
                prepared, "its multipart upload was under way", "the next run resumes it"
            )
        try:
            info = await self.store.head_object(item.key)
        except BulkputError as error:
            return self._interrupted(prepared, f"HEAD failed ({error.code})")
        md5_hex = prepared.md5_hex
        if info is None:
            return self._interrupted(prepared, "a HEAD after the stop did not find it")
        if not head_confirms(info, prepared.size, md5_hex):
            return self._interrupted(
                prepared, "the store holds an object at this key that HEAD cannot confirm is this file"
            )
        result = ObjectResult(
            key=item.key,
            path=item.path,
            status=Status.STORED,
            size=prepared.size,
            md5=md5_hex,
            etag=info.etag,
            attempts=1,
            reason="confirmed by HEAD after the interrupt",
        )
        journal = self.journal
        if journal is not None:
            ino, ctime_ns = prepared.file_id or (None, None)
            try:
                journal.record_stored(
                    item.key, prepared.size, prepared.mtime_ns, md5_hex, info.etag,
                    ino=ino, ctime_ns=ctime_ns,
                )
            except BulkputError as error:
                self._abort(error)
                return self._not_journaled(result)
        return result

    def _interrupted(
        self, prepared: _Prepared, why: str, next_run: str = "the next run sends it again"
    ) -> ObjectResult:
        item = prepared.item
        return ObjectResult(
            key=item.key,
            path=item.path,
            status=Status.INTERRUPTED,
            size=prepared.size,
            md5=prepared.md5_hex,
            attempts=1,  # sent at least once (how often the cut-off request tried is not known)
            message=f"{item.key}: interrupted in flight, not confirmed: {why}; {next_run}",
        )

    def _abort(self, error: BulkputError) -> bool:
        """Stop the job at once because of ``error``. True for the first fatal error."""
        if self._aborted is not None:
            return False
        self._aborted = error
        if self._producer is None:  # not running yet: run() starts aborted
            return True
        log.debug("job aborted: %s", error.one_line())
        current = asyncio.current_task()
        for task in (self._producer, *self._preparers, *self._senders):
            if task is not None and task is not current:
                task.cancel()
        return True

    def _cancel_senders(self) -> None:
        for task in self._senders:
            task.cancel()

    def _drain_unsent(self) -> None:
        """Report what sat in the queues when the job stopped early."""
        for queue in (self._pending, self._ready):
            if queue is None:
                continue
            while not queue.empty():
                entry = queue.get_nowait()
                if isinstance(entry, list):
                    for item in entry:
                        self._emit(self._unsent(item))
                elif isinstance(entry, _Prepared):
                    self._emit(self._unsent(entry.item, entry.size))

    async def _flush_journal(self) -> None:
        journal = self.journal
        assert journal is not None
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, journal.flush)
        except BulkputError as error:
            self._abort(error)


def _read_stable(fd: int, item: UploadItem, size: int, mtime_ns: int) -> tuple[bytes, int, int]:
    """Read a whole small file; re-read once if it changed while read, then give up."""
    for attempt in range(2):
        data = _read_all(fd, size)
        after = os.fstat(fd)
        if len(data) == size and after.st_size == size and after.st_mtime_ns == mtime_ns:
            return data, size, mtime_ns
        size, mtime_ns = after.st_size, after.st_mtime_ns
        if attempt == 0:
            os.lseek(fd, 0, os.SEEK_SET)
    raise FileChangedError(
        "changed while it was read (size or mtime moved); not sent", key=item.key, path=item.path
    )


def _read_all(fd: int, size: int) -> bytes:
    data = os.read(fd, size + 1)  # one byte more shows a file that grew
    if len(data) >= size:
        return data
    parts = [data]
    got = len(data)
    while got <= size:
        chunk = os.read(fd, size + 1 - got)
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def _local_error(item: UploadItem, exc: OSError, read_from: str | None = None) -> LocalInputError:
    """``KEY: cannot read PATH: CAUSE``, and ``(on READ_FROM)`` for a job run as a task elsewhere,
    where the same path may name another machine's file or another working directory's."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError):
        reason = "no such file"
    elif isinstance(exc, PermissionError):
        reason = "permission denied"
    where = f" (on {read_from})" if read_from is not None else ""
    return LocalInputError(
        f"cannot read {item.path}: {reason}{where}", key=item.key, path=item.path
    )


