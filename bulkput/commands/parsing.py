"""The command line's parser and help formatter, shared by every verb.

:class:`CommandParser` turns every argparse error into one line naming the option and what
to do, then where the help is (``bulkput put: argument --concurrency: '0': must be at least
1; see `bulkput put --help```), exit 2, instead of the usage dump before the line that
matters. The verbs' parsers inherit it (argparse gives subparsers their parent's class).

:class:`HelpFormatter` fills each verb's description to the terminal's width, keeps its
examples and tables as written, and adds ``(default: X)`` to the options whose help does not
say its default already.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from typing import Any, NoReturn

from bulkput.suggest import did_you_mean


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr, then exit 2, and whose help is
    laid out by :class:`HelpFormatter` (unless another is given)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"{self.prog}: {text}; see `{self.prog} --help`\n")

    def _check_value(self, action: argparse.Action, value: object) -> None:
        # argparse's own message, with "did you mean" when a choice is close
        if action.choices is not None and value not in action.choices and isinstance(value, str):
            choices = [str(choice) for choice in action.choices]
            hint = did_you_mean(value, choices)
            raise argparse.ArgumentError(
                action,
                f"invalid choice: {value!r}{'; ' + hint if hint else ''} "
                f"(choose from {', '.join(choices)})",
            )
        super()._check_value(action, value)


class HelpFormatter(argparse.HelpFormatter):
    """Descriptions and epilogs in paragraphs filled to the terminal's width, except indented
    lines (examples, tables), which stay as written; ``(default: X)`` after an option's help
    unless the help says its default already or there is none to show (None, False, an empty
    list: the option is off unless given)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        blocks = []
        for block in re.split(r"\n\s*\n", text.strip("\n")):
            lines = block.splitlines()
            indented = lines[0][:1].isspace()
            titled = lines[0].endswith(":") and all(line[:1].isspace() for line in lines[1:])
            if indented or (len(lines) > 1 and titled):
                blocks.append("\n".join(indent + line for line in lines))  # as written
            else:
                blocks.append(
                    textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                  subsequent_indent=indent)
                )  # fmt: skip
        return "\n\n".join(blocks)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or action.nargs == 0  # a flag: off unless given
            or default in (None, False, argparse.SUPPRESS)
            or default == []
            or not action.option_strings
        ):
            return text
        shown = str(default).replace("%", "%%") if default != "" else "''"
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


def examples(*lines: str) -> str:
    """An epilog: ``Examples:`` and the command lines given, indented, as ``aws s3 cp help``
    ends."""
    return "Examples:\n" + "\n".join(f"  {line}" if line else "" for line in lines)

