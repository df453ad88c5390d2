"""The ``bulkput`` command line: a thin shell that dispatches to ``bulkput.commands.*``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bulkput import __version__

# verb -> module; each module has add_parser(subparsers) and run(args) -> int
COMMANDS: dict[str, str] = {
    "put": "bulkput.commands.put",
    "sync": "bulkput.commands.sync",
    "serve": "bulkput.commands.serve",
    "demo": "bulkput.commands.demo",
    "abort-incomplete": "bulkput.commands.abort_incomplete",
    "report": "bulkput.commands.report",
    "bench": "bulkput.commands.bench",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkput",
        description="Bulk uploads to Baidu BOS, Aliyun OSS and S3-compatible object storage.",
    )
    parser.add_argument("--version", action="version", version=f"bulkput {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # verb not built yet in this checkout
                continue
            raise
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
