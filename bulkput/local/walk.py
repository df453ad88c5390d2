"""A streaming directory walk that yields files in the order object listings use.

``walk_tree(root, options)`` yields :class:`WalkEntry` for each regular file and a
:class:`~bulkput.errors.BulkputError` for each path it skips or cannot read, in **global key
order**: the keys (relative paths with ``/``) come out sorted by their UTF-8 bytes, which is the
order S3, OSS and BOS list objects in, so ``sync`` can merge-join the walk with a listing.

How the order is built: inside one directory the children are sorted by their name, a directory
sorting as ``name/`` (so ``a.txt`` < ``a/b`` < ``a0``, as in a listing), then the walk recurses
depth-first. Python compares ``str`` by code point, which for valid Unicode is the same order
as comparing UTF-8 bytes. Memory holds the sorted children of each directory on the current
path; a directory with more than ``WalkOptions.sort_memory_entries`` children is sorted on disk
(sorted runs in temporary files, then a k-way merge), so memory stays bounded whatever the
directory size.

What is reported instead of yielded (each error names the path and the cause; the walk goes on):

=============================  ==============================  ====================================
case                           yielded                         severity
=============================  ==============================  ====================================
symbolic link (not followed)   :class:`SkippedPath` ``symlink``   warning: skipped by rule
socket, fifo, device           :class:`SkippedPath` (its kind)    warning: skipped by rule
name not valid UTF-8           :class:`InvalidNameError`          error: skipped, never mangled
two names equal after NFC      :class:`DuplicateNameError`        error: the later ones are skipped
symbolic link loop             :class:`SymlinkLoopError`          error (only with follow_symlinks)
broken symbolic link           :class:`LocalInputError`           error (only with follow_symlinks)
unreadable directory           :class:`UnreadableDirectoryError`  error; ``key`` ends with ``/``
=============================  ==============================  ====================================

Errors with a key are yielded at that key's place in the order, so a merge-join knows that a
local path exists there (``sync --delete`` must not delete what it could not read); a
:class:`DuplicateNameError` carries the key of the name it equals, which the walk yielded just
before. With ``report_excluded``, a :class:`SkippedFolder` marks each folder not entered (excluded
by the filter, or a symbolic link not followed, so ``link/`` is guarded as well as ``link``).
"""

from __future__ import annotations

import heapq
import os
import stat
import struct
import tempfile
import unicodedata
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import IO

from bulkput.errors import (
    BulkputError,
    DuplicateNameError,
    InvalidNameError,
    LocalInputError,
    SkippedPath,
    SymlinkLoopError,
    UnreadableDirectoryError,
    UsageError,
)
from bulkput.local.filters import Filter
from bulkput.local.names import printable


@dataclass(frozen=True, slots=True)
class WalkOptions:
    follow_symlinks: bool = False
    normalize: bool = True  # NFC; False keeps names exactly as the file system has them
    filter: Filter | None = None
    # Yield what the walk leaves out, so a merge-join with a listing knows it exists (sync):
    # excluded files (WalkEntry.excluded set) and a SkippedFolder for each folder not entered.
    report_excluded: bool = False
    # Directories with more children than this are sorted on disk in runs of this size.
    sort_memory_entries: int = 100_000
    temp_dir: str | None = None


@dataclass(frozen=True, slots=True)
class WalkEntry:
    key: str  # relative to the root, "/" separators, NFC unless normalize=False
    path: str  # the path to open
    size: int
    mtime_ns: int
    via_symlink: bool = False  # the file, or a directory above it, is a followed symbolic link
    excluded: str | None = None  # why the filter excluded it (only with report_excluded)


@dataclass(frozen=True, slots=True)
class SkippedFolder:
    """A folder the walk did not enter (only with ``report_excluded``), yielded at its place in
    the order: the filter excludes everything in it (``reason`` ``excluded``), or it is, or may
    be, behind a symbolic link that is not followed (``symlink``: a link's name, whatever it
    points to). ``sync --delete`` leaves every object under ``key`` alone. Not a warning: the
    link itself is reported once, as a :class:`~bulkput.errors.SkippedPath`."""

    key: str  # relative to the root, ending with "/"
    path: str
    reason: str


# What the walk yields: a file, a folder not entered (report_excluded only), or a problem.
WalkItem = WalkEntry | SkippedFolder | BulkputError

# Kinds of directory children, as decided from the scandir entry (and stat for followed links).
_FILE, _DIR, _LINK, _SPECIAL = 0, 1, 2, 3
_LINK_FILE, _LINK_DIR, _LINK_BROKEN = 4, 5, 6
_DUPLICATE = 7  # a second name equal to the previous one after NFC
_UNKNOWN = 8  # the type could not be read
_LINK_FOLDER = 9  # "name/" beside a link not followed: the objects under it are left alone

_SPECIAL_NAMES = {
    stat.S_IFSOCK: "socket",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "character device",
    stat.S_IFBLK: "block device",
}

# (sort name, original name, kind): sort name is the key component, plus "/" for directories.
_Child = tuple[str, str, int]


