"""The Python API for batch jobs that are code, not a command line.

::

    from bulkput.api import JobSpec, StoreSettings, Uploader

    spec = JobSpec("s3://bucket/prefix", store=StoreSettings(endpoint="http://127.0.0.1:9000"))
    async with Uploader(spec) as up:
        async for result in up.upload(["a.txt", ("local/b.bin", "b.bin")]):
            print(result.key, result.status.value)
    print(up.summary.exit_code)

A job that aborts (where the command line exits 3: bad credentials, a missing bucket, an
unreachable endpoint, a journal that cannot be written) raises
:class:`~bulkput.errors.JobAbortedError` from ``upload`` once its results are out; its
``cause`` is the fatal error and ``summary`` the job's summary.

``up.stop()`` stops the running upload as SIGINT does: no exception;
``up.summary.interrupted`` is true, results with status ``not_started`` (never sent) and
``interrupted`` (in flight, not confirmed) come out for the objects it left, and
``summary.not_started`` / ``summary.interrupted_objects`` count them (``unread_input``: the
input had more than it read). With a journal (``JobSpec(journal=JournalSettings(...))``), the
next run of the same items skips what was stored.

A :class:`~bulkput.job.spec.JobSpec` says where the job goes and how (store settings,
:class:`~bulkput.config.TransferConfig`, journal, shard, default object headers, dry run), as
on the command line; a plain destination URL takes every default. Items may be
:class:`~bulkput.items.UploadItem` (``key`` is the full key, used as given), plain paths (stored
as ``prefix/<file name>``) or ``(path, key)`` pairs (stored as ``prefix/<key>``), from a sync or
an async iterable. Results come out as objects finish, in completion order; the job's
:class:`~bulkput.job.summary.JobSummary` is ``up.summary`` once the iteration ends.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from bulkput.config import TransferConfig
from bulkput.errors import BulkputError, JobAbortedError
from bulkput.items import ObjectResult, UploadItem
from bulkput.job.run import Job, JobControl
from bulkput.job.shard import Shard
from bulkput.job.spec import JobSpec, JournalSettings, StoreSettings, explicit_credentials
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.remote.credentials import CredentialSource
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.store import ObjectHeaders, ObjectStore
from bulkput.remote.target import Target

if TYPE_CHECKING:
    from bulkput.job.sync.strategies import Strategy
    from bulkput.local.filters import Filter

__all__ = [
    "JobSpec",
    "JournalSettings",
    "StoreSettings",
    "TransferConfig",
    "Uploader",
    "open_destination",
    "sync_dir",
    "to_item",
]

ItemLike = UploadItem | BulkputError | str | os.PathLike[str] | tuple[str, str]


async def open_destination(
    dest: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    addressing: str = "auto",
    signature_version: str = "v4",
    credentials: CredentialSource | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    config: TransferConfig | None = None,
    env: Mapping[str, str] | None = None,
    customer_key: CustomerKey | None = None,
    request_payer: bool = False,
) -> tuple[Target, ObjectStore]:
    """Parse ``dest`` and open its store (the caller closes it), for scripts and tests that
    talk to a store directly; jobs open theirs through :class:`Uploader` or ``run_job``. The
    keyword arguments are :class:`StoreSettings`' fields, keys given loose or as
    ``credentials``."""
    from bulkput.job.run import open_destination as open_store_of

    target = Target.parse(dest)
    settings = _store_settings(endpoint, region, addressing, signature_version, credentials,
                               access_key, secret_key, session_token, profile, customer_key,
                               request_payer)  # fmt: skip
    return target, open_store_of(target, settings, config or TransferConfig(), env)


def _store_settings(
    endpoint: str | None,
    region: str | None,
    addressing: str,
    signature_version: str,
    credentials: CredentialSource | None,
    access_key: str | None,
    secret_key: str | None,
    session_token: str | None,
    profile: str | None,
    customer_key: CustomerKey | None,
    request_payer: bool,
) -> StoreSettings:
    """The store keywords of :func:`open_destination` and :func:`sync_dir`, as settings (keys
    given loose or as ``credentials``)."""
    return StoreSettings(
        endpoint=endpoint,
        region=region,
        addressing=addressing,  # type: ignore[arg-type]
        signature_version=signature_version,  # type: ignore[arg-type]
        credentials=credentials or explicit_credentials(access_key, secret_key, session_token),
        profile=profile,
        customer_key=customer_key,
        request_payer=request_payer,
    )


def to_item(entry: ItemLike, target: Target) -> UploadItem | BulkputError:
    """One API input as an engine item (see the module docstring for the key rules)."""
    if isinstance(entry, (UploadItem, BulkputError)):
        return entry
    if isinstance(entry, tuple):
        path, relative = entry
        return UploadItem(path=os.fspath(path), key=target.key_for(relative.lstrip("/")))
    if isinstance(entry, (str, os.PathLike)):
        path = os.fspath(entry)
        return UploadItem(path=path, key=target.key_for(Path(path).name))
    raise TypeError(f"cannot upload {entry!r}: expected a path, (path, key) or UploadItem")


class _ResultQueue(Subscriber):
    """A subscriber that hands results to the ``upload`` iterator as they are reported."""

    def __init__(self) -> None:
        self.results: deque[ObjectResult] = deque()
        self.ready = asyncio.Event()

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)
        self.ready.set()


class Uploader:
    """An async context manager bound to one job; ``upload`` may be called repeatedly, each
    call one run through the same store connections and journal.

    ``spec`` is a :class:`JobSpec` or a destination URL (every default). ``subscribers``
    (progress, reports) see every run; ``env`` replaces ``os.environ`` where the endpoint and
    credentials are looked up.
    """

    def __init__(
        self,
        spec: JobSpec | str,
        *,
        subscribers: Sequence[Subscriber] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = spec if isinstance(spec, JobSpec) else JobSpec(spec)
        self.target = self.spec.target
        self.subscribers = tuple(subscribers)
        self.summary: JobSummary | None = None
        self._job = Job(self.spec, env=env)
        self._control: JobControl | None = None

    @property
    def store(self) -> ObjectStore:
        """The open store (inside ``async with``)."""
        return self._job.store

    async def __aenter__(self) -> Uploader:
        await self._job.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._job.close()

    def stop(self) -> None:
        """Stop the running upload cleanly (what SIGINT does on the command line)."""
        if self._control is not None:
            self._control.stop()

    async def upload(
        self, items: Iterable[ItemLike] | AsyncIterable[ItemLike]
    ) -> AsyncIterator[ObjectResult]:
        """Upload ``items``; yield each object's result as it finishes."""
        queue = _ResultQueue()
        control = self._control = JobControl()
        job = asyncio.create_task(
            self._job.run(self._engine_items(items), (queue, *self.subscribers), control)
        )
        try:
            while True:
                while queue.results:
                    yield queue.results.popleft()
                if job.done():
                    break
                queue.ready.clear()
                waiter = asyncio.ensure_future(queue.ready.wait())
                await asyncio.wait({job, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
            self.summary = job.result()
            while queue.results:
                yield queue.results.popleft()
            if control.aborted is not None:  # where the command line exits 3
                raise JobAbortedError(control.aborted, self.summary)
        finally:
            if not job.done():  # the caller stopped iterating: stop the job cleanly
                control.stop()
                await asyncio.shield(job)
            self._control = None

    def _engine_items(
        self, items: Iterable[ItemLike] | AsyncIterable[ItemLike]
    ) -> Iterable[UploadItem | BulkputError] | AsyncIterable[UploadItem | BulkputError]:
        target = self.target
        if isinstance(items, AsyncIterable):

            async def converted() -> AsyncIterator[UploadItem | BulkputError]:
                async for entry in items:
                    yield to_item(entry, target)

            return converted()
        return (to_item(entry, target) for entry in items)


async def sync_dir(
    source_dir: str | os.PathLike[str],
    dest: str,
    *,
    strategy: Strategy | str = "size+mtime",
    delete: bool = False,
    max_delete: int | None = None,
    dry_run: bool = False,
    filter: Filter | None = None,
    follow_symlinks: bool = False,
    normalize: bool = True,
    shard: Shard | str | None = None,
    config: TransferConfig | None = None,
    subscribers: Sequence[Subscriber] = (),
    defaults: ObjectHeaders | None = None,
    plan_out: TextIO | None = None,
    control: JobControl | None = None,
    endpoint: str | None = None,
    region: str | None = None,
    addressing: str = "auto",
    signature_version: str = "v4",
    credentials: CredentialSource | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
    customer_key: CustomerKey | None = None,
    request_payer: bool = False,
) -> JobSummary:
    """Sync ``source_dir`` to ``dest`` (``s3://bucket/prefix``, ``oss://...``, ``bos://...``),
    as ``bulkput sync`` does: every option value checked before any request, then
    :meth:`bulkput.job.run.Job.sync`. The store keywords are :func:`open_destination`'s.
    Returns the :class:`~bulkput.job.summary.JobSummary`; ``summary.exit_code`` is the command
    line's exit code. ``plan_out`` receives one line per planned action (the ``--dry-run``
    listing); ``control.stop()`` stops it as SIGINT does.
    """
    from bulkput.job.sync.run import SyncOptions
    from bulkput.job.sync.strategies import STRATEGIES

    chosen_shard = Shard.parse(shard) if isinstance(shard, str) else shard
    spec = JobSpec(
        dest,
        store=_store_settings(endpoint, region, addressing, signature_version, credentials,
                              access_key, secret_key, session_token, profile, customer_key,
                              request_payer),
        transfer=config or TransferConfig(),
        shard=chosen_shard,
        defaults=defaults or ObjectHeaders(),
        filters=filter,
        dry_run=dry_run,
    )  # fmt: skip
    options = SyncOptions(
        strategy=STRATEGIES[strategy]() if isinstance(strategy, str) else strategy,
        delete=delete, max_delete=max_delete, dry_run=dry_run, filter=filter,
        follow_symlinks=follow_symlinks, normalize=normalize, shard=chosen_shard,
    )  # fmt: skip
    async with Job(spec, env=env) as job:
        return await job.sync(source_dir, options, subscribers, control, plan_out=plan_out)
