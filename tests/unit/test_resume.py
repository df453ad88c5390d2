"""Trust but verify on resume (bulkput/job/resume.py): the truth table of ``confirm`` (one test
per row), the merge of the journal with a listing, and what a job does with its journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bulkput.config import RetryPolicy
from bulkput.errors import AuthError, ServiceError
from bulkput.job.journal import Journal, StoredRecord
from bulkput.job.resume import (
    Outcome,
    confirm,
    finish_journal,
    start_resume,
    verify_resume,
)
from bulkput.job.summary import JobSummary
from bulkput.remote.store import ObjectInfo

MD5 = "0123456789abcdef0123456789abcdef"
RECORD = StoredRecord("p/a", 10, MD5, f'"{MD5}"')


# --- confirm: one test per row of the module's table ------------------------------------------


def test_not_listed_is_missing() -> None:
    assert confirm(RECORD, None) is Outcome.MISSING


def test_listed_with_another_size_is_changed() -> None:
    assert confirm(RECORD, ObjectInfo("p/a", 11, MD5)) is Outcome.CHANGED


def test_listed_with_the_size_but_another_etag_is_changed() -> None:
    assert confirm(RECORD, ObjectInfo("p/a", 10, "f" * 32)) is Outcome.CHANGED
    assert confirm(RECORD, ObjectInfo("p/a", 10, None)) is Outcome.CHANGED


def test_listed_with_the_size_and_etag_is_confirmed() -> None:
    assert confirm(RECORD, ObjectInfo("p/a", 10, MD5.upper())) is Outcome.CONFIRMED
    # a multipart object: its ETag is not an MD5, the one recorded at completion matches
    multipart = StoredRecord("p/b", 10, MD5, "abc-3")
    assert confirm(multipart, ObjectInfo("p/b", 10, '"ABC-3"')) is Outcome.CONFIRMED
    # a store that answered no ETag at upload: the file's MD5 is what the listing must say
    assert confirm(StoredRecord("p/c", 10, MD5, None), ObjectInfo("p/c", 10, MD5)) is (
        Outcome.CONFIRMED
    )


# --- verify_resume ----------------------------------------------------------------------------


class ListingStore:
    """Lists ``objects`` (sorted by key) in pages of ``page`` objects; ``fail_first`` raises
    that error on the first page request, ``refuse`` on every one."""

    def __init__(
        self,
        objects: list[ObjectInfo],
        *,
        fail_first: Exception | None = None,
        refuse: Exception | None = None,
    ) -> None:
        self.objects = sorted(objects, key=lambda info: info.key)
        self.fail_first = fail_first
        self.refuse = refuse
        self.listings = 0
        self.yielded = 0

    async def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        self.listings += 1
        if self.refuse is not None:
            raise self.refuse
        if self.fail_first is not None:
            error, self.fail_first = self.fail_first, None
            raise error
        for info in self.objects:
            if info.key.startswith(prefix) and (start_after is None or info.key > start_after):
                self.yielded += 1
                yield info


def journal_with(tmp_path: Path, records: dict[str, tuple[int, str]]) -> Journal:
    journal = Journal.open(tmp_path, "job")
    for key, (size, md5) in records.items():
        journal.record_stored(key, size, 1, md5, md5)
    journal.flush()
    return journal


async def no_sleep(_: float) -> None:
    return None


async def test_only_the_rows_the_store_confirms_stay(tmp_path: Path) -> None:
    rows = {f"p/{n:04d}": (n, f"{n:032x}") for n in range(2500)}
    journal = journal_with(tmp_path, rows)
    listed = [
        ObjectInfo(key, size, md5)
        for key, (size, md5) in rows.items()
        if int(key[2:]) % 10  # every tenth object gone from the store
    ]
    listed[5] = ObjectInfo(listed[5].key, listed[5].size + 1, listed[5].etag)  # one changed
    listed.append(ObjectInfo("p/0000-not-ours", 1, "x"))  # an object no run recorded
    store = ListingStore(listed)
    try:
        check = await verify_resume(journal, store, "p/", page_size=300)  # type: ignore[arg-type]
        assert (check.recorded, check.confirmed, check.missing, check.changed) == (
            2500, 2249, 250, 1
        )
        assert check.resent == 251 and check.examples[:2] == ["p/0000", "p/0006"]
        assert journal.stored_count() == 2249
        assert not journal.is_stored("p/0010", 10, 1) and journal.is_stored("p/0011", 11, 1)
        assert not journal.is_stored(listed[5].key, listed[5].size - 1, 1)
        assert "2,249 of 2,500 journaled objects present as recorded" in check.line("p/")
    finally:
        journal.close()


async def test_the_listing_is_not_read_past_the_last_journaled_key(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, {f"p/a{n:03d}": (1, MD5) for n in range(10)})
    others = [ObjectInfo(f"p/z{n:05d}", 1, "x") for n in range(5000)]
    store = ListingStore([ObjectInfo(f"p/a{n:03d}", 1, MD5) for n in range(10)] + others)
    try:
        check = await verify_resume(journal, store, "p/", page_size=100)  # type: ignore[arg-type]
        assert check.confirmed == 10
        assert store.yielded <= 10 + 2 * 100  # a chunk read ahead at most, not 5,010 objects
    finally:
        journal.close()


async def test_a_failed_listing_page_is_retried(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, {"p/a": (1, MD5)})
    store = ListingStore(
        [ObjectInfo("p/a", 1, MD5)],
        fail_first=ServiceError("boom", code="InternalError", status=500, retryable=True),
    )
    try:
        check = await verify_resume(  # type: ignore[arg-type]
            journal, store, "p/", retry=RetryPolicy(max_attempts=3, base_delay=0), sleep=no_sleep
        )
        assert check.confirmed == 1 and store.listings == 2
    finally:
        journal.close()


async def test_a_refused_listing_names_no_verify_resume(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, {"p/a": (1, MD5)})
    store = ListingStore([], refuse=AuthError("denied", code="AccessDenied", status=403))
    try:
        with pytest.raises(AuthError) as raised:
            await verify_resume(journal, store, "p/")  # type: ignore[arg-type]
        assert raised.value.exit_code == 3 or raised.value.fatal_for_job
        assert "--no-verify-resume" in raised.value.one_line()
        assert "AccessDenied" in raised.value.one_line()
        assert journal.stored_count() == 1  # nothing forgotten on a refused listing
    finally:
        journal.close()


# --- start_resume / finish_journal ------------------------------------------------------------


async def test_a_first_run_neither_lists_nor_notes(tmp_path: Path) -> None:
    store = ListingStore([])
    with Journal.open(tmp_path, "job") as journal:
        notes = await start_resume(journal, store, "p/")  # type: ignore[arg-type]
    assert store.listings == 0 and notes.notes == []


async def test_no_verify_resume_lists_nothing_and_says_so(tmp_path: Path) -> None:
    journal_with(tmp_path, {"p/a": (1, MD5)}).close()
    store = ListingStore([])
    with Journal.open(tmp_path, "job") as journal:
        notes = await start_resume(journal, store, "p/", verify=False)  # type: ignore[arg-type]
        assert journal.is_stored("p/a", 1, 1)
    assert store.listings == 0 and "--no-verify-resume" in notes.notes[0]


@pytest.mark.parametrize("exit_code, complete", [(0, True), (1, False), (3, False), (130, False)])
async def test_only_a_job_that_stored_everything_is_marked_complete(
    tmp_path: Path, exit_code: int, complete: bool
) -> None:
    summary: Any = JobSummary(
        failed=int(exit_code == 1), aborted="x" if exit_code == 3 else None,
        interrupted=exit_code == 130,
    )  # fmt: skip
    assert summary.exit_code == exit_code
    journal_with(tmp_path, {"p/a": (1, MD5)}).close()
    with Journal.open(tmp_path, "job") as journal:
        await finish_journal(journal, summary)
    store = ListingStore([ObjectInfo("p/a", 1, MD5)])
    with Journal.open(tmp_path, "job") as journal:
        notes = await start_resume(journal, store, "p/")  # type: ignore[arg-type]
        assert (journal.renewed is not None) is complete
        summary = JobSummary()
        notes.on_done(summary)
    assert summary.journal == str(journal.path)
    if complete:
        assert store.listings == 0 and "uploads every object again" in summary.journal_notes[0]
    else:
        assert store.listings == 1 and "1 of 1 journaled objects present" in summary.journal_notes[0]


# --- who signs, in a job's identity -----------------------------------------------------------


async def test_the_principal_is_the_key_id_or_where_temporary_credentials_come_from() -> None:
    from bulkput.job.resume import store_identity
    from bulkput.remote.client import open_store
    from bulkput.remote.credentials import Credentials, RefreshingCredentials
    from bulkput.remote.target import Target, resolve_endpoint

    target = Target("s3", "b", "p/")
    endpoint = resolve_endpoint(target, "http://127.0.0.1:9000", "us-east-1", "path")
    long_lived = Credentials("AKIDLONG", "secret", source="env AWS_ACCESS_KEY_ID")
    session_one = Credentials("ASIAONE", "s1", "token-1", source="AssumeRole (profile p)")
    session_two = Credentials("ASIATWO", "s2", "token-2", source="AssumeRole (profile p)")
    stores = [
        open_store(target, endpoint=endpoint, credentials=credentials)
        for credentials in (
            long_lived, session_one, RefreshingCredentials(lambda: session_two, first=session_two)
        )
    ]
    try:
        principals = [store.principal for store in stores]
        assert principals == [
            "AKIDLONG",
            "temporary credentials from AssumeRole (profile p)",
            "temporary credentials from AssumeRole (profile p)",
        ]
        # two sessions of the same role are the same job (it resumes); nothing secret in it
        one, two = (store_identity(store, target) for store in stores[1:])
        assert one == two
        assert not {"s1", "s2", "token-1", "token-2", "secret"} & set(repr(one).split("'"))
    finally:
        for store in stores:
            await store.close()
