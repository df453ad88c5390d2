"""``bulkput report merge``: the merged summary and the merged exit code."""

from __future__ import annotations

import json
from pathlib import Path

from bulkput.cli import main
from bulkput.items import ObjectResult, Status
from bulkput.job.events import JobSummary, ReportWriter, SummaryCollector


def shard(path: Path, results: list[ObjectResult], *, finish: bool = True) -> str:
    collector = SummaryCollector()
    writer = ReportWriter(path)
    for result in results:
        collector.on_result(result)
        writer.on_result(result)
    if finish:
        writer.on_done(collector.summary())
    else:
        writer.close()
    return str(path)


def ok(key: str, size: int = 10) -> ObjectResult:
    return ObjectResult(key=key, path=key, status=Status.STORED, size=size, attempts=1)


def bad(key: str) -> ObjectResult:
    return ObjectResult(key=key, path=key, status=Status.FAILED, attempts=10,
                        error_code="InternalError", message=f"{key}: InternalError 500: boom")


def test_merge_all_stored_exits_0_with_human_summary(tmp_path, capsys):
    files = [shard(tmp_path / f"s{n}.jsonl", [ok(f"k{n}a"), ok(f"k{n}b")]) for n in range(3)]
    assert main(["report", "merge", *files]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stored 6 objects (60 B), failed 0")


def test_merge_with_a_failure_exits_1_and_json_says_so(tmp_path, capsys):
    files = [shard(tmp_path / "a.jsonl", [ok("a")]), shard(tmp_path / "b.jsonl", [bad("b")])]
    assert main(["report", "merge", "--json", *files]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["stored"] == 1 and record["failed"] == 1 and record["exit_code"] == 1
    assert record["failure_codes"] == {"InternalError": 1}
    assert record["retries"] == 0  # the shard's summary counts retry events, none here
    assert record["reports"] == 2
    assert JobSummary.from_json(record).failed == 1


def test_merge_with_an_unfinished_shard_exits_3(tmp_path, capsys):
    files = [shard(tmp_path / "a.jsonl", [ok("a")]),
             shard(tmp_path / "b.jsonl", [ok("b")], finish=False)]
    assert main(["report", "merge", *files]) == 3
    out = capsys.readouterr().out
    assert "stored 2 objects" in out
    assert f"incomplete: {files[1]} has no summary line" in out


def test_merge_of_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["report", "merge", str(tmp_path / "nope.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_report_without_a_verb_exits_2(capsys):
    assert main(["report"]) == 2
    assert "report merge" in capsys.readouterr().err
