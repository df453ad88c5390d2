"""Running a sync: the walk and the listing merge-joined, each key planned, uploads fed to the
engine, deletes spooled and sent last (see :class:`SyncRun`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TextIO

from bulkput.config import TransferConfig
from bulkput.errors import BulkputError, LocalInputError, MaxDeleteExceeded, UnexpectedError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.batches import next_batch
from bulkput.job.collector import SummaryCollector
from bulkput.job.limited_store import LimitedStore
from bulkput.job.listing.formats import MTIME_METADATA, format_mtime
from bulkput.job.listing.join import merge_join
from bulkput.job.listing.pages import listing_chunks
from bulkput.job.shard import Shard
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.job.sync.plan import PlanAction, PlanEntry, PlanRules, decide_entry, plan_pair
from bulkput.job.sync.strategies import Action, Reason, SizeAndMtime, Strategy
from bulkput.local.digest import md5_file
from bulkput.local.filters import Filter
from bulkput.local.names import printable
from bulkput.local.walk import WalkItem, WalkOptions, walk_tree
from bulkput.remote.retry import Retrier
from bulkput.remote.store import ObjectInfo, ObjectStore

if TYPE_CHECKING:
    from bulkput.job.engine import Engine

# The engine of a sync's uploads, made for the subscribers it reports to (the sync's own
# forwarders), on the sync's store: Job.sync passes its Job.engine.
EngineFactory = Callable[[Sequence[Subscriber]], "Engine"]


@dataclass(frozen=True)
class SyncOptions:
    """What ``bulkput sync`` was asked to do (the command line's options, as data)."""

    strategy: Strategy = field(default_factory=SizeAndMtime)
    delete: bool = False
    max_delete: int | None = None  # refuse (nothing deleted, exit 3) beyond this many deletes
    dry_run: bool = False
    filter: Filter | None = None
    follow_symlinks: bool = False
    normalize: bool = True
    shard: Shard | None = None
    sort_memory_entries: int = 100_000
    temp_dir: str | None = None  # where the delete list and walk sort runs are spooled


def sync_prefix(prefix: str) -> str:
    """The destination prefix as a directory: ``""`` stays, ``"a/b"`` becomes ``"a/b/"``."""
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


class _Forward(Subscriber):
    """Passes a subscriber every call but ``on_start``/``on_done``, which the sync makes itself
    (once, with totals it knows and with the summary that includes deletes)."""

    def __init__(self, inner: Subscriber) -> None:
        self._inner = inner

    def on_result(self, result: ObjectResult) -> None:
        self._inner.on_result(result)

    def on_bytes(self, n: int) -> None:
        self._inner.on_bytes(n)

    def on_retry(self, key: str, error: BulkputError) -> None:
        self._inner.on_retry(key, error)


class SyncRun:
    """One sync of a local directory to ``prefix`` in ``store``. ``await run()`` once.

    Pipeline: a thread walks the tree (batches handed to the loop); the loop merge-joins it
    with the paginated listing and plans each key; entries that need a HEAD or a local MD5 go
    to ``resolvers`` tasks; uploads feed the :class:`~bulkput.job.engine.Engine` that
    ``engine_factory`` makes on this store (:meth:`bulkput.job.run.Job.sync` passes its
    ``Job.engine``) through a bounded queue; deletes are spooled to a temporary file and sent, 1000 keys a request, after the
    uploads finished (and only when the job was not aborted or interrupted). Memory holds the
    queues, not the tree or the listing.
    """

    def __init__(
        self,
        store: ObjectStore,
        source_dir: str | os.PathLike[str],
        prefix: str,
        options: SyncOptions | None = None,
        *,
        config: TransferConfig | None = None,
        engine_factory: EngineFactory,
        subscribers: Sequence[Subscriber] = (),
        plan_out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config or TransferConfig()
        # HEADs, listing pages and deletes share the job's limiter with the uploads
        self.store = store if isinstance(store, LimitedStore) else LimitedStore.for_config(
            store, self.config, clock=clock)
        self.source_dir = os.fspath(source_dir)
        self.prefix = sync_prefix(prefix)
        self.options = options or SyncOptions()
        self.subscribers = tuple(subscribers)
        self.plan_out = plan_out
        self._engine_factory = engine_factory
        self.rules = PlanRules(
            strategy=self.options.strategy,
            prefix=self.prefix,
            delete=self.options.delete,
            filter=self.options.filter,
            shard=self.options.shard if self.options.shard is not None and self.options.shard.count > 1 else None,
            allow_dot_segments=self.config.allow_dot_segments,
        )
        self._collector = SummaryCollector(clock)
        self._on_result = [s.on_result for s in (self._collector, *self.subscribers)]
        self._on_retry = [s.on_retry for s in (self._collector, *self.subscribers)]
        self._retrier = Retrier(self.config.retry, clock=clock, sleep=sleep, rng=rng, on_retry=self._retried)
        self._aborted: BulkputError | None = None
        self._stopping = False
        self._engine: Engine | None = None
        self._planner: asyncio.Task[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.deletes_planned = 0
        self.summary: JobSummary | None = None

    # --- public ---------------------------------------------------------------------------

    async def run(self) -> JobSummary:
        for subscriber in self.subscribers:
            subscriber.on_start(None, None)
        self._collector.on_start(None, None)
        walk_options = WalkOptions(
            follow_symlinks=self.options.follow_symlinks,
            normalize=self.options.normalize,
            filter=self.options.filter,
            report_excluded=True,
            sort_memory_entries=self.options.sort_memory_entries,
            temp_dir=self.options.temp_dir,
        )
        walk_tree(self.source_dir, walk_options)  # a missing or non-directory source: UsageError now
        self._walk_options = walk_options
        self._pool = ThreadPoolExecutor(max(2, min(8, self.config.max_open_files)),
                                        thread_name_prefix="bulkput-sync")
        engine_summary: JobSummary | None = None
        try:
            refused = await self._check_max_delete()
            if refused is None:
                with tempfile.TemporaryFile(dir=self.options.temp_dir, prefix="bulkput-deletes-") as spool:
                    engine_summary = await self._main_pass(spool)
                    if self._may_delete(engine_summary):
                        await self._send_deletes(spool)
        finally:
            self._pool.shutdown(wait=False, cancel_futures=True)
        summary = self._collector.summary(aborted=self._aborted, interrupted=self._stopping)
        if engine_summary is not None:
            summary.merge(engine_summary)
            summary.elapsed = max(summary.elapsed, engine_summary.elapsed)
        self.summary = summary
        for subscriber in self.subscribers:
            subscriber.on_done(summary)
        return summary

    @property
    def aborted(self) -> BulkputError | None:
        """What stopped the job, if anything did yet (the sync's own cause, else the engine's)."""
        if self._aborted is not None:
            return self._aborted
        return self._engine.aborted if self._engine is not None else None

    def stop(self) -> None:
        """SIGINT/SIGTERM: plan nothing more, let the engine finish what is in flight, delete nothing."""
        self._stopping = True
        if self._planner is not None:
            self._planner.cancel()
        if self._engine is not None:
            self._engine.stop()

    # --- passes ---------------------------------------------------------------------------

    async def _check_max_delete(self) -> BulkputError | None:
        """With --delete --max-delete N (not a dry run): count the deletes first, refuse beyond N."""
        limit = self.options.max_delete
        if not self.options.delete or limit is None or self.options.dry_run:
            return None
        count = 0
        try:
            pairs = merge_join(self._local_items(), self._listing(), self.prefix)
            async with contextlib.aclosing(pairs):
                async for pair in pairs:
                    if pair.local is None and plan_pair(pair, self.rules).action is PlanAction.DELETE:
                        count += 1
                        if count > limit:
                            break
        except BulkputError as error:
            self._aborted = error
            return error
        except Exception as error:  # a bug must not pass for "nothing to delete"
            self._aborted = UnexpectedError.during("counting the deletes", error)
            return self._aborted
        if count > limit:
            self._aborted = MaxDeleteExceeded(
                f"refusing to delete more than --max-delete {limit} objects under "
                f"{self.prefix or 'the bucket'} (at least {count} have no local file); nothing was changed",
                limit=limit, count=count)
            return self._aborted
        return None

    async def _main_pass(self, spool: IO[bytes]) -> JobSummary | None:
        concurrency = self.config.request_slots
        self._uploads: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency * 2)
        self._resolve: asyncio.Queue[Any] = asyncio.Queue(maxsize=concurrency * 2)
        self._spool = spool
        resolvers = [asyncio.create_task(self._resolve_guarded()) for _ in range(concurrency)]
        engine_task: asyncio.Task[JobSummary] | None = None
        if not self.options.dry_run:
            self._engine = self._engine_factory([_Forward(s) for s in self.subscribers])
            engine_task = asyncio.create_task(self._engine.run(self._feed()))
        self._planner = asyncio.create_task(self._plan_all())
        try:
            # Plan everything, then let the resolvers finish; stop early if the engine ends
            # first (it aborted), since nobody would read the upload queue any more.
            if not await self._until_engine_ends(self._planner, engine_task):
                self._planner.cancel()
            await asyncio.gather(self._planner, return_exceptions=True)
            planned_all = not self._planner.cancelled() and self._aborted is None
            if planned_all:
                for _ in resolvers:
                    await self._resolve.put(_STOP)  # resolvers read until they see it
                drained = asyncio.ensure_future(asyncio.gather(*resolvers, return_exceptions=True))
                await self._until_engine_ends(drained, engine_task)
            for task in resolvers:
                task.cancel()
            await asyncio.gather(*resolvers, return_exceptions=True)
            if engine_task is None:
                return None
            while not engine_task.done():
                try:
                    self._uploads.put_nowait(_STOP)
                    break
                except asyncio.QueueFull:
                    await asyncio.wait({engine_task}, timeout=0.05)
            return await engine_task
        finally:
            for task in resolvers:
                task.cancel()
            if engine_task is not None and not engine_task.done():
                engine_task.cancel()

    @staticmethod
    async def _until_engine_ends(work: asyncio.Future[Any], engine_task: asyncio.Task[Any] | None) -> bool:
        """Wait for ``work``; False when the engine ended first (``work`` is left running)."""
        if engine_task is None:
            await asyncio.wait({work})
            return True
        await asyncio.wait({work, engine_task}, return_when=asyncio.FIRST_COMPLETED)
        return work.done()

    async def _feed(self) -> AsyncIterator[UploadItem]:
        while True:
            item = await self._uploads.get()
            if item is _STOP:
                return
            yield item

    async def _plan_all(self) -> None:
        try:
            async for pair in merge_join(self._local_items(), self._listing(), self.prefix):
                await self._handle(plan_pair(pair, self.rules))
        except BulkputError as error:
            # the listing failed after its retries, or an order check: no deletes, exit 3
            self._aborted = self._aborted or error
        except Exception as error:  # a plan cut short must not end as complete
            self._aborted = self._aborted or UnexpectedError.during("planning the sync", error)

    async def _handle(self, entry: PlanEntry) -> None:
        action = entry.action
        if action is PlanAction.IGNORE:
            return
        if action is PlanAction.RESOLVE:
            await self._resolve.put(entry)
            return
        if self.plan_out is not None:
            self._print_plan(entry)
        if action is PlanAction.UPLOAD:
            if self.options.dry_run:
                self._emit_entry(entry, Status.PLANNED)
            else:
                await self._uploads.put(self._upload_item(entry))
        elif action is PlanAction.SKIP:
            self._emit_entry(entry, Status.SKIPPED)
        elif action is PlanAction.DELETE:
            self.deletes_planned += 1
            if self.options.dry_run:
                self._emit_entry(entry, Status.PLANNED)
            else:
                key_bytes = (entry.key or "").encode("utf-8")
                self._spool.write(len(key_bytes).to_bytes(4, "big") + key_bytes)
        elif action is PlanAction.FAIL:
            self._emit_entry(entry, Status.FAILED)

    async def _resolve_guarded(self) -> None:
        """A resolver whose unexpected exception aborts the sync (its entry would be lost)."""
        try:
            await self._resolve_loop()
        except Exception as error:  # see _plan_all
            self._aborted = self._aborted or UnexpectedError.during("comparing files with the store", error)
            if self._planner is not None:
                self._planner.cancel()

    async def _resolve_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            entry = await self._resolve.get()
            if entry is _STOP:
                return
            headed: ObjectInfo | None = None
            md5_hex: str | None = None
            try:
                while entry.action is PlanAction.RESOLVE:
                    assert entry.decision is not None and entry.local is not None
                    if entry.decision.action is Action.HEAD:
                        info = await self._head(entry.key or "")
                        if info is None:  # gone since the listing: a new upload
                            entry.action, entry.reason, entry.remote = PlanAction.UPLOAD, Reason.NEW, None
                            break
                        headed = info
                    else:
                        path = entry.local.path
                        digest, _size = await loop.run_in_executor(
                            self._pool, md5_file, path, self.config.chunk_size)
                        md5_hex = digest.hex()
                    decide_entry(entry, self.rules.strategy, headed=headed, md5_hex=md5_hex)
                entry.md5_hex = md5_hex
            except OSError as exc:
                error = LocalInputError(f"cannot read {entry.local.path if entry.local else ''}: "
                                        f"{exc.strerror or exc}", key=entry.key,
                                        path=entry.local.path if entry.local else None)
                entry.action, entry.reason, entry.error = PlanAction.FAIL, error.code, error
            except BulkputError as error:
                if error.fatal_for_job:
                    # plan nothing more; what the engine holds finishes (or meets the same error)
                    self._aborted = self._aborted or error
                    if self._planner is not None:
                        self._planner.cancel()
                    return
                entry.action, entry.reason, entry.error = PlanAction.FAIL, error.code, error
            await self._handle(entry)

    def _retried(self, key: str, error: BulkputError) -> None:
        for callback in self._on_retry:
            callback(key, error)

    async def _head(self, key: str) -> ObjectInfo | None:
        info, _attempts = await self._retrier.call(key, lambda: self.store.head_object(key))
        return info

    def _may_delete(self, engine_summary: JobSummary | None) -> bool:
        if self.options.dry_run:
            limit = self.options.max_delete
            if self.options.delete and limit is not None and self.deletes_planned > limit:
                self._aborted = self._aborted or MaxDeleteExceeded(
                    f"the plan deletes {self.deletes_planned} objects, more than --max-delete {limit}: "
                    "a real run would refuse and change nothing", limit=limit, count=self.deletes_planned)
            return False
        if self._aborted is not None or self._stopping or not self.deletes_planned:
            return False
        if engine_summary is not None and (engine_summary.aborted is not None or engine_summary.interrupted):
            return False
        limit = self.options.max_delete
        if limit is not None and self.deletes_planned > limit:
            # the tree changed between the counting pass and this one
            self._aborted = MaxDeleteExceeded(
                f"refusing to delete {self.deletes_planned} objects: more than --max-delete {limit}; "
                "nothing was deleted", limit=limit, count=self.deletes_planned)
            return False
        return True

    async def _send_deletes(self, spool: IO[bytes]) -> None:
        spool.seek(0)
        batch: list[str] = []
        while True:
            head = spool.read(4)
            if len(head) == 4:
                batch.append(spool.read(int.from_bytes(head, "big")).decode("utf-8"))
            if batch and (len(batch) >= DELETE_BATCH or len(head) < 4):
                if not await self._delete_batch(batch):
                    return
                batch = []
            if len(head) < 4:
                return

    async def _delete_batch(self, keys: list[str]) -> bool:
        try:
            failures, _attempts = await self._retrier.call(keys[0], lambda: self.store.delete_objects(keys))
        except BulkputError as error:
            for key in keys:
                self._emit(ObjectResult(key, None, Status.FAILED, error_code=error.code,
                                        message=f"{key}: delete failed: {error.one_line()}"))
            if error.fatal_for_job:
                self._aborted = self._aborted or error
                return False
            return True
        failed = {failure.key: failure for failure in failures}
        for key in keys:
            failure = failed.get(key)
            if failure is None:
                self._emit(ObjectResult(key, None, Status.DELETED, reason=Reason.NO_LOCAL))
            else:
                self._emit(ObjectResult(key, None, Status.FAILED, error_code=failure.code,
                                        message=f"{key}: delete failed: {failure.code}: {failure.message}"))
        return True

    # --- sources --------------------------------------------------------------------------

    async def _local_items(self) -> AsyncIterator[WalkItem]:
        """The walk, run in a worker thread a batch at a time, so disk waits never block the loop."""
        iterator = walk_tree(self.source_dir, self._walk_options)
        while True:
            try:
                batch = await next_batch(iterator, WALK_BATCH, self._pool)
            except BulkputError:
                raise
            except Exception as error:  # named: the walk, not the listing
                raise UnexpectedError.during("the local walk", error) from error
            if not batch:
                return
            for item in batch:
                yield item

    async def _listing(self) -> AsyncIterator[ObjectInfo]:
        """The listing, read ahead by one page in a task, so the next page's request overlaps
        with planning the current one (at most ``LISTING_READ_AHEAD`` objects held)."""
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=2)

        async def read_ahead() -> None:
            try:
                async for chunk in listing_chunks(
                        self.store, self.prefix, self._retrier, chunk_size=LISTING_READ_AHEAD // 2):
                    await queue.put(chunk)
                await queue.put(_STOP)
            except BulkputError as error:  # handed to the reader, who raises it in its place
                await queue.put(error)
            except Exception as error:  # named: the listing, not the walk
                await queue.put(UnexpectedError.during("the destination listing", error))

        reader = asyncio.create_task(read_ahead())
        try:
            while True:
                chunk = await queue.get()
                if chunk is _STOP:
                    return
                if isinstance(chunk, Exception):
                    raise chunk
                for info in chunk:
                    yield info
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    # --- results --------------------------------------------------------------------------

    def _upload_item(self, entry: PlanEntry) -> UploadItem:
        local = entry.local
        assert local is not None and entry.key is not None
        md5_hex = entry.md5_hex
        return UploadItem(
            path=local.path,
            key=entry.key,
            size=local.size,
            mtime_ns=local.mtime_ns,
            metadata={MTIME_METADATA: format_mtime(local.mtime_ns)},
            md5=base64.b64encode(bytes.fromhex(md5_hex)).decode("ascii") if md5_hex else None,
        )

    def _emit_entry(self, entry: PlanEntry, status: Status) -> None:
        local, remote, error = entry.local, entry.remote, entry.error
        if status is Status.PLANNED:
            reason = f"{entry.action.value}: {entry.reason}"
        else:
            reason = entry.reason
        self._emit(ObjectResult(
            key=entry.key or "",
            path=local.path if local is not None else (error.path if error is not None else None),
            status=status,
            size=local.size if local is not None else (remote.size if remote is not None else None),
            etag=remote.etag if remote is not None and status is not Status.FAILED else None,
            error_code=error.code if error is not None and status is Status.FAILED else None,
            message=_message(entry.key, error) if error is not None else None,
            reason=None if status is Status.FAILED else reason,
        ))

    def _emit(self, result: ObjectResult) -> None:
        for callback in self._on_result:
            callback(result)

    def _print_plan(self, entry: PlanEntry) -> None:
        assert self.plan_out is not None
        subject = entry.key if entry.key is not None else (entry.error.path or "" if entry.error else "")
        detail = entry.reason
        if entry.action is PlanAction.FAIL and entry.error is not None:
            detail = _message(None, entry.error)
            if detail.startswith(f"{subject}: "):
                detail = detail[len(subject) + 2:]  # the line names it already
        self.plan_out.write(f"{entry.action.value:<7} {printable(subject)}  ({printable(detail, backslashes=False)})\n")


def _message(key: str | None, error: BulkputError) -> str:
    """The error's line, under the object's full key: the walk's errors carry keys relative
    to the source folder, which would name the object twice (``p/a: a: ...``)."""
    if isinstance(error, LocalInputError):
        text = " ".join(error.message.split())
        subject = key if key is not None else error.path
        return f"{subject}: {text}" if subject else text
    return error.one_line()


_STOP = object()
DELETE_BATCH = 1000
WALK_BATCH = 512
LISTING_READ_AHEAD = 2000
