"""What ``put`` and ``sync`` show and write while a job runs (:class:`JobOutput`): the totals'
counting pass, the progress display (or, with ``--quiet`` / ``--progress none``, one line per
failed object), the ``-v`` / ``--dry-run`` object lines and the ``--report`` writer, made,
started and closed as one.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from bulkput.errors import BulkputError, UsageError
from bulkput.items import ObjectResult, Status
from bulkput.job.subscriber import Subscriber

if TYPE_CHECKING:
    from bulkput.commands.progress import ProgressDisplay
    from bulkput.job.counting import SourceCount, SourceCounter
    from bulkput.job.report import ReportWriter
    from bulkput.job.run import ConcurrencyState, JobControl
    from bulkput.job.shard import ShardRun
    from bulkput.remote.target import Target

# Results that stand for "not sent because the job aborted": counted and reported, but not
# printed one line each (the one abort message says why). An interrupt's objects are
# not_started or interrupted, never failed: the summary counts them.
_STOPPED_CODES = frozenset(("JobAborted",))


class JobOutput:
    """The subscribers of one ``put`` or ``sync`` job, in the order they hear of each result:
    a failed counting pass first (it aborts the summary before the others see it), then the
    progress display (each failure and warning printed once), the object lines, the report.

    ``counter``: the job's input read a second time for the totals (None: no totals shown);
    ``control.aborted``: the error that stopped the job, if any. :meth:`start` once the event loop
    runs, :meth:`close` on every exit path (the terminal put back, the report closed)."""

    def __init__(
        self,
        args: argparse.Namespace,
        target: Target,
        control: JobControl,
        *,
        counter: SourceCounter | None = None,
        shard_run: ShardRun | None = None,
    ) -> None:
        from bulkput.commands.object_lines import object_lines_for
        from bulkput.job.counting import CountingPassFailure

        self.control = control
        self.counter = counter
        self.display = progress_subscriber(
            args, lambda: control.aborted,
            totals=None if counter is None else counter.count, concurrency=control.concurrency,
        )  # fmt: skip
        subscribers: list[Subscriber] = [] if counter is None else [CountingPassFailure(counter)]
        subscribers.append(self.display)
        if (lines := object_lines_for(args, target)) is not None:
            subscribers.append(lines)
        self.report = open_report(args.report, shard_run, self.display) if args.report else None
        if self.report is not None:
            subscribers.append(self.report)
        self.subscribers: tuple[Subscriber, ...] = tuple(subscribers)

    def start(self) -> None:
        """Start the counting pass (its failure aborts the job through ``control``)."""
        if self.counter is not None:
            loop = asyncio.get_running_loop()
            self.counter.start(on_error=self.control.abort_from_thread(loop))

    def close(self) -> None:
        if self.counter is not None:
            self.counter.stop()
        self.display.close()  # whatever happened: the terminal put back
        if self.report is not None:
            self.report.close()


class FailurePrinter(Subscriber):
    """``--quiet`` / ``--progress none``: no progress, but one line per failed object."""

    def __init__(self, aborted: Callable[[], BulkputError | None], limit: int = 200) -> None:
        from bulkput.commands.progress import FailureLines

        self.aborted = aborted
        self.lines = FailureLines(limit)

    def on_result(self, result: ObjectResult) -> None:
        from bulkput.commands.progress import is_warning

        if (
            result.status is Status.FAILED and not explained_by_stop(result, self.aborted())
        ) or is_warning(result):
            line = self.lines.line_for(result)
            if line is not None:
                sys.stderr.write(line + "\n")

    def close(self) -> None:
        """Nothing to put back (no display)."""


def explained_by_stop(result: ObjectResult, aborted: BulkputError | None) -> bool:
    """True for the results the one abort or interrupt message already explains (objects only
    stopped by it, and the object that met the fatal error): the report has them all."""
    if result.error_code in _STOPPED_CODES:
        return True
    return aborted is not None and result.error_code == aborted.code


def progress_subscriber(
    args: argparse.Namespace,
    aborted: Callable[[], BulkputError | None],
    *,
    totals: Callable[[], SourceCount] | None = None,
    concurrency: Callable[[], ConcurrencyState | None] | None = None,
) -> ProgressDisplay | FailurePrinter:
    """What ``--progress`` and ``--quiet`` ask for; ``aborted()`` is the error that stopped
    the job, if any; ``totals`` the job's count, ``concurrency`` its requests in flight.
    Close it on every exit path (it puts the terminal back)."""
    from bulkput.commands.progress import PROGRESS_MODES, ProgressDisplay

    mode = "none" if args.quiet else args.progress
    if mode == "none":
        return FailurePrinter(aborted)
    return ProgressDisplay(
        sys.stderr,
        mode=PROGRESS_MODES[mode],
        interval=args.progress_interval,
        explained=lambda result: explained_by_stop(result, aborted()),
        totals=totals,
        concurrency=concurrency,
    )


def open_report(
    path: str, shard_run: ShardRun | None = None, display: Subscriber | None = None
) -> ReportWriter:
    """The ``--report`` writer; a file that cannot be created is a usage error. ``-`` on the
    terminal of ``display``'s live bar prints above the bar."""
    from bulkput.commands.progress import report_stdout
    from bulkput.job.report import ReportWriter

    stdout = report_stdout(display) if display is not None and path == "-" else None
    try:
        return ReportWriter(path, shard_run=shard_run, stdout=stdout)
    except OSError as exc:
        raise UsageError(f"--report {path}: {exc.strerror or exc}") from None
