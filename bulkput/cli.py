"""The ``bulkput`` command line: a thin shell that dispatches to ``bulkput.commands.*``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence

from bulkput import __version__
from bulkput.commands.parsing import CommandParser, examples

# verb -> module; each module has add_parser(subparsers) and run(args) -> int
COMMANDS: dict[str, str] = {
    "put": "bulkput.commands.put",
    "sync": "bulkput.commands.sync",
    "serve": "bulkput.commands.serve",
    "demo": "bulkput.commands.demo",
    "abort-incomplete": "bulkput.commands.abort_incomplete",
    "report": "bulkput.commands.report",
    "journal": "bulkput.commands.journal",
}
# Verbs whose only HTTP client is bulkput.remote.transport (always its own TLS context).
_CLIENT_VERBS = frozenset(("put", "sync", "abort-incomplete"))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every verb, or of ``only`` that verb (so ``bulkput put`` does not pay for
    importing the server and the benchmark harness: start-up CPU counts per job)."""
    return build_parsers(only)[0]


def build_parsers(
    only: str | None = None,
) -> tuple[argparse.ArgumentParser, Mapping[str, argparse.ArgumentParser]]:
    """:func:`build_parser`'s parser, and each verb's own parser by name."""
    parser = CommandParser(
        prog="bulkput",
        description="Bulk uploads to Baidu BOS, Aliyun OSS and S3-compatible object storage.",
        epilog=examples(
            "bulkput demo                                   # try it: a local store, a demo folder",
            "bulkput put ./holiday s3://photos/2026/        # upload a folder",
            "bulkput sync ./site oss://my-bucket/www/ --delete",
            "bulkput put --help                             # every option of put, with examples",
        ),
    )
    parser.add_argument("--version", action="version", version=f"bulkput {__version__}")
    parser.set_defaults(intermixed_positionals=None)  # a verb's own default names its list
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # verb not built yet in this checkout
                continue
            raise
        module.add_parser(sub)
    return parser, sub.choices


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    verb = arguments[0] if arguments and arguments[0] in COMMANDS else None
    parser, verbs = build_parsers(verb)
    args, extra = parser.parse_known_args(arguments)
    # A verb may take positionals on both sides of its options (``put SRC --opt X DEST``): it
    # names the list they join with ``set_defaults(intermixed_positionals="paths")``.
    joined: str | None = args.intermixed_positionals
    if extra and joined and not any(arg.startswith("-") and arg != "-" for arg in extra):
        vars(args)[joined].extend(extra)
    elif extra:
        # the verb's parser, so the line names bulkput VERB and its --help
        verbs.get(verb or "", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = arguments  # the verb's own words, for commands that re-run parts of themselves
    # (put --dask sends no request from here: its workers do; aiohttp is ~40 ms of its start)
    if verb in _CLIENT_VERBS and not (verb == "put" and args.dask):
        from bulkput.remote.aiohttp_import import import_aiohttp_without_default_cas

        import_aiohttp_without_default_cas()
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
