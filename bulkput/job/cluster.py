"""One job's shards as tasks on a Dask cluster: Dask schedules, bulkput only defines the task.

::

    client ──submit N tasks──▶ dask.distributed scheduler ──▶ workers
       ▲    (JobSpec, PutSource: frozen, pickled)              │ run_put_shard(K): run_job of
       │ polls scheduler metadata per shard (objects,         │ the spec with shard K/N, on
       │ failures) every second                                │ its own event loop, with
       └──────────── merge_reports(every attempt's report) ◀───┘ its own journal and report

A shard is just a filtered job (the spec with ``shard=Shard(K, N)``), so nothing here moves
data or decides who uploads what. When a worker dies, the scheduler runs the shard again elsewhere; the shard's
journal (under a ``--state-dir`` the workers share) makes that a resume: objects it confirmed
are skipped without a request. Each attempt writes its own report file
(``shard-K-of-N.attempt-A.jsonl``); a finished attempt accounts for every key of its shard
(stored by it, or skipped with reason ``journal`` because an earlier attempt stored it), so the
merged summary takes each shard's last finished attempt: every object counted exactly once.

Credentials travel in the spec's :class:`~bulkput.job.spec.StoreSettings` as a
:class:`~bulkput.remote.credentials.Credentials` object (masked ``repr``), never on a command
line; or leave them out (``credentials=None``) and let each worker read its own environment.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bulkput.errors import BulkputError, UsageError
from bulkput.job.report import merge_reports
from bulkput.job.shard import Shard, ShardRun
from bulkput.job.spec import JobSpec, PutSource
from bulkput.job.summary import JobSummary, fatal_exit_code


@dataclass(frozen=True, slots=True)
class ShardProgress:
    """What one shard has done so far, as its report file says."""

    shard: int
    attempt: int = 0
    stored: int = 0
    skipped: int = 0
    failed: int = 0
    bytes_stored: int = 0
    done: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "shard": self.shard,
            "attempt": self.attempt,
            "stored": self.stored,
            "skipped": self.skipped,
            "failed": self.failed,
            "bytes": self.bytes_stored,
            "done": self.done,
        }


@dataclass(frozen=True, slots=True)
class DaskJobResult:
    summary: JobSummary
    report_files: list[str]
    shard_exit_codes: dict[int, int]


def shard_report_pattern(report_dir: str | os.PathLike[str], job: str, count: int) -> str:
    return os.path.join(os.fspath(report_dir), f"{job}.shard-*-of-{count}.attempt-*.jsonl")


def _claim_attempt_file(report_dir: str, job: str, index: int, count: int) -> tuple[int, str]:
    """Create the next free attempt file for this shard (O_EXCL, so two attempts never share)."""
    os.makedirs(report_dir, exist_ok=True)
    attempt = 1
    while True:
        path = os.path.join(report_dir, f"{job}.shard-{index}-of-{count}.attempt-{attempt}.jsonl")
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            attempt += 1
            continue
        os.close(fd)
        return attempt, path


class ReportTail:
    """Counts a report file's object lines as they are appended, reading only what is new."""

    def __init__(self, path: str, shard: int, attempt: int) -> None:
        self.path = path
        self.progress = ShardProgress(shard=shard, attempt=attempt)
        self._offset = 0
        self._partial = b""

    def poll(self) -> ShardProgress:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                chunk = handle.read()
        except OSError:
            return self.progress
        self._offset += len(chunk)
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()
        stored, skipped, failed, nbytes, done = 0, 0, 0, 0, self.progress.done
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if "summary" in record:
                done = True
                continue
            status = record.get("status")
            if status == "stored":
                stored += 1
                nbytes += int(record.get("size") or 0)
            elif status == "skipped":
                skipped += 1
            elif status == "failed":
                failed += 1
        p = self.progress
        self.progress = ShardProgress(
            shard=p.shard,
            attempt=p.attempt,
            stored=p.stored + stored,
            skipped=p.skipped + skipped,
            failed=p.failed + failed,
            bytes_stored=p.bytes_stored + nbytes,
            done=done,
        )
        return self.progress


def run_put_shard(
    spec: JobSpec,
    source: PutSource,
    index: int,
    count: int,
    report_dir: str,
    job: str,
    progress_interval: float = 1.0,
) -> dict[str, Any]:
    """The Dask task: ``spec`` with shard ``index/count``, on its own event loop.

    Runs in a worker thread; publishes progress as scheduler metadata ``["bulkput", job, index]``
    while it runs. Returns the shard's exit code and report path.
    """
    attempt, report_path = _claim_attempt_file(report_dir, job, index, count)
    publish = _progress_publisher(job, index)
    tail = ReportTail(report_path, index, attempt)
    finished = threading.Event()

    def report_progress() -> None:
        while not finished.wait(progress_interval):
            publish(tail.poll())

    reporter = threading.Thread(target=report_progress, name=f"bulkput-progress-{index}", daemon=True)
    reporter.start()
    try:
        run = ShardRun(job, Shard(index, count), attempt - 1)  # attempt files count from 1
        # remote: a file it cannot read is reported with this worker's host and directory
        task_spec = replace(spec, shard=run.shard, remote=True)
        exit_code = _run_shard(task_spec, source, report_path, run)
    finally:
        finished.set()
        reporter.join()
        publish(tail.poll())
    return {"shard": index, "attempt": attempt, "exit_code": exit_code, "report": report_path}


