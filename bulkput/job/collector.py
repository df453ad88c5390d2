"""The :class:`SummaryCollector`: the subscriber a job counts its results into, to make its
:class:`~bulkput.job.summary.JobSummary` (apart from summary.py, which the subscriber
interface names in its hooks: neither module imports the other's whole)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from bulkput.errors import BulkputError
from bulkput.items import ObjectResult
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary


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
        self,
        *,
        aborted: BulkputError | str | None = None,
        interrupted: bool = False,
        unread_input: bool = False,
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
            not_started=current.not_started,
            interrupted_objects=current.interrupted_objects,
            unread_input=unread_input,
            bytes_stored=current.bytes_stored,
            retries=current.retries,
            skip_reasons=Counter(current.skip_reasons),
            failure_codes=Counter(current.failure_codes),
            aborted=aborted,
            interrupted=interrupted,
            elapsed=max(0.0, self._clock() - self._start),
        )
