"""Trust but verify: before a resumed job skips objects on its journal's word, the store confirms
them.

An earlier run recorded each object it stored (size, MD5, the ETag the store answered). Since,
the store may have lost some: a memory store restarted, ``aws s3 rm``, a lifecycle rule. So on
resume, one streaming listing of the job's prefix is merge-joined with the journal's stored rows
(both in UTF-8 byte order of keys; neither side is held in memory beyond a page), and every row
the store does not confirm is forgotten, so the engine sends that object again.

Decision for one journal row (``confirm``)::

    listed?  listed size = recorded   listed ETag = recorded ETag or MD5   ->  outcome
    no       -                        -                                    ->  missing (sent again)
    yes      no                       -                                    ->  changed (sent again)
    yes      yes                      no                                   ->  changed (sent again)
    yes      yes                      yes                                  ->  confirmed (skipped)

ETags are compared without quotes and case; a multipart object's ETag (``...-N``) matches the
ETag recorded when its upload completed. A store that refuses the listing stops the job (exit 3)
with the way out: ``--no-verify-resume`` trusts the journal without listing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from bulkput.config import RetryPolicy
from bulkput.errors import AuthError, JournalError
from bulkput.job.journal import Journal, StoredRecord, StoreIdentity
from bulkput.job.listing.join import join_listing
from bulkput.job.listing.pages import listing_chunks
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.remote.retry import Retrier
from bulkput.remote.store import ObjectInfo, ObjectStore
from bulkput.remote.target import Target

if TYPE_CHECKING:
    from bulkput.remote.client import HttpObjectStore

log = logging.getLogger("bulkput.resume")

FORGET_BATCH = 500
EXAMPLES = 5


def store_identity(store: HttpObjectStore, target: Target) -> StoreIdentity:
    """The store half of a job's identity, from the store the job opened."""
    return StoreIdentity.of(store.dialect_name, store.endpoint, target, store.principal)


class Outcome(str, Enum):
    CONFIRMED = "confirmed"
    MISSING = "missing"
    CHANGED = "changed"


def _etag(text: str | None) -> str | None:
    return text.strip().strip('"').lower() if text else None


def confirm(record: StoredRecord, listed: ObjectInfo | None) -> Outcome:
    """One journal row against what the listing says of its key (the module's truth table)."""
    if listed is None:
        return Outcome.MISSING
    if listed.size != record.size:
        return Outcome.CHANGED
    etag = _etag(listed.etag)
    if etag is None or etag not in (_etag(record.etag), _etag(record.md5)):
        return Outcome.CHANGED
    return Outcome.CONFIRMED


@dataclass(slots=True)
class ResumeCheck:
    """What the check found: rows the journal held, and how many the store confirmed."""

    recorded: int = 0
    confirmed: int = 0
    missing: int = 0
    changed: int = 0
    examples: list[str] = field(default_factory=list)  # a few keys sent again

    @property
    def resent(self) -> int:
        return self.missing + self.changed

    def line(self, prefix: str) -> str:
        """One line for people (``-v`` and the summary)."""
        text = (
            f"resume checked against the store (listing {prefix or '/'!r}): "
            f"{self.confirmed:,} of {self.recorded:,} journaled objects present as recorded"
        )
        if self.resent:
            text += f"; {self.missing:,} missing and {self.changed:,} changed are sent again"
            if self.examples:
                text += " (e.g. " + ", ".join(repr(key) for key in self.examples) + ")"
        return text


async def verify_resume(
    journal: Journal,
    store: ObjectStore,
    prefix: str,
    *,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    page_size: int = 1000,
) -> ResumeCheck:
    """Merge-join the journal's stored rows with one listing of ``prefix``
    (:func:`~bulkput.job.listing.join.join_listing`, each listing chunk under the retry policy);
    forget the rows the store does not confirm (committed before this returns). A job's rows
    are all under its prefix, so listed objects with no row are simply passed over.

    Raises the listing's error when it fails (an :class:`AuthError` says to use
    ``--no-verify-resume``), :class:`~bulkput.errors.ListingOrderError` when the store does not
    list in key order, or the journal's :class:`JournalError`.
    """
    check = ResumeCheck()
    forget: list[str] = []
    rows = _JournalRows(journal, page_size)
    listing = _listing(store, prefix, retry or RetryPolicy(), sleep, page_size)
    joined_keys = join_listing(rows, listing, key=_record_key)
    try:
        async for joined in joined_keys:
            record = joined.local
            if record is None:
                if rows.done:
                    break  # every row is checked: the rest of the listing is not ours to read
                continue  # an object no run of this job recorded
            check.recorded += 1
            outcome = confirm(record, joined.remote)
            if outcome is Outcome.CONFIRMED:
                check.confirmed += 1
                continue
            if outcome is Outcome.MISSING:
                check.missing += 1
            else:
                check.changed += 1
            if len(check.examples) < EXAMPLES:
                check.examples.append(record.key)
            forget.append(record.key)
            if len(forget) >= FORGET_BATCH:
                journal.forget_stored(forget)
                forget = []
    except AuthError as error:
        raise error.reworded(
            f"listing {prefix or '/'!r} to check the journal before resuming was refused"
            f" ({error.code}): run with --no-verify-resume to trust the journal without listing"
        ) from None
    finally:
        await joined_keys.aclose()
    if forget:
        journal.forget_stored(forget)
    await asyncio.get_running_loop().run_in_executor(None, journal.flush)
    log.info("%s", check.line(prefix))
    return check


