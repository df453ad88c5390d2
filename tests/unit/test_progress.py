"""bulkput.commands.progress: the summary lines, failure lines and the progress display."""

from __future__ import annotations

import io
import json
import os
import pty
from collections import Counter

import pytest

from bulkput.commands.progress import (
    LinesAboveTheBar,
    ProgressDisplay,
    failure_line,
    human_duration,
    plural,
    print_summary,
    same_terminal,
    summary_lines,
)
from bulkput.errors import ThrottledError, TransportError
from bulkput.items import ObjectResult, Status
from bulkput.job.counting import SourceCount
from bulkput.job.run import ConcurrencyState
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


def test_summary_says_one_object():
    out = io.StringIO()
    print_summary(JobSummary(stored=1, bytes_stored=5, elapsed=1.0), out)
    assert out.getvalue().startswith("stored 1 object (5 B), failed 0 in 1.0 s")


def test_failure_line_uses_the_error_one_line_as_is():
    assert failure_line(failed("k")) == "error: k: NoSuchFile: it went wrong"
    bare = ObjectResult(key="k2", path="p", status=Status.FAILED, error_code="Boom",
                        message="disk\non fire")
    assert failure_line(bare) == "error: k2: disk on fire"


# --- ProgressDisplay -------------------------------------------------------------------------


def test_json_lines_at_most_every_interval_with_totals_limit_and_reason():
    clock = FakeClock()
    out = io.StringIO()
    state = ConcurrencyState(limit=128, reason="throughput rose at 64 (900/s): trying 128",
                             in_flight=97)  # fmt: skip
    display = ProgressDisplay(out, mode="json", interval=5.0, clock=clock,
                              concurrency=lambda: state)  # fmt: skip
    display.on_start(4, 400)
    display.on_bytes(100)
    display.on_result(stored("a", 100))
    assert out.getvalue() == ""  # nothing before the interval
    clock.now += 2
    display.on_retry("b", ThrottledError("slow down", code="SlowDown", status=503, key="b"))
    display.on_result(failed("b"))
    assert out.getvalue().splitlines() == ["error: b: NoSuchFile: it went wrong"]
    clock.now += 3
    display.on_bytes(100)
    display.on_result(stored("c", 100))
    progress_lines = [json.loads(x) for x in out.getvalue().splitlines() if x.startswith("{")]
    assert len(progress_lines) == 1
    figures = progress_lines[0]["progress"]
    assert figures["objects_done"] == 3 and figures["objects_total"] == 4
    assert figures["bytes_done"] == 200 and figures["bytes_total"] == 400
    assert figures["percent"] == 50.0 and figures["bytes_in_progress"] == 0
    assert figures["failed"] == 1 and figures["retries"] == 1 and figures["stored"] == 2
    assert figures["last_retry"] == {"code": "SlowDown", "status": 503, "key": "b"}
    assert figures["elapsed"] == 5.0 and figures["objects_per_s"] == 0.6
    assert figures["eta_s"] == 5.0  # 200 bytes left at 40 B/s
    assert figures["limit"] == 128 and figures["in_flight"] == 97
    assert figures["limit_reason"] == "throughput rose at 64 (900/s): trying 128"
    display.on_done(JobSummary())
    final = json.loads(out.getvalue().splitlines()[-1])["progress"]
    assert final["objects_done"] == 3 and final["bytes_done"] == 200


def test_text_line_every_interval_not_json():
    clock = FakeClock()
    out = io.StringIO()
    display = ProgressDisplay(out, mode="text", interval=10.0, clock=clock,
                              totals=lambda: SourceCount(2, 3000, complete=True))  # fmt: skip
    display.on_start(None, None)
    clock.now += 4
    display.on_bytes(1000)
    display.on_result(stored("a", 1000))
    assert out.getvalue() == ""
    clock.now += 6
    display.on_retry("b", ThrottledError("slow down", code="SlowDown", status=503, key="b"))
    display.on_result(failed("c"))
    lines = out.getvalue().splitlines()
    assert lines[0] == "error: c: NoSuchFile: it went wrong"
    assert lines[1] == (
        "progress: 2/2 objects, 1000 B/2.9 KiB (33%), 0 objects/s, 100 B/s, ETA 20 s, "
        "elapsed 10 s, failed 1, retries 1 (last: SlowDown 503 on b)"
    )
    display.on_done(JobSummary())
    assert len(out.getvalue().splitlines()) == 2  # the summary follows; no line at the end


