"""bulkput abort-incomplete DEST [--older-than AGE] [--dry-run]: list and abort the multipart
uploads left under a destination (by interrupted jobs that were not resumed, or by other tools).

Interrupted bulkput jobs leave their uploads on purpose, so that running the job again resumes
them; this command is how they are cleaned up on demand. --older-than spares recent uploads
(a job still running, or one about to be resumed); an upload whose start time the service does
not report is spared too when --older-than is given.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, TextIO

from bulkput.commands.parsing import examples
from bulkput.errors import BulkputError, RemoteError, ServiceError, UsageError
from bulkput.remote.store import ObjectStore, UploadInfo

if TYPE_CHECKING:
    from bulkput.config import RetryPolicy

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """``90``, ``45s``, ``30m``, ``12h``, ``7d``, ``2w`` -> a timedelta."""
    match = _AGE.match(text)
    if not match:
        raise UsageError(f"--older-than {text!r}: expected a number with s, m, h, d or w (e.g. 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_initiated(value: str | None) -> datetime | None:
    """The start time a listing reports (ISO 8601, ``Z`` or offset), or None if absent/odd."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


@dataclass
class AbortSummary:
    found: int = 0
    aborted: list[UploadInfo] = field(default_factory=list)
    spared: list[UploadInfo] = field(default_factory=list)  # too recent, or undated
    failed: list[tuple[UploadInfo, BulkputError]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


async def abort_incomplete(
    store: ObjectStore,
    prefix: str = "",
    *,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    on_upload: Callable[[str, UploadInfo], object] | None = None,
) -> AbortSummary:
    """Abort every multipart upload under ``prefix`` (started before ``now - older_than`` when
    given). ``on_upload(action, upload)`` is told ``"abort"``, ``"would-abort"``, ``"spare"`` or
    ``"fail"`` for each one. Job-fatal errors (auth, missing bucket) propagate.

    An upload counts as aborted only once a second listing no longer shows it: a server may
    answer the abort (or NoSuchUpload, for a key it keeps under another spelling) while the
    upload stays."""
    from bulkput.remote.retry import call_with_retry

    moment = now or datetime.now(timezone.utc)
    summary = AbortSummary()
    requested: dict[tuple[str, str], tuple[UploadInfo, str]] = {}  # -> (upload, answer)

    def tell(action: str, upload: UploadInfo) -> None:
        if on_upload is not None:
            on_upload(action, upload)

    async for upload in store.list_multipart_uploads(prefix):
        summary.found += 1
        if older_than is not None:
            started = parse_initiated(upload.initiated)
            if started is None or moment - started < older_than:
                summary.spared.append(upload)
                tell("spare", upload)
                continue
        if dry_run:
            summary.aborted.append(upload)
            tell("would-abort", upload)
            continue

        def abort_one(upload: UploadInfo = upload) -> Awaitable[None]:
            return store.abort_multipart_upload(upload.key, upload.upload_id)

        try:
            await call_with_retry(abort_one, _retry_policy())
        except BulkputError as error:
            if error.fatal_for_job:
                raise
            if isinstance(error, RemoteError) and error.service_code == "NoSuchUpload":
                # gone meanwhile, or never known under this key: the listing below tells
                requested[(upload.key, upload.upload_id)] = (upload, "NoSuchUpload")
                continue
            summary.failed.append((upload, error))
            tell("fail", upload)
            continue
        requested[(upload.key, upload.upload_id)] = (upload, "done")
    if requested:
        async for left in store.list_multipart_uploads(prefix):
            still = requested.pop((left.key, left.upload_id), None)
            if still is not None:
                upload, answer = still
                summary.failed.append((upload, _still_listed(upload, answer)))
                tell("fail", upload)
    for upload, _answer in requested.values():
        summary.aborted.append(upload)
        tell("abort", upload)
    return summary


def _still_listed(upload: UploadInfo, answer: str) -> ServiceError:
    said = "no such upload" if answer == "NoSuchUpload" else "done"
    return ServiceError(
        f"the server answered the abort ({said}) but still lists upload {upload.upload_id};"
        " it was not aborted: run abort-incomplete again, or abort it with the store's own tool",
        code="AbortNotConfirmed",
        key=upload.key,
    )


def _retry_policy() -> RetryPolicy:
    from bulkput.config import RetryPolicy

    return RetryPolicy(max_attempts=5, max_elapsed=60.0)


# --- the command line ----------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "abort-incomplete",
        help="list and abort multipart uploads left under a destination",
        description=(
            "List and abort the multipart uploads left under DEST by interrupted jobs (which"
            " leave them so that running the job again resumes them) or by other tools."
            " --older-than spares recent uploads (a job still running, or one about to be"
            " resumed)."
        ),
        epilog=examples(
            "bulkput abort-incomplete s3://photos/2026/ --dry-run",
            "bulkput abort-incomplete oss://my-bucket/logs/ --region cn-hangzhou --older-than 7d",
        ),
    )
    parser.add_argument("dest", metavar="DEST", help="bos://BUCKET/PREFIX, oss://... or s3://...")
    parser.add_argument(
        "--older-than",
        metavar="AGE",
        type=parse_age,
        default=None,
        help="only uploads started at least AGE ago (e.g. 90s, 30m, 12h, 7d, 2w)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="list what would be aborted; change nothing"
    )
    from bulkput.commands.options import add_connection_arguments

    add_connection_arguments(parser)
    parser.set_defaults(run=run)
    return parser


async def _open_store(args: argparse.Namespace) -> tuple[ObjectStore, str]:
    """The store and prefix of ``args.dest``, opened the way ``bulkput put`` opens it."""
    from bulkput.commands.options import network_from_args, store_settings_from_args
    from bulkput.config import TransferConfig
    from bulkput.job.run import open_destination
    from bulkput.remote.target import Target

    target = Target.parse(args.dest)
    config = TransferConfig(concurrency=8, **network_from_args(args))
    return open_destination(target, store_settings_from_args(args), config), target.prefix


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        return asyncio.run(_run(args, out))
    except BulkputError as error:
        from bulkput.job.summary import fatal_exit_code

        print(f"bulkput abort-incomplete: {error.one_line()}", file=sys.stderr)
        return fatal_exit_code(error)
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace, out: TextIO) -> int:
    store, prefix = await _open_store(args)
    verb = {"abort": "aborted", "would-abort": "would abort", "spare": "kept", "fail": "FAILED"}

    def show(action: str, upload: UploadInfo) -> None:
        started = f"  started {upload.initiated}" if upload.initiated else ""
        print(f"{verb[action]:<11} {upload.key}  upload {upload.upload_id}{started}", file=out)

    try:
        summary = await abort_incomplete(
            store, prefix, older_than=args.older_than, dry_run=args.dry_run, on_upload=show
        )
    finally:
        await store.close()
    for upload, error in summary.failed:
        print(f"bulkput abort-incomplete: {upload.key}: {error.one_line()}", file=sys.stderr)
    done = "would abort" if args.dry_run else "aborted"
    print(
        f"{summary.found} incomplete upload(s) under {args.dest}: {len(summary.aborted)} {done},"
        f" {len(summary.spared)} kept, {len(summary.failed)} failed",
        file=out,
    )
    return summary.exit_code
