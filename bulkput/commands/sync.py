"""bulkput sync DIR DEST: upload only what changed under DIR, in constant memory.

Keys are the paths relative to DIR with / separators (Unicode NFC unless --no-normalize)
under DEST's prefix, taken as a folder (s3://b/photos syncs into photos/). A file is uploaded
when it has no object or the comparison says it changed:

  default            size and modification time (stored as mtime user metadata, rclone's
                     format; read with a HEAD only when the listing's LastModified cannot tell)
  --size-only        size alone
  --checksum         MD5 against the ETag (or the md5 metadata of multipart objects)
  --update           only when the local file is newer than the object
  --ignore-existing  never replace an existing object

--delete removes objects under the prefix that have no local file (excluded keys are left
alone), after the uploads; --max-delete N refuses, before changing anything, when more than N
would go. --dry-run prints the whole plan with reasons and changes nothing. Symbolic links are
skipped with a warning unless --follow-symlinks; sockets, fifos and devices are skipped and
reported; names that are not valid UTF-8 are reported and skipped.

Exit status: 0 every object stored or skipped by rule, 1 some failed, 2 usage error, 3 the job
aborted (auth, missing bucket, unreachable endpoint, --max-delete exceeded), 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from bulkput.commands.parsing import examples
from bulkput.errors import UsageError

if TYPE_CHECKING:
    from bulkput.job.spec import JobSpec

EXAMPLES = examples(
    "# upload what changed; show what would be deleted",
    "bulkput sync ./holiday s3://photos/2026/ --delete --dry-run",
    "",
    "# mirror, deleting at most 100 objects, comparing MD5s",
    "bulkput sync ./site oss://my-bucket/www/ --region cn-hangzhou --checksum --delete \\",
    "    --max-delete 100",
    "",
    "# only the logs, to a local store",
    "bulkput sync ./logs s3://logs/ --exclude '*' --include '*.log' --endpoint http://127.0.0.1:9000",
)

def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "sync",
        help="upload what changed in a directory (optionally delete what is gone)",
        description=__doc__,
        usage="bulkput sync [OPTIONS] DIR DEST",
        epilog=EXAMPLES,
    )
    from bulkput.commands.options import add_sync_arguments

    add_sync_arguments(parser)
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from bulkput.commands.verb import run_verb

    return run_verb("sync", args, _run)


def spec_from_args(args: argparse.Namespace) -> JobSpec:
    """The job ``sync``'s options describe (no journal: the listing says what is stored)."""
    from bulkput.commands import options
    from bulkput.job.checks import check_spec
    from bulkput.job.shard import Shard
    from bulkput.job.spec import JobSpec

    if args.max_delete is not None and not args.delete:
        raise UsageError("--max-delete limits --delete: give --delete too, or drop --max-delete")
    options.check_sources([args.source], "DIR")
    spec = JobSpec(
        destination=args.dest,
        store=options.store_settings_from_args(args, options.customer_key_from_args(args)),
        transfer=options.config_from_args(args),
        shard=Shard.parse(args.shard) if args.shard else None,
        defaults=options.headers_from_args(args),
        filters=options.filter_from_args(args),
        dry_run=args.dry_run,
    )
    check_spec(spec)  # every value the store takes from a list or a range, before any work
    return spec


def _run(args: argparse.Namespace) -> int:
    from bulkput import runtime

    spec = spec_from_args(args)
    if not spec.transfer.verify_tls:
        sys.stderr.write("bulkput sync: warning: --insecure: TLS certificates are not verified\n")
    return runtime.run_async(_sync(args, spec))


async def _sync(args: argparse.Namespace, spec: JobSpec) -> int:
    from bulkput import runtime
    from bulkput.commands.job_output import JobOutput
    from bulkput.commands.progress import SYNC_RESUMES, print_summary
    from bulkput.job.counting import SourceCounter
    from bulkput.job.run import Job, JobControl
    from bulkput.job.sync.run import SyncOptions
    from bulkput.job.sync.strategies import STRATEGIES

    options = SyncOptions(
        strategy=STRATEGIES[args.strategy](),
        delete=args.delete,
        max_delete=args.max_delete,
        dry_run=spec.dry_run,
        filter=spec.filters,
        follow_symlinks=args.follow_symlinks,
        normalize=args.normalize,
        shard=spec.shard,
        temp_dir=args.temp_dir,
    )
    control = JobControl()
    # the totals: the same walk a second time, ahead of the sync, in a thread
    counter = None
    if not args.quiet and args.progress != "none":
        counter = SourceCounter.for_sync(args.source, spec.target.prefix, options)
    # the progress display prints each failure and each warning (a symlink skipped) once
    output = JobOutput(args, spec.target, control, counter=counter)
    remove = runtime.on_stop(control.stop)
    try:
        output.start()
        async with Job(spec) as job:
            summary = await job.sync(args.source, options, output.subscribers, control)
    finally:
        remove()
        output.close()
    sys.stdout.flush()
    if not args.quiet or summary.exit_code != 0:
        print_summary(summary, resume=SYNC_RESUMES)
    return summary.exit_code
