"""The one assembly of a job: a :class:`~bulkput.job.spec.JobSpec` and items in, a summary out.

::

    summary = await run_job(spec, items, [ProgressDisplay(...), ReportWriter(...)])

Every entry point goes through here (``bulkput put`` and ``sync``, :class:`bulkput.api.Uploader`
and :func:`bulkput.api.sync_dir`, ``bulkput demo``, the Dask shards, the benchmarks), so there is one place that resolves the
endpoint and credentials and opens the store, one way to open the journal (with the job's
identity recorded in it), one construction of the :class:`~bulkput.job.engine.Engine`, and one
order of closing: the journal (its last batch committed), then the store.

:class:`Job` is the same assembly held open across several runs (the API's ``Uploader`` sends
batch after batch through one connection pool and journal; :meth:`Job.sync` plans against the
store the job opened). A :class:`JobControl` stops a running job cleanly and says why it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, Sequence, Sized
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from bulkput.errors import BulkputError, UsageError
from bulkput.items import UploadItem
from bulkput.job.spec import JobSpec, StoreSettings
from bulkput.job.subscriber import Subscriber
from bulkput.remote.credentials import CredentialSource
from bulkput.remote.target import Target

if TYPE_CHECKING:
    from bulkput.config import TransferConfig
    from bulkput.job.engine import Engine
    from bulkput.job.journal import Journal
    from bulkput.job.journal_protocol import JobJournal
    from bulkput.job.limited_store import LimitedStore
    from bulkput.job.shard import Shard
    from bulkput.job.summary import JobSummary
    from bulkput.job.sync.run import SyncOptions, SyncRun
    from bulkput.remote.retry import AdaptiveLimiter
    from bulkput.remote.store import ObjectHeaders, ObjectStore
    from bulkput.remote.target import Endpoint

Items = Iterable[UploadItem | BulkputError] | AsyncIterable[UploadItem | BulkputError]


def resolve_store_settings(
    target: Target, settings: StoreSettings, env: Mapping[str, str] | None = None
) -> tuple[str | None, str | None, CredentialSource]:
    """Endpoint URL, region and credentials for ``target``: the settings first, then the
    environment and the tools' files (as each provider's own tools read them)."""
    from bulkput.remote import credentials as creds_module

    env = os.environ if env is None else env
    endpoint, region = settings.endpoint, settings.region
    if endpoint is None:
        endpoint = creds_module.resolve_endpoint_from_env(
            target.scheme, profile=settings.profile, env=env
        )
    if region is None:
        region = creds_module.resolve_region_from_env(
            target.scheme, profile=settings.profile, env=env
        )
    credentials = settings.credentials
    if credentials is None:
        credentials = creds_module.resolve_credentials(
            target.scheme, profile=settings.profile, env=env
        )
    return endpoint, region, credentials


def open_destination(
    target: Target,
    settings: StoreSettings,
    config: TransferConfig,
    env: Mapping[str, str] | None = None,
    *,
    endpoint: Endpoint | None = None,
) -> ObjectStore:
    """The store of ``target``'s bucket (the caller closes it). Raises UsageError (bad settings,
    see :func:`bulkput.job.checks.check_store`; no credentials) before any request.
    ``endpoint``: the one ``check_store`` returned, when the caller checked already."""
    from bulkput.job.checks import check_store
    from bulkput.remote.client import open_store

    if endpoint is None:
        endpoint = check_store(target, settings, config, env)
    credentials = settings.credentials
    if credentials is None:
        from bulkput.remote.credentials import resolve_credentials

        credentials = resolve_credentials(
            target.scheme, profile=settings.profile, env=os.environ if env is None else env
        )
    return open_store(
        target,
        endpoint=endpoint,
        credentials=credentials,
        config=config,
        signature_version=settings.signature_version,
        customer_key=settings.customer_key,
        request_payer=settings.request_payer,
    )


def open_job_store(spec: JobSpec, env: Mapping[str, str] | None = None) -> LimitedStore:
    """The store of ``spec``'s destination under the job's limits (its concurrency limit and
    open-file slots), every option value checked first; the caller closes it. Call it on the
    event loop the job runs on (the store's connections belong to it)."""
    from bulkput.job.checks import check_spec
    from bulkput.job.limited_store import LimitedStore

    endpoint = check_spec(spec, env)  # every option value, before any request
    opened = open_destination(spec.target, spec.store, spec.transfer, env, endpoint=endpoint)
    return LimitedStore.for_config(opened, spec.transfer)


def open_journal(spec: JobSpec, store: ObjectStore) -> Journal | None:
    """The job's journal, or None (no journal asked for, or a dry run, which records nothing).
    Its name covers the store (dialect, endpoint, bucket, prefix, access key id), the source
    and the shard.

    Called before the first upload: an unwritable state directory raises
    :class:`~bulkput.errors.JournalError` (exit 3) here, not halfway through the job."""
    settings = spec.journal
    if settings.source is None or spec.dry_run:
        return None
    from bulkput.job.journal import open_job_journal
    from bulkput.job.resume import store_identity
    from bulkput.remote.client import HttpObjectStore

    if not isinstance(store, HttpObjectStore):
        raise UsageError("a journal needs the store bulkput opens (its identity names the journal)")
    return open_job_journal(
        store_identity(store, spec.target),
        settings.source,
        shard=spec.shard,
        state_dir=settings.state_dir,
        restart=settings.restart,
    )


@dataclass(frozen=True, slots=True)
class ConcurrencyState:
    """The job's requests in flight as the progress display shows them: the limit now, why it
    last changed (the adaptive controller's reason, or the pinned ``--concurrency``), and how
    many are in flight."""

    limit: int
    reason: str
    in_flight: int


class JobControl:
    """Stops a job and tells how it ended; give one to :func:`run_job`, :meth:`Job.run` or
    :meth:`Job.sync`.

    ``stop()`` may come before the engine starts (the job then sends nothing and ends
    interrupted) or while it runs (no new objects, requests in flight finish, exit 130); a
    sync also plans nothing more and deletes nothing.
    """

    def __init__(self) -> None:
        self._engine: Engine | None = None
        self._sync: SyncRun | None = None
        self._stop_requested = False
        self._abort_error: BulkputError | None = None
        self.journal_error: BulkputError | None = None  # closing the journal failed

    def stop(self) -> None:
        self._stop_requested = True
        if self._sync is not None:
            self._sync.stop()  # its engine's too
        elif self._engine is not None:
            self._engine.stop()

    def abort(self, error: BulkputError) -> None:
        """Stop the job at once because a part of it outside the engine failed (exit 3);
        before the engine starts, it starts aborted. Call it on the loop's thread."""
        self._abort_error = self._abort_error or error
        if self._engine is not None:
            self._engine.abort(error)

    def abort_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[BulkputError], None]:
        """:meth:`abort` for another thread to call (the counting pass's): run on ``loop``."""

        def abort(error: BulkputError) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: the job is over
                loop.call_soon_threadsafe(self.abort, error)

        return abort

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stop_requested

    @property
    def aborted(self) -> BulkputError | None:
        """The job-fatal error that stopped the job (auth, missing bucket, journal, a sync's
        ``--max-delete`` or refused listing...), if any."""
        if self._sync is not None and (cause := self._sync.aborted) is not None:
            return cause
        return self._engine.aborted if self._engine is not None else self._abort_error

    @property
    def limiter(self) -> AdaptiveLimiter | None:
        """The running job's AIMD concurrency limiter (None before it starts), to watch it."""
        return self._engine.limiter if self._engine is not None else None

    def concurrency(self) -> ConcurrencyState | None:
        """The limit on requests in flight and why (None before the job starts)."""
        limiter = self.limiter
        if limiter is None:
            return None
        return ConcurrencyState(limiter.limit, limiter.reason, limiter.in_flight)

    def _attach(self, engine: Engine) -> None:
        self._engine = engine
        if self._abort_error is not None:
            engine.abort(self._abort_error)
        elif self._stop_requested:
            engine.stop()

    def _attach_sync(self, run: SyncRun) -> None:
        self._sync = run
        if self._stop_requested:
            run.stop()


