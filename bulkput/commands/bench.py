"""``bulkput bench``: run the benchmark harness (``bulkput.bench.harness``)."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any


def add_parser(subparsers: Any) -> None:
    from bulkput.bench.harness import add_arguments

    parser = subparsers.add_parser(
        "bench",
        help="benchmark bulkput beside s5cmd, rclone, aws cli, boto3, obstore and the SDKs",
        description="Run benchmark scenarios on generated datasets against local servers; "
                    "write benchmarks/results/*.json and docs/benchmarks.md.",
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from bulkput.bench.harness import run_from_args

    command = " ".join(["bulkput", *map(shlex.quote, sys.argv[1:])])
    return run_from_args(args, command)
