"""What people read while a job runs and when it ends: the summary lines, one line per failed
object, and :class:`ProgressDisplay` (a live bar on a terminal, a plain text line every 10 s
elsewhere, JSON lines for machines, nothing with ``quiet=True``). Human output belongs with the
commands; the library returns dataclasses.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, TextIO

from bulkput.errors import BulkputError, RemoteError
from bulkput.items import ObjectResult, Status
from bulkput.job.counting import SourceCount
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.local.names import printable

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.live import Live

    from bulkput.job.run import ConcurrencyState

# --- what people read ------------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def plural(count: int, noun: str) -> str:
    """``1 object``, ``2 objects``, ``1,000 objects``."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def summary_lines(summary: JobSummary, *, resume: str | None = None) -> list[str]:
    """The summary as people read it: one line of counts, then one line per reason.
    ``resume``: what running again does after an interrupt (see :func:`interrupted_line`)."""
    parts = [f"stored {plural(summary.stored, 'object')} ({human_bytes(summary.bytes_stored)})"]
    if summary.skipped:
        in_store = summary.skipped_in_store
        if in_store == summary.skipped:
            parts.append(f"skipped {summary.skipped:,} (already in the store)")
        elif in_store:
            parts.append(f"skipped {summary.skipped:,} ({in_store:,} already in the store)")
        else:
            parts.append(f"skipped {summary.skipped:,}")
    if summary.deleted:
        parts.append(f"deleted {summary.deleted:,}")
    if summary.planned:
        parts.append(f"planned {summary.planned:,} (dry run)")
    if summary.interrupted or summary.not_started:
        more = "+" if summary.unread_input else ""
        parts.append(f"not started {summary.not_started:,}{more}")
    if summary.interrupted_objects:
        parts.append(f"interrupted {summary.interrupted_objects:,}")
    parts.append(f"failed {summary.failed:,}")
    if summary.retries:
        parts.append(f"retries {summary.retries:,}")
    head = ", ".join(parts) + f" in {summary.elapsed:.1f} s"
    if summary.elapsed > 0 and summary.bytes_stored:
        head += f" ({human_bytes(summary.bytes_stored / summary.elapsed)}/s)"
    lines = [head]
    lines += [f"  skipped {n:,}: {reason}" for reason, n in summary.skip_reasons.most_common()]
    lines += [f"  failed {n:,}: {code}" for code, n in summary.failure_codes.most_common()]
    if summary.journal is not None and (summary.skip_reasons.get("journal") or summary.journal_notes):
        skipped = summary.skip_reasons.get("journal", 0)
        what = f" (skipped {skipped:,} it recorded as stored)" if skipped else ""
        lines.append(f"journal: {summary.journal}{what}")
        lines += [f"  {note}" for note in summary.journal_notes]
    for path in summary.partial_reports:
        lines.append(f"incomplete: {path} has no summary line (that shard did not finish)")
    if summary.missing_shards:
        lines.append(
            f"missing: no report of shard{'s' if len(summary.missing_shards) > 1 else ''} "
            + ", ".join(str(n) for n in summary.missing_shards)
            + " (run those shards again, or give their reports)"
        )
    for line in summary.duplicate_shards:
        lines.append(f"duplicated: {line} (give one report per shard and attempt)")
    if summary.aborted is not None:
        lines.append(f"aborted: {summary.aborted}")
    if summary.interrupted:
        lines.append(interrupted_line(summary, resume))
    return lines


# What running again does after an interrupt, for the commands whose rerun is not put's.
SYNC_RESUMES = "run the same command again to send them (sync skips what the store holds already)"
MERGE_RESUMES = "run the interrupted shards' commands again to resume them"


