"""Summaries, the report file, merging shard reports, progress output."""

from __future__ import annotations

import asyncio
import io
import json
from collections import Counter
from pathlib import Path

import pytest

from bulkput.commands.progress import ProgressDisplay, failure_line, print_summary, summary_lines
from bulkput.errors import AuthError, UsageError
from bulkput.items import ObjectResult, Status
from bulkput.job.report import ReportWriter, merge_reports
from bulkput.job.summary import JobSummary, SummaryCollector


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stored(key: str, size: int, attempts: int = 1) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.STORED, size=size,
                        md5="0" * 32, etag="0" * 32, attempts=attempts)


def skipped(key: str, reason: str) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.SKIPPED, reason=reason)


def failed(key: str, code: str = "NoSuchFile", attempts: int = 1) -> ObjectResult:
    return ObjectResult(key=key, path=f"/data/{key}", status=Status.FAILED, attempts=attempts,
                        error_code=code, message=f"{key}: {code}: it went wrong",
                        request_id="req-1")


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- JobSummary ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("summary", "code"),
    [
        (JobSummary(stored=3), 0),
        (JobSummary(stored=3, skipped=2), 0),
        (JobSummary(), 0),
        (JobSummary(stored=3, failed=1), 1),
        (JobSummary(stored=3, failed=1, aborted="b: AccessDenied 403: no"), 3),
        (JobSummary(stored=3, aborted="x", interrupted=True), 130),
        (JobSummary(stored=3, interrupted=True), 130),
        (JobSummary(stored=3, partial_reports=["shard-2.jsonl"]), 3),
    ],
)
def test_exit_code(summary, code):
    assert summary.exit_code == code


def test_summary_json_round_trip():
    summary = JobSummary(
        stored=5, skipped=3, failed=2, deleted=1, planned=0, bytes_stored=12345, retries=7,
        skip_reasons=Counter({"unchanged": 2, "journal": 1}),
        failure_codes=Counter({"NoSuchFile": 2}), aborted=None, interrupted=True, elapsed=1.5,
    )
    record = json.loads(json.dumps(summary.to_json()))
    assert record["exit_code"] == 130
    assert JobSummary.from_json(record) == summary


# --- SummaryCollector ------------------------------------------------------------------------


def test_collector_counts_every_status_and_retries():
    clock = FakeClock()
    collector = SummaryCollector(clock=clock)
    collector.on_start(6, 300)
    for result in [
        stored("a", 100), stored("b", 200), skipped("c", "unchanged"), skipped("d", "unchanged"),
        skipped("e", "journal"), failed("f"),
        ObjectResult(key="g", path=None, status=Status.DELETED),
        ObjectResult(key="h", path="h", status=Status.PLANNED, reason="new"),
    ]:
        collector.on_result(result)
    collector.on_retry("a", AuthError("x"))
    collector.on_retry("a", AuthError("x"))
    clock.now += 12.5
    summary = collector.summary(aborted=AuthError("denied", code="AccessDenied", status=403,
                                                  bucket="bkt"))
    assert (summary.stored, summary.skipped, summary.failed, summary.deleted,
            summary.planned) == (2, 3, 1, 1, 1)
    assert summary.bytes_stored == 300
    assert summary.retries == 2
    assert summary.skip_reasons == Counter({"unchanged": 2, "journal": 1})
    assert summary.failure_codes == Counter({"NoSuchFile": 1})
    assert summary.aborted == "bkt: AccessDenied 403: denied"
    assert summary.elapsed == 12.5
    assert summary.exit_code == 3
    assert collector.summary().exit_code == 1  # a snapshot: counts kept, ending not


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
    assert lines[3] == {"summary": summary.to_json()}
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
        + json.dumps({"summary": first.to_json()}) + "\n"
        + json.dumps(skipped("a", "journal").to_json()) + "\n"
        + json.dumps(stored("b", 1).to_json()) + "\n"
        + json.dumps({"summary": second.to_json()}) + "\n"
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


# --- what people read ------------------------------------------------------------------------


