"""`bulkput demo`: the README quick start works on a fresh machine, in every dialect."""

from __future__ import annotations

import json
from pathlib import Path

from bulkput.cli import main


def test_demo_uploads_and_verifies_every_dialect(tmp_path: Path, capsys) -> None:
    report = tmp_path / "demo.jsonl"
    code = main(
        ["demo", "--files", "30", "--large-mib", "1", "--dialects", "s3,bos,oss",
         "--dir", str(tmp_path / "folder"), "--report", str(report)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.count("every byte equals its file") == 3
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["stored"] == 31 and summary["failed"] == 0
    files = [p for p in (tmp_path / "folder").rglob("*") if p.is_file()]
    assert len(files) == 31
    assert {line["key"] for line in lines[:-1]} == {
        "demo-folder/" + p.relative_to(tmp_path / "folder").as_posix() for p in files
    }