def display_path(path: str) -> str:
    """A path as messages show it: control characters and undecodable bytes escaped
    (``\\n``, ``\\xNN``), so no file name can break a line of output."""
    return printable(path)


def walk_tree(root: str | os.PathLike[str], options: WalkOptions | None = None) -> Iterator[WalkItem]:
    """Walk ``root`` (a directory) and yield its files in key order; see the module doc."""
    options = options or WalkOptions()
    root_path = os.fspath(root)
    if root_path != "/":
        root_path = root_path.rstrip("/") or "/"
    try:
        root_stat = os.stat(root_path)
    except OSError as exc:
        raise UsageError(f"{display_path(root_path)}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(root_stat.st_mode):
        raise UsageError(f"{display_path(root_path)}: not a directory")
    return _Walker(options).walk(root_path, root_stat)


class _Walker:
    def __init__(self, options: WalkOptions) -> None:
        self.options = options
        self.filter = options.filter if options.filter is not None and not options.filter.is_empty else None

    def walk(self, root_path: str, root_stat: os.stat_result) -> Iterator[WalkItem]:
        # One frame per directory on the current path: its path, key prefix, children iterator,
        # identity (for loop detection) and whether it was reached through a symbolic link.
        ancestors: set[tuple[int, int]] = {(root_stat.st_dev, root_stat.st_ino)}
        stack: list[tuple[str, str, Iterator[_Child], tuple[int, int], bool]] = []
        errors: list[BulkputError] = []
        children = self._children(root_path, "", errors)
        yield from errors
        stack.append((root_path, "", children, (root_stat.st_dev, root_stat.st_ino), False))
        while stack:
            dir_path, prefix, children, identity, via_link = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                ancestors.discard(identity)
                continue
            sort_name, name, kind = child
            path = f"{dir_path}/{name}" if dir_path != "/" else f"/{name}"
            if kind in (_DIR, _LINK_DIR):
                dir_key = prefix + sort_name[:-1]
                if self.filter is not None and self.filter.prunes_dir(dir_key):
                    if self.options.report_excluded:
                        yield SkippedFolder(dir_key + "/", path, "excluded")
                    continue
                is_link = kind == _LINK_DIR
                if is_link or self.options.follow_symlinks:
                    try:
                        dir_stat = os.stat(path)
                    except OSError as exc:
                        yield UnreadableDirectoryError(
                            f"cannot read directory {display_path(path)}: {exc.strerror or exc}",
                            key=dir_key + "/", path=path)
                        continue
                    dir_identity = (dir_stat.st_dev, dir_stat.st_ino)
                    if dir_identity in ancestors:
                        yield SymlinkLoopError(
                            f"symbolic link loop: {display_path(path)} leads back to a directory above it",
                            key=dir_key + "/", path=path)
                        continue
                else:
                    dir_identity = (0, len(stack))  # no links followed: no loop is possible
                errors = []
                sub_children = self._children(path, dir_key + "/", errors)
                yield from errors
                ancestors.add(dir_identity)
                stack.append((path, dir_key + "/", sub_children, dir_identity, via_link or is_link))
                continue
            if kind == _LINK_FOLDER:
                yield SkippedFolder(prefix + sort_name, path, "symlink")
                continue
            key = prefix + sort_name
            yield from self._leaf(path, key, kind, via_link)

    def _leaf(self, path: str, key: str, kind: int, via_link: bool) -> Iterator[WalkEntry | BulkputError]:
        filt = self.filter
        if kind == _DUPLICATE:
            yield DuplicateNameError(
                f"{display_path(path)}: name equals another one in its directory after Unicode NFC "
                "normalisation; skipped (use --no-normalize to keep names as they are)",
                key=key.rstrip("/"), path=path)
            return
        if kind in (_FILE, _LINK_FILE):
            try:
                st = os.stat(path) if kind == _LINK_FILE else os.lstat(path)
            except OSError as exc:
                yield LocalInputError(f"cannot stat {display_path(path)}: {exc.strerror or exc}", key=key, path=path)
                return
            excluded = filt.exclude_reason(key, st.st_size) if filt is not None else None
            if excluded is not None and not self.options.report_excluded:
                return
            yield WalkEntry(key, path, st.st_size, st.st_mtime_ns, via_link or kind == _LINK_FILE, excluded)
            return
        if filt is not None and filt.exclude_reason(key) is not None:
            return
        if kind == _LINK:
            yield SkippedPath(f"skipped symbolic link {display_path(path)} (use --follow-symlinks to follow)",
                              key=key, path=path, reason="symlink")
        elif kind == _LINK_BROKEN:
            yield LocalInputError(f"broken symbolic link {display_path(path)}: its target does not exist",
                                  key=key, path=path)
        else:
            try:
                mode = (os.stat(path) if self.options.follow_symlinks else os.lstat(path)).st_mode
            except OSError as exc:
                yield LocalInputError(f"cannot stat {display_path(path)}: {exc.strerror or exc}", key=key, path=path)
                return
            if kind == _UNKNOWN and stat.S_ISREG(mode):
                yield from self._leaf(path, key, _FILE, via_link)
                return
            what = _SPECIAL_NAMES.get(stat.S_IFMT(mode), "special file")
            yield SkippedPath(f"skipped {what} {display_path(path)}: not a regular file",
                              key=key, path=path, reason=what.replace(" ", "-"))

    # --- one directory's children, sorted ---------------------------------------------------

    def _children(self, dir_path: str, prefix: str, errors: list[BulkputError]) -> Iterator[_Child]:
        """The directory's children in key order; problems found while listing go to ``errors``."""
        limit = max(1, self.options.sort_memory_entries)
        chunk: list[_Child] = []
        runs: list[IO[bytes]] = []
        try:
            with os.scandir(dir_path) as scan:
                for entry in scan:
                    child = self._classify(entry, dir_path, prefix, errors)
                    if child is None:
                        continue
                    chunk.append(child)
                    if child[2] in (_LINK, _LINK_BROKEN) and self.options.report_excluded:
                        chunk.append((child[0] + "/", child[1], _LINK_FOLDER))
                    if len(chunk) >= limit:
                        runs.append(_write_run(chunk, self.options.temp_dir))
                        chunk = []
        except OSError as exc:
            for run in runs:
                run.close()
            errors.append(UnreadableDirectoryError(
                f"cannot read directory {display_path(dir_path)}: {exc.strerror or exc}", key=prefix, path=dir_path))
            return iter(())
        chunk.sort()
        if runs:
            if chunk:
                runs.append(_write_run(chunk, self.options.temp_dir))
            return _deduplicated(_merge_runs(runs))
        return _deduplicated(iter(chunk))

    def _classify(self, entry: os.DirEntry[str], dir_path: str, prefix: str,
                  errors: list[BulkputError]) -> _Child | None:
        name = entry.name
        if not name.isascii():
            try:
                name.encode("utf-8")
            except UnicodeEncodeError:
                # The error carries a printable path: the real one holds undecodable bytes.
                errors.append(InvalidNameError(
                    "file name is not valid UTF-8; skipped (an object key must be UTF-8)",
                    path=display_path(entry.path)))
                return None
            key_name = unicodedata.normalize("NFC", name) if self.options.normalize else name
        else:
            key_name = name
        try:
            if entry.is_symlink():
                if not self.options.follow_symlinks:
                    return (key_name, name, _LINK)
                try:
                    target = os.stat(entry.path)
                except OSError:
                    return (key_name, name, _LINK_BROKEN)
                if stat.S_ISDIR(target.st_mode):
                    return (key_name + "/", name, _LINK_DIR)
                if stat.S_ISREG(target.st_mode):
                    return (key_name, name, _LINK_FILE)
                return (key_name, name, _SPECIAL)
            if entry.is_dir(follow_symlinks=False):
                return (key_name + "/", name, _DIR)
            if entry.is_file(follow_symlinks=False):
                return (key_name, name, _FILE)
        except OSError:
            return (key_name, name, _UNKNOWN)  # reported at its place in the order
        return (key_name, name, _SPECIAL)


def _deduplicated(children: Iterator[_Child]) -> Iterator[_Child]:
    """Two names equal after NFC would become one key: keep the first, mark the others."""
    previous: str | None = None
    for child in children:
        if child[0] == previous:
            yield (child[0], child[1], _DUPLICATE)
            continue
        previous = child[0]
        yield child


# --- external sort of one huge directory -----------------------------------------------------

_RECORD_HEAD = struct.Struct("<HHB")


def _write_run(chunk: list[_Child], temp_dir: str | None) -> IO[bytes]:
    """Sort ``chunk`` and write it to an anonymous temporary file (deleted when closed)."""
    chunk.sort()
    # Returned open to the merge, which closes it (and so deletes it) when done.
    run = tempfile.TemporaryFile(dir=temp_dir, prefix="bulkput-walk-")  # noqa: SIM115
    pack = _RECORD_HEAD.pack
    out = bytearray()
    for sort_name, name, kind in chunk:
        sort_bytes = sort_name.encode("utf-8")
        name_bytes = name.encode("utf-8")
        out += pack(len(sort_bytes), len(name_bytes), kind)
        out += sort_bytes
        out += name_bytes
        if len(out) >= 1 << 20:
            run.write(out)
            out.clear()
    run.write(out)
    run.seek(0)
    return run


def _read_run(run: IO[bytes]) -> Generator[_Child, None, None]:
    size = _RECORD_HEAD.size
    unpack = _RECORD_HEAD.unpack
    try:
        while True:
            head = run.read(size)
            if len(head) < size:
                return
            sort_len, name_len, kind = unpack(head)
            body = run.read(sort_len + name_len)
            yield (body[:sort_len].decode("utf-8"), body[sort_len:].decode("utf-8"), kind)
    finally:
        run.close()


def _merge_runs(runs: list[IO[bytes]]) -> Iterator[_Child]:
    readers = [_read_run(run) for run in runs]
    try:
        yield from heapq.merge(*readers)
    finally:
        for reader in readers:
            reader.close()