def test_print_summary_one_line_then_reasons():
    summary = JobSummary(stored=9998, bytes_stored=3 * 1024**3, skipped=5, failed=2,
                         retries=13, elapsed=12.0,
                         skip_reasons=Counter({"unchanged": 4, "journal": 1}),
                         failure_codes=Counter({"AccessDenied": 2}), aborted="bkt: AccessDenied")
    out = io.StringIO()
    print_summary(summary, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("stored 9,998 objects (3.0 GiB), skipped 5, failed 2, retries 13 in "
                        "12.0 s (256.0 MiB/s)")
    assert lines[1:] == ["  skipped 4: unchanged", "  skipped 1: journal",
                         "  failed 2: AccessDenied", "aborted: bkt: AccessDenied"]


def test_failure_line_uses_the_error_one_line_as_is():
    assert failure_line(failed("k")) == "error: k: NoSuchFile: it went wrong"
    bare = ObjectResult(key="k2", path="p", status=Status.FAILED, error_code="Boom",
                        message="disk\non fire")
    assert failure_line(bare) == "error: k2: disk on fire"


# --- ProgressDisplay -------------------------------------------------------------------------


def test_progress_json_lines_at_most_every_interval():
    clock = FakeClock()
    out = io.StringIO()
    display = ProgressDisplay(out, tty=False, interval=5.0, clock=clock)
    display.on_start(4, 400)
    display.on_result(stored("a", 100))
    display.on_bytes(100)
    assert out.getvalue() == ""  # nothing before the interval
    clock.now += 2
    display.on_retry("b", AuthError("x"))
    display.on_result(failed("b"))
    assert out.getvalue().splitlines() == ["error: b: NoSuchFile: it went wrong"]
    clock.now += 3
    display.on_result(stored("c", 100))
    display.on_bytes(100)
    progress_lines = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
    assert len(progress_lines) == 1
    figures = progress_lines[0]["progress"]
    assert figures["objects_done"] == 3 and figures["objects_total"] == 4
    assert figures["bytes_done"] == 100 and figures["bytes_total"] == 400  # 2nd on_bytes after
    assert figures["failed"] == 1 and figures["retries"] == 1 and figures["stored"] == 2
    assert figures["elapsed"] == 5.0 and figures["objects_per_s"] == 0.6
    display.on_done(JobSummary())
    final = json.loads(out.getvalue().splitlines()[-1])["progress"]
    assert final["bytes_done"] == 200 and final["eta_s"] == 5.0  # 200 bytes left at 40 B/s


def test_progress_quiet_prints_nothing():
    out = io.StringIO()
    clock = FakeClock()
    display = ProgressDisplay(out, quiet=True, tty=False, interval=0.0, clock=clock)
    display.on_start(2, None)
    display.on_result(failed("a"))
    clock.now += 10
    display.on_result(stored("b", 1))
    display.on_done(JobSummary())
    assert out.getvalue() == ""


def test_progress_caps_error_lines():
    out = io.StringIO()
    display = ProgressDisplay(out, tty=False, interval=1e9, max_error_lines=3, clock=FakeClock())
    for n in range(10):
        display.on_result(failed(f"k{n}"))
    lines = out.getvalue().splitlines()
    assert lines[:3] == [f"error: k{n}: NoSuchFile: it went wrong" for n in range(3)]
    assert len(lines) == 4 and "--report" in lines[3]


def test_progress_on_a_terminal_draws_rich_progress_and_failures():
    out = io.StringIO()
    clock = FakeClock()
    display = ProgressDisplay(out, tty=True, clock=clock)
    display.on_start(3, 300)
    display.on_result(stored("a", 100))
    display.on_bytes(100)
    display.on_result(failed("b"))
    clock.now += 1
    display.on_result(stored("c", 200))
    display.on_bytes(200)
    display.on_done(JobSummary())
    text = out.getvalue()
    assert "error: b: NoSuchFile: it went wrong" in text
    assert "3/3 objects" in text
    assert "300 B/300 B" in text
    assert "failed 1" in text
