"""Where the engine reads the next batch of small files: on the event loop's thread, or in a
reader thread.

Handing a batch to a thread costs more than reading it when the files are small and in the
page cache: the loop wakes for the result, and while the thread opens, reads and hashes, the
two threads take the interpreter lock from each other at every system call and every MD5 of
2 KiB or more. Measured on 5,000 files of 4 KiB to ``rclone serve s3``: client CPU 1.92-2.27 s
read on the loop against 2.13-3.08 s in threads (4 pairs, each pair won by the loop).

A slow file system (a network mount, a cold disk) would stall every request in flight while
the loop waits on it, and a large body would stall it while it is hashed, so the loop reads a
batch only while batches are quick and their bodies small; otherwise reader threads take over
for a while, and the loop tries again later (the files may have been slow only at first).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# A body larger than this is read and hashed in a thread (an MD5 of 64 KiB is ~0.1 ms).
INLINE_BODY_LIMIT = 64 * 1024
# Loop time one batch read inline may take; reading stops at the first file past it.
INLINE_BATCH_SECONDS = 0.004
# Batches read in threads after an inline batch stopped early, before the loop tries again;
# doubled at each stop until a batch is read whole (storage that stays slow is tried less and
# less often: each try holds the loop for a slow file or two), up to the most.
THREADED_BATCHES_AFTER_A_STOP = 8
MOST_THREADED_BATCHES_AFTER_A_STOP = 1024


class InlineBatch(Enum):
    """How a batch read on the loop's thread ended."""

    WHOLE = "whole"  # every item read, within the time
    LARGE_BODY = "large-body"  # stopped before a body over INLINE_BODY_LIMIT
    OUT_OF_TIME = "out-of-time"  # stopped after INLINE_BATCH_SECONDS


@dataclass(slots=True)
class ReadPlacement:
    """Decides, batch after batch, whether the loop reads the next batch itself.

    ``inline()`` answers for the next batch; ``record_inline(outcome)`` tells it how a batch
    read inline ended; ``record_threaded()`` counts a batch read in a thread.

    ===========================================  ==============================================
    what happened last                           the next batch
    ===========================================  ==============================================
    nothing yet (the job's first batch)          inline
    an inline batch ended ``WHOLE``              inline
    an inline batch stopped at a ``LARGE_BODY``  in a thread, and so are the next ones: a
                                                 stretch of ``threaded_after_stop`` batches,
                                                 twice as long as the last stretch if no batch
                                                 was read whole since (at most
                                                 ``most_threaded_after_stop``)
    ``OUT_OF_TIME``, the first in a row          inline (one slow file: the machine paused the
                                                 loop, or a first-time setup; not slow storage)
    ``OUT_OF_TIME`` twice in a row               as for ``LARGE_BODY``
    the stretch of threaded batches has ended    inline again (one more try)
    placement switched off (``enabled=False``)   in a thread, always
    ===========================================  ==============================================
    """

    enabled: bool = True
    threaded_after_stop: int = THREADED_BATCHES_AFTER_A_STOP
    most_threaded_after_stop: int = MOST_THREADED_BATCHES_AFTER_A_STOP
    _threaded_left: int = 0
    _out_of_time: bool = False  # the last inline batch ran out of time
    _stretch: int = 0  # threaded batches after the next stop (0: threaded_after_stop)

    def inline(self) -> bool:
        return self.enabled and self._threaded_left == 0

    def record_inline(self, outcome: InlineBatch) -> None:
        if outcome is InlineBatch.WHOLE:
            self._out_of_time = False
            self._stretch = 0
            return
        slow_again = outcome is InlineBatch.OUT_OF_TIME and self._out_of_time
        if outcome is InlineBatch.LARGE_BODY or slow_again:
            stretch = self._stretch or self.threaded_after_stop
            self._threaded_left = stretch
            self._stretch = min(2 * stretch, self.most_threaded_after_stop)
        self._out_of_time = outcome is InlineBatch.OUT_OF_TIME and not slow_again

    def record_threaded(self) -> None:
        if self._threaded_left > 0:
            self._threaded_left -= 1