class Job:
    """A job's store and journal, open for one or more runs; ``async with Job(spec) as job``.

    Every request of the job, every run's uploads and sync's HEAD, LIST and DELETE alike, goes
    through one :class:`~bulkput.job.limited_store.LimitedStore` (:attr:`store`), so they share
    one concurrency limit that throttling lowers. Opening checks a resume against the store
    (see :func:`bulkput.job.resume.start_resume`);
    closing marks the journal complete when every run stored every object, so the next run of
    the same job uploads again instead of resuming a finished one. ``env`` replaces
    ``os.environ`` where the endpoint and credentials are looked up.
    """

    def __init__(
        self,
        spec: JobSpec,
        *,
        env: Mapping[str, str] | None = None,
        store: LimitedStore | None = None,
    ) -> None:
        self.spec = spec
        self._env = env
        # A store open already for this spec (open_job_store's, kept by a Dask worker for
        # every partition it runs): the job uses it and leaves it open.
        self._given_store = store
        self._store: LimitedStore | None = None
        self.journal: Journal | None = None
        self._notes: Subscriber | None = None  # the journal's lines in the summary
        self._summaries: list[JobSummary] = []
        # Whether the objects this job writes have their MD5 as ETag (resume from the store
        # reads the md5 metadata of the others).
        self._etag_is_md5 = True
        # Each run lists its slice and the journal skips only what that listing confirms
        # (one listing, not a second one of the whole prefix to check the journal).
        self._resumes_from_store = spec.resume_from_store and not spec.dry_run

    @property
    def store(self) -> LimitedStore:
        """The job's store, every request under the job's limits."""
        if self._store is None:
            raise RuntimeError("use the Job inside 'async with'")
        return self._store

    async def __aenter__(self) -> Job:
        spec = self.spec
        self._store = self._given_store or open_job_store(spec, self._env)
        opened = self._store.store
        from bulkput.remote.client import HttpObjectStore

        if isinstance(opened, HttpObjectStore):
            self._etag_is_md5 = opened.dialect.etag_is_md5_for(
                spec.defaults, spec.store.customer_key is not None
            )
        try:
            self.journal = open_journal(spec, opened)
            if self.journal is not None:
                from bulkput.job.resume import start_resume

                self._notes = await start_resume(
                    self.journal,
                    self._store,
                    spec.target.prefix,
                    verify=spec.journal.verify,
                    retry=spec.transfer.retry,
                    store_resume=self._resumes_from_store,
                )
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self, control: JobControl | None = None) -> None:
        """Mark the journal complete if every run stored everything, close it (its last batch
        committed), then close the store. A journal that fails to close is kept in
        ``control.journal_error`` (raised without a control): every object reported stored
        is on the server, but a later run may send some again."""
        journal, self.journal = self.journal, None
        try:
            if journal is not None:
                summaries = self._summaries
                if summaries and all(summary.exit_code == 0 for summary in summaries):
                    from bulkput.job.resume import finish_journal

                    await finish_journal(journal, summaries[-1])
                await asyncio.get_running_loop().run_in_executor(None, journal.close)
        except BulkputError as error:
            if control is None:
                raise
            control.journal_error = error
        finally:
            store, self._store = self._store, None
            if store is not None and store is not self._given_store:
                await store.close()

    async def run(
        self,
        items: Items,
        subscribers: Sequence[Subscriber] = (),
        control: JobControl | None = None,
    ) -> JobSummary:
        """Upload ``items`` through this job's store and journal; with the spec's
        ``resume_from_store``, what the store already holds is skipped
        (:func:`bulkput.job.store_resume.skip_stored`)."""
        spec = self.spec
        # a list's length bounds the senders the engine starts (a partition of 5 objects
        # needs 5, not the concurrency ceiling's 512)
        most_objects = len(items) if isinstance(items, Sized) else None
        if self._resumes_from_store:
            from bulkput.job.store_resume import check_listing, skip_stored

            await check_listing(self.store, spec.target.prefix, spec.transfer.retry)
            items = skip_stored(
                items,
                self.store,
                shard=spec.shard,
                etag_is_md5=self._etag_is_md5,
                retry=spec.transfer.retry,
            )
        summary = await self.engine(subscribers, control).run(items, most_objects=most_objects)
        self._summaries.append(summary)
        return summary

    async def sync(
        self,
        source_dir: str | os.PathLike[str],
        options: SyncOptions,
        subscribers: Sequence[Subscriber] = (),
        control: JobControl | None = None,
        *,
        plan_out: TextIO | None = None,
    ) -> JobSummary:
        """Sync ``source_dir`` to the spec's prefix through this job's store
        (:class:`~bulkput.job.sync.run.SyncRun`: planned against one listing, its uploads through
        :meth:`engine` with ``control`` attached, its deletes last). ``plan_out`` receives one
        line per planned action (the ``--dry-run`` listing)."""
        from bulkput.job.sync.run import SyncRun

        spec = self.spec
        run = SyncRun(
            self.store,
            source_dir,
            spec.target.prefix,
            options,
            config=spec.transfer,
            engine_factory=functools.partial(self.engine, control=control),
            subscribers=subscribers,
            plan_out=plan_out,
        )
        if control is not None:
            control._attach_sync(run)
        summary = await run.run()
        self._summaries.append(summary)
        return summary

    def engine(
        self, subscribers: Sequence[Subscriber] = (), control: JobControl | None = None
    ) -> Engine:
        """The job's engine for one run (``control`` attached), with the settings of the spec."""
        spec = self.spec
        if self._notes is not None:  # before the report: its summary line names the journal
            subscribers = (self._notes, *subscribers)
        return build_engine(
            self.store,
            spec.transfer,
            journal=self.journal,
            subscribers=subscribers,
            shard=spec.shard,
            dry_run=spec.dry_run,
            defaults=spec.defaults,
            control=control,
            read_from=this_process_place() if spec.remote else None,
            store_confirms_journal=self._resumes_from_store,
        )


