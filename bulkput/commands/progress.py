"""What people read while a job runs and when it ends: the summary lines, one line per failed
object, and :class:`ProgressDisplay` (rich progress on a terminal, a JSON line every few seconds
otherwise, nothing with ``quiet=True``). Human output belongs with the commands; the library
returns dataclasses.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from bulkput.errors import BulkputError
from bulkput.items import ObjectResult, Status
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.local.names import printable

# --- what people read ------------------------------------------------------------------------


def human_bytes(count: float) -> str:
    """1536 -> '1.5 KiB'."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def summary_lines(summary: JobSummary) -> list[str]:
    """The summary as people read it: one line of counts, then one line per reason."""
    parts = [f"stored {summary.stored:,} objects ({human_bytes(summary.bytes_stored)})"]
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
        lines.append(interrupted_line(summary))
    return lines


def interrupted_line(summary: JobSummary) -> str:
    """What an interrupted job left, and that the same command resumes it."""
    left = summary.not_started + summary.interrupted_objects
    what = f"{left:,}{'+' if summary.unread_input else ''} objects not stored yet"
    if summary.unread_input:
        what += " (the rest of the input was not read)"
    if summary.journal is None:
        return (f"interrupted: stopped cleanly, {what}; run the same command again to send"
                " them (no journal: it sends every object again)")
    return (f"interrupted: stopped cleanly, {what}; run the same command again to resume"
            " (its journal skips every object already stored)")


def print_summary(summary: JobSummary, stream: TextIO | None = None) -> None:
    out = stream if stream is not None else sys.stderr
    for line in summary_lines(summary):
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


def is_warning(result: ObjectResult) -> bool:
    """A skipped object that carries a message is a warning the user should see (skips by a
    sync rule or the journal carry none)."""
    return result.status is Status.SKIPPED and bool(result.message)


# --- progress ---------------------------------------------------------------------------------


class ProgressDisplay(Subscriber):
    """Progress while the job runs, on ``stream`` (stderr by default).

    On a terminal: a rich progress bar with objects and bytes done and total, rate, ETA,
    retries and failures. Elsewhere (logs, CI): one ``{"progress": {...}}`` JSON line at most
    every ``interval`` seconds. ``quiet=True``: nothing at all. Each failed object gets one
    ``error: ...`` line, up to ``max_error_lines`` (the report has them all)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        quiet: bool = False,
        interval: float = 5.0,
        tty: bool | None = None,
        max_error_lines: int = 200,
        explained: Callable[[ObjectResult], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.explained = explained
        self.quiet = quiet
        self.interval = interval
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty = tty
        self.max_error_lines = max_error_lines
        self._clock = clock
        self._start = clock()
        self._last_emit = self._start
        self.total_objects: int | None = None
        self.total_bytes: int | None = None
        self.objects_done = 0
        self.bytes_done = 0
        self.stored = 0
        self.skipped = 0
        self.failed = 0
        self.retries = 0
        self._errors_shown = 0
        self._progress: Any = None  # rich.progress.Progress on a terminal
        self._task: Any = None

    # events

    def on_start(self, total_objects: int | None, total_bytes: int | None) -> None:
        self.total_objects = total_objects
        self.total_bytes = total_bytes
        self._start = self._last_emit = self._clock()
        if self.tty and not self.quiet:
            self._start_rich()

    def on_result(self, result: ObjectResult) -> None:
        self.objects_done += 1
        status = result.status
        if status is Status.STORED:
            self.stored += 1
        elif status is Status.SKIPPED:
            self.skipped += 1
            if result.message:
                self._show_failure(result)
        elif status is Status.FAILED:
            self.failed += 1
            self._show_failure(result)
        self._tick()

    def on_bytes(self, n: int) -> None:
        self.bytes_done += n
        self._tick()

    def on_retry(self, key: str, error: BulkputError) -> None:
        self.retries += 1

    def on_done(self, summary: JobSummary) -> None:
        if self._progress is not None:
            self._refresh_rich()
            self._progress.stop()
            self._progress = None
        elif not self.quiet and not self.tty:
            self._emit_json()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # figures

    def snapshot(self) -> dict[str, Any]:
        """The figures shown, as one JSON-able dict."""
        elapsed = max(0.0, self._clock() - self._start)
        record: dict[str, Any] = {
            "objects_done": self.objects_done,
            "objects_total": self.total_objects,
            "bytes_done": self.bytes_done,
            "bytes_total": self.total_bytes,
            "stored": self.stored,
            "skipped": self.skipped,
            "failed": self.failed,
            "retries": self.retries,
            "elapsed": round(elapsed, 1),
            "objects_per_s": round(self.objects_done / elapsed, 1) if elapsed > 0 else None,
            "bytes_per_s": round(self.bytes_done / elapsed) if elapsed > 0 else None,
            "eta_s": self._eta(elapsed),
        }
        return record

    def _eta(self, elapsed: float) -> float | None:
        if elapsed <= 0:
            return None
        if self.total_bytes and self.bytes_done:
            rate = self.bytes_done / elapsed
            left = max(0, self.total_bytes - self.bytes_done)
        elif self.total_objects and self.objects_done:
            rate = self.objects_done / elapsed
            left = max(0, self.total_objects - self.objects_done)
        else:
            return None
        return round(left / rate, 1) if rate > 0 else None

    # output

    def _tick(self) -> None:
        if self.quiet:
            return
        now = self._clock()
        if self._progress is not None:
            if now - self._last_emit >= 0.1:  # rich redraws on its own; just feed it
                self._last_emit = now
                self._refresh_rich()
        elif not self.tty and now - self._last_emit >= self.interval:
            self._last_emit = now
            self._emit_json()

    def _emit_json(self) -> None:
        self.stream.write(json.dumps({"progress": self.snapshot()}) + "\n")
        self.stream.flush()

    def _show_failure(self, result: ObjectResult) -> None:
        if self.quiet or (self.explained is not None and self.explained(result)):
            return
        self._errors_shown += 1
        if self._errors_shown > self.max_error_lines:
            if self._errors_shown == self.max_error_lines + 1:
                self._print_line("error: more objects failed or were skipped with a warning; the --report file lists them all")
            return
        self._print_line(failure_line(result))

    def _print_line(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(file=self.stream, force_terminal=True)
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[problems]}"),
            console=console,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task("upload", total=None, counts="", problems="")
        self._progress.start()
        self._refresh_rich()

    def _refresh_rich(self) -> None:
        progress = self._progress
        if progress is None:
            return
        elapsed = max(1e-9, self._clock() - self._start)
        objects = f"{self.objects_done:,}" + (
            f"/{self.total_objects:,}" if self.total_objects is not None else ""
        )
        data = human_bytes(self.bytes_done) + (
            f"/{human_bytes(self.total_bytes)}" if self.total_bytes is not None else ""
        )
        rate = f"{self.objects_done / elapsed:,.0f} obj/s {human_bytes(self.bytes_done / elapsed)}/s"
        counts = f"{objects} objects  {data}  {rate}"
        problems = f"retries {self.retries:,}  failed {self.failed:,}"
        # The bar and ETA follow bytes when their total is known, else objects.
        if self.total_bytes:
            total: float | None = self.total_bytes
            completed: float = self.bytes_done
        elif self.total_objects:
            total, completed = self.total_objects, self.objects_done
        else:
            total, completed = None, self.objects_done
        progress.update(self._task, total=total, completed=completed, counts=counts,
                        problems=problems)
