"""``bulkput sync`` as a user runs it: the plan, the report, the summary and the exit codes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bulkput.cli import main
from bulkput.server.testing import ServerHandle

PAST = 1_600_000_000


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (PAST, PAST))


@pytest.fixture
def cli(bulkput_server: ServerHandle, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for scheme in ("s3", "oss", "bos"):
        for name, value in bulkput_server.env(scheme).items():
            monkeypatch.setenv(name, value)

    def run(*args: str) -> int:
        return main(["sync", *args, "--endpoint", bulkput_server.endpoint_url, "--progress", "none"])

    return run


def test_dry_run_prints_the_plan_and_changes_nothing(
    tmp_path: Path, cli, bulkput_server: ServerHandle, bulkput_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src, {"keep": b"k", "old": b"o"})
    dest = f"s3://{bulkput_bucket}/d"
    assert cli(str(src), dest) == 0
    (src / "old").unlink()
    make_tree(src, {"new": b"n", "keep": b"kk"})
    capsys.readouterr()
    puts_before = dict(bulkput_server.stats.puts_by_key)
    deletes_before = bulkput_server.stats.count("DeleteObjects") + bulkput_server.stats.count("DeleteObject")

    assert cli(str(src), dest, "--delete", "--dry-run") == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [  # one line per object, in put --dry-run's format
        f"(dry run) upload {src}/keep -> s3://{bulkput_bucket}/d/keep (2 B, size)",
        f"(dry run) upload {src}/new -> s3://{bulkput_bucket}/d/new (1 B, new)",
        f"(dry run) delete s3://{bulkput_bucket}/d/old (no-local-file)",
    ]
    assert "planned 3 (dry run)" in err
    assert bulkput_server.stats.puts_by_key == puts_before
    deletes_after = bulkput_server.stats.count("DeleteObjects") + bulkput_server.stats.count("DeleteObject")
    assert deletes_after == deletes_before
    assert cli(str(src), dest, "--dry-run", "--delete", "--quiet") == 0  # still planned: nothing was done
    assert capsys.readouterr().out.count(f"delete s3://{bulkput_bucket}/d/old") == 1


def test_report_and_summary_count_uploaded_skipped_deleted(
    tmp_path: Path, cli, bulkput_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src, {"a": b"a", "b": b"b", "c": b"c"})
    dest = f"oss://{bulkput_bucket}/r"
    assert cli(str(src), dest) == 0
    (src / "c").unlink()
    make_tree(src, {"a": b"changed"})
    os.symlink(src / "b", src / "link")
    report = tmp_path / "report.jsonl"
    capsys.readouterr()
    assert cli(str(src), dest, "--delete", "--report", str(report)) == 0
    _, err = capsys.readouterr()
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and warnings[0].startswith("warning: r/link: skipped symbolic link ")
    assert "stored 1 object (" in err and "skipped 2" in err and "deleted 1" in err
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    by_key = {line["key"]: line for line in lines if "key" in line}
    assert by_key["r/a"]["status"] == "stored"
    assert (by_key["r/b"]["status"], by_key["r/b"]["reason"]) == ("skipped", "unchanged")
    assert (by_key["r/link"]["status"], by_key["r/link"]["reason"]) == ("skipped", "symlink")
    assert by_key["r/c"]["status"] == "deleted"
    summary = lines[-1]["summary"]
    assert (summary["stored"], summary["skipped"], summary["deleted"], summary["failed"]) == (1, 2, 1, 0)
    assert summary["skip_reasons"] == {"unchanged": 1, "symlink": 1}
    assert summary["exit_code"] == 0


def test_max_delete_exceeded_exits_3_and_says_why(
    tmp_path: Path, cli, bulkput_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src, {"a": b"a", "b": b"b"})
    dest = f"bos://{bulkput_bucket}/x"
    assert cli(str(src), dest) == 0
    (src / "a").unlink()
    (src / "b").unlink()
    capsys.readouterr()
    assert cli(str(src), dest, "--delete", "--max-delete", "1") == 3
    _, err = capsys.readouterr()
    assert "--max-delete 1" in err and "nothing was changed" in err


def test_usage_errors_exit_2(tmp_path: Path, cli, bulkput_bucket: str) -> None:  # type: ignore[no-untyped-def]
    assert cli(str(tmp_path / "missing"), f"s3://{bulkput_bucket}/p") == 2
    assert cli(str(tmp_path), "ftp://bucket/p") == 2
    assert cli(str(tmp_path), f"s3://{bulkput_bucket}/p", "--exclude-from", str(tmp_path / "nope")) == 2
    with pytest.raises(SystemExit) as exit_info:
        cli(str(tmp_path), f"s3://{bulkput_bucket}/p", "--size-only", "--checksum")
    assert exit_info.value.code == 2


def test_non_utf8_name_fails_alone_exit_1(
    tmp_path: Path, cli, bulkput_server: ServerHandle, bulkput_bucket: str, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    make_tree(src, {"good": b"g"})
    fd = os.open(os.fsencode(src) + b"/bad-\xff.txt", os.O_CREAT | os.O_WRONLY)
    os.close(fd)
    capsys.readouterr()
    assert cli(str(src), f"s3://{bulkput_bucket}/u") == 1
    _, err = capsys.readouterr()
    assert "bad-\\xff.txt" in err and "not valid UTF-8" in err
    assert bulkput_server.stats.puts("u/good", bucket=bulkput_bucket) == 1
