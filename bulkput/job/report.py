"""The ``--report`` file: one JSON line per object, then ``{"summary": ...}``
(:class:`ReportWriter`), and the merge of the report files of a sharded job
(:func:`merge_reports`, :func:`merge_job_reports`). Nothing here ever sees a secret: results
carry only what the server sent back and the user's own keys and paths, and every line is
scrubbed before it is written.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, Any, Protocol

from bulkput.errors import UsageError
from bulkput.items import ObjectResult
from bulkput.job.shard import ShardRun
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.redact import scrub

# --- the report file -------------------------------------------------------------------------


def _json_line(record: dict[str, Any]) -> bytes:
    text = scrub(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
    try:
        return text.encode("utf-8") + b"\n"
    except UnicodeEncodeError:  # a lone surrogate (a non-UTF-8 file name): escape it
        return scrub(json.dumps(record, separators=(",", ":"))).encode("ascii") + b"\n"


class ReportStream(Protocol):
    """Where a report's bytes go: a file, standard output's buffer, or a live display that
    prints them above its bar (``bulkput.commands.progress.LinesAboveTheBar``)."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> None: ...


class ReportWriter(Subscriber):
    """``--report FILE`` (``-``: standard output): one JSON line per object (``ObjectResult.to_json()``), then one
    ``{"summary": {...}}`` line. Lines are buffered, and flushed at least every
    ``flush_interval`` seconds while a line waits (by a timer on the running event loop, or on
    the next line when there is none) and at the end, so a killed job loses at most that much
    of its report; the journal, not the report, is what resume trusts.

    ``shard_run`` (a ``--shard K/N`` job): the first line is ``{"shard_run": {job, shard,
    shards, attempt}}`` and the summary carries the same fields, which ``bulkput report merge``
    needs to check that every shard reported once.

    ``stdout``: where ``-`` writes (``sys.stdout.buffer`` when None); it is flushed, not closed."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        append: bool = False,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        shard_run: ShardRun | None = None,
        stdout: ReportStream | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.shard_run = shard_run
        # "-" is standard output (the human summary goes to stderr); it is flushed, not closed
        self._owned: IO[bytes] | None = None
        if self.path == "-":
            sys.stdout.flush()  # text written before the first JSON line stays before it
            self._file: ReportStream | None = stdout if stdout is not None else sys.stdout.buffer
        else:
            self._file = self._owned = open(self.path, "ab" if append else "wb")  # noqa: SIM115
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
        record = summary.to_dict()
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
            if self._owned is not None:
                self._owned.close()
            self._file = self._owned = None

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
                last_summary = JobSummary.from_dict(record["summary"])
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
