"""Which local files (and which remote objects) a job considers: globs, hidden files, sizes.

Two rule styles, each with the semantics of the tool it comes from; a job uses one of them.

aws style: ``--include GLOB`` / ``--exclude GLOB`` (as ``aws s3 cp/sync``)
-----------------------------------------------------------------------------
* Every rule is applied, in the order given; **the last rule that matches decides**. A key no
  rule matches is **included** (so ``--include`` alone changes nothing: ``--exclude '*'
  --include '*.jpg'`` is "only the JPEGs", exactly as with aws).
* A pattern matches the whole key relative to the source folder, with :func:`fnmatch.fnmatchcase`
  (what aws-cli itself uses): ``*`` matches any characters **including** ``/``, ``?`` one
  character, ``[abc]``/``[!abc]`` classes. ``*.jpg`` matches ``a/b/c.jpg``; ``logs/*`` matches
  everything under ``logs/``.
* An ``--include`` placed before an ``--exclude`` that matches everything has no effect (the
  exclude comes last and wins): bulkput says so in a warning before any work.

rclone style: ``--filter-from FILE``, ``--include-from FILE``, ``--exclude-from FILE``
----------------------------------------------------------------------------------------
* ``--filter-from`` lines are ``+ GLOB`` (include) or ``- GLOB`` (exclude); ``--include-from``
  and ``--exclude-from`` hold one GLOB a line. Blank lines and ``#`` comments are skipped.
* **The first rule that matches decides**; when none matches, the key is included, unless an
  include rule was given (then it is excluded: ``+ *.jpg`` alone is "only the JPEGs").
* A pattern matches the key **or any of its parent directories** (``- node_modules`` drops
  ``web/node_modules/x.js``); a trailing ``/`` restricts it to directories; a leading ``/``
  anchors it at the source folder, otherwise it matches whole trailing path elements at any
  depth. ``*`` stays within one path element, ``**`` crosses ``/``, ``{a,b}`` alternatives,
  ``\\`` escapes. Globs are compiled by wcmatch (GLOBSTAR, BRACE, DOTGLOB).

Both styles
-----------
* Hidden files (a path element starting with ``.``) are **included by default**, as rsync,
  rclone, aws s3 sync and s5cmd do; ``--exclude-hidden`` excludes them whatever the rules say.
* ``--min-size`` / ``--max-size`` (both inclusive) apply after the rules, to files only. Sizes
  are read by :func:`bulkput.config.parse_size`, as every size option.
* sync applies the same filter to the remote side: an object whose key is excluded is neither
  compared nor deleted, so ``sync --delete --exclude '*.log'`` leaves remote logs alone.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bulkput.config import parse_size
from bulkput.errors import UsageError


@dataclass(frozen=True)
class AwsRule:
    """One ``--include``/``--exclude`` pattern with aws s3 semantics (see the module doc)."""

    include: bool
    pattern: str

    def matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.pattern)

    @property
    def matches_everything(self) -> bool:
        return self.pattern.strip("*") == ""

    def covers_dir(self, dir_key: str) -> bool:
        """True when this pattern matches every key under ``dir_key``: it ends with ``*``
        and the rest matches the directory's path up to some point."""
        if not self.pattern.endswith("*"):
            return False
        head = self.pattern[:-1]
        path = dir_key + "/"
        return any(fnmatch.fnmatchcase(path[:cut], head) for cut in range(len(path), -1, -1))

    def describe(self) -> str:
        return f"--{'include' if self.include else 'exclude'} {self.pattern!r}"


@dataclass(frozen=True)
class PathRule:
    """One rclone-style rule (``+``/``-`` line of a filter file), compiled by wcmatch."""

    include: bool
    pattern: str
    _match: re.Pattern[str] = field(repr=False, compare=False)
    _covers: re.Pattern[str] = field(repr=False, compare=False)

    @classmethod
    def compile(cls, include: bool, pattern: str) -> PathRule:
        if not pattern.strip("/"):
            raise UsageError(f"pattern {pattern!r} matches nothing")
        body = _inner_globstars(pattern.strip("/"))
        lead = "" if pattern.startswith("/") else "**/"
        dir_only = pattern.endswith("/")
        # the key itself (files and dirs, unless dir-only) or one of its parent directories
        match = _compile(pattern, f"{lead}{body}/**" if dir_only else f"{lead}{body}{{,/**}}")
        covers = _compile(pattern, f"{lead}{body}{{,/**}}")
        return cls(include, pattern, match, covers)

    def matches(self, key: str) -> bool:
        return self._match.fullmatch(key) is not None

    def covers_dir(self, dir_key: str) -> bool:
        """True when this rule matches every key under ``dir_key`` (it or a parent matches)."""
        return self._covers.fullmatch(dir_key) is not None

    def describe(self) -> str:
        return f"{'+' if self.include else '-'} {self.pattern!r}"


def _inner_globstars(glob: str) -> str:
    """rclone's ``**`` crosses ``/`` anywhere (``logs/**.log``); wcmatch's only as a whole
    path element, so ``X**Y`` in an element becomes ``X*{,/**/}*Y``."""
    return "/".join(
        part.replace("**", "*{,/**/}*") if part != "**" and "**" in part else part
        for part in glob.split("/")
    )