def this_process_place() -> str:
    """``host NAME, working directory DIR``: where this process reads relative paths from."""
    import socket

    return f"host {socket.gethostname()}, working directory {os.getcwd()}"


def build_engine(
    store: ObjectStore,
    config: TransferConfig,
    *,
    journal: JobJournal | None = None,
    subscribers: Sequence[Subscriber] = (),
    shard: Shard | None = None,
    dry_run: bool = False,
    defaults: ObjectHeaders | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    control: JobControl | None = None,
    read_from: str | None = None,
    store_confirms_journal: bool = False,
) -> Engine:
    """The one construction of an :class:`~bulkput.job.engine.Engine` in the library: a job's
    (:meth:`Job.engine`) and sync's uploads, which run against the store sync opened.
    ``clock``, ``sleep`` and ``rng`` go to the retry loop (tests inject them); ``read_from``
    is named in an unreadable file's error (a job run as a remote task);
    ``store_confirms_journal``: the items come from :func:`bulkput.job.store_resume.skip_stored`,
    and the journal skips only what its listing confirms."""
    from bulkput.job.engine import Engine

    engine = Engine(
        store,
        config,
        journal=journal,
        subscribers=subscribers,
        shard=shard,
        dry_run=dry_run,
        defaults=defaults,
        clock=clock,
        sleep=sleep,
        rng=rng,
        read_from=read_from,
        store_confirms_journal=store_confirms_journal,
    )
    if control is not None:
        control._attach(engine)
    return engine


async def run_job(
    spec: JobSpec,
    items: Items,
    subscribers: Sequence[Subscriber] = (),
    *,
    control: JobControl | None = None,
    env: Mapping[str, str] | None = None,
    store: LimitedStore | None = None,
) -> JobSummary:
    """Open the store and the journal of ``spec``, upload ``items``, close both; the summary.
    ``store``: one :func:`open_job_store` opened for this spec, used and left open.

    Errors that stop the job before any upload (a bad endpoint or option, no credentials, an
    unwritable journal) raise :class:`~bulkput.errors.BulkputError`; everything after is in
    the summary (``aborted``, ``interrupted``, per-object results to ``subscribers``).
    """
    job = Job(spec, env=env, store=store)
    await job.__aenter__()
    try:
        return await job.run(items, subscribers, control)
    finally:
        await job.close(control)
