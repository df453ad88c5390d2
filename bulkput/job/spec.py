"""What one job is, as frozen values: where it goes, how to reach the store, its limits.

A :class:`JobSpec` is everything :func:`bulkput.job.run.run_job` needs besides the items, so
the command line, the Python API, the demo, the Dask shards and the benchmarks all describe a
job the same way. Specs are picklable (a Dask task receives one) and hold no open resource:
the store and the journal are opened by ``run_job``, credentials found there when not given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bulkput.config import TransferConfig
from bulkput.errors import BulkputError
from bulkput.items import UploadItem
from bulkput.job.shard import Shard
from bulkput.local.filters import Filter
from bulkput.remote.credentials import FLAGS_ORIGIN, Credentials, CredentialSource
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.store import ObjectHeaders
from bulkput.remote.target import Target

Addressing = Literal["auto", "path", "virtual"]
SignatureVersion = Literal["v1", "v4"]


@dataclass(frozen=True)
class StoreSettings:
    """How to reach and sign in to the store (the ``connection`` options).

    ``endpoint`` ``http(s)://host[:port]`` and ``region`` default to the environment and the
    provider's tool files, then to the provider's public endpoint. ``credentials`` given are
    used as they are (a spec sent to other processes needs fixed ``Credentials``); None looks
    them up (environment, the tools' files with ``profile`` selecting a section, then the
    provider's credential chain, as each provider's own tools do). TLS verification is
    ``TransferConfig.verify_tls`` (the transport reads it with the other connection limits).
    """

    endpoint: str | None = None
    region: str | None = None
    addressing: Addressing = "auto"
    signature_version: SignatureVersion = "v4"  # OSS only
    credentials: CredentialSource | None = None
    profile: str | None = None
    customer_key: CustomerKey | None = None  # SSE-C: sent with every object write and read
    request_payer: bool = False  # a requester-pays bucket: every request says who pays


@dataclass(frozen=True)
class JournalSettings:
    """The job's journal, which lets the same job run again resume instead of starting over.

    ``source`` names the job's input (:func:`bulkput.job.journal.describe_source` for paths or
    a manifest, any stable name from the API); with the store and the shard it makes the job's
    identity (:func:`bulkput.job.journal.job_id`). None keeps no journal.
    """

    source: str | None = None
    state_dir: str | None = None  # default $XDG_CACHE_HOME/bulkput or ~/.cache/bulkput
    restart: bool = False  # forget what an earlier run recorded
    # On resume, list the destination and skip only what the store still holds as recorded;
    # off (--no-verify-resume): trust the journal, for stores where listing is forbidden.
    verify: bool = True

    def __post_init__(self) -> None:
        # made absolute where the job is described: a task on a worker has another cwd
        if self.state_dir is not None:
            object.__setattr__(self, "state_dir", os.path.abspath(self.state_dir))


@dataclass(frozen=True)
class JobSpec:
    """One job: ``destination`` (``s3://bucket/prefix``, ``oss://...``, ``bos://...``, parsed
    once, here, into :attr:`target`), the store settings, the transfer limits, the journal, the
    shard this process takes (None: every key), the default object headers (an item's own
    fields win, metadata merged), the filter (of the folders walked: ``PutSource.items``,
    sync), ``dry_run`` (send nothing, keep no journal), ``remote`` (the job runs as a task
    in another process, maybe on another machine: an unreadable file's error names the host
    and working directory it was looked for from) and ``resume_from_store``: before the
    first upload, list the slice of the destination the job's keys span and skip the objects
    the store already holds with the same size and MD5 (:mod:`bulkput.job.store_resume`), so
    a shard retried on any machine resumes without a journal (``put --shard`` turns it on)."""

    destination: str
    store: StoreSettings = StoreSettings()
    transfer: TransferConfig = field(default_factory=TransferConfig)
    journal: JournalSettings = JournalSettings()
    shard: Shard | None = None
    defaults: ObjectHeaders = field(default_factory=ObjectHeaders)
    filters: Filter | None = None
    dry_run: bool = False
    remote: bool = False
    resume_from_store: bool = False
    target: Target = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # A bad destination is a usage error when the job is described, before any work.
        object.__setattr__(self, "target", Target.parse(self.destination))


@dataclass(frozen=True)
class PutSource:
    """What ``bulkput put`` uploads: local ``paths`` (files as ``PREFIX/<name>``, directories
    walked as ``PREFIX/<relative path>``), or a ``manifest`` (a file, or ``-`` for stdin).

    Paths, the manifest and ``base`` are made absolute here, in the describing process, so
    a source sent to a worker with another working directory names the same files (keys do
    not change: they come from names and relative paths, see bulkput/local/keys.py)."""

    paths: tuple[str, ...] = ()
    manifest: str | None = None
    manifest_format: str = "auto"  # auto, list, csv, jsonl
    base: str | None = None  # --base DIR: manifest keys relative to it (local/keys.py)
    follow_symlinks: bool = False  # inside directories (loops are reported)

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(os.path.abspath(p) if p else p for p in self.paths))
        if self.manifest is not None and self.manifest != "-":
            object.__setattr__(self, "manifest", os.path.abspath(self.manifest))
        if self.base is not None:
            object.__setattr__(self, "base", os.path.abspath(self.base))

    def describe(self) -> str:
        """The source half of the job's identity (its journal's name)."""
        from bulkput.job.journal import describe_source

        if self.manifest is not None:
            return describe_source(manifest=self.manifest)
        return describe_source(paths=self.paths)

    def items(
        self, target: Target, filters: Filter | None = None
    ) -> Iterator[UploadItem | BulkputError]:
        """The objects, read lazily. A missing or unreadable manifest raises UsageError here,
        before any upload; symbolic links inside directories are skipped (reported) unless
        followed. ``filters`` apply to paths relative to each folder given (and to a file's
        name); a manifest's lines are taken as they are."""
        if self.manifest is not None:
            from bulkput.local.manifest import read_manifest

            return read_manifest(
                self.manifest, target.prefix, fmt=self.manifest_format, base_dir=self.base
            )
        return _walk_paths(self.paths, target, self.follow_symlinks, filters)


