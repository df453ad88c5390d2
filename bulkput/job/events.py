"""What a job tells the outside world while it runs and when it ends.

The engine calls subscribers (:class:`bulkput.job.subscriber.Subscriber`); none of
them prints or writes on its own initiative except on those calls (and the report's one-second
flush timer). Subscribers here:

- ``SummaryCollector``: counts results into a ``JobSummary`` (the engine always has one).
- ``ReportWriter``: the ``--report`` file, one JSON line per object, then ``{"summary": ...}``.
- ``ProgressDisplay``: rich progress on a terminal, a JSON line every few seconds otherwise,
  nothing with ``quiet=True``; one line per failed object.

``merge_reports`` adds up the report files of a sharded job. Nothing here ever sees a secret:
results and errors carry only what the server sent back and the user's own keys and paths.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Any, TextIO

from bulkput.errors import BulkputError, UsageError
from bulkput.items import ObjectResult, Status
from bulkput.job.shard import ShardRun
from bulkput.job.subscriber import Subscriber
from bulkput.local.names import printable
from bulkput.redact import scrub

# --- the summary -----------------------------------------------------------------------------


@dataclass
class JobSummary:
    """The outcome of one job (or, merged, of the shards of one job)."""

    stored: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    planned: int = 0  # --dry-run: what would have been done
    bytes_stored: int = 0
    retries: int = 0
    skip_reasons: Counter[str] = field(default_factory=Counter)
    failure_codes: Counter[str] = field(default_factory=Counter)
    aborted: str | None = None  # the one-line fatal error that stopped the job
    interrupted: bool = False  # SIGINT/SIGTERM: stopped cleanly before the end
    elapsed: float = 0.0  # seconds (merged: the longest shard, as shards run side by side)
    # merge_reports only: report files that had no summary line (their shard did not finish),
    # counted from their object lines instead.
    partial_reports: list[str] = field(default_factory=list)
    # The job's journal file, and what it did this run (renewed, checked against the store).
    journal: str | None = None
    journal_notes: list[str] = field(default_factory=list)
    # merge_job_reports only: shards of the job with no report, and shards reported twice by
    # the same attempt (one line each, naming the files); either makes the exit code 3.
    missing_shards: list[int] = field(default_factory=list)
    duplicate_shards: list[str] = field(default_factory=list)
    # The run that wrote this summary (a --shard K/N job), None otherwise.
    shard_run: ShardRun | None = None

    @property
    def exit_code(self) -> int:
        """130 interrupted, 3 aborted (or a shard that never finished), 1 some object failed,
        else 0 (every object stored or skipped by rule)."""
        if self.interrupted:
            return 130
        if self.aborted is not None or self.partial_reports or self.missing_shards or self.duplicate_shards:
            return 3
        if self.failed:
            return 1
        return 0

    @property
    def objects(self) -> int:
        return self.stored + self.skipped + self.failed + self.deleted + self.planned

    def add_result(self, status: Status | str | None, size: int | None, reason: str | None,
                   error_code: str | None) -> None:
        """Count one object's outcome; ValueError for a status that is not one."""
        status = Status(status)
        if status is Status.STORED:
            self.stored += 1
            self.bytes_stored += size or 0
        elif status is Status.SKIPPED:
            self.skipped += 1
            self.skip_reasons[reason or "unspecified"] += 1
        elif status is Status.FAILED:
            self.failed += 1
            self.failure_codes[error_code or "unknown"] += 1
        elif status is Status.DELETED:
            self.deleted += 1
        elif status is Status.PLANNED:
            self.planned += 1

    def merge(self, other: JobSummary) -> None:
        """Add ``other`` (another shard's summary) into this one."""
        self.stored += other.stored
        self.skipped += other.skipped
        self.failed += other.failed
        self.deleted += other.deleted
        self.planned += other.planned
        self.bytes_stored += other.bytes_stored
        self.retries += other.retries
        self.skip_reasons.update(other.skip_reasons)
        self.failure_codes.update(other.failure_codes)
        if other.aborted is not None:
            self.aborted = other.aborted if self.aborted is None else (
                self.aborted if other.aborted in self.aborted else f"{self.aborted}; {other.aborted}"
            )
        self.interrupted = self.interrupted or other.interrupted
        self.elapsed = max(self.elapsed, other.elapsed)
        self.partial_reports.extend(other.partial_reports)
        self.missing_shards.extend(other.missing_shards)
        self.duplicate_shards.extend(other.duplicate_shards)

    def to_json(self) -> dict[str, Any]:
        record: dict[str, Any] = {
            "stored": self.stored,
            "skipped": self.skipped,
            "failed": self.failed,
            "deleted": self.deleted,
            "planned": self.planned,
            "bytes_stored": self.bytes_stored,
            "retries": self.retries,
            "skip_reasons": dict(self.skip_reasons.most_common()),
            "failure_codes": dict(self.failure_codes.most_common()),
            "aborted": self.aborted,
            "interrupted": self.interrupted,
            "elapsed": round(self.elapsed, 3),
            "exit_code": self.exit_code,
        }
        if self.partial_reports:
            record["partial_reports"] = list(self.partial_reports)
        if self.journal is not None:
            record["journal"] = self.journal
            record["journal_notes"] = list(self.journal_notes)
        if self.missing_shards:
            record["missing_shards"] = list(self.missing_shards)
        if self.duplicate_shards:
            record["duplicate_shards"] = list(self.duplicate_shards)
        if self.shard_run is not None:
            record.update(self.shard_run.to_json())
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> JobSummary:
        """The inverse of ``to_json`` (``exit_code`` is recomputed, unknown fields ignored)."""
        return cls(
            stored=int(record.get("stored", 0)),
            skipped=int(record.get("skipped", 0)),
            failed=int(record.get("failed", 0)),
            deleted=int(record.get("deleted", 0)),
            planned=int(record.get("planned", 0)),
            bytes_stored=int(record.get("bytes_stored", 0)),
            retries=int(record.get("retries", 0)),
            skip_reasons=Counter({str(k): int(v) for k, v in
                                  (record.get("skip_reasons") or {}).items()}),
            failure_codes=Counter({str(k): int(v) for k, v in
                                   (record.get("failure_codes") or {}).items()}),
            aborted=record.get("aborted"),
            interrupted=bool(record.get("interrupted", False)),
            elapsed=float(record.get("elapsed", 0.0)),
            partial_reports=[str(p) for p in record.get("partial_reports") or []],
            journal=record.get("journal"),
            journal_notes=[str(n) for n in record.get("journal_notes") or []],
            missing_shards=[int(n) for n in record.get("missing_shards") or []],
            duplicate_shards=[str(n) for n in record.get("duplicate_shards") or []],
            shard_run=ShardRun.from_json(record),
        )


