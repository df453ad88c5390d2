"""bulkput.commands.progress: the summary lines, failure lines and the progress display."""

from __future__ import annotations

import io
import json
from collections import Counter

from bulkput.commands.progress import ProgressDisplay, failure_line, print_summary
from bulkput.errors import AuthError
from bulkput.items import ObjectResult, Status
from bulkput.job.summary import JobSummary
from tests.unit.results_for_tests import FakeClock, failed, stored

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


def test_an_interrupted_summary_counts_what_was_not_started_and_says_how_to_resume():
    summary = JobSummary(stored=40, bytes_stored=2048, not_started=158, interrupted_objects=2,
                         interrupted=True, elapsed=2.0, journal="/state/j.sqlite")
    out = io.StringIO()
    print_summary(summary, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("stored 40 objects (2.0 KiB), not started 158, interrupted 2, failed 0"
                        " in 2.0 s (1.0 KiB/s)")
    assert lines[-1] == ("interrupted: stopped cleanly, 160 objects not stored yet; run the same"
                         " command again to resume (its journal skips every object already stored)")
    summary.journal, summary.unread_input = None, True  # --no-journal, input not read to the end
    out = io.StringIO()
    print_summary(summary, out)
    lines = out.getvalue().splitlines()
    assert "not started 158+," in lines[0]
    assert lines[-1] == ("interrupted: stopped cleanly, 160+ objects not stored yet (the rest of the"
                         " input was not read); run the same command again to send them (no"
                         " journal: it sends every object again)")