def interrupted_line(summary: JobSummary, resume: str | None = None) -> str:
    """What an interrupted job left, and what running again does: ``resume``, else put's
    (with a journal it resumes; with none it sends every object again)."""
    left = summary.not_started + summary.interrupted_objects + summary.failed
    if not left and not summary.unread_input:
        return "interrupted: stopped cleanly, after every object was stored"
    more = "+" if summary.unread_input else ""
    what = f"{left:,}{more} object{'' if left == 1 and not more else 's'} not stored yet"
    if summary.unread_input:
        what += " (the rest of the input was not read)"
    if resume is not None:
        return f"interrupted: stopped cleanly, {what}; {resume}"
    if summary.journal is None:
        return (f"interrupted: stopped cleanly, {what}; run the same command again to send"
                " them (no journal: it sends every object again)")
    return (f"interrupted: stopped cleanly, {what}; run the same command again to resume"
            " (its journal skips every object already stored)")


def print_summary(
    summary: JobSummary, stream: TextIO | None = None, *, resume: str | None = None
) -> None:
    out = stream if stream is not None else sys.stderr
    for line in summary_lines(summary, resume=resume):
        out.write(printable(line, backslashes=False) + "\n")
    out.flush()


def failure_line(result: ObjectResult) -> str:
    """One line for a failed object (``error: ...``) or for one skipped with a warning
    (``warning: ...``, e.g. a symbolic link not followed): the engine's message is
    ``BulkputError.one_line()``, which already starts with the object; otherwise the key is put
    in front."""
    subject = result.key or result.path or ""
    text = result.message or result.error_code or "failed"
    if subject and text.startswith(subject):
        text = text[len(subject):].lstrip(":").lstrip()
    # one line whatever the message holds, and the name escaped: a newline in a file name
    # cannot start a line of its own (names inside the message are escaped where they are made)
    message = printable(" ".join(text.split()), backslashes=False)
    if subject:
        # a path may come escaped already (an undecodable name as \xNN): do not double it
        message = f"{printable(subject, backslashes=bool(result.key))}: {message}"
    return f"{'warning' if result.status is Status.SKIPPED else 'error'}: {message}"


class FailureLines:
    """The ``error:`` / ``warning:`` line of each failed object or warning, up to ``limit``;
    then one line saying the report has the rest; then none (the report lists them all)."""

    MORE = "error: more objects failed or were skipped with a warning; the --report file lists them all"

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self.shown = 0

    def line_for(self, result: ObjectResult) -> str | None:
        self.shown += 1
        if self.shown <= self.limit:
            return failure_line(result)
        return self.MORE if self.shown == self.limit + 1 else None


def is_warning(result: ObjectResult) -> bool:
    """A skipped object that carries a message is a warning the user should see (skips by a
    sync rule or the journal carry none)."""
    return result.status is Status.SKIPPED and bool(result.message)


# --- progress ---------------------------------------------------------------------------------

ProgressMode = Literal["rich", "text", "json"]
# --progress's values (but none): auto is rich on a terminal, text elsewhere
PROGRESS_MODES: dict[str, ProgressMode | None] = {
    "auto": None, "rich": "rich", "text": "text", "json": "json",
}

# How often the live bar is redrawn (it also shows the count as it grows, between results).
_LIVE_REFRESH_PER_SECOND = 4


