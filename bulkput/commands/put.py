"""bulkput put: upload files, directories or a manifest to bos://, oss:// or s3://.

Keys as aws s3 cp makes them: one file to a DEST not ending in / is stored under that exact
key; otherwise DEST is a prefix: a file a/b.txt goes to PREFIX/b.txt, a directory's files to
PREFIX/<path relative to the directory>, manifest lines to PREFIX/<key or path> (absolute
paths relative to their common folder, or to --base DIR). A manifest is a list of paths, a CSV
with a header, or JSON lines; - reads it from standard input.

Every option value is checked before anything is read or sent. Running the same command again
after a crash, Ctrl-C or failed objects resumes the job from its journal.

Exit status: 0 every object stored (or skipped by rule), 1 some objects failed, 2 usage error,
3 the job aborted (auth, missing bucket, unreachable endpoint, journal), 130 interrupted (the
summary counts the objects not started; the same command again resumes them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from bulkput.commands import options
from bulkput.commands.parsing import examples
from bulkput.errors import UsageError

if TYPE_CHECKING:  # imported when a job runs, not for --help
    from bulkput.job.cluster import ClusterProgress
    from bulkput.job.run import Items
    from bulkput.job.shard import ShardRun
    from bulkput.job.spec import JobSpec, PutSource

log = logging.getLogger("bulkput.put")

USAGE = """bulkput put [OPTIONS] SOURCE... DEST
       bulkput put [OPTIONS] --manifest FILE DEST"""
EXAMPLES = examples(
    "# a folder under a prefix (keys: 2026/<path in holiday>)",
    "bulkput put ./holiday s3://photos/2026/",
    "",
    "# one file under an exact key",
    "bulkput put meta.json s3://photos/renamed.json",
    "",
    "# what a manifest lists, read from standard input",
    "find /data -name '*.parquet' | bulkput put --manifest - s3://photos/shards/",
    "",
    "# only the JPEGs, private, to a local store",
    "bulkput put ./holiday s3://photos/2026/ --exclude '*' --include '*.jpg' --acl private \\",
    "    --endpoint http://127.0.0.1:9000",
    "",
    "# see what would be sent; send nothing",
    "bulkput put ./holiday oss://my-bucket/2026/ --region cn-hangzhou --dry-run",
)

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "put",
        help="upload files, directories or a manifest",
        description=__doc__,
        usage=USAGE,
        epilog=EXAMPLES,
    )
    options.add_put_arguments(parser)
    parser.set_defaults(run=run, intermixed_positionals="paths")
    return parser


def spec_from_args(args: argparse.Namespace) -> tuple[JobSpec, PutSource]:
    """The job ``put``'s options describe, and what it uploads; every value checked here,
    before any work."""
    from bulkput.job.checks import check_spec
    from bulkput.job.shard import Shard
    from bulkput.job.spec import JobSpec, PutSource

    if args.manifest is not None:
        if len(args.paths) != 1:
            raise UsageError("with --manifest give only DEST (no SOURCE paths)")
        options.check_manifest(args.manifest)
        paths: tuple[str, ...] = ()
    elif args.base is not None:
        raise UsageError("--base goes with --manifest (a folder's keys are relative to it already)")
    elif len(args.paths) < 2:
        raise UsageError("give SOURCE... DEST, or --manifest FILE DEST")
    else:
        paths = tuple(args.paths[:-1])
        options.check_sources(paths)
    source = PutSource(
        paths=paths,
        manifest=args.manifest,
        manifest_format=args.manifest_format,
        base=args.base,
        follow_symlinks=args.follow_symlinks,
    )
    spec = JobSpec(
        destination=args.paths[-1],
        store=options.store_settings_from_args(args, options.customer_key_from_args(args)),
        transfer=options.config_from_args(args),
        journal=options.journal_settings_from_args(args, source.describe()),
        shard=Shard.parse(args.shard) if args.shard else None,
        defaults=options.headers_from_args(args),
        filters=options.filter_from_args(args),  # checked (and warned about) before any work
        dry_run=args.dry_run,
        resume_from_store=options.resume_from_store(args),
    )
    check_spec(spec)  # every value the store takes from a list or a range, before any work
    return spec, source


def run(args: argparse.Namespace) -> int:
    from bulkput.commands.verb import run_verb

    return run_verb("put", args, _run_on_dask if args.dask else _run)


def _run_on_dask(args: argparse.Namespace) -> int:
    """``--dask ADDRESS``: the job as partition tasks on a Dask cluster (bulkput/job/cluster.py);
    the client reads the input, merges what the partitions return, prints and reports."""
    from dataclasses import replace

    from bulkput.commands.job_output import open_report
    from bulkput.commands.progress import failure_line, print_summary
    from bulkput.errors import CredentialsError
    from bulkput.job import cluster
    from bulkput.job.run import resolve_store_settings
    from bulkput.remote.credentials import RefreshingCredentials

    if args.shard:
        raise UsageError("--shard and --dask do not go together (--dask makes the partitions)")
    spec, source = spec_from_args(args)
    if args.worker_credentials:
        # Each worker resolves its own in run_job (credentials None: its environment, files,
        # role); the client's are neither required nor sent, so they never override a role.
        if spec.store.credentials is not None:
            raise UsageError("--worker-credentials and --access-key/--secret-key do not go "
                             "together: with --worker-credentials each worker uses its own")
    else:
        # Found here, once, and sent to the workers in the spec (masked repr); a chain's
        # renewing ones as what they are now (a worker signs with them until expiry).
        try:
            _, _, credentials = resolve_store_settings(spec.target, spec.store)
        except CredentialsError as error:
            raise CredentialsError(
                f"{error.message}; or give --worker-credentials to let each Dask worker use "
                "its own (environment, profile, instance role)"
            ) from None
        if isinstance(credentials, RefreshingCredentials):
            credentials = credentials.current()
        spec = replace(spec, store=replace(spec.store, credentials=credentials))
    report = open_report(args.report) if args.report else None  # written here, on the client
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("--dask needs: pip install 'bulkput[dask]'") from None
    show = _ClusterProgressLine(quiet=args.quiet)
    with Client(args.dask) as client:
        result = cluster.run_partitions(
            spec, client, source, partition_size=args.partition_size, on_progress=show
        )
    summary = result.summary
    for failed in result.failures[:200]:
        sys.stderr.write(failure_line(failed) + "\n")
    if summary.failed > min(len(result.failures), 200):
        sys.stderr.write(f"error: {summary.failed - min(len(result.failures), 200):,} more objects failed\n")
    for partition in result.failed_partitions:
        sys.stderr.write(f"bulkput put: partition {partition.index} could not run: {partition.cause}\n")
    if summary.interrupted:
        sys.stderr.write("bulkput put: interrupted: the job's tasks were cancelled; the same "
                         "command resumes from the store\n")  # fmt: skip
    elif result.not_submitted:
        sys.stderr.write("bulkput put: no further partition was submitted after one could not run; "
                         "the same command resumes from the store\n")  # fmt: skip
    if report is not None:
        for failed in result.failures:
            report.on_result(failed)
        report.on_done(summary)
    if not args.quiet or summary.exit_code != 0:
        print_summary(summary)
    return summary.exit_code


class _ClusterProgressLine:
    """One line on stderr at most every ``interval`` seconds, and after the last partition."""

    def __init__(self, *, quiet: bool, interval: float = 1.0) -> None:
        import time

        self._quiet = quiet
        self._interval = interval
        self._clock = time.monotonic
        self._last = self._clock() - interval

    def __call__(self, progress: ClusterProgress) -> None:
        now = self._clock()
        final = progress.partitions_done == progress.partitions_submitted
        if self._quiet or (now - self._last < self._interval and not final):
            return
        self._last = now
        summary = progress.summary
        of = f" of {progress.total_objects:,}" if progress.total_objects is not None else ""
        failed = f" ({progress.partitions_failed} could not run)" if progress.partitions_failed else ""
        sys.stderr.write(
            f"bulkput: partitions {progress.partitions_done}/{progress.partitions_submitted} "
            f"done{failed}: stored {summary.stored:,}, skipped {summary.skipped:,}, failed "
            f"{summary.failed:,}{of} objects\n"
        )


def _run(args: argparse.Namespace) -> int:
    from bulkput import runtime

    if args.worker_credentials:
        raise UsageError("--worker-credentials goes with --dask (a job run here uses this "
                         "machine's credentials)")
    spec, source = spec_from_args(args)
    if not spec.transfer.verify_tls:
        sys.stderr.write("bulkput put: warning: --insecure: TLS certificates are not verified\n")
    items = source.items(spec.target, spec.filters)
    return runtime.run_async(_upload(args, spec, items, shard_run(args, spec, source), source))


def shard_run(args: argparse.Namespace, spec: JobSpec, source: PutSource) -> ShardRun | None:
    """Who writes the report of a ``--shard K/N`` job (its lines name the job, shard, attempt)."""
    from bulkput.job.shard import ShardRun, shard_job_id

    if spec.shard is None:
        return None
    job = shard_job_id(spec.destination, spec.store.endpoint, source.describe(), spec.shard.count)
    return ShardRun(job, spec.shard, args.attempt)


async def _upload(
    args: argparse.Namespace,
    spec: JobSpec,
    items: Items,
    run: ShardRun | None = None,
    source: PutSource | None = None,
) -> int:
    from bulkput import runtime
    from bulkput.commands.job_output import JobOutput
    from bulkput.commands.progress import print_summary
    from bulkput.job.counting import SourceCounter
    from bulkput.job.run import JobControl, run_job

    control = JobControl()
    # the totals: the same source read a second time, ahead of the upload, in a thread
    counter = None
    if source is not None and not args.quiet and args.progress != "none":
        counter = SourceCounter.for_put(spec, source)
    output = JobOutput(args, spec.target, control, counter=counter, shard_run=run)
    remove = runtime.on_stop(control.stop)
    try:
        output.start()
        summary = await run_job(spec, items, output.subscribers, control=control)
    finally:
        remove()
        output.close()
    if control.journal_error is not None:
        sys.stderr.write(f"bulkput put: {control.journal_error.one_line()}\n")
    if not args.quiet or summary.exit_code != 0:
        print_summary(summary)
    return summary.exit_code
