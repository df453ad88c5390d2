"""Which local files (and which remote objects) a job considers: globs, hidden files, sizes.

Rules and precedence
--------------------
``--include PATTERN`` and ``--exclude PATTERN`` (both repeatable), ``--include-from FILE`` and
``--exclude-from FILE`` (one pattern a line; blank lines and lines starting with ``#`` ignored)
form one ordered list of rules, in the order they appear on the command line.

* **First match wins**, in the order given (as rsync and rclone): the first rule whose pattern
  matches the key decides whether it is included or excluded; later rules are not consulted.
* When no rule matches, the key is **included** - unless at least one include rule was given,
  in which case it is **excluded** (``--include '*.jpg'`` alone means "only the JPEGs").
* A pattern matches a key when it matches the key itself **or any of its parent directories**:
  ``--exclude node_modules`` excludes ``web/node_modules/x.js``; ``--include docs --exclude '*'``
  keeps everything under ``docs/``. A trailing ``/`` restricts a pattern to directories.
* A pattern starting with ``/`` is anchored at the root of the walk; otherwise it matches
  whole trailing path elements at any depth (``*.tmp`` matches ``a/b/c.tmp``, ``b/*.tmp``
  matches ``a/b/c.tmp``).
* Glob syntax: ``*`` any characters except ``/``; ``**`` any characters including ``/``; ``?``
  one character except ``/``; ``[abc]``, ``[a-z]``, ``[!abc]`` character classes; ``{a,b}``
  alternatives; ``\\`` escapes the next character. Patterns match the key after Unicode NFC
  normalisation (when the walk normalises).
* Hidden files (a path element starting with ``.``) are **included by default**, as rsync,
  rclone, aws s3 sync and s5cmd do; ``--exclude-hidden`` excludes them whatever the rules say.
* ``--min-size`` / ``--max-size`` (both inclusive) apply after the rules, to files only. Sizes
  are read by :func:`bulkput.config.parse_size`, as every size option: bytes, or a number with
  a unit: ``K``/``Ki``/``KiB`` = 1024, ``M``/``Mi``/``MiB`` = 1024², ``G``, ``T`` likewise, and
  ``KB``/``MB``/``GB``/``TB`` = powers of 1000 (rsync's convention).

sync applies the same filter to the remote side: an object whose key is excluded is neither
compared nor deleted, so ``sync --delete --exclude '*.log'`` leaves remote logs alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bulkput.config import parse_size
from bulkput.errors import UsageError


def glob_to_regex(pattern: str) -> str:
    """Translate one glob (without anchoring or trailing slash) into a regular expression."""
    out: list[str] = []
    i, n = 0, len(pattern)
    brace_depth = 0
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                out.append(".*")
                i += 2
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            start = i + 1
            if start < n and pattern[start] in "!^":
                start += 1
            end = pattern.find("]", start + 1)  # a ']' right after '[' or '[!' is literal
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\")
                out.append(f"[{'^/' if negate else ''}{body}]")
                i = end + 1
                continue
        elif c == "{":
            brace_depth += 1
            out.append("(?:")
        elif c == "," and brace_depth:
            out.append("|")
        elif c == "}" and brace_depth:
            brace_depth -= 1
            out.append(")")
        else:
            out.append(re.escape(c))
        i += 1
    if brace_depth:
        raise UsageError(f"pattern {pattern!r}: unbalanced '{{'")
    return "".join(out)


@dataclass(frozen=True)
class Rule:
    """One ``--include``/``--exclude`` pattern, compiled."""

    include: bool
    pattern: str
    _match: re.Pattern[str] = field(repr=False, compare=False)
    _covers: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def compile(cls, include: bool, pattern: str) -> Rule:
        if not pattern.strip("/"):
            raise UsageError(f"pattern {pattern!r} matches nothing")
        body = pattern
        anchored = body.startswith("/")
        dir_only = body.endswith("/")
        body = body.strip("/")
        lead = "^" if anchored else "^(?:.*/)?"
        core = glob_to_regex(body)
        # _match: the key itself (unless dir-only) or one of its parent directories matches.
        tail = "/" if dir_only else "(?:/|$)"
        try:
            match = re.compile(f"{lead}(?:{core}){tail}", re.DOTALL)
            covers = re.compile(f"{lead}(?:{core})/", re.DOTALL)
        except re.error as exc:
            raise UsageError(f"pattern {pattern!r}: {exc}") from None
        return cls(include, pattern, match, covers)

    def matches(self, key: str) -> bool:
        return self._match.match(key) is not None

    def covers_dir(self, dir_key: str) -> bool:
        """True when this rule matches every key under ``dir_key`` (a directory or a parent of it)."""
        return self._covers.match(dir_key + "/") is not None

    def describe(self) -> str:
        return f"--{'include' if self.include else 'exclude'} {self.pattern!r}"


def _is_hidden(key: str) -> bool:
    return key.startswith(".") or "/." in key


class Filter:
    """Decides, per key (and size for files), whether a job includes it. See the module doc."""

    def __init__(
        self,
        rules: Sequence[Rule] = (),
        *,
        exclude_hidden: bool = False,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.exclude_hidden = exclude_hidden
        self.min_size = min_size
        self.max_size = max_size
        self._has_includes = any(rule.include for rule in self.rules)

    @classmethod
    def from_patterns(
        cls,
        rules: Iterable[tuple[str, str]] = (),
        *,
        exclude_hidden: bool = False,
        min_size: int | str | None = None,
        max_size: int | str | None = None,
    ) -> Filter:
        """Rules as ``("include" | "exclude", pattern)`` pairs in order; sizes as ints or ``"10M"``."""
        compiled = []
        for kind, pattern in rules:
            if kind not in ("include", "exclude"):
                raise UsageError(f"filter rule kind {kind!r}: expected include or exclude")
            compiled.append(Rule.compile(kind == "include", pattern))
        return cls(
            compiled,
            exclude_hidden=exclude_hidden,
            min_size=parse_size(min_size) if isinstance(min_size, str) else min_size,
            max_size=parse_size(max_size) if isinstance(max_size, str) else max_size,
        )

    @property
    def is_empty(self) -> bool:
        return not (self.rules or self.exclude_hidden or self.min_size is not None or self.max_size is not None)

    def exclude_reason(self, key: str, size: int | None = None) -> str | None:
        """Why ``key`` is excluded, or None when it is included. ``size`` None skips size rules."""
        if self.exclude_hidden and _is_hidden(key):
            return "excluded: hidden (--exclude-hidden)"
        for rule in self.rules:
            if rule.matches(key):
                if rule.include:
                    break
                return f"excluded by {rule.describe()}"
        else:
            if self._has_includes:
                return "excluded: matches no --include"
        if size is not None:
            if self.min_size is not None and size < self.min_size:
                return f"excluded: smaller than --min-size {self.min_size}"
            if self.max_size is not None and size > self.max_size:
                return f"excluded: larger than --max-size {self.max_size}"
        return None

    def prunes_dir(self, dir_key: str) -> bool:
        """True when every key under ``dir_key`` is excluded, so the walk need not enter it."""
        if self.exclude_hidden and _is_hidden(dir_key):
            return True
        for rule in self.rules:
            if rule.include:
                return False  # an include might match something inside: must look
            if rule.covers_dir(dir_key):
                return True
        return False


def read_pattern_file(path: str) -> list[str]:
    """Patterns from a file: one a line; blank lines and ``#`` comments skipped."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
    except OSError as exc:
        raise UsageError(f"cannot read pattern file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"pattern file {path} is not UTF-8") from None
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
