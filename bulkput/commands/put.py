"""``bulkput put``: upload files, directories or a manifest to ``bos://``, ``oss://`` or ``s3://``.

::

    bulkput put [OPTIONS] SOURCE... DEST
    bulkput put [OPTIONS] --manifest FILE DEST      (FILE may be - for stdin)

DEST is always a prefix: a file ``a/b.txt`` goes to ``PREFIX/b.txt``, a directory's files to
``PREFIX/<path relative to the directory>``, manifest lines to ``PREFIX/<key or path>``.
Exit status: 0 every object stored (or skipped by rule), 1 some objects failed, 2 usage error,
3 the job aborted (auth, missing bucket, unreachable endpoint, journal), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from bulkput.commands import options
from bulkput.config import TransferConfig
from bulkput.errors import BulkputError, UsageError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.shard import Shard
from bulkput.job.subscriber import Subscriber
from bulkput.local.filters import Filter
from bulkput.redact import ScrubbingFilter
from bulkput.remote.encryption import CustomerKey
from bulkput.remote.store import ObjectStore
from bulkput.remote.target import Target

log = logging.getLogger("bulkput.put")

# Results that stand for "not sent because the job stopped": counted and reported, but not
# printed one line each (the one abort or interrupt message says why).
_STOPPED_CODES = frozenset(("JobAborted", "Interrupted"))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "put",
        help="upload files, directories or a manifest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    options.add_put_arguments(parser)
    parser.set_defaults(run=run, intermixed_positionals="paths")
    return parser


async def open_destination_from_args(
    dest: str,
    args: argparse.Namespace,
    config: TransferConfig,
    *,
    customer_key: CustomerKey | None = None,
) -> tuple[Target, ObjectStore]:
    """``open_destination`` with the options ``options.add_connection_arguments`` defined."""
    from bulkput.api import open_destination

    return await open_destination(
        dest,
        endpoint=args.endpoint,
        region=args.region,
        addressing=args.addressing,
        signature_version=args.signature_version,
        access_key=args.access_key,
        secret_key=args.secret_key,
        session_token=args.session_token,
        profile=args.profile,
        config=config,
        customer_key=customer_key,
        request_payer=args.request_payer is not None,
    )


def source_items(
    sources: Sequence[str],
    target: Target,
    *,
    follow_symlinks: bool = False,
    filter: Filter | None = None,
) -> Iterator[UploadItem | BulkputError]:
    """Files as ``PREFIX/<name>``, directories walked as ``PREFIX/<relative path>``; symbolic
    links inside directories are skipped (reported) unless followed, with loop detection.
    ``filter`` applies to paths relative to each folder given (and to a file's name)."""
    from bulkput.local.walk import WalkEntry, WalkOptions, walk_tree

    options = WalkOptions(follow_symlinks=follow_symlinks, filter=filter)
    for source in sources:
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
            if filter is not None and filter.exclude_reason(name) is not None:
                continue
            yield UploadItem(path=source, key=target.key_for(name))


def setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING
    if args.verbose == 1:
        level = logging.INFO
    if args.verbose >= 2 or args.debug:
        level = logging.DEBUG
    logger = logging.getLogger("bulkput")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(ScrubbingFilter())  # no secret in a log line, whoever wrote it
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


class _FailureFilter(Subscriber):
    """Passes every event to the progress display except the results the one abort or
    interrupt message already explains (objects only stopped by it, and the object that met
    the fatal error): the report has them all."""

    def __init__(self, inner: Any, aborted: Callable[[], BulkputError | None]) -> None:
        self.inner = inner
        self.aborted = aborted

    def on_start(self, total_objects: int | None, total_bytes: int | None) -> None:
        self.inner.on_start(total_objects, total_bytes)

    def on_result(self, result: ObjectResult) -> None:
        if not _explained_by_stop(result, self.aborted()):
            self.inner.on_result(result)

    def on_bytes(self, n: int) -> None:
        self.inner.on_bytes(n)

    def on_retry(self, key: str, error: BulkputError) -> None:
        self.inner.on_retry(key, error)

    def on_done(self, summary: Any) -> None:
        self.inner.on_done(summary)


class _FailurePrinter(Subscriber):
    """``--quiet`` / ``--progress none``: no progress, but one line per failed object."""

    def __init__(self, aborted: Callable[[], BulkputError | None], limit: int = 200) -> None:
        self.aborted = aborted
        self.limit = limit
        self.shown = 0

    def on_result(self, result: ObjectResult) -> None:
        from bulkput.job.events import failure_line, is_warning

        if (
            result.status is Status.FAILED and not _explained_by_stop(result, self.aborted())
        ) or is_warning(result):
            self.shown += 1
            if self.shown <= self.limit:
                sys.stderr.write(failure_line(result) + "\n")
            elif self.shown == self.limit + 1:
                sys.stderr.write("error: more objects failed or were skipped with a warning; the --report file lists them all\n")


def _explained_by_stop(result: ObjectResult, aborted: BulkputError | None) -> bool:
    if result.error_code in _STOPPED_CODES:
        return True
    return aborted is not None and result.error_code == aborted.code


def _progress(args: argparse.Namespace, aborted: Callable[[], BulkputError | None]) -> Any:
    from bulkput.job.events import ProgressDisplay

    mode = "none" if args.quiet else args.progress
    if mode == "none":
        return _FailurePrinter(aborted)
    tty = None if mode == "auto" else mode == "rich"
    return _FailureFilter(ProgressDisplay(sys.stderr, tty=tty), aborted)


def run(args: argparse.Namespace) -> int:
    setup_logging(args)
    try:
        if getattr(args, "dask", None):
            return _run_on_dask(args)
        return _run(args)
    except UsageError as error:
        sys.stderr.write(f"bulkput put: {error.one_line()}\n")
        return 2
    except BulkputError as error:  # job-fatal before the first upload (journal, ...)
        sys.stderr.write(f"bulkput put: aborted: {error.one_line()}\n")
        return error.exit_code if error.exit_code != 1 else 3
    except KeyboardInterrupt:
        sys.stderr.write("bulkput put: interrupted\n")
        return 130


def _run_on_dask(args: argparse.Namespace) -> int:
    """``--dask ADDRESS``: the same job as shard tasks on a Dask cluster; Dask schedules."""
    import json
    import time

    from bulkput.api import resolve_store_settings
    from bulkput.job import cluster
    from bulkput.job.events import print_summary

    if args.shard:
        raise UsageError("--shard and --dask do not go together (--dask makes the shards)")
    if args.report:
        raise UsageError("with --dask use --report-dir (one report per shard, then merged)")
    put_args = _without_options(getattr(args, "argv", [])[1:], ("--dask", "--shards", "--report-dir"))
    put_args = _without_options(put_args, ("--access-key", "--secret-key", "--session-token"))
    target = Target.parse(args.paths[-1])
    _, _, credentials = resolve_store_settings(
        target, endpoint=args.endpoint, region=args.region, access_key=args.access_key,
        secret_key=args.secret_key, session_token=args.session_token, profile=args.profile,
    )  # fmt: skip
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs: pip install 'bulkput[dask]'") from None
    started = time.monotonic()
    with Client(args.dask) as client:
        shards = args.shards or max(1, sum(client.nthreads().values()))

        def show(progress: list[cluster.ShardProgress]) -> None:
            if not args.quiet:
                sys.stderr.write(cluster.progress_line(progress, started) + "\n")

        result = cluster.run_put_on_dask(
            put_args, scheduler=client, shards=shards,
            report_dir=args.report_dir or "bulkput-reports", credentials=credentials,
            on_progress=show, poll_interval=2.0,
        )  # fmt: skip
    print_summary(result.summary)
    if not args.quiet:
        sys.stderr.write(json.dumps({"report_files": result.report_files}) + "\n")
    return result.summary.exit_code


def _without_options(argv: Sequence[str], names: Sequence[str]) -> list[str]:
    """``argv`` less the given options and their values (``--opt V`` and ``--opt=V``)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in names:
            skip = "=" not in arg
            continue
        out.append(arg)
    return out


def _run(args: argparse.Namespace) -> int:
    from bulkput import runtime

    if args.manifest is not None:
        if len(args.paths) != 1:
            raise UsageError("with --manifest give only DEST (no SOURCE paths)")
        sources: list[str] = []
    elif len(args.paths) < 2:
        raise UsageError("give SOURCE... DEST, or --manifest FILE DEST")
    else:
        sources = list(args.paths[:-1])
    dest = args.paths[-1]
    target = Target.parse(dest)
    config = options.config_from_args(args)
    shard = Shard.parse(args.shard) if args.shard else None
    file_filter = options.filter_from_args(args)  # checked (and warned about) before any work
    if args.insecure:
        sys.stderr.write("bulkput put: warning: --insecure: TLS certificates are not verified\n")
    return runtime.run_async(_upload(args, dest, target, sources, config, shard, file_filter))


async def _upload(
    args: argparse.Namespace,
    dest: str,
    target: Target,
    sources: list[str],
    config: TransferConfig,
    shard: Shard | None,
    file_filter: Filter | None = None,
) -> int:
    import asyncio

    from bulkput import runtime
    from bulkput.job.engine import Engine
    from bulkput.job.events import ReportWriter, print_summary
    from bulkput.job.journal import describe_source, open_job_journal
    from bulkput.job.resume import finish_journal, start_resume, store_identity
    from bulkput.remote.client import HttpObjectStore

    _, store = await open_destination_from_args(
        dest, args, config, customer_key=options.customer_key_from_args(args)
    )
    assert isinstance(store, HttpObjectStore)
    journal = None
    report = None
    try:
        if args.manifest is not None:
            from bulkput.local.manifest import read_manifest

            items: Any = read_manifest(args.manifest, target.prefix, fmt=args.manifest_format)
            description = describe_source(manifest=args.manifest)
        else:
            items = source_items(
                sources, target, follow_symlinks=args.follow_symlinks,
                filter=file_filter,
            )  # fmt: skip
            description = describe_source(paths=sources)
        journal = open_job_journal(
            store_identity(store, target),
            description,
            shard=shard,
            state_dir=args.state_dir,
            restart=args.restart,
            enabled=args.journal and not args.dry_run,
        )
        engine_ref: list[Engine] = []
        subscribers: list[Any] = [
            _progress(args, lambda: engine_ref[0].aborted if engine_ref else None)
        ]
        if journal is not None:
            notes = await start_resume(
                journal, store, target.prefix, verify=args.verify_resume, retry=config.retry
            )
            subscribers.insert(0, notes)  # before the report: its summary line names the journal
        if args.report:
            try:
                report = ReportWriter(args.report)
            except OSError as exc:
                raise UsageError(f"--report {args.report}: {exc.strerror or exc}") from None
            subscribers.append(report)
        engine = Engine(
            store,
            config,
            journal=journal,
            subscribers=subscribers,
            shard=shard,
            dry_run=args.dry_run,
            defaults=options.headers_from_args(args),
        )
        engine_ref.append(engine)
        remove = runtime.on_stop(engine.stop)
        try:
            summary = await engine.run(items)
        finally:
            remove()
        if journal is not None:
            await finish_journal(journal, summary)
    finally:
        try:
            if journal is not None:
                await asyncio.get_running_loop().run_in_executor(None, journal.close)
        except BulkputError as error:
            sys.stderr.write(f"bulkput put: {error.one_line()}\n")
        finally:
            if report is not None:
                report.close()
            await store.close()
    if not args.quiet or summary.exit_code != 0:
        print_summary(summary)
    return summary.exit_code
