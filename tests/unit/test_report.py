"""bulkput.job.report: the --report file and the merge of shard reports."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path

import pytest

from bulkput.commands.progress import summary_lines
from bulkput.errors import AuthError, UsageError
from bulkput.items import ObjectResult
from bulkput.job.collector import SummaryCollector
from bulkput.job.report import ReportWriter, merge_reports
from bulkput.job.summary import JobSummary
from tests.unit.results_for_tests import FakeClock, failed, read_lines, skipped, stored

# --- ReportWriter ----------------------------------------------------------------------------


def test_report_has_one_line_per_object_then_the_summary(tmp_path):
    path = tmp_path / "report.jsonl"
    writer = ReportWriter(path)
    results = [stored("日本/ファイル.txt", 10, attempts=3), skipped("b", "unchanged"), failed("c")]
    collector = SummaryCollector()
    for result in results:
        writer.on_result(result)
        collector.on_result(result)
    summary = collector.summary()
    writer.on_done(summary)
    lines = read_lines(path)
    assert lines[:3] == [r.to_json() for r in results]
    assert lines[0]["key"] == "日本/ファイル.txt" and lines[0]["attempts"] == 3
    assert lines[2]["error_code"] == "NoSuchFile" and lines[2]["request_id"] == "req-1"
    assert lines[3] == {"summary": summary.to_dict()}
    assert "日本" in path.read_text(encoding="utf-8")  # readable, not \u-escaped


def test_report_escapes_a_name_that_is_not_utf8(tmp_path):
    path = tmp_path / "report.jsonl"
    with ReportWriter(path) as writer:
        writer.on_result(failed("bad-\udcff-name", "InvalidFileName"))
    (line,) = read_lines(path)
    assert line["key"] == "bad-\udcff-name"


def test_report_flushes_after_the_interval_without_closing(tmp_path):
    clock = FakeClock()
    path = tmp_path / "report.jsonl"
    writer = ReportWriter(path, flush_interval=1.0, clock=clock)
    writer.on_result(stored("a", 1))
    clock.now += 1.5
    writer.on_result(stored("b", 1))
    assert [line["key"] for line in read_lines(path)] == ["a", "b"]
    writer.close()


async def test_report_timer_flushes_a_waiting_line(tmp_path):
    path = tmp_path / "report.jsonl"
    writer = ReportWriter(path, flush_interval=0.01)
    writer.on_result(stored("a", 1))
    for _ in range(100):  # the timer fires on this loop; wait for it, not for a fixed time
        await asyncio.sleep(0.01)
        if path.stat().st_size:
            break
    assert [line["key"] for line in read_lines(path)] == ["a"]
    writer.close()


def test_report_append_keeps_earlier_runs(tmp_path):
    path = tmp_path / "report.jsonl"
    with ReportWriter(path) as writer:
        writer.on_result(stored("a", 1))
    with ReportWriter(path, append=True) as writer:
        writer.on_result(stored("b", 1))
    assert [line["key"] for line in read_lines(path)] == ["a", "b"]


# --- merge_reports ---------------------------------------------------------------------------


def write_shard(path: Path, results: list[ObjectResult], *, finish: bool = True,
                retries: int = 0, elapsed: float = 1.0, **ending: object) -> None:
    clock = FakeClock()
    collector = SummaryCollector(clock=clock)
    writer = ReportWriter(path)
    for result in results:
        collector.on_result(result)
        writer.on_result(result)
    for _ in range(retries):
        collector.on_retry("k", AuthError("x"))
    clock.now += elapsed
    if finish:
        writer.on_done(collector.summary(**ending))  # type: ignore[arg-type]
    else:
        writer.close()


def test_merge_three_shards_one_without_summary(tmp_path):
    one, two, three = tmp_path / "s0.jsonl", tmp_path / "s1.jsonl", tmp_path / "s2.jsonl"
    write_shard(one, [stored("a", 100), stored("b", 50), skipped("c", "unchanged")],
                retries=4, elapsed=10.0)
    write_shard(two, [stored("d", 7), failed("e", "NoSuchFile")], retries=1, elapsed=20.0)
    # the third shard was killed: no summary, and its last line cut short mid-write
    write_shard(three, [stored("f", 1000, attempts=3), skipped("g", "journal"), failed("h")],
                finish=False)
    with open(three, "ab") as out:
        out.write(b'{"key":"i","path":"/data/i","sta')

    merged = merge_reports([one, two, three])
    assert (merged.stored, merged.skipped, merged.failed) == (4, 2, 2)
    assert merged.bytes_stored == 100 + 50 + 7 + 1000
    assert merged.retries == 4 + 1 + 2  # shard 3's from its attempts column
    assert merged.skip_reasons == Counter({"unchanged": 1, "journal": 1})
    assert merged.failure_codes == Counter({"NoSuchFile": 2})
    assert merged.elapsed == 20.0
    assert merged.partial_reports == [str(three)]
    assert merged.exit_code == 3
    assert any("did not finish" in line for line in summary_lines(merged))

    complete = merge_reports([one, two])
    assert (complete.stored, complete.failed, complete.partial_reports) == (3, 1, [])
    assert complete.exit_code == 1
    assert merge_reports([one]).exit_code == 0


def test_merge_takes_the_last_summary_of_an_appended_report(tmp_path):
    path = tmp_path / "r.jsonl"
    first = JobSummary(stored=1, failed=1, failure_codes=Counter({"X": 1}))
    second = JobSummary(stored=1, skipped=1, skip_reasons=Counter({"journal": 1}))
    path.write_text(
        json.dumps(stored("a", 1).to_json()) + "\n" + json.dumps(failed("b").to_json()) + "\n"
        + json.dumps({"summary": first.to_dict()}) + "\n"
        + json.dumps(skipped("a", "journal").to_json()) + "\n"
        + json.dumps(stored("b", 1).to_json()) + "\n"
        + json.dumps({"summary": second.to_dict()}) + "\n"
    )
    assert merge_reports([path]) == second
    # a later run that died after its own object lines counts from those lines, marked partial
    with open(path, "a") as out:
        out.write(json.dumps(stored("c", 5).to_json()) + "\n")
    merged = merge_reports([path])
    assert (merged.stored, merged.bytes_stored, merged.partial_reports) == (1, 5, [str(path)])


def test_merge_keeps_aborted_and_interrupted(tmp_path):
    one, two = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    write_shard(one, [stored("a", 1)], interrupted=True)
    write_shard(two, [stored("b", 1)], aborted="bkt: NoSuchBucket 404: gone")
    merged = merge_reports([one, two])
    assert merged.aborted == "bkt: NoSuchBucket 404: gone"
    assert merged.interrupted
    assert merged.exit_code == 130


def test_merge_of_a_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="no such file"):
        merge_reports([tmp_path / "nope.jsonl"])