def test_totals_counted_so_far_until_the_count_ends():
    clock = FakeClock()
    count = SourceCount(180, 9000)
    display = ProgressDisplay(io.StringIO(), mode="text", clock=clock, totals=lambda: count)
    display.on_start(None, None)
    display.on_result(stored("a", 50))
    clock.now += 1
    assert display.percent() is None and display.eta() is None
    assert display.counts_text() == "1/180+ objects (counting), 50 B/8.8 KiB+"
    assert display.snapshot()["objects_total"] is None
    assert display.snapshot()["objects_counted"] == 180 and display.snapshot()["counting"]
    count = SourceCount(300, 15000, complete=True)
    assert display.counts_text() == "1/300 objects, 50 B/14.6 KiB"
    assert display.percent() == pytest.approx(50 / 15000 * 100)


def test_one_object_is_singular_and_standard_input_has_no_total():
    display = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock(),
                              totals=lambda: SourceCount(known=False))  # fmt: skip
    display.on_start(None, None)
    display.on_result(stored("a", 5))
    assert display.counts_text() == "1 object, 5 B"
    one = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock())
    one.on_start(1, 5)
    assert one.counts_text() == "0/1 object, 0 B/5 B"
    objects_only = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock())
    objects_only.on_start(2, None)
    objects_only.on_result(stored("a", 5))
    assert objects_only.counts_text() == "1/2 objects, 5 B" and objects_only.percent() == 50.0
    assert plural(1, "object") == "1 object" and plural(1000, "object") == "1,000 objects"
    assert human_duration(125) == "2 min 05 s" and human_duration(7300) == "2 h 01 min"


def test_bytes_of_unfinished_objects_are_shown_apart():
    display = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock())
    display.on_start(2, 3 * 1024**2)
    display.on_bytes(1024**2)  # a part of a large file, confirmed by the store
    assert display.objects_done == 0 and display.bytes_done == 0
    assert display.counts_text() == "0/2 objects, 0 B/3.0 MiB (+1.0 MiB in progress)"
    display.on_bytes(1024**2)
    display.on_result(stored("big", 2 * 1024**2))
    assert display.counts_text() == "1/2 objects, 2.0 MiB/3.0 MiB"


def test_a_finished_job_with_an_unfinished_count_is_whole():
    display = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock(),
                              totals=lambda: SourceCount(1, 10))  # fmt: skip
    display.on_start(None, None)
    for key in ("a", "b", "c"):
        display.on_result(stored(key, 10))
    display.on_done(JobSummary(stored=3))
    assert display.percent() == 100.0 and display.counts_text() == "3/3 objects, 30 B/30 B"
    interrupted = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock(),
                                  totals=lambda: SourceCount(1, 10))  # fmt: skip
    interrupted.on_start(None, None)
    interrupted.on_result(stored("a", 10))
    interrupted.on_done(JobSummary(stored=1, interrupted=True))
    assert interrupted.percent() is None  # not 100%: the rest was never counted


def test_retry_cause_names_code_status_key_and_never_the_message():
    display = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock())
    display.on_start(None, None)
    display.on_retry("k1", TransportError("GET http://x/?X-Amz-Signature=secret timed out"))
    assert display.rates_text().endswith("retries 1 (last: TransportError on k1)")
    display.on_retry("k2", ThrottledError("please slow", code="SlowDown", status=503, key="k2"))
    assert "retries 2 (last: SlowDown 503 on k2)" in display.rates_text()
    assert "secret" not in json.dumps(display.snapshot())


def test_progress_quiet_prints_nothing():
    out = io.StringIO()
    clock = FakeClock()
    display = ProgressDisplay(out, quiet=True, mode="text", interval=0.0, clock=clock)
    display.on_start(2, None)
    display.on_result(failed("a"))
    clock.now += 10
    display.on_result(stored("b", 1))
    display.on_done(JobSummary())
    assert out.getvalue() == ""


def test_progress_caps_error_lines():
    out = io.StringIO()
    display = ProgressDisplay(out, mode="text", interval=1e9, max_error_lines=3, clock=FakeClock())
    for n in range(10):
        display.on_result(failed(f"k{n}"))
    lines = out.getvalue().splitlines()
    assert lines[:3] == [f"error: k{n}: NoSuchFile: it went wrong" for n in range(3)]
    assert len(lines) == 4 and "--report" in lines[3]


def test_progress_on_a_terminal_draws_the_bar_and_puts_the_cursor_back():
    out = io.StringIO()
    clock = FakeClock()
    display = ProgressDisplay(out, mode="rich", clock=clock)
    display.on_start(3, 300)
    display.on_bytes(100)
    display.on_result(stored("a", 100))
    display.on_result(failed("b"))
    clock.now += 1
    display.on_bytes(200)
    display.on_result(stored("c", 200))
    display.on_done(JobSummary())
    text = out.getvalue()
    assert "error: b: NoSuchFile: it went wrong" in text
    assert "3/3 objects, 300 B/300 B" in text and "100%" in text
    assert "failed 1" in text
    assert text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l") >= 0
    display.close()  # again, on the way out: nothing more
    assert out.getvalue() == text


