from __future__ import annotations

import os
import socket
import unicodedata
from pathlib import Path

import pytest

import bulkput.local.walk as walk_module
from bulkput.errors import (
    DuplicateNameError,
    InvalidNameError,
    LocalInputError,
    SkippedPath,
    SymlinkLoopError,
    UnreadableDirectoryError,
    UsageError,
)
from bulkput.local.filters import Filter
from bulkput.local.walk import SkippedFolder, WalkEntry, WalkOptions, walk_tree

NFD_E = unicodedata.normalize("NFD", "é")  # "e" + combining acute

TRICKY_KEYS = [
    "a b",
    "a-b/x",
    "a.txt",
    "a/b.c/d",
    "a/b-c",
    "a/b/c",
    "a0",
    "ab",
    "A",
    "Z/z",
    "z~",
    "_under",
    "~tilde",
    "é.txt",
    "ü/ö/ä",
    "日本/語.txt",
    "emoji-😀/x",
    "😀",
    "a!/x",
    "a%/y",
    "a+b",
    "deep/1/2/3/4/5/6/f",
]


def make_tree(root: Path, keys: list[str]) -> None:
    for key in keys:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(key.encode())


def walk_keys(root: Path, options: WalkOptions | None = None) -> list[str]:
    return [item.key for item in walk_tree(root, options) if isinstance(item, WalkEntry)]


def utf8_order(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: k.encode("utf-8"))


def test_walk_order_is_utf8_byte_order_of_keys(tmp_path: Path) -> None:
    make_tree(tmp_path, TRICKY_KEYS)
    keys = walk_keys(tmp_path)
    assert keys == utf8_order(TRICKY_KEYS)
    # the cases a per-directory name sort gets wrong
    assert keys.index("a-b/x") < keys.index("a.txt") < keys.index("a/b-c") < keys.index("a0")
    assert keys.index("a/b-c") < keys.index("a/b.c/d") < keys.index("a/b/c")


