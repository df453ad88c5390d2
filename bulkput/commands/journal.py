"""bulkput journal list|prune: the job journals in a state directory.

list shows each journal: its state (running: the job was interrupted or partly failed and its
next run resumes it; complete: the next run uploads again; damaged), the objects it records
as stored, the multipart uploads it has in flight, when it was last written, the store and the
source. prune removes completed journals last written more than DAYS days ago (default 30;
opening any journal does the same); unfinished journals stay, since they let their job resume
and name the uploads the store still holds (bulkput abort-incomplete).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bulkput.commands.options import days
from bulkput.commands.parsing import examples
from bulkput.job.journal import KEEP_COMPLETED_SECONDS, default_state_dir, list_journals, prune

EXAMPLES = examples(
    "bulkput journal list",
    "bulkput journal list --json --state-dir /var/cache/bulkput",
    "bulkput journal prune --older-than 7",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "journal",
        help="list or prune job journals",
        description=__doc__,
        epilog=EXAMPLES,
    )
    verbs = parser.add_subparsers(dest="journal_command", metavar="VERB")
    for name, help_text in (
        ("list", "show the journals in the state directory"),
        ("prune", "remove old completed journals"),
    ):
        verb = verbs.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES)
        verb.add_argument(
            "--state-dir",
            metavar="DIR",
            default=None,
            help="where job journals live (default $XDG_CACHE_HOME/bulkput or ~/.cache/bulkput)",
        )
        if name == "list":
            verb.add_argument("--json", action="store_true", help="one JSON object per journal")
        else:
            verb.add_argument(
                "--older-than",
                type=days,
                metavar="DAYS",
                default=KEEP_COMPLETED_SECONDS / 86400,
                help="remove completed journals last written more than DAYS days ago (default 30)",
            )
    parser.set_defaults(run=run)
    return parser


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(stamp)) if stamp else "-"


def run(args: argparse.Namespace) -> int:
    command = args.journal_command
    if command not in ("list", "prune"):
        sys.stderr.write("usage: bulkput journal list|prune [--state-dir DIR]\n")
        return 2
    directory = args.state_dir if args.state_dir is not None else str(default_state_dir())
    if command == "prune":
        removed = prune(directory, older_than=args.older_than * 86400)
        for path in removed:
            sys.stdout.write(f"removed {path}\n")
        sys.stdout.write(f"{len(removed)} completed journal(s) removed from {directory}\n")
        return 0
    infos = list_journals(directory)
    if args.json:
        for info in infos:
            record = {
                "job": info.job, "path": str(info.path), "state": info.state,
                "modified": info.modified, "completed_at": info.completed_at,
                "stored": info.stored, "uploads": info.uploads, "store": info.store,
                "source": info.source, "shard": info.shard,
            }  # fmt: skip
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return 0
    if not infos:
        sys.stdout.write(f"no journals in {directory}\n")
        return 0
    sys.stdout.write(f"{len(infos)} journal(s) in {directory} (times UTC)\n")
    for info in infos:
        sys.stdout.write(
            f"{info.job}  {info.state:<8}  stored {info.stored:,}  uploads {info.uploads:,}"
            f"  written {_when(info.modified)}\n"
            f"    to {info.store!r}\n    from {info.source!r}"
            + (f" shard {info.shard}" if info.shard and info.shard != "0/1" else "")
            + "\n"
        )
    return 0