class SummaryCollector(Subscriber):
    """Builds the ``JobSummary`` from the events; ``summary()`` at the end adds how it ended."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._start = clock()
        self._summary = JobSummary()
        self.total_objects: int | None = None
        self.total_bytes: int | None = None

    def on_start(self, total_objects: int | None, total_bytes: int | None) -> None:
        self._start = self._clock()
        self.total_objects = total_objects
        self.total_bytes = total_bytes

    def on_result(self, result: ObjectResult) -> None:
        self._summary.add_result(result.status, result.size, result.reason, result.error_code)

    def on_retry(self, key: str, error: BulkputError) -> None:
        self._summary.retries += 1

    def summary(
        self, *, aborted: BulkputError | str | None = None, interrupted: bool = False
    ) -> JobSummary:
        """A snapshot of the counts, with how the job ended."""
        current = self._summary
        if isinstance(aborted, BulkputError):
            aborted = aborted.one_line()
        return JobSummary(
            stored=current.stored,
            skipped=current.skipped,
            failed=current.failed,
            deleted=current.deleted,
            planned=current.planned,
            bytes_stored=current.bytes_stored,
            retries=current.retries,
            skip_reasons=Counter(current.skip_reasons),
            failure_codes=Counter(current.failure_codes),
            aborted=aborted,
            interrupted=interrupted,
            elapsed=max(0.0, self._clock() - self._start),
        )


# --- the report file -------------------------------------------------------------------------


def _json_line(record: dict[str, Any]) -> bytes:
    text = scrub(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 file name): escape it
        return scrub(json.dumps(record, separators=(",", ":"))).encode("ascii") + b"\n"


class ReportWriter(Subscriber):
    """``--report FILE``: one JSON line per object (``ObjectResult.to_json()``), then one
    ``{"summary": {...}}`` line. Lines are buffered, and flushed at least every
    ``flush_interval`` seconds while a line waits (by a timer on the running event loop, or on
    the next line when there is none) and at the end, so a killed job loses at most that much
    of its report; the journal, not the report, is what resume trusts.

    ``shard_run`` (a ``--shard K/N`` job): the first line is ``{"shard_run": {job, shard,
    shards, attempt}}`` and the summary carries the same fields, which ``bulkput report merge``
    needs to check that every shard reported once."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        shard_run: ShardRun | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.shard_run = shard_run
        self._file: IO[bytes] | None = open(self.path, "ab" if append else "wb")  # noqa: SIM115
        self._interval = flush_interval
        self._clock = clock
        self._last_flush = clock()
        self._dirty = False
        self._timer: asyncio.TimerHandle | None = None
        if shard_run is not None:
            self._write(_json_line({"shard_run": shard_run.to_json()}))

    def on_result(self, result: ObjectResult) -> None:
        self._write(_json_line(result.to_json()))

    def on_done(self, summary: JobSummary) -> None:
        record = summary.to_json()
        if self.shard_run is not None:
            record.update(self.shard_run.to_json())
        self._write(_json_line({"summary": record}))
        self.close()

    def flush(self) -> None:
        if self._file is not None and self._dirty:
            self._file.flush()
        self._dirty = False
        self._last_flush = self._clock()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def __enter__(self) -> ReportWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, line: bytes) -> None:
        if self._file is None:
            raise ValueError(f"report {self.path} is closed")
        self._file.write(line)
        self._dirty = True
        if self._clock() - self._last_flush >= self._interval:
            self.flush()
        elif self._timer is None:
            self._arm_timer()

    def _arm_timer(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop: the next line or close() flushes
        self._timer = loop.call_later(self._interval, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush()


def merge_reports(paths: Iterable[str | os.PathLike[str]]) -> JobSummary:
    """Add up the report files of a sharded job into one summary, reading them line by line.

    A file's last ``summary`` line stands for that file. A file with no summary line (its shard
    died), or with object lines after its last summary (a later run that died), is counted from
    those object lines instead and listed in ``partial_reports``, which makes the exit code 3:
    the job did not finish. Malformed lines (a line cut short by a kill) are ignored."""
    total = JobSummary()
    for path in paths:
        total.merge(_read_report(os.fspath(path)))
    return total


def merge_job_reports(paths: Iterable[str | os.PathLike[str]]) -> JobSummary:
    """One summary for the reports of one ``--shard K/N`` job, checked for completeness.

    Every report must name its run (job id, shard K, N, attempt: ``ReportWriter(shard_run=)``)
    and all must name the same job and N, else ``UsageError``. Of each shard the report of its
    highest attempt stands for it (an earlier attempt that died is superseded: the later one
    went over every key of the shard); two reports of the same shard and attempt are listed in
    ``duplicate_shards``, shards 0..N-1 with no report in ``missing_shards``; either, or a
    standing report with no summary line (``partial_reports``), makes the exit code 3."""
    runs: dict[int, list[tuple[int, str, JobSummary]]] = {}
    job: tuple[str, int, str] | None = None
    for raw_path in paths:
        path = os.fspath(raw_path)
        summary = _read_report(path)
        run = summary.shard_run
        if run is None:
            raise UsageError(
                f"report {path} names no shard of a job (written by a job without --shard K/N, or "
                "by an older bulkput): merge takes the reports of the shards of one --shard K/N job"
            )
        if job is None:
            job = (run.job, run.shard.count, path)
        elif (run.job, run.shard.count) != job[:2]:
            raise UsageError(
                f"report {path} is of job {run.job} with {run.shard.count} shards, {job[2]} of job "
                f"{job[0]} with {job[1]} shards: merge the reports of one job"
            )
        runs.setdefault(run.shard.index, []).append((run.attempt, path, summary))
    total = JobSummary()
    if job is None:
        return total
    count = job[1]
    for index in range(count):
        reports = sorted(runs.get(index, []), key=lambda entry: entry[0])
        if not reports:
            total.missing_shards.append(index)
            continue
        attempt, _, standing = reports[-1]
        twins = [p for a, p, _ in reports if a == attempt]
        if len(twins) > 1:
            total.duplicate_shards.append(
                f"shard {index}/{count} attempt {attempt} is in {len(twins)} reports: "
                + ", ".join(twins)
            )
        total.merge(standing)
    return total


def _read_report(path: str) -> JobSummary:
    try:
        stream = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        raise UsageError(f"report {path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"report {path}: {exc.strerror}") from None
    last_summary: JobSummary | None = None
    since_summary = JobSummary()  # counted from the object lines after the last summary
    objects_since = 0
    header_run: ShardRun | None = None
    with stream:
        for raw in stream:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if "shard_run" in record and isinstance(record["shard_run"], dict):
                header_run = ShardRun.from_json(record["shard_run"])
                continue
            if "summary" in record and isinstance(record["summary"], dict):
                last_summary = JobSummary.from_json(record["summary"])
                since_summary = JobSummary()
                objects_since = 0
                continue
            status = record.get("status")
            try:
                since_summary.add_result(status, _int_or_none(record.get("size")),
                                         record.get("reason"), record.get("error_code"))
            except ValueError:
                continue  # not an object line
            objects_since += 1
            attempts = _int_or_none(record.get("attempts")) or 0
            since_summary.retries += max(0, attempts - 1)
    if last_summary is not None and objects_since == 0:
        if last_summary.shard_run is None:
            last_summary.shard_run = header_run
        return last_summary
    since_summary.partial_reports.append(path)
    since_summary.shard_run = header_run
    return since_summary


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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
        parts.append(f"skipped {summary.skipped:,}")
    if summary.deleted:
        parts.append(f"deleted {summary.deleted:,}")
    if summary.planned:
        parts.append(f"planned {summary.planned:,} (dry run)")
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
        lines.append("interrupted: stopped cleanly; run the same command again to resume")
    return lines


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


def fatal_exit_code(error: BulkputError) -> int:
    """The exit status of a job stopped by ``error`` before its first upload: the error's own
    (2 for a usage error: bad option, no credentials), else 3 (journal, endpoint...)."""
    return error.exit_code if error.exit_code != 1 else 3