def test_entries_carry_path_size_and_mtime(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    file = tmp_path / "sub" / "f.bin"
    file.write_bytes(b"x" * 1234)
    os.utime(file, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    (entry,) = list(walk_tree(tmp_path))
    assert isinstance(entry, WalkEntry)
    assert entry.key == "sub/f.bin"
    assert entry.path == str(file)
    assert entry.size == 1234
    assert entry.mtime_ns == 1_600_000_000_123_456_789
    assert not entry.via_symlink


def test_nfd_names_become_nfc_keys_unless_normalize_is_off(tmp_path: Path) -> None:
    make_tree(tmp_path, [f"caf{NFD_E}/r{NFD_E}sum{NFD_E}.txt", "cafe/x", "cafz"])
    nfc = walk_keys(tmp_path)
    assert nfc == utf8_order(["café/résumé.txt", "cafe/x", "cafz"])
    raw = walk_keys(tmp_path, WalkOptions(normalize=False))
    assert raw == utf8_order([f"caf{NFD_E}/r{NFD_E}sum{NFD_E}.txt", "cafe/x", "cafz"])
    # the NFD key sorts between "cafe/" and "cafz" by its bytes, and the walk agrees
    assert raw[0] == "cafe/x"


def test_names_equal_after_nfc_report_the_second(tmp_path: Path) -> None:
    (tmp_path / "é").write_bytes(b"nfc")
    (tmp_path / NFD_E).write_bytes(b"nfd")
    items = list(walk_tree(tmp_path))
    entries = [i for i in items if isinstance(i, WalkEntry)]
    errors = [i for i in items if isinstance(i, InvalidNameError)]
    assert [e.key for e in entries] == ["é"]
    assert len(errors) == 1 and "NFC" in errors[0].message
    # the key they share, right after the first: a merge-join passes it by, unjoined
    assert isinstance(errors[0], DuplicateNameError) and errors[0].key == "é"
    assert items.index(errors[0]) == items.index(entries[0]) + 1
    assert len(walk_keys(tmp_path, WalkOptions(normalize=False))) == 2


def test_external_sort_gives_the_same_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = [f"big/{i:03d}{suffix}" for i in range(60) for suffix in ("", ".x", "-y")]
    keys += ["big/007/inner", "big/007.x/inner", "big.txt", "big-/z", f"big/{NFD_E}"]
    keys.remove("big/007")  # now a directory
    keys.remove("big/007.x")
    make_tree(tmp_path, keys)
    runs_written = 0
    real_write_run = walk_module._write_run

    def counting_write_run(chunk, temp_dir):  # type: ignore[no-untyped-def]
        nonlocal runs_written
        runs_written += 1
        return real_write_run(chunk, temp_dir)

    monkeypatch.setattr(walk_module, "_write_run", counting_write_run)
    sort_dir = tmp_path.parent / (tmp_path.name + "-sort")
    sort_dir.mkdir()
    small = walk_keys(tmp_path, WalkOptions(sort_memory_entries=7, temp_dir=str(sort_dir)))
    assert runs_written >= 180 // 7
    assert small == utf8_order([k if k != f"big/{NFD_E}" else "big/é" for k in keys])
    assert small == walk_keys(tmp_path)
    assert list(sort_dir.iterdir()) == []  # anonymous run files, gone


def test_external_sort_reports_nfc_duplicates_across_runs(tmp_path: Path) -> None:
    for i in range(10):
        (tmp_path / f"f{i}").write_bytes(b"")
    (tmp_path / "é").write_bytes(b"")
    (tmp_path / NFD_E).write_bytes(b"")
    items = list(walk_tree(tmp_path, WalkOptions(sort_memory_entries=3)))
    assert sum(isinstance(i, InvalidNameError) for i in items) == 1
    assert [i.key for i in items if isinstance(i, WalkEntry)] == [f"f{i}" for i in range(10)] + ["é"]


def test_symlinks_skipped_with_a_warning_by_default(tmp_path: Path) -> None:
    make_tree(tmp_path, ["real/file", "zz"])
    (tmp_path / "link-to-file").symlink_to(tmp_path / "zz")
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "real")
    items = list(walk_tree(tmp_path))
    assert [i.key for i in items if isinstance(i, WalkEntry)] == ["real/file", "zz"]
    skipped = [i for i in items if isinstance(i, SkippedPath)]
    assert sorted(s.key or "" for s in skipped) == ["link-to-dir", "link-to-file"]
    assert all(s.reason == "symlink" and "--follow-symlinks" in s.message for s in skipped)
    assert not any(isinstance(i, SkippedFolder) for i in items)  # put's walk: only the warning


def test_a_link_not_followed_is_also_a_folder_not_entered_when_reporting(tmp_path: Path) -> None:
    """sync's walk: ``link`` (the warning) and ``link/`` (guarding what may be behind it), each
    at its place in key order, for links to folders and files alike."""
    make_tree(tmp_path, ["real/file", "zz", "link-to-dir-x"])
    (tmp_path / "link-to-file").symlink_to(tmp_path / "zz")
    (tmp_path / "link-to-dir").symlink_to(tmp_path / "real")
    items = list(walk_tree(tmp_path, WalkOptions(report_excluded=True)))
    assert [(type(i).__name__, i.key) for i in items] == [
        ("SkippedPath", "link-to-dir"),
        ("WalkEntry", "link-to-dir-x"),
        ("SkippedFolder", "link-to-dir/"),
        ("SkippedPath", "link-to-file"),
        ("SkippedFolder", "link-to-file/"),
        ("WalkEntry", "real/file"),
        ("WalkEntry", "zz"),
    ]
    assert all(i.reason == "symlink" for i in items if isinstance(i, SkippedFolder))


def test_follow_symlinks_walks_through_links_in_key_order(tmp_path: Path) -> None:
    make_tree(tmp_path, ["real/file", "real/sub/deep", "zz"])
    (tmp_path / "link-to-file").symlink_to(tmp_path / "zz")
    (tmp_path / "real.d").symlink_to(tmp_path / "real")  # sorts before "real/"
    items = list(walk_tree(tmp_path, WalkOptions(follow_symlinks=True)))
    entries = [i for i in items if isinstance(i, WalkEntry)]
    keys = [e.key for e in entries]
    assert keys == utf8_order(["real/file", "real/sub/deep", "zz", "link-to-file",
                               "real.d/file", "real.d/sub/deep"])
    by_key = {e.key: e for e in entries}
    assert by_key["real.d/sub/deep"].via_symlink and by_key["link-to-file"].via_symlink
    assert not by_key["real/file"].via_symlink
    assert by_key["link-to-file"].size == 2


def test_symlink_loop_is_reported_and_the_walk_goes_on(tmp_path: Path) -> None:
    make_tree(tmp_path, ["a/b/file", "a/c", "z"])
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a")
    (tmp_path / "a" / "self").symlink_to(".")
    items = list(walk_tree(tmp_path, WalkOptions(follow_symlinks=True)))
    loops = [i for i in items if isinstance(i, SymlinkLoopError)]
    assert sorted(loop.key or "" for loop in loops) == ["a/b/up/", "a/self/"]
    assert all("loop" in loop.one_line() and str(tmp_path) in loop.one_line() for loop in loops)
    assert [i.key for i in items if isinstance(i, WalkEntry)] == ["a/b/file", "a/c", "z"]


def test_sibling_links_to_one_directory_are_not_a_loop(tmp_path: Path) -> None:
    make_tree(tmp_path, ["shared/f"])
    (tmp_path / "l1").symlink_to(tmp_path / "shared")
    (tmp_path / "l2").symlink_to(tmp_path / "shared")
    keys = walk_keys(tmp_path, WalkOptions(follow_symlinks=True))
    assert keys == ["l1/f", "l2/f", "shared/f"]


def test_broken_symlink_when_following_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (item,) = list(walk_tree(tmp_path, WalkOptions(follow_symlinks=True)))
    assert isinstance(item, LocalInputError) and item.key == "dangling"
    assert "broken symbolic link" in item.message


def test_name_that_is_not_utf8_is_reported_never_mangled(tmp_path: Path) -> None:
    make_tree(tmp_path, ["good-a", "good-z"])
    raw_dir = os.fsencode(tmp_path)
    fd = os.open(raw_dir + b"/bad-\xff\xfe.txt", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    os.mkdir(raw_dir + b"/dir-\xc3")  # a truncated UTF-8 sequence, with a file inside
    fd = os.open(raw_dir + b"/dir-\xc3/inner", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    items = list(walk_tree(tmp_path))
    assert [i.key for i in items if isinstance(i, WalkEntry)] == ["good-a", "good-z"]
    errors = sorted((i for i in items if isinstance(i, InvalidNameError)), key=lambda e: e.path or "")
    assert [e.path for e in errors] == [f"{tmp_path}/bad-\\xff\\xfe.txt", f"{tmp_path}/dir-\\xc3"]
    line = errors[0].one_line()
    assert "not valid UTF-8" in line and "\\xff\\xfe" in line
    line.encode("utf-8")  # printable as is


def test_fifo_and_socket_are_skipped_and_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, ["plain"])
    os.mkfifo(tmp_path / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(tmp_path / "sock"))
        items = list(walk_tree(tmp_path))
    finally:
        sock.close()
    assert [i.key for i in items if isinstance(i, WalkEntry)] == ["plain"]
    skipped = {i.key: i.reason for i in items if isinstance(i, SkippedPath)}
    assert skipped == {"pipe": "fifo", "sock": "socket"}


def test_followed_link_to_a_fifo_is_reported_as_a_fifo(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "to-pipe").symlink_to(tmp_path / "pipe")
    items = list(walk_tree(tmp_path, WalkOptions(follow_symlinks=True)))
    assert {i.key: i.reason for i in items if isinstance(i, SkippedPath)} == {"pipe": "fifo", "to-pipe": "fifo"}


def test_unreadable_directory_is_reported_at_its_place_and_the_rest_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, ["a", "locked/secret", "m/x", "z"])
    real_scandir = os.scandir
    locked = str(tmp_path / "locked")

    def scandir(path):  # type: ignore[no-untyped-def]
        if os.fspath(path) == locked:  # as root, chmod 000 would not stop us: simulate it
            raise PermissionError(13, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    items = list(walk_tree(tmp_path))
    summary = [(type(i).__name__, i.key) for i in items]
    assert summary == [("WalkEntry", "a"), ("UnreadableDirectoryError", "locked/"),
                       ("WalkEntry", "m/x"), ("WalkEntry", "z")]
    error = items[1]
    assert isinstance(error, UnreadableDirectoryError)
    assert "Permission denied" in error.one_line() and locked in error.one_line()


def test_filters_prune_directories_and_can_report_exclusions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, ["keep.txt", "skip.tmp", "node_modules/x/y.js", "src/a.txt", ".hidden"])
    flt = Filter.from_patterns(path_rules=[("exclude", "*.tmp"), ("exclude", "node_modules/")])
    scanned: list[str] = []
    real_scandir = os.scandir

    def scandir(path):  # type: ignore[no-untyped-def]
        scanned.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(walk_module.os, "scandir", scandir)
    assert walk_keys(tmp_path, WalkOptions(filter=flt)) == [".hidden", "keep.txt", "src/a.txt"]
    assert not any("node_modules" in path for path in scanned)

    reported = [i for i in walk_tree(tmp_path, WalkOptions(filter=flt, report_excluded=True))
                if isinstance(i, WalkEntry)]
    assert [(e.key, e.excluded is not None) for e in reported] == [
        (".hidden", False), ("keep.txt", False), ("skip.tmp", True), ("src/a.txt", False)]
    folders = [i for i in walk_tree(tmp_path, WalkOptions(filter=flt, report_excluded=True))
               if isinstance(i, SkippedFolder)]
    assert [(f.key, f.reason) for f in folders] == [("node_modules/", "excluded")]


def test_size_filter_in_the_walk(tmp_path: Path) -> None:
    (tmp_path / "small").write_bytes(b"x")
    (tmp_path / "big").write_bytes(b"x" * 2048)
    assert walk_keys(tmp_path, WalkOptions(filter=Filter.from_patterns(max_size="1K"))) == ["small"]


def test_root_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not a directory"):
        walk_tree(_file(tmp_path))
    with pytest.raises(UsageError):
        walk_tree(tmp_path / "missing")


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "plain"
    path.write_bytes(b"")
    return path


def test_root_given_with_trailing_slash(tmp_path: Path) -> None:
    make_tree(tmp_path, ["x/y"])
    (entry,) = walk_tree(str(tmp_path) + "/")
    assert isinstance(entry, WalkEntry) and entry.path == f"{tmp_path}/x/y"
