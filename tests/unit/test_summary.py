"""bulkput.job.summary: the exit code, the JSON form, the collector."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bulkput.errors import AuthError
from bulkput.items import ObjectResult, Status
from bulkput.job.collector import SummaryCollector
from bulkput.job.summary import JobSummary
from tests.unit.results_for_tests import FakeClock, failed, skipped, stored

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
        (JobSummary(stored=3, not_started=5, interrupted_objects=1, interrupted=True), 130),
        (JobSummary(stored=3, partial_reports=["shard-2.jsonl"]), 3),
        (JobSummary(stored=3, missing_shards=[1]), 3),
        (JobSummary(stored=3, duplicate_shards=["shard 1 attempt 0 (a.jsonl, b.jsonl)"]), 3),
        (JobSummary(stored=3, failed=1, missing_shards=[1], interrupted=True), 130),
    ],
)
def test_exit_code(summary, code):
    assert summary.exit_code == code


def test_summary_json_round_trip():
    summary = JobSummary(
        stored=5, skipped=3, failed=2, deleted=1, planned=0, bytes_stored=12345, retries=7,
        skip_reasons=Counter({"unchanged": 2, "journal": 1}),
        failure_codes=Counter({"NoSuchFile": 2}), aborted=None, interrupted=True, elapsed=1.5,
        not_started=40, interrupted_objects=2, unread_input=True,
    )
    record = json.loads(summary.to_json())
    assert record["exit_code"] == 130
    assert (record["not_started"], record["interrupted_objects"], record["unread_input"]) == (40, 2, True)
    assert JobSummary.from_dict(record) == summary


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
        ObjectResult(key="i", path="i", status=Status.NOT_STARTED),
        ObjectResult(key="j", path="j", status=Status.NOT_STARTED),
        ObjectResult(key="k", path="k", status=Status.INTERRUPTED),
    ]:
        collector.on_result(result)
    collector.on_retry("a", AuthError("x"))
    collector.on_retry("a", AuthError("x"))
    clock.now += 12.5
    summary = collector.summary(aborted=AuthError("denied", code="AccessDenied", status=403,
                                                  bucket="bkt"))
    assert (summary.stored, summary.skipped, summary.failed, summary.deleted,
            summary.planned) == (2, 3, 1, 1, 1)
    assert (summary.not_started, summary.interrupted_objects, summary.objects) == (2, 1, 11)
    assert summary.bytes_stored == 300
    assert summary.retries == 2
    assert summary.skip_reasons == Counter({"unchanged": 2, "journal": 1})
    assert summary.failure_codes == Counter({"NoSuchFile": 1})
    assert summary.aborted == "bkt: AccessDenied 403: denied"
    assert summary.elapsed == 12.5
    assert summary.exit_code == 3
    assert collector.summary().exit_code == 1  # a snapshot: counts kept, ending not


def test_skipped_in_store_is_counted_in_the_json_and_the_human_line():
    from bulkput.commands.progress import summary_lines

    summary = JobSummary(stored=2, skipped=120, skip_reasons=Counter({"in_store": 120}))
    assert summary.skipped_in_store == 120
    assert summary.to_dict()["skipped_in_store"] == 120
    assert "skipped 120 (already in the store)" in summary_lines(summary)[0]
    summary.merge(JobSummary(skipped=3, skip_reasons=Counter({"journal": 3})))
    assert "skipped 123 (120 already in the store)" in summary_lines(summary)[0]
    assert JobSummary.from_dict(summary.to_dict()).skipped_in_store == 120


def test_merge_adds_the_objects_left_by_an_interrupt():
    total = JobSummary(stored=2, not_started=3, interrupted=True)
    total.merge(JobSummary(stored=1, not_started=4, interrupted_objects=1, unread_input=True))
    assert (total.not_started, total.interrupted_objects, total.unread_input) == (7, 1, True)
    assert total.exit_code == 130