def _run_shard(spec: JobSpec, source: PutSource, report_path: str, run: ShardRun) -> int:
    from bulkput import runtime
    from bulkput.job.report import ReportWriter
    from bulkput.job.run import run_job

    try:
        report = ReportWriter(report_path, shard_run=run)  # report merge can check the job
        try:
            summary = runtime.run_async(run_job(spec, source.items(spec.target), [report]))
        finally:
            report.close()
    except BulkputError as error:  # stopped before the first upload (journal, credentials...)
        return fatal_exit_code(error)
    return summary.exit_code


def _progress_publisher(job: str, index: int) -> Callable[[ShardProgress], None]:
    """Publish the shard's progress as scheduler metadata; a no-op outside a Dask worker."""
    try:
        from distributed import get_client

        client = get_client()
    except (ImportError, ValueError):
        return lambda progress: None

    def publish(progress: ShardProgress) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the report is the truth
            client.set_metadata(["bulkput", job, str(index)], progress.to_json())

    return publish


def run_put_on_dask(
    spec: JobSpec,
    source: PutSource,
    *,
    scheduler: Any,
    shards: int,
    report_dir: str | os.PathLike[str],
    on_progress: Callable[[list[ShardProgress]], None] | None = None,
    poll_interval: float = 1.0,
    job: str | None = None,
) -> DaskJobResult:
    """Submit ``shards`` shard tasks of one ``bulkput put`` job to a Dask cluster and wait.

    ``scheduler`` is an address (``tcp://host:8786``) or a ``distributed.Client``. ``spec``
    describes the whole job (its ``shard`` must be None: each task takes one of ``shards``);
    each task reads its keys of ``source``. Journals live in ``spec.journal.state_dir`` (make
    it a directory every worker shares, so a shard re-run on another worker resumes). Returns
    the merged summary of every attempt's report in ``report_dir``.
    """
    try:
        from distributed import Client
    except ImportError:
        raise UsageError("the Dask integration needs: pip install 'bulkput[dask]'") from None
    if shards < 1:
        raise UsageError(f"--shards {shards}: need at least 1")
    if spec.shard is not None:
        raise UsageError("a Dask job makes its own shards: give a spec without one")
    job = job or f"bulkput-{uuid.uuid4().hex[:12]}"
    report_dir = os.path.abspath(os.fspath(report_dir))
    Path(report_dir).mkdir(parents=True, exist_ok=True)

    own_client = not isinstance(scheduler, Client)
    client = Client(scheduler) if own_client else scheduler
    try:
        futures = [
            client.submit(
                run_put_shard,
                spec,
                source,
                index,
                shards,
                report_dir,
                job,
                key=f"{job}-shard-{index}",
                pure=False,
                retries=2,  # an exception in a shard (not a dead worker: Dask re-runs those itself)
            )
            for index in range(shards)
        ]
        while True:
            finished = all(future.done() for future in futures)
            if on_progress is not None:
                on_progress(_read_progress(client, job, shards))
            if finished:
                break
            time.sleep(poll_interval)
        exit_codes: dict[int, int] = {}
        for index, future in enumerate(futures):
            if future.status == "finished":
                exit_codes[index] = int(future.result()["exit_code"])
            else:
                exit_codes[index] = 3
        with contextlib.suppress(Exception):
            client.set_metadata(["bulkput", job], {})
    finally:
        if own_client:
            client.close()
    files = sorted(glob.glob(shard_report_pattern(report_dir, job, shards)))
    summary = merge_attempt_reports(files)
    failed_shards = [index for index, code in exit_codes.items() if code == 3]
    if failed_shards and not summary.aborted:
        summary.aborted = f"shards {failed_shards} did not finish (see their reports)"
    return DaskJobResult(summary=summary, report_files=files, shard_exit_codes=exit_codes)


def merge_attempt_reports(files: Sequence[str]) -> JobSummary:
    """One summary for the job: each shard's last attempt, when it finished, stands for the
    shard (it went over every key of the shard: stored now, or skipped because the journal
    says an earlier attempt stored it); a shard whose last attempt did not finish counts all of
    its attempts and stays ``partial``."""
    by_shard: dict[str, list[tuple[int, str]]] = {}
    for path in files:
        stem, _, attempt = os.path.basename(path).removesuffix(".jsonl").rpartition(".attempt-")
        by_shard.setdefault(stem, []).append((int(attempt), path))
    total = JobSummary()
    for attempts in by_shard.values():
        attempts.sort()
        last = merge_reports([attempts[-1][1]])
        total.merge(last if not last.partial_reports else merge_reports(p for _, p in attempts))
    return total


def _read_progress(client: Any, job: str, shards: int) -> list[ShardProgress]:
    try:
        records = client.get_metadata(["bulkput", job], default={}) or {}
    except Exception:
        records = {}
    progress = []
    for index in range(shards):
        record = records.get(str(index)) or {}
        progress.append(
            ShardProgress(
                shard=index,
                attempt=int(record.get("attempt", 0)),
                stored=int(record.get("stored", 0)),
                skipped=int(record.get("skipped", 0)),
                failed=int(record.get("failed", 0)),
                bytes_stored=int(record.get("bytes", 0)),
                done=bool(record.get("done", False)),
            )
        )
    return progress


def progress_line(progress: list[ShardProgress], started: float | None = None) -> str:
    """One JSON line for the client's terminal: per-shard and total counts."""
    total = {
        "stored": sum(p.stored for p in progress),
        "failed": sum(p.failed for p in progress),
        "bytes": sum(p.bytes_stored for p in progress),
    }
    record: dict[str, Any] = {"progress": total, "shards": [p.to_json() for p in progress]}
    if started is not None:
        record["elapsed"] = round(time.monotonic() - started, 1)
    return json.dumps(record, separators=(",", ":"))
