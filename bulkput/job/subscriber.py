"""What a job tells the outside world: the one subscriber interface (as s3transfer's
``BaseSubscriber``).

The engine calls every hook of every subscriber, from the event loop's thread, in this order:
``on_start`` once, then ``on_result`` once per object (and ``on_bytes`` / ``on_retry`` as bytes
are confirmed and requests retried), then ``on_done`` once. Every hook does nothing here:
subclass :class:`Subscriber` and override what you need. A subscriber must return quickly (it
runs on the loop's thread) and must not raise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bulkput.errors import BulkputError
    from bulkput.items import ObjectResult
    from bulkput.job.summary import JobSummary


class Subscriber:
    """Base class of everything the engine reports to. Every hook is a no-op by default."""

    def on_start(self, total_objects: int | None, total_bytes: int | None) -> None:
        """The job starts; the totals when the caller knows them, else None."""

    def on_result(self, result: ObjectResult) -> None:
        """One object's outcome (stored, skipped, failed, planned), once per object. A stored
        result comes only after the store confirmed the object and the journal committed it."""

    def on_bytes(self, n: int) -> None:
        """``n`` more bytes confirmed by the store (a whole object, or one multipart part)."""

    def on_retry(self, key: str, error: BulkputError) -> None:
        """A request of ``key`` failed with ``error`` and will be tried again."""

    def on_done(self, summary: JobSummary) -> None:
        """The job ended; ``summary`` is what ``Engine.run`` returns."""
