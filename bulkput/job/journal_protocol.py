"""What a job needs of its journal: the one seam between the engine (and the multipart uploader)
and :class:`bulkput.job.journal.Journal`, the SQLite implementation.

Writes are batched: ``record_*``, ``begin_upload`` and ``end_upload`` return at once, each
adding to ``submitted``; a writer commits them in order and raises ``committed`` to match,
then calls ``commit_listener`` (from its own thread). Reads see committed rows only. The engine
reports an object stored only once ``committed`` has reached the sequence number its record got,
so what the report calls stored is exactly what a resumed run skips.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bulkput.job.journal import UploadRecord
    from bulkput.remote.store import PartInfo


class JobJournal(Protocol):
    """Every journal method the engine and the multipart uploader call."""

    # Called from the writer's thread after each commit; the engine sets it while it runs.
    commit_listener: Callable[[], None] | None

    @property
    def stored_before_open(self) -> bool:
        """Whether an earlier run recorded any stored object (else ``is_stored`` is never
        asked: on a first run every lookup would answer no)."""
        ...

    @property
    def submitted(self) -> int:
        """How many records were handed over so far (a sequence number)."""
        ...

    @property
    def committed(self) -> int:
        """How many of them are committed (durable)."""
        ...

    def is_stored(
        self,
        key: str,
        size: int,
        mtime_ns: int,
        ino: int | None = None,
        ctime_ns: int | None = None,
        *,
        md5_hex: str | None = None,
    ) -> bool:
        """True when a committed record says ``key`` is stored from this file: the same size
        and mtime, and the same inode and ctime when both sides have them; with ``md5_hex``
        (what the store says it holds), the recorded MD5 must be that one."""
        ...

    def record_stored(
        self,
        key: str,
        size: int,
        mtime_ns: int,
        md5_hex: str | None,
        etag: str | None,
        *,
        ino: int | None = None,
        ctime_ns: int | None = None,
    ) -> None:
        """Record an object the store confirmed. Call only after the confirmation; ``ino``
        and ``ctime_ns`` come from the same ``stat`` as size and mtime."""
        ...

    def begin_upload(
        self,
        key: str,
        upload_id: str,
        part_size: int,
        size: int,
        mtime_ns: int,
        md5_hex: str | None = None,
    ) -> None:
        """Record a multipart upload of ``key`` (replacing any older one of that key)."""
        ...

    def record_part(
        self, key: str, upload_id: str, part_number: int, etag: str, size: int | None = None
    ) -> None:
        """Record one part the store confirmed."""
        ...

    def end_upload(self, key: str, upload_id: str) -> None:
        """Forget a multipart upload (completed, aborted, or found gone)."""
        ...

    def upload_for(self, key: str) -> UploadRecord | None:
        """The committed multipart upload of ``key``, if any."""
        ...

    def parts_for(self, key: str, upload_id: str) -> list[PartInfo]:
        """The committed parts of one upload, in part order."""
        ...

    def uploads(self) -> list[UploadRecord]:
        """Every multipart upload the journal holds."""
        ...

    def flush(self, timeout: float | None = None) -> None:
        """Block until every record submitted so far is committed; raise ``JournalError``
        if a write failed."""
        ...