def _walk_paths(
    paths: Sequence[str], target: Target, follow_symlinks: bool, filters: Filter | None
) -> Iterator[UploadItem | BulkputError]:
    from bulkput.local.keys import file_key
    from bulkput.local.walk import WalkEntry, WalkOptions, walk_tree

    options = WalkOptions(follow_symlinks=follow_symlinks, filter=filters)
    for source in paths:
        if os.path.isdir(source):
            for entry in walk_tree(source, options):
                if isinstance(entry, WalkEntry):
                    yield UploadItem(
                        path=entry.path,
                        key=target.key_for(entry.key),
                        size=entry.size,
                        mtime_ns=entry.mtime_ns,
                    )
                elif isinstance(entry, BulkputError):  # (folders not entered come only to sync)
                    if entry.key is not None:  # report it under its full key, as objects are
                        entry.key = target.key_for(entry.key)
                    yield entry
        else:
            name = os.path.basename(source.rstrip("/")) or source
            if filters is not None and filters.exclude_reason(name) is not None:
                continue
            # one file alone: DEST not ending in "/" is its key, as the peers do (local/keys.py)
            yield UploadItem(path=source, key=file_key(target.prefix, name, len(paths) == 1))


def explicit_credentials(
    access_key: str | None, secret_key: str | None, session_token: str | None = None
) -> Credentials | None:
    """Keys given by the user (``--access-key``/``--secret-key``), or None when neither is:
    then the job looks them up. Half a pair is a usage error, never silently completed from
    the environment."""
    if not (access_key or secret_key):
        return None
    if not (access_key and secret_key):
        from bulkput.errors import CredentialsError

        missing = "--secret-key" if access_key else "--access-key"
        raise CredentialsError(f"{missing} is missing: give both --access-key and --secret-key")
    return Credentials(
        access_key, secret_key, session_token or None, source="command line", origin=FLAGS_ORIGIN
    )
