"""The totals of a ``put`` or ``sync`` job, counted while it runs: a second streaming read of
the same source, in a thread of its own, so the progress display can show %, rate and ETA.

:class:`SourceCounter` walks the same folders with the same filters (or reads the same
manifest) as the upload, one entry at a time, and keeps only two numbers: the objects the job
will report (each file or manifest line the shard owns, and each entry that becomes an error
line: a bad manifest line, a link not followed) and their bytes (a walk knows each size; a
manifest line's file is ``stat``-ed, 0 when it cannot be). A sync's count is its walk's
files (each one ends uploaded, skipped or failed), not the deletes. Until the read ends,
:meth:`SourceCounter.count` is what was counted so far (``complete`` False). Standard input
can be read only once: a manifest from ``-`` is not counted (``known`` False).

The count runs ahead of the upload and never holds the listing: memory is the same for ten
files or ten million. ``stop()`` ends it early (the job ended first); the thread is a daemon,
so a slow walk never keeps the process alive.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bulkput.errors import BulkputError, UnexpectedError
from bulkput.items import UploadItem
from bulkput.job.subscriber import Subscriber

if TYPE_CHECKING:
    from bulkput.job.shard import Shard
    from bulkput.job.spec import JobSpec, PutSource
    from bulkput.job.summary import JobSummary
    from bulkput.job.sync.run import SyncOptions
    from bulkput.local.walk import WalkOptions

# Publish the figures after this many entries (and at the end): readers see a fresh count
# without a lock taken per entry.
_PUBLISH_EVERY = 256


@dataclass(frozen=True, slots=True)
class SourceCount:
    """What the counting read found so far. ``complete``: the read ended, the figures are the
    job's totals. ``known`` False: the source cannot be counted (standard input)."""

    objects: int = 0
    bytes: int = 0
    complete: bool = False
    known: bool = True


class SourceCounter:
    """Counts ``entries`` (a fresh iterator over the job's input) in a daemon thread; entries
    of keys ``shard`` does not own are not counted, as the engine does not report them."""

    def __init__(
        self, entries: Iterator[UploadItem | BulkputError] | None, shard: Shard | None = None
    ) -> None:
        self._entries = entries
        self._shard = shard if shard is not None and shard.count > 1 else None
        self._count = SourceCount(known=entries is not None)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        # An exception the read did not expect (a bug): kept, and told to ``on_error``.
        self.error: UnexpectedError | None = None
        self._on_error: Callable[[UnexpectedError], None] | None = None

    @classmethod
    def for_put(cls, spec: JobSpec, source: PutSource) -> SourceCounter:
        """The counter of ``put``'s source: the same walk or manifest read as the upload."""
        if source.manifest == "-":
            return cls(None)
        return cls(source.items(spec.target, spec.filters), spec.shard)

    @classmethod
    def for_sync(cls, source_dir: str, prefix: str, options: SyncOptions) -> SourceCounter:
        """The counter of ``sync``'s source: the same walk (filters, links, names) as the sync,
        under the keys it plans (``prefix`` + the file's relative key)."""
        from bulkput.job.sync.run import sync_prefix
        from bulkput.local.walk import WalkOptions

        walk = WalkOptions(
            follow_symlinks=options.follow_symlinks,
            normalize=options.normalize,
            filter=options.filter,
            sort_memory_entries=options.sort_memory_entries,
            temp_dir=options.temp_dir,
        )
        return cls(_walked_items(source_dir, sync_prefix(prefix), walk), options.shard)

    def count(self) -> SourceCount:
        """The figures so far (safe from any thread)."""
        return self._count

    def start(self, on_error: Callable[[UnexpectedError], None] | None = None) -> SourceCounter:
        """Count in a daemon thread; ``on_error`` is called from that thread if the read
        raises what no part of bulkput raises on purpose (the job should stop: the same read
        feeds the upload)."""
        self._on_error = on_error
        if self._entries is not None and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="bulkput-count", daemon=True
            )
            self._thread.start()
        return self

    def wait(self, timeout: float | None = None) -> SourceCount:
        """The figures once the thread ended (or ``timeout`` passed)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self._count

    def stop(self) -> None:
        """Stop counting (the job ended); the count stays incomplete if it had not ended."""
        self._stopping.set()

    def run(self) -> SourceCount:
        """Count in the calling thread, to the end (or until ``stop``)."""
        self._run()
        return self._count

    def _run(self) -> None:
        entries = self._entries
        if entries is None:
            return
        objects = total = since = 0
        shard = self._shard
        stopping = self._stopping
        complete = False
        try:
            for entry in entries:
                if stopping.is_set():
                    break
                if isinstance(entry, UploadItem):
                    if shard is not None and not shard.owns(entry.key):
                        continue
                    objects += 1
                    total += entry.size if entry.size is not None else _size_of(entry.path)
                else:  # an error line: the engine reports it as one object
                    objects += 1
                since += 1
                if since >= _PUBLISH_EVERY:
                    since = 0
                    self._count = SourceCount(objects, total)
            else:
                complete = True
        except (BulkputError, OSError):
            pass  # the upload's own read reports what went wrong; the count stays partial
        except Exception as error:  # a bug: told, never a thread's traceback
            self.error = UnexpectedError.during("the counting pass", error)
            if self._on_error is not None:
                self._on_error(self.error)
        finally:
            if isinstance(entries, Generator):  # its file (a manifest) closed now
                entries.close()
            self._count = SourceCount(objects, total, complete=complete)


class CountingPassFailure(Subscriber):
    """Ends the job aborted (exit 3) when its counting pass failed, even when the pass's abort
    reached the loop after the last object (a short job). It acts in ``on_done``, before the
    subscribers after it see the summary, so the report's summary line, the printed summary
    and the exit code all say the same: put it first among the job's subscribers."""

    def __init__(self, counter: SourceCounter) -> None:
        self._counter = counter

    def on_done(self, summary: JobSummary) -> None:
        error = self._counter.error
        if error is not None and summary.aborted is None and not summary.interrupted:
            summary.aborted = error.one_line()


def _walked_items(
    source_dir: str, prefix: str, options: WalkOptions
) -> Iterator[UploadItem | BulkputError]:
    from bulkput.local.walk import WalkEntry, walk_tree

    for entry in walk_tree(source_dir, options):
        if isinstance(entry, WalkEntry):
            yield UploadItem(path=entry.path, key=prefix + entry.key, size=entry.size)
        elif isinstance(entry, BulkputError):
            yield entry


def _size_of(path: str) -> int:
    try:
        return os.stat(path).st_size
    except (OSError, ValueError):  # missing (its own error line), or a NUL in the name
        return 0