def _compile(pattern: str, glob: str) -> re.Pattern[str]:
    if glob.count("{") - glob.count("\\{") != glob.count("}") - glob.count("\\}"):
        raise UsageError(f"pattern {pattern!r}: unbalanced '{{'")
    # imported here: a job without filters does not pay for wcmatch (~7 ms of CPU per process)
    from wcmatch import glob as wcglob

    flags = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.DOTGLOB | wcglob.NOUNIQUE
    try:
        included, _ = wcglob.translate(glob, flags=flags)
        return re.compile("|".join(f"(?:{rx})" for rx in included), re.DOTALL)
    except (re.error, ValueError) as exc:
        raise UsageError(f"pattern {pattern!r}: {exc}") from None


def _is_hidden(key: str) -> bool:
    return key.startswith(".") or "/." in key


class Filter:
    """Decides, per key (and size for files), whether a job includes it. See the module doc."""

    def __init__(
        self,
        rules: Sequence[AwsRule] = (),
        *,
        path_rules: Sequence[PathRule] = (),
        exclude_hidden: bool = False,
        min_size: int | None = None,
        max_size: int | None = None,
    ) -> None:
        if rules and path_rules:
            raise UsageError(
                "use --include/--exclude (aws order: the last matching rule wins) or "
                "--filter-from/--include-from/--exclude-from (rclone order: the first matching "
                "rule wins), not both"
            )
        self.rules = tuple(rules)
        self.path_rules = tuple(path_rules)
        self.exclude_hidden = exclude_hidden
        self.min_size = min_size
        self.max_size = max_size
        self._path_includes = any(rule.include for rule in self.path_rules)

    @classmethod
    def from_patterns(
        cls,
        rules: Iterable[tuple[str, str]] = (),
        *,
        path_rules: Iterable[tuple[str, str]] = (),
        exclude_hidden: bool = False,
        min_size: int | str | None = None,
        max_size: int | str | None = None,
    ) -> Filter:
        """``rules``: aws-style ``("include" | "exclude", glob)`` pairs in order; ``path_rules``:
        rclone-style pairs in order; sizes as ints or ``"10M"``."""
        return cls(
            [AwsRule(_kind(kind) == "include", pattern) for kind, pattern in rules],
            path_rules=[PathRule.compile(_kind(kind) == "include", p) for kind, p in path_rules],
            exclude_hidden=exclude_hidden,
            min_size=parse_size(min_size) if isinstance(min_size, str) else min_size,
            max_size=parse_size(max_size) if isinstance(max_size, str) else max_size,
        )

    @property
    def is_empty(self) -> bool:
        return not (
            self.rules or self.path_rules or self.exclude_hidden
            or self.min_size is not None or self.max_size is not None
        )  # fmt: skip

    def warnings(self) -> list[str]:
        """What in the rules does not do what it seems to: an ``--include`` that a later
        ``--exclude`` of everything overrides (aws order: the last match wins)."""
        found = []
        for index, rule in enumerate(self.rules):
            if not rule.include:
                continue
            later = next((r for r in self.rules[index + 1 :]
                          if not r.include and r.matches_everything), None)  # fmt: skip
            if later is not None:
                found.append(
                    f"{rule.describe()} has no effect: the later {later.describe()} matches "
                    f"every key and the last matching rule wins (as in aws s3); put the "
                    f"--include after the --exclude"
                )
        return found

    def exclude_reason(self, key: str, size: int | None = None) -> str | None:
        """Why ``key`` is excluded, or None when it is included. ``size`` None skips size rules."""
        if self.exclude_hidden and _is_hidden(key):
            return "excluded: hidden (--exclude-hidden)"
        decided: AwsRule | None = None
        for rule in self.rules:
            if rule.matches(key):
                decided = rule
        if decided is not None and not decided.include:
            return f"excluded by {decided.describe()}"
        for path_rule in self.path_rules:
            if path_rule.matches(key):
                if path_rule.include:
                    break
                return f"excluded by filter rule {path_rule.describe()}"
        else:
            if self._path_includes:
                return "excluded: matches no include rule"
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
        for index, rule in enumerate(self.rules):
            # an exclude covering the whole folder, with no include after it that could win
            later_includes = any(later.include for later in self.rules[index + 1 :])
            if not rule.include and not later_includes and rule.covers_dir(dir_key):
                return True
        for path_rule in self.path_rules:
            if path_rule.include:
                return False  # an include might match something inside: must look
            if path_rule.covers_dir(dir_key):
                return True
        return False


def _kind(kind: str) -> str:
    if kind not in ("include", "exclude"):
        raise UsageError(f"filter rule kind {kind!r}: expected include or exclude")
    return kind


def read_filter_file(path: str) -> list[tuple[str, str]]:
    """The rules of an rclone-style ``--filter-from`` file: ``+ GLOB`` / ``- GLOB`` lines."""
    rules = []
    for number, line in _pattern_lines(path):
        sign, _, pattern = line.partition(" ")
        if sign not in ("+", "-") or not pattern:
            raise UsageError(
                f"filter file {path} line {number}: expected '+ GLOB' or '- GLOB', got {line!r}"
            )
        rules.append(("include" if sign == "+" else "exclude", pattern))
    return rules


def read_pattern_file(path: str) -> list[str]:
    """Patterns from a file: one a line; blank lines and ``#`` comments skipped."""
    return [line for _, line in _pattern_lines(path)]


def _pattern_lines(path: str) -> list[tuple[int, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            lines = [line.rstrip("\r\n") for line in handle]
    except OSError as exc:
        raise UsageError(f"cannot read pattern file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"pattern file {path} is not UTF-8") from None
    return [
        (number, line) for number, line in enumerate(lines, 1)
        if line.strip() and not line.lstrip().startswith("#")
    ]  # fmt: skip
