"""bulkput report merge FILES... [--json]: one summary for the report files of a sharded job.

Every report must come from the same --shard K/N job (its lines name the job id, the shard, N
and the attempt); of each shard the last attempt stands. Prints the merged summary (human
lines, or one JSON object with --json) on standard output and exits with the merged exit code:
0 every shard 0..N-1 reported once and all stored or skipped, 1 some failed, 3 a shard has no
report, is reported twice by the same attempt, aborted or never finished (its report has no
summary line), 130 a shard was interrupted; 2 the files are not the reports of one job.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bulkput.commands.parsing import examples
from bulkput.commands.progress import MERGE_RESUMES, print_summary
from bulkput.errors import UsageError
from bulkput.job.report import merge_job_reports

EXAMPLES = examples(
    "# four shards, each with its own report, then one summary",
    "bulkput put ./data s3://bkt/data/ --shard 0/4 --report shard-0.jsonl   # ... 3/4",
    "bulkput report merge shard-*.jsonl",
    "bulkput report merge shard-*.jsonl --json",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="work with --report files",
        description="Work with the JSON-lines files written by --report.",
        epilog=EXAMPLES,
    )
    verbs = parser.add_subparsers(dest="report_command", metavar="VERB")
    merge = verbs.add_parser(
        "merge",
        help="merge the reports of a sharded job into one summary",
        description=(
            "Add up the --report files of the shards of one job (e.g. --shard 0/4 .. 3/4; of each "
            "shard its last --attempt) and print one summary. Exit code: 0 every shard reported "
            "and every object stored or skipped, 1 some failed, 3 a shard is missing, reported "
            "twice, aborted or did not finish, 130 a shard was interrupted, 2 not one job's reports."
        ),
        epilog=EXAMPLES,
    )
    merge.add_argument("files", nargs="+", metavar="FILE", help="report files (JSON lines)")
    merge.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    if args.report_command != "merge":
        sys.stderr.write("usage: bulkput report merge FILE... [--json]\n")
        return 2
    try:
        summary = merge_job_reports(args.files)
    except UsageError as error:
        sys.stderr.write(f"bulkput: {error.one_line()}\n")
        return error.exit_code
    if args.json:
        record = summary.to_dict()
        record["reports"] = len(args.files)
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    else:
        print_summary(summary, sys.stdout, resume=MERGE_RESUMES)
    return summary.exit_code