def test_close_puts_the_terminal_back_when_the_job_never_ends():
    out = io.StringIO()
    display = ProgressDisplay(out, mode="rich", clock=FakeClock())
    display.on_start(None, None)  # total unknown: the bar pulses
    display.close()  # an exception, or a second Ctrl-C
    text = out.getvalue()
    assert text.rfind("\x1b[?25h") > text.rfind("\x1b[?25l") >= 0


def test_objects_never_sent_are_not_done_nor_failed():
    display = ProgressDisplay(io.StringIO(), mode="text", clock=FakeClock())
    display.on_start(3, 30)
    display.on_result(stored("a", 10))
    display.on_result(ObjectResult(key="b", path="b", status=Status.NOT_STARTED, size=10))
    display.on_result(ObjectResult(key="c", path="c", status=Status.INTERRUPTED, size=10))
    display.on_done(JobSummary(stored=1, not_started=1, interrupted_objects=1, interrupted=True))
    assert display.objects_done == 1 and display.failed == 0
    assert display.counts_text() == "1/3 objects, 10 B/30 B"
    assert "not started 1, interrupted 1" in display.rates_text()


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


def test_an_interrupt_that_came_after_every_object_was_stored_says_so():
    summary = JobSummary(stored=2, bytes_stored=10, interrupted=True, journal="/state/j.sqlite")
    assert summary_lines(summary)[-1] == "interrupted: stopped cleanly, after every object was stored"
    summary.failed = 1  # a failed object is left for the next run too
    assert "stopped cleanly, 1 object not stored yet;" in summary_lines(summary)[-1]


def test_sync_and_report_merge_say_what_their_own_rerun_does_after_an_interrupt():
    from bulkput.commands.progress import MERGE_RESUMES, SYNC_RESUMES

    summary = JobSummary(stored=48, not_started=152, interrupted=True)  # sync keeps no journal
    assert summary_lines(summary, resume=SYNC_RESUMES)[-1] == (
        "interrupted: stopped cleanly, 152 objects not stored yet; run the same command again to"
        " send them (sync skips what the store holds already)")  # fmt: skip
    assert summary_lines(summary, resume=MERGE_RESUMES)[-1].endswith(
        "; run the interrupted shards' commands again to resume them")


# --- standard output on the bar's terminal ----------------------------------------------------


def test_same_terminal_only_for_one_terminal_twice() -> None:
    master, slave = pty.openpty()
    other_master, other_slave = pty.openpty()
    read_end, write_end = os.pipe()
    with open(slave, "w", closefd=False) as one, open(os.dup(slave), "w") as again, \
            open(other_slave, "w", closefd=False) as other, open(write_end, "w") as pipe:
        assert same_terminal(one, again)
        assert not same_terminal(one, other)  # two terminals apart
        assert not same_terminal(pipe, one)
        assert not same_terminal(io.StringIO(), one)  # no file descriptor
    for fd in (master, slave, other_master, other_slave, read_end):
        os.close(fd)


def test_report_bytes_go_straight_to_stdout_while_no_bar_is_up() -> None:
    display = ProgressDisplay(io.StringIO(), mode="text")  # no live bar
    out = io.BytesIO()
    lines = LinesAboveTheBar(display, out)
    lines.write(b'{"key":"a"}\n')
    lines.write(b'{"key":"b"}\n')
    assert out.getvalue() == b""  # held until the writer flushes
    lines.flush()
    assert out.getvalue() == b'{"key":"a"}\n{"key":"b"}\n'
    lines.flush()
    assert out.getvalue() == b'{"key":"a"}\n{"key":"b"}\n'


def test_quiet_caps_error_lines_as_the_display_does(capsys: pytest.CaptureFixture[str]) -> None:
    """--quiet / --progress none: no progress, the same failure lines and the same cap."""
    from bulkput.commands.job_output import FailurePrinter

    printer = FailurePrinter(lambda: None, limit=3)
    for n in range(10):
        printer.on_result(failed(f"k{n}"))
    lines = capsys.readouterr().err.splitlines()
    assert lines[:3] == [f"error: k{n}: NoSuchFile: it went wrong" for n in range(3)]
    assert lines[3:] == ["error: more objects failed or were skipped with a warning; the --report file lists them all"]
