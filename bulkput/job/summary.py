"""What a job did: :class:`JobSummary` (counts, bytes, why objects were skipped or failed, the
exit code). The engine counts results into one with
:class:`~bulkput.job.collector.SummaryCollector`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from bulkput.errors import BulkputError
from bulkput.items import Status
from bulkput.job.shard import ShardRun

# --- the summary -----------------------------------------------------------------------------

# The skip reason of an object the store already held with the same size and MD5 (a job that
# resumes from the store: bulkput.job.store_resume).
IN_STORE = "in_store"


@dataclass
class JobSummary:
    """The outcome of one job (or, merged, of the shards of one job)."""

    stored: int = 0
    skipped: int = 0
    failed: int = 0
    deleted: int = 0
    planned: int = 0  # --dry-run: what would have been done
    # An interrupted job (SIGINT/SIGTERM): objects it never sent, and objects it sent that the
    # store did not confirm (a HEAD after the stop found them absent or could not tell). Both
    # are left for the next run of the same command, which the journal resumes.
    not_started: int = 0
    interrupted_objects: int = 0
    # The stop came before the input was read to its end, and reading on was cut short: more
    # objects were not started than ``not_started`` counts.
    unread_input: bool = False
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
        """The command line's exit status; the first row that holds decides:

        ===========================================================  ====
        the job                                                      exit
        ===========================================================  ====
        interrupted (SIGINT, SIGTERM, ``Uploader.stop``)             130
        aborted, or a merged shard's report partial/missing/doubled  3
        some object failed                                           1
        anything else (every object stored or skipped by rule)       0
        ===========================================================  ====
        """
        if self.interrupted:
            return 130
        if self.aborted is not None or self.partial_reports or self.missing_shards or self.duplicate_shards:
            return 3
        if self.failed:
            return 1
        return 0

    @property
    def skipped_in_store(self) -> int:
        """Objects skipped because the store already held them (same size and MD5)."""
        return self.skip_reasons.get(IN_STORE, 0)

    @property
    def objects(self) -> int:
        return (
            self.stored + self.skipped + self.failed + self.deleted + self.planned
            + self.not_started + self.interrupted_objects
        )

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
        elif status is Status.NOT_STARTED:
            self.not_started += 1
        elif status is Status.INTERRUPTED:
            self.interrupted_objects += 1

    def merge(self, other: JobSummary) -> None:
        """Add ``other`` (another shard's summary) into this one."""
        self.stored += other.stored
        self.skipped += other.skipped
        self.failed += other.failed
        self.deleted += other.deleted
        self.planned += other.planned
        self.not_started += other.not_started
        self.interrupted_objects += other.interrupted_objects
        self.unread_input = self.unread_input or other.unread_input
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

    def to_json(self) -> str:
        """The summary as a JSON string (``to_dict`` gives the dict)."""
        return json.dumps(self.to_dict())

    def to_dict(self) -> dict[str, Any]:
        """The summary as a dict of JSON values (the report's last line holds it)."""
        record: dict[str, Any] = {
            "stored": self.stored,
            "skipped": self.skipped,
            "skipped_in_store": self.skipped_in_store,
            "failed": self.failed,
            "deleted": self.deleted,
            "planned": self.planned,
            "not_started": self.not_started,
            "interrupted_objects": self.interrupted_objects,
            "bytes_stored": self.bytes_stored,
            "retries": self.retries,
            "skip_reasons": dict(self.skip_reasons.most_common()),
            "failure_codes": dict(self.failure_codes.most_common()),
            "aborted": self.aborted,
            "interrupted": self.interrupted,
            "elapsed": round(self.elapsed, 3),
            "exit_code": self.exit_code,
        }
        if self.unread_input:
            record["unread_input"] = True
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
    def from_dict(cls, record: dict[str, Any]) -> JobSummary:
        """The inverse of ``to_dict`` (``exit_code`` is recomputed, unknown fields ignored)."""
        return cls(
            stored=int(record.get("stored", 0)),
            skipped=int(record.get("skipped", 0)),
            failed=int(record.get("failed", 0)),
            deleted=int(record.get("deleted", 0)),
            planned=int(record.get("planned", 0)),
            not_started=int(record.get("not_started", 0)),
            interrupted_objects=int(record.get("interrupted_objects", 0)),
            unread_input=bool(record.get("unread_input", False)),
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


def fatal_exit_code(error: BulkputError) -> int:
    """The exit status of a job stopped by ``error`` before its first upload: the error's own
    (2 for a usage error: bad option, no credentials), else 3 (journal, endpoint...)."""
    return error.exit_code if error.exit_code != 1 else 3