def _record_key(record: StoredRecord) -> str:
    return record.key


class _JournalRows:
    """The journal's stored rows in key order, a page at a time (read in a thread); ``done``
    once the last row was handed out."""

    def __init__(self, journal: Journal, page_size: int) -> None:
        self.journal = journal
        self.page_size = page_size
        self.done = False

    async def __aiter__(self) -> AsyncIterator[StoredRecord]:
        loop = asyncio.get_running_loop()
        after: str | None = None
        while True:
            page = await loop.run_in_executor(None, self.journal.stored_page, after, self.page_size)
            if not page:
                self.done = True
                return
            for record in page:
                yield record
            after = page[-1].key


async def _listing(
    store: ObjectStore,
    prefix: str,
    retry: RetryPolicy,
    sleep: Callable[[float], Awaitable[object]],
    chunk_size: int,
) -> AsyncIterator[ObjectInfo]:
    """The listing of ``prefix`` in key order, each chunk under the retry policy."""
    async for chunk in listing_chunks(store, prefix, Retrier(retry, sleep=sleep), chunk_size=chunk_size):
        for info in chunk:
            yield info


# --- a job's journal, from opening to the end of the run -----------------------------------


class JournalNotes(Subscriber):
    """Writes the journal's path and this run's notes into the job's summary. List it before the
    report writer: subscribers see ``on_done`` in order, so the report's summary line has them."""

    def __init__(self, journal: Journal) -> None:
        self.path = str(journal.path)
        self.notes: list[str] = []

    def on_done(self, summary: JobSummary) -> None:
        summary.journal = self.path
        summary.journal_notes.extend(self.notes)


async def start_resume(
    journal: Journal,
    store: ObjectStore,
    prefix: str,
    *,
    verify: bool = True,
    retry: RetryPolicy | None = None,
    store_resume: bool = False,
) -> JournalNotes:
    """What a job does with its journal before the first upload: say when a completed job is
    uploaded again, and check a resume against the store (unless ``verify`` is off, or
    ``store_resume``: the job's own listing confirms each journal skip,
    :mod:`bulkput.job.store_resume`)."""
    notes = JournalNotes(journal)
    if journal.renewed is not None:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(journal.renewed))
        notes.notes.append(
            f"the last run of this job completed at {when}: this run uploads every object"
            " again (put copies; sync skips unchanged files)"
        )
    elif journal.stored_before_open:
        if store_resume:
            notes.notes.append(
                "resume from the store: an object the journal records is skipped only where"
                " the listing shows it stored with the MD5 recorded"
            )
        elif verify:
            check = await verify_resume(journal, store, prefix, retry=retry)
            notes.notes.append(check.line(prefix))
        else:
            notes.notes.append(
                "resume not checked against the store (--no-verify-resume): the objects the"
                " journal records are skipped on its word"
            )
    log.info("journal %s", notes.path)
    for note in notes.notes:
        log.info("journal: %s", note)
    return notes


async def finish_journal(journal: Journal, summary: JobSummary) -> None:
    """After the run: a job that stored every object marks its journal complete, so the next
    run of the same command is a new upload rather than a resume of a finished one."""
    if summary.exit_code != 0:
        return
    try:
        await asyncio.get_running_loop().run_in_executor(None, journal.mark_complete)
    except JournalError as error:  # every object is stored: only the next run is affected
        log.warning(
            "%s: the job could not be marked complete; its next run resumes it instead of"
            " uploading again", error.one_line()
        )
