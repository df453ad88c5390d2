"""Filters as aws s3 users write them, on `put` and `sync`, against `bulkput serve`: what the
store holds afterwards. Each test failed before: `put` had no filters ("unrecognized
arguments") and `sync` read `--exclude '*' --include '*.jpg'` rsync-style (nothing uploaded,
exit 0, no warning)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bulkput.cli import main
from bulkput.server.testing import ServerHandle

TREE = {
    "a.jpg": b"jpeg a", "notes.txt": b"text", "deep/er/b.jpg": b"jpeg b",
    "deep/c.png": b"png", "raw/d.jpg": b"raw jpeg",
}  # fmt: skip


def make_tree(root: Path) -> None:
    for key, data in TREE.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


@pytest.fixture
def cli(bulkput_server: ServerHandle, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    for name, value in bulkput_server.env("s3").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def run(verb: str, *args: str) -> int:
        return main([verb, *args, "--endpoint", bulkput_server.endpoint_url, "--progress", "none"])

    return run


@pytest.mark.parametrize("verb", ["put", "sync"])
def test_exclude_all_then_include_jpgs_uploads_the_jpgs(
    verb: str, cli, tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src)
    assert cli(verb, str(src), f"s3://{bulkput_bucket}/{verb}/",
               "--exclude", "*", "--include", "*.jpg") == 0  # fmt: skip
    keys = {k for k in bulkput_server.stats.puts_by_key if f"/{verb}/" in k}
    assert keys == {f"{bulkput_bucket}/{verb}/{k}" for k in ("a.jpg", "deep/er/b.jpg", "raw/d.jpg")}


def test_last_matching_rule_wins_and_star_crosses_folders(
    cli, tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src)
    assert cli("put", str(src), f"s3://{bulkput_bucket}/p/",
               "--include", "*.jpg", "--exclude", "raw/*") == 0  # fmt: skip
    keys = {k.removeprefix(f"{bulkput_bucket}/p/") for k in bulkput_server.stats.puts_by_key
            if k.startswith(f"{bulkput_bucket}/p/")}  # fmt: skip
    assert keys == {"a.jpg", "notes.txt", "deep/er/b.jpg", "deep/c.png"}


def test_include_before_a_catch_all_exclude_is_warned_before_any_work(
    cli, tmp_path: Path, bulkput_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src)
    with caplog.at_level(logging.WARNING, logger="bulkput.filters"):
        assert cli("put", str(src), f"s3://{bulkput_bucket}/w/",
                   "--include", "*.jpg", "--exclude", "*") == 0  # fmt: skip
    assert "--include '*.jpg' has no effect" in caplog.text


def test_rclone_filter_file_and_mixing_styles(
    cli, tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src)
    rules = tmp_path / "rules.txt"
    rules.write_text("- raw/**\n+ *.jpg\n- *\n")
    assert cli("sync", str(src), f"s3://{bulkput_bucket}/r/", "--filter-from", str(rules)) == 0
    keys = {k.removeprefix(f"{bulkput_bucket}/r/") for k in bulkput_server.stats.puts_by_key
            if k.startswith(f"{bulkput_bucket}/r/")}  # fmt: skip
    assert keys == {"a.jpg", "deep/er/b.jpg"}
    capsys.readouterr()
    assert cli("put", str(src), f"s3://{bulkput_bucket}/m/", "--exclude", "*",
               "--filter-from", str(rules)) == 2  # fmt: skip
    assert "not both" in capsys.readouterr().err


def test_max_delete_without_delete_is_a_usage_error(
    cli, tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src)
    before = dict(bulkput_server.stats.puts_by_key)
    assert cli("sync", str(src), f"s3://{bulkput_bucket}/x/", "--max-delete", "3") == 2
    assert "--max-delete limits --delete" in capsys.readouterr().err
    assert dict(bulkput_server.stats.puts_by_key) == before
