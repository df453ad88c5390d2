"""The Python API for batch jobs that are code, not a command line.

::

    from bulkput.api import Uploader

    async with Uploader("s3://bucket/prefix", endpoint="http://127.0.0.1:9000") as up:
        async for result in up.upload(["a.txt", ("local/b.bin", "b.bin")]):
            print(result.key, result.status.value)
    print(up.summary.exit_code)

Items may be :class:`~bulkput.items.UploadItem` (``key`` is the full key, used as given),
plain paths (stored as ``prefix/<file name>``) or ``(path, key)`` pairs (stored as
``prefix/<key>``), from a sync or an async iterable. Results come out as objects finish, in
completion order; the job's :class:`~bulkput.job.events.JobSummary` is ``up.summary`` once the
iteration ends.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bulkput.config import TransferConfig
from bulkput.errors import BulkputError, UsageError
from bulkput.items import ObjectResult, UploadItem
from bulkput.job.engine import Engine
from bulkput.job.events import JobSummary
from bulkput.job.shard import Shard
from bulkput.job.subscriber import Subscriber
from bulkput.remote.credentials import CredentialSource
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.store import ObjectHeaders, ObjectStore
from bulkput.remote.target import Target

ItemLike = UploadItem | BulkputError | str | os.PathLike[str] | tuple[str, str]


def resolve_store_settings(
    target: Target,
    *,
    endpoint: str | None = None,
    region: str | None = None,
    credentials: CredentialSource | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    session_token: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[str | None, str | None, CredentialSource]:
    """Endpoint URL, region and credentials for ``target``: arguments first, then the
    environment and the tools' files (as each provider's own tools read them)."""
    from bulkput.remote import credentials as creds_module

    env = os.environ if env is None else env
    if endpoint is None and hasattr(creds_module, "resolve_endpoint_from_env"):
        endpoint = creds_module.resolve_endpoint_from_env(target.scheme, profile=profile, env=env)
    if region is None and hasattr(creds_module, "resolve_region_from_env"):
        region = creds_module.resolve_region_from_env(target.scheme, profile=profile, env=env)
    if credentials is None:
        credentials = creds_module.resolve_credentials(
            target.scheme,
            access_key=access_key,
            secret_key=secret_key,
            session_token=session_token,
            profile=profile,
            env=env,
        )
    return endpoint, region, credentials


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
    """Parse ``dest``, resolve endpoint and credentials, open the store (caller closes it)."""
    from bulkput.remote.client import open_store
    from bulkput.remote.target import resolve_endpoint

    config = config or TransferConfig()
    target = Target.parse(dest)
    endpoint_url, region, credentials = resolve_store_settings(
        target,
        endpoint=endpoint,
        region=region,
        credentials=credentials,
        access_key=access_key,
        secret_key=secret_key,
        session_token=session_token,
        profile=profile,
        env=env,
    )
    if signature_version not in ("v1", "v4"):
        raise UsageError(f"--signature-version {signature_version!r}: expected v1 or v4")
    resolved = resolve_endpoint(
        target,
        endpoint_url,
        region,
        addressing,  # type: ignore[arg-type]
        verify_tls=config.verify_tls,
    )
    store = open_store(
        target,
        endpoint=resolved,
        credentials=credentials,
        config=config,
        signature_version=signature_version,
        customer_key=customer_key,
        request_payer=request_payer,
    )
    return target, store


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
    """An async context manager bound to one destination; ``upload`` may be called repeatedly.

    Options: ``endpoint``/``region``/``addressing``/``signature_version`` and the credential
    arguments as on the command line; ``config`` (a :class:`TransferConfig`); ``journal`` (an
    open :class:`bulkput.job.journal.Journal`, or a job name to open the per-job journal in
    ``state_dir``, or None for none); ``shard`` (``Shard`` or ``"K/N"``); ``dry_run``;
    ``defaults`` (job-wide :class:`ObjectHeaders`); ``subscribers`` (progress, reports);
    ``store`` to use an already open store (not closed on exit); ``customer_key`` (a
    :class:`~bulkput.remote.encryption.CustomerKey`) for SSE-C; ``request_payer`` for a
    requester-pays bucket.
    """

    def __init__(
        self,
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
        journal: Any = None,
        state_dir: str | os.PathLike[str] | None = None,
        restart: bool = False,
        shard: Shard | str | None = None,
        dry_run: bool = False,
        defaults: ObjectHeaders | None = None,
        subscribers: Sequence[Subscriber] = (),
        store: ObjectStore | None = None,
        customer_key: CustomerKey | None = None,
        request_payer: bool = False,
    ) -> None:
        self.dest = dest
        self.target = Target.parse(dest)
        self.config = config or TransferConfig()
        self.shard = Shard.parse(shard) if isinstance(shard, str) else shard
        self.dry_run = dry_run
        self.defaults = defaults
        self.subscribers = tuple(subscribers)
        self.summary: JobSummary | None = None
        self._store_options: dict[str, Any] = dict(
            endpoint=endpoint,
            region=region,
            addressing=addressing,
            signature_version=signature_version,
            credentials=credentials,
            access_key=access_key,
            secret_key=secret_key,
            session_token=session_token,
            profile=profile,
            customer_key=customer_key,
            request_payer=request_payer,
        )
        self._journal_option = journal
        self._state_dir = state_dir
        self._restart = restart
        self._journal: Any = None
        self._own_journal = False
        self.store = store
        self._own_store = store is None
        self._engine: Engine | None = None
        self._all_stored = True  # every upload() so far ended with exit 0

    async def __aenter__(self) -> Uploader:
        if self.store is None:
            _, self.store = await open_destination(
                self.dest, config=self.config, **self._store_options
            )
        if isinstance(self._journal_option, str):
            from bulkput.job.journal import Journal, job_id
            from bulkput.job.resume import start_resume, store_identity
            from bulkput.remote.client import HttpObjectStore

            if not isinstance(self.store, HttpObjectStore):
                raise UsageError("journal=NAME needs the store bulkput opens (pass no store=)")
            job = job_id(store_identity(self.store, self.target), self._journal_option, self.shard)
            self._journal = Journal.open(self._state_dir, job, restart=self._restart)
            self._own_journal = True
            await start_resume(
                self._journal, self.store, self.target.prefix, retry=self.config.retry
            )
        else:
            self._journal = self._journal_option
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            if self._own_journal and self._journal is not None:
                if self._all_stored and self.summary is not None:
                    from bulkput.job.resume import finish_journal

                    await finish_journal(self._journal, self.summary)
                await asyncio.get_running_loop().run_in_executor(None, self._journal.close)
        finally:
            if self._own_store and self.store is not None:
                await self.store.close()

    def stop(self) -> None:
        """Stop the running upload cleanly (what SIGINT does on the command line)."""
        if self._engine is not None:
            self._engine.stop()

    async def upload(
        self, items: Iterable[ItemLike] | AsyncIterable[ItemLike]
    ) -> AsyncIterator[ObjectResult]:
        """Upload ``items``; yield each object's result as it finishes."""
        if self.store is None:
            raise RuntimeError("use Uploader inside 'async with'")
        queue = _ResultQueue()
        engine = Engine(
            self.store,
            self.config,
            journal=self._journal,
            subscribers=(queue, *self.subscribers),
            shard=self.shard,
            dry_run=self.dry_run,
            defaults=self.defaults,
        )
        self._engine = engine
        all_stored_before, self._all_stored = self._all_stored, False  # until this one ends well
        job = asyncio.create_task(engine.run(self._engine_items(items)))
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
            self._all_stored = all_stored_before and self.summary.exit_code == 0
            while queue.results:
                yield queue.results.popleft()
        finally:
            if not job.done():  # the caller stopped iterating: stop the job cleanly
                engine.stop()
                await asyncio.shield(job)
            self._engine = None

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