def human_duration(seconds: float) -> str:
    """5.2 -> '5 s', 125 -> '2 min 05 s', 7300 -> '2 h 01 min'."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


@dataclass(frozen=True, slots=True)
class LastRetry:
    """The cause of the last retry, as shown: the error's code, HTTP status and object key
    (never its message, which may quote a request)."""

    code: str
    status: int | None
    key: str

    def describe(self) -> str:
        status = f" {self.status}" if self.status else ""
        key = printable(self.key, backslashes=False)
        if len(key) > 60:  # the cause must fit the line; the report names every key
            key = key[:28] + "..." + key[-29:]
        return f"{self.code}{status} on {key}"


class ProgressDisplay(Subscriber):
    """Progress while the job runs, on ``stream`` (stderr by default).

    ``mode`` ``"rich"``: a live bar (objects and bytes done of their totals, %, rate, ETA,
    failures, retries with the last cause), redrawn 4 times a second, and always put back when
    the job ends, fails, raises or is interrupted (cursor shown, no bar left half drawn).
    ``"text"``: one plain line every ``interval`` seconds. ``"json"``: one ``{"progress":
    {...}}`` line every ``interval`` seconds and one at the end (:meth:`snapshot`). ``None``:
    rich on a terminal, text elsewhere. ``quiet=True``: nothing at all.

    Totals come from ``totals`` (a :class:`~bulkput.job.counting.SourceCounter`'s ``count``,
    read on each redraw: what was counted so far until the count ends), else from
    ``on_start``. Objects count as they finish (stored, skipped, failed, planned) with their
    bytes; bytes the store confirmed of objects not finished yet (a large file's parts) are
    shown apart, as "in progress". ``concurrency`` gives the limit on requests in flight and
    why it last changed (in the JSON lines). Each failed object gets one ``error: ...`` line,
    up to ``max_error_lines`` (the report has them all)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        mode: ProgressMode | None = None,
        quiet: bool = False,
        interval: float = 10.0,
        max_error_lines: int = 200,
        explained: Callable[[ObjectResult], bool] | None = None,
        totals: Callable[[], SourceCount] | None = None,
        concurrency: Callable[[], ConcurrencyState | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        if mode is None:
            mode = "rich" if self.stream.isatty() else "text"
        self.mode: ProgressMode = mode
        self.explained = explained
        self.quiet = quiet
        self.interval = interval
        self.max_error_lines = max_error_lines
        self._totals = totals
        self._concurrency = concurrency
        self._clock = clock
        self._start = clock()
        self._last_emit = self._start
        self._given: SourceCount | None = None  # totals from on_start
        self._final: SourceCount | None = None  # totals fixed when the job ended
        self.objects_done = 0
        self.bytes_done = 0  # bytes of the objects done
        self.bytes_in_progress = 0  # confirmed parts of objects not done yet
        self.bytes_sent = 0  # every byte the store confirmed in this run (the rate)
        self.stored = 0
        self.skipped = 0
        self.failed = 0
        self.planned = 0
        self.deleted = 0
        self.not_started = 0
        self.interrupted = 0
        self.retries = 0
        self.last_retry: LastRetry | None = None
        self.finished = False
        self._failure_lines = FailureLines(max_error_lines)
        self._live: Live | None = None  # on a terminal
        self._timer: asyncio.TimerHandle | None = None
        self._undo: list[Callable[[], object]] = []  # what putting the terminal back takes

    # events

    def on_start(self, total_objects: int | None, total_bytes: int | None) -> None:
        if total_objects is not None:
            self._given = SourceCount(total_objects, total_bytes or 0, complete=True,
                                      known=total_bytes is not None)  # fmt: skip
        self._start = self._last_emit = self._clock()
        if self.quiet:
            return
        if self.mode == "rich":
            self._start_live()
        else:
            self._schedule(self.interval)

    def on_result(self, result: ObjectResult) -> None:
        status = result.status
        if status is Status.DELETED:  # not one of the objects uploaded
            self.deleted += 1
            return
        # stopped by Ctrl-C: neither done nor failed (the same command sends them again)
        if status is Status.NOT_STARTED:
            self.not_started += 1
            return
        if status is Status.INTERRUPTED:
            self.interrupted += 1
            return
        self.objects_done += 1
        size = result.size or 0
        self.bytes_done += size
        if status is Status.STORED:
            self.stored += 1
            # its bytes were confirmed before it finished: no longer "in progress"
            self.bytes_in_progress = max(0, self.bytes_in_progress - size)
        elif status is Status.SKIPPED:
            self.skipped += 1
            if result.message:
                self._show_failure(result)
        elif status is Status.FAILED:
            self.failed += 1
            self._show_failure(result)
        elif status is Status.PLANNED:
            self.planned += 1
        self._tick()

    def on_bytes(self, n: int) -> None:
        self.bytes_in_progress += n
        self.bytes_sent += n

    def on_retry(self, key: str, error: BulkputError) -> None:
        self.retries += 1
        status = error.status if isinstance(error, RemoteError) else None
        self.last_retry = LastRetry(error.code, status, error.key or key)

    def on_done(self, summary: JobSummary) -> None:
        self.finished = True
        self.bytes_in_progress = 0  # nothing is in flight any more
        count = self.count()
        if summary.aborted is None and not summary.interrupted:
            # every object went through: what was done is the whole job (whatever the count
            # made of files that changed between the two reads)
            count = SourceCount(self.objects_done, self.bytes_done, complete=True)
        self._final = count
        if self.quiet:
            return
        if self.mode == "json":
            self._emit()
        self.close()

    def close(self) -> None:
        """Put the terminal back (the last frame drawn in full, the cursor shown) and stop the
        timer; safe to call more than once, and on any exit path."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        live, self._live = self._live, None
        if live is not None:
            live.stop()
        undo, self._undo = self._undo, []
        for step in reversed(undo):
            step()

    # figures

    def count(self) -> SourceCount:
        """The totals as known now (counted so far until ``complete``)."""
        if self._final is not None:
            return self._final
        if self._totals is not None:
            return self._totals()
        if self._given is not None:
            return self._given
        return SourceCount(known=False)

    def percent(self, count: SourceCount | None = None) -> float | None:
        """Done of the total, by bytes when the total has any (bytes in progress included),
        else by objects; None until the total is known."""
        count = self.count() if count is None else count
        if not count.complete:
            return None
        if count.known and count.bytes > 0:
            done = self.bytes_done + self.bytes_in_progress
            return min(100.0, 100.0 * done / count.bytes)
        if count.objects > 0:
            return min(100.0, 100.0 * self.objects_done / count.objects)
        return 100.0 if self.finished else 0.0

    def eta(self, count: SourceCount | None = None) -> float | None:
        """Seconds left at the rate so far (None until the total and a rate are known)."""
        count = self.count() if count is None else count
        elapsed = self._elapsed()
        if not count.complete or elapsed <= 0:
            return None
        if count.known and count.bytes > 0 and self.bytes_sent > 0:
            left = count.bytes - self.bytes_done - self.bytes_in_progress
            return max(0.0, left) / (self.bytes_sent / elapsed)
        if count.objects > 0 and self.objects_done > 0:
            left = count.objects - self.objects_done
            return max(0, left) / (self.objects_done / elapsed)
        return None

    def snapshot(self) -> dict[str, Any]:
        """The figures shown, as one JSON-able dict (totals None until counted)."""
        count = self.count()
        elapsed = self._elapsed()
        percent = self.percent(count)
        eta = self.eta(count)
        state = self._concurrency() if self._concurrency is not None else None
        retry = self.last_retry
        return {
            "objects_done": self.objects_done,
            "objects_total": count.objects if count.complete else None,
            "objects_counted": count.objects if count.known or count.objects else None,
            "bytes_done": self.bytes_done,
            "bytes_in_progress": self.bytes_in_progress,
            "bytes_total": count.bytes if count.complete and count.known else None,
            "bytes_counted": count.bytes if count.known else None,
            "counting": count.known and not count.complete,
            "percent": None if percent is None else round(percent, 1),
            "stored": self.stored,
            "skipped": self.skipped,
            "failed": self.failed,
            "not_started": self.not_started,
            "interrupted": self.interrupted,
            "retries": self.retries,
            "last_retry": None if retry is None else
                {"code": retry.code, "status": retry.status, "key": retry.key},
            "elapsed": round(elapsed, 1),
            "objects_per_s": round(self.objects_done / elapsed, 1) if elapsed > 0 else None,
            "bytes_per_s": round(self.bytes_sent / elapsed) if elapsed > 0 else None,
            "eta_s": None if eta is None else round(eta, 1),
            "limit": None if state is None else state.limit,
            "limit_reason": None if state is None else state.reason,
            "in_flight": None if state is None else state.in_flight,
        }  # fmt: skip

    def counts_text(self, count: SourceCount | None = None) -> str:
        """``126/300 objects, 1.2 MiB/2.9 MiB`` (``/180+``, ``(counting)`` until counted)."""
        count = self.count() if count is None else count
        if not count.known and not count.complete:  # standard input: no total
            objects = plural(self.objects_done, "object")
            data = human_bytes(self.bytes_done)
        else:
            more = "" if count.complete else "+"
            total = max(count.objects, self.objects_done)
            noun = "object" if total == 1 and count.complete else "objects"
            objects = f"{self.objects_done:,}/{total:,}{more} {noun}"
            if not count.complete:
                objects += " (counting)"
            data = human_bytes(self.bytes_done)
            if count.known:  # (on_start may give the objects alone)
                data += f"/{human_bytes(count.bytes)}{more}"
        if self.bytes_in_progress:
            data += f" (+{human_bytes(self.bytes_in_progress)} in progress)"
        return f"{objects}, {data}"

    def rates_text(self, count: SourceCount | None = None) -> str:
        """``310 objects/s, 2.1 MiB/s, ETA 3 s, failed 1, retries 3 (last: ...)``."""
        count = self.count() if count is None else count
        elapsed = self._elapsed()
        parts = []
        if elapsed > 0:
            parts.append(f"{self.objects_done / elapsed:,.0f} objects/s")
            parts.append(f"{human_bytes(self.bytes_sent / elapsed)}/s")
        eta = self.eta(count)
        if eta is not None and not self.finished:
            parts.append(f"ETA {human_duration(eta)}")
        parts.append(f"elapsed {human_duration(elapsed)}")
        if self.skipped:
            parts.append(f"skipped {self.skipped:,}")
        parts.append(f"failed {self.failed:,}")
        if self.not_started:
            parts.append(f"not started {self.not_started:,}")
        if self.interrupted:
            parts.append(f"interrupted {self.interrupted:,}")
        if self.retries:
            cause = f" (last: {self.last_retry.describe()})" if self.last_retry else ""
            parts.append(f"retries {self.retries:,}{cause}")
        return ", ".join(parts)

    def text_line(self) -> str:
        """The plain line of the text mode: counts, %, rates."""
        count = self.count()
        percent = self.percent(count)
        share = f" ({percent:.0f}%)" if percent is not None else ""
        return f"progress: {self.counts_text(count)}{share}, {self.rates_text(count)}"

    def _elapsed(self) -> float:
        return max(0.0, self._clock() - self._start)

    # output

    def _tick(self) -> None:
        """After a result: the text and JSON lines are due every ``interval`` seconds (the
        timer writes them when no result comes); the live bar redraws on its own."""
        if self.quiet or self.mode == "rich" or self.finished:
            return
        if self._clock() - self._last_emit >= self.interval:
            self._emit()

    def _schedule(self, delay: float) -> None:
        """Write the next line in ``delay`` seconds even if no result comes (a large file, a
        throttled store): the timer runs on the job's event loop."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # driven by hand (tests): the results drive the lines
            return
        self._timer = loop.call_later(max(0.0, delay), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.finished:
            return
        due = self._last_emit + self.interval - self._clock()
        if due <= 0:
            self._emit()
            due = self.interval
        self._schedule(due)

    def _emit(self) -> None:
        self._last_emit = self._clock()
        if self.mode == "json":
            line = json.dumps({"progress": self.snapshot()})
        else:
            line = self.text_line()
        self.stream.write(line + "\n")
        self.stream.flush()

    def _show_failure(self, result: ObjectResult) -> None:
        if self.quiet or (self.explained is not None and self.explained(result)):
            return
        line = self._failure_lines.line_for(result)
        if line is not None:
            self._print_line(line)

    def _print_line(self, text: str) -> None:
        if not self.print_above(text):
            self.stream.write(text + "\n")
            self.stream.flush()

    def print_above(self, text: str) -> bool:
        """Print ``text`` (one line or several) above the live bar, as it is: no markup, no
        wrapping but the terminal's own; False, and nothing printed, when no bar is up."""
        live = self._live
        if live is None:
            return False
        live.console.print(text, markup=False, emoji=False, highlight=False, soft_wrap=True)
        return True

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        from bulkput import runtime

        console = Console(file=self.stream, force_terminal=True)
        # Whatever else writes to stderr while the bar is up (a SIGINT notice, -v lines) goes
        # above it, not through it; so does stdout when it is the same terminal (-v and
        # --dry-run object lines), not when it is a pipe, a file or another terminal.
        is_stderr = self.stream is sys.stderr
        live = Live(
            _LiveView(self),
            console=console,
            refresh_per_second=_LIVE_REFRESH_PER_SECOND,
            redirect_stdout=is_stderr and same_terminal(sys.stdout, self.stream),
            redirect_stderr=is_stderr,
        )
        live.start()
        self._live = live
        if is_stderr:
            self._route_log_handlers(sys.stderr)
        # a second Ctrl-C exits at once: the terminal is put back first
        self._undo.append(runtime.before_exit_now(self.close))

    def _route_log_handlers(self, proxy: TextIO) -> None:
        """Point the ``bulkput`` log handlers that write to our stream at rich's proxy while
        the bar is up, and back when it goes."""
        for handler in logging.getLogger("bulkput").handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is self.stream:
                handler.setStream(proxy)
                self._undo.append(functools.partial(handler.setStream, self.stream))

    def render_live(self) -> RenderableType:
        """The two lines of the live display: the bar with % and counts, then the rates."""
        from rich.progress_bar import ProgressBar
        from rich.table import Table
        from rich.text import Text

        count = self.count()
        percent = self.percent(count)
        # pulsing while the total is being counted; still once the job ended
        bar = ProgressBar(total=100.0, completed=percent or 0.0, width=30,
                          pulse=percent is None and not self.finished)  # fmt: skip
        share = f"{percent:3.0f}%" if percent is not None else "   -"
        grid = Table.grid(padding=(0, 1))
        grid.add_row(bar, Text(share), Text(self.counts_text(count), no_wrap=True,
                                            overflow="ellipsis"))  # fmt: skip
        lines = Table.grid()
        lines.add_row(grid)
        lines.add_row(Text(self.rates_text(count), no_wrap=True, overflow="ellipsis"))
        return lines


def same_terminal(first: TextIO, second: TextIO) -> bool:
    """Both streams are the one terminal (a pipe, a file, a stream with no file descriptor or
    two terminals apart: False)."""
    try:
        return first.isatty() and second.isatty() and os.path.samestat(
            os.fstat(first.fileno()), os.fstat(second.fileno())
        )
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return False


class LinesAboveTheBar:
    """Standard output's bytes for ``--report -`` when standard output is the terminal of the
    live bar (``display``): held until the writer flushes, then printed above the bar in one
    piece (the bar erased first and drawn again below them), as the ``-v`` lines are, instead
    of written through the bar's last frame; written straight to ``out`` while no bar is up.
    The writer flushes about once a second, so the bar is not redrawn once per line."""

    def __init__(self, display: ProgressDisplay, out: BinaryIO) -> None:
        self.display = display
        self.out = out
        self._held: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._held.append(data)
        return len(data)

    def flush(self) -> None:
        data, self._held = b"".join(self._held), []
        if data.endswith(b"\n") and self.display.print_above(data[:-1].decode("utf-8", "replace")):
            return
        self.out.write(data)
        self.out.flush()


def report_stdout(display: Subscriber) -> LinesAboveTheBar | None:
    """Where ``--report -`` writes with ``display`` shown: above its bar when standard output
    is the bar's terminal; None (standard output as it is) otherwise."""
    if isinstance(display, ProgressDisplay) and same_terminal(sys.stdout, display.stream):
        return LinesAboveTheBar(display, sys.stdout.buffer)
    return None


class _LiveView:
    """What rich redraws: asks the display for its lines at each refresh."""

    def __init__(self, display: ProgressDisplay) -> None:
        self.display = display

    def __rich__(self) -> RenderableType:
        return self.display.render_live()
