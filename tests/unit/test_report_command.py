"""``bulkput report merge``: the merged summary and the merged exit code."""

from __future__ import annotations

import json
from pathlib import Path

from bulkput.cli import main
from bulkput.items import ObjectResult, Status
from bulkput.job.collector import SummaryCollector
from bulkput.job.report import ReportWriter
from bulkput.job.shard import Shard, ShardRun
from bulkput.job.summary import JobSummary

_NEXT_SHARD: dict[str, int] = {}


def shard(path: Path, results: list[ObjectResult], *, finish: bool = True, index: int | None = None,
          count: int = 0, attempt: int = 0, job: str = "job1") -> str:
    """A --shard K/N report; K counts up per test when not given, N defaults to the test's."""
    collector = SummaryCollector()
    if index is None:
        index = _NEXT_SHARD.get(str(path.parent), 0)
        _NEXT_SHARD[str(path.parent)] = index + 1
    writer = ReportWriter(path, shard_run=ShardRun(job, Shard(index, count or index + 1), attempt))
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
    files = [shard(tmp_path / f"s{n}.jsonl", [ok(f"k{n}a"), ok(f"k{n}b")], count=3) for n in range(3)]
    assert main(["report", "merge", *files]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stored 6 objects (60 B), failed 0")


def test_merge_with_a_failure_exits_1_and_json_says_so(tmp_path, capsys):
    files = [shard(tmp_path / "a.jsonl", [ok("a")], count=2),
             shard(tmp_path / "b.jsonl", [bad("b")], count=2)]
    assert main(["report", "merge", "--json", *files]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["stored"] == 1 and record["failed"] == 1 and record["exit_code"] == 1
    assert record["failure_codes"] == {"InternalError": 1}
    assert record["retries"] == 0  # the shard's summary counts retry events, none here
    assert record["reports"] == 2
    assert JobSummary.from_dict(record).failed == 1


def test_merge_with_an_unfinished_shard_exits_3(tmp_path, capsys):
    files = [shard(tmp_path / "a.jsonl", [ok("a")], count=2),
             shard(tmp_path / "b.jsonl", [ok("b")], finish=False, count=2)]
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


def test_merge_of_one_shard_of_three_exits_3_naming_the_missing(tmp_path, capsys):
    one = shard(tmp_path / "s0.jsonl", [ok("a")], index=0, count=3)
    assert main(["report", "merge", one]) == 3
    out = capsys.readouterr().out
    assert "missing: no report of shards 1, 2" in out


def test_a_shard_twice_and_one_missing_exits_3_naming_both(tmp_path, capsys):
    zero = shard(tmp_path / "s0.jsonl", [ok("a"), ok("b")], index=0, count=3)
    again = tmp_path / "copy-of-s0.jsonl"
    again.write_bytes(Path(zero).read_bytes())
    two = shard(tmp_path / "s2.jsonl", [ok("c")], index=2, count=3)
    assert main(["report", "merge", "--json", zero, str(again), two]) == 3
    record = json.loads(capsys.readouterr().out)
    assert record["missing_shards"] == [1]
    assert record["duplicate_shards"] == [f"shard 0/3 attempt 0 is in 2 reports: {zero}, {again}"]
    assert record["stored"] == 3  # the duplicate counted once


def test_the_last_attempt_of_a_shard_stands_for_it(tmp_path, capsys):
    dead = shard(tmp_path / "s0.a0.jsonl", [ok("a")], index=0, count=2, finish=False)
    last = shard(tmp_path / "s0.a1.jsonl", [ok("a"), ok("b")], index=0, count=2, attempt=1)
    other = shard(tmp_path / "s1.a0.jsonl", [ok("c")], index=1, count=2)
    assert main(["report", "merge", dead, other, last]) == 0
    out = capsys.readouterr().out
    assert out.startswith("stored 3 objects")
    assert "incomplete" not in out


def test_a_report_that_names_no_shard_is_refused(tmp_path, capsys):
    plain = tmp_path / "plain.jsonl"
    writer = ReportWriter(plain)
    writer.on_result(ok("a"))
    writer.on_done(JobSummary(stored=1))
    assert main(["report", "merge", str(plain)]) == 2
    assert f"report {plain} names no shard of a job" in capsys.readouterr().err


def test_reports_of_two_jobs_are_refused(tmp_path, capsys):
    a = shard(tmp_path / "a.jsonl", [ok("a")], index=0, count=2, job="one")
    b = shard(tmp_path / "b.jsonl", [ok("b")], index=1, count=2, job="two")
    assert main(["report", "merge", a, b]) == 2
    assert "merge the reports of one job" in capsys.readouterr().err
