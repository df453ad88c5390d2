"""One line per object on standard output, as ``aws s3 cp`` prints them (``put`` and ``sync``).

==================  =========================  ================================================
result              when                       line
==================  =========================  ================================================
planned (upload)    ``--dry-run``              ``(dry run) upload PATH -> URL (SIZE)``
planned (sync)      ``sync --dry-run``         ``(dry run) upload PATH -> URL (SIZE, REASON)``
planned (delete)    ``sync --delete --dry-run`` ``(dry run) delete URL (REASON)``
stored              ``-v``                     ``upload: PATH -> URL``
deleted             ``-v``                     ``delete: URL``
anything else       always                     nothing (failures go to standard error)
==================  =========================  ================================================

Paths and keys holding control characters are printed escaped (``\\n``, ``\\x1b``), as
``repr`` does, so one object is always one line.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from bulkput.commands.progress import human_bytes
from bulkput.items import ObjectResult, Status
from bulkput.job.subscriber import Subscriber
from bulkput.local.names import printable
from bulkput.remote.target import Target


def object_line(result: ObjectResult, target: Target, verbose: bool) -> str | None:
    """The line for ``result`` (see the module's table), or None."""
    url = printable(f"{target.scheme}://{target.bucket}/{result.key}")
    path = printable(result.path or "")
    if result.status is Status.PLANNED:
        action, _, why = (result.reason or "").partition(": ")
        if action == "delete":
            return f"(dry run) delete {url} ({why or 'delete'})"
        size = human_bytes(result.size) if result.size is not None else "size unknown"
        detail = f"{size}, {why}" if why else size  # sync says why; put's reason is its method
        return f"(dry run) upload {path} -> {url} ({detail})"
    if not verbose:
        return None
    if result.status is Status.STORED:
        return f"upload: {path} -> {url}"
    if result.status is Status.DELETED:
        return f"delete: {url}"
    return None


class ObjectLines(Subscriber):
    """Writes ``object_line`` of every result to ``out`` (standard output by default, looked
    up at each line: on a terminal the progress bar puts its lines above itself)."""

    def __init__(self, target: Target, verbose: bool, out: TextIO | None = None) -> None:
        self.target = target
        self.verbose = verbose
        self.out = out

    def on_result(self, result: ObjectResult) -> None:
        line = object_line(result, self.target, self.verbose)
        if line is not None:
            (self.out if self.out is not None else sys.stdout).write(line + "\n")


def object_lines_for(args: argparse.Namespace, target: Target) -> ObjectLines | None:
    """The per-object lines ``--dry-run`` and ``-v`` ask for, or None; on standard error when
    ``--report -`` has standard output (which then holds only the JSON lines)."""
    if not (args.dry_run or args.verbose):
        return None
    out = sys.stderr if args.report == "-" else None
    return ObjectLines(target, verbose=args.verbose > 0, out=out)
