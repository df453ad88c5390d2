"""An exception no part of bulkput raises on purpose (a bug, a broken store double, a subscriber
that raises) ends the job aborted, exit 3, with the part named: never exit 0 with work left
undone. Sync and the engine against in-memory stores; the counting pass; the journal's writer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkput.errors import BulkputError, UnexpectedError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.counting import SourceCounter
from bulkput.job.engine import Engine
from bulkput.job.journal import Journal
from bulkput.job.run import JobControl, build_engine
from bulkput.job.sync.strategies import Checksum
from tests.unit.test_sync_run import FAST, MemoryStore, Results, run_sync, write

# --- sync --------------------------------------------------------------------------------------


class ListingBreaks(MemoryStore):
    """Lists one object, then raises what no store raises on purpose."""

    broken = True

    async def list_objects(self, prefix: str, page_size: int = 1000, *, start_after=None):  # type: ignore[no-untyped-def]
        async for info in super().list_objects(prefix, page_size, start_after=start_after):
            yield info
            if self.broken:
                raise TypeError("listing double broke")


async def test_a_listing_that_raises_a_non_bulkput_error_aborts_the_sync_exit_3(tmp_path: Path) -> None:
    store = ListingBreaks()
    store.broken = False
    for key in ("dst/a", "dst/gone1", "dst/gone2"):
        store.objects[key] = (b"x", {}, store.now.isoformat())
    src = tmp_path / "src"
    for name in ("a", "b", "c"):
        write(src, name, b"local " + name.encode())
    store.broken = True

    summary, results, _ = await run_sync(store, src, delete=True)

    assert summary.exit_code == 3
    assert summary.aborted is not None
    assert summary.aborted.startswith("unexpected TypeError in the destination listing (at ")
    assert "listing double broke" in summary.aborted
    assert store.delete_requests == []  # a plan cut short deletes nothing
    assert {"dst/gone1", "dst/gone2"} <= set(store.objects)
    assert results.by_status(Status.DELETED) == []


async def test_a_resolver_that_raises_a_non_bulkput_error_aborts_the_sync_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MemoryStore()
    src = tmp_path / "src"
    for name in ("a", "b"):
        write(src, name, name.encode() * 10)
    first, _, _ = await run_sync(store, src)
    assert first.exit_code == 0 and len(store.objects) == 2
    write(src, "a", b"A" * 10)  # same size: --checksum must hash it to tell

    def broken_md5(*_args: object) -> None:
        raise TypeError("digest double broke")

    monkeypatch.setattr("bulkput.job.sync.run.md5_file", broken_md5)
    summary, _, _ = await run_sync(store, src, strategy=Checksum())

    assert summary.exit_code == 3
    assert summary.aborted is not None
    assert summary.aborted.startswith("unexpected TypeError in comparing files with the store")
    assert store.objects["dst/a"][0] == b"a" * 10  # not replaced: nothing claims it was


# --- the engine --------------------------------------------------------------------------------


class PutBreaks(MemoryStore):
    async def put_object(self, key, body, *, content_md5, headers):  # type: ignore[no-untyped-def]
        raise TypeError("store double broke")


def items_in(root: Path, count: int) -> list[UploadItem]:
    for n in range(count):
        write(root, f"f{n}", b"data %d" % n)
    return [UploadItem(str(root / f"f{n}"), f"k/f{n}") for n in range(count)]


async def test_a_store_that_raises_a_non_bulkput_error_aborts_the_job(tmp_path: Path) -> None:
    results = Results()
    engine = Engine(PutBreaks(), FAST, subscribers=[results])
    summary = await asyncio.wait_for(engine.run(items_in(tmp_path, 20)), 30)
    assert summary.exit_code == 3
    assert summary.stored == 0
    assert summary.aborted is not None
    assert summary.aborted.startswith("unexpected TypeError in sending objects (at ")
    assert isinstance(engine.aborted, UnexpectedError)
    assert isinstance(engine.aborted.__cause__, TypeError)


async def test_an_input_that_raises_a_non_bulkput_error_aborts_the_job(tmp_path: Path) -> None:
    listed = items_in(tmp_path, 3)

    def manifest() -> Iterator[UploadItem]:  # a manifest reader that breaks after 3 lines
        yield from listed
        raise TypeError("reader double broke")

    store = MemoryStore()
    summary = await Engine(store, FAST).run(manifest())
    assert summary.exit_code == 3
    assert summary.aborted is not None
    assert summary.aborted.startswith("unexpected TypeError in reading the input")


class RaisesOnResult(Results):
    """Raises at its first result (one that raises every time is raised from ``run``)."""

    def on_result(self, result: ObjectResult) -> None:
        super().on_result(result)
        if len(self.results) == 1:
            raise RuntimeError("subscriber broke")


async def test_a_subscriber_that_raises_aborts_the_job(tmp_path: Path) -> None:
    store = MemoryStore()
    summary = await asyncio.wait_for(
        Engine(store, FAST, subscribers=[RaisesOnResult()]).run(items_in(tmp_path, 10)), 30
    )
    assert summary.exit_code == 3
    assert summary.aborted is not None and "RuntimeError" in summary.aborted


async def test_an_abort_before_the_engine_starts_sends_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    control = JobControl()
    control.abort(UnexpectedError("the counting pass", TypeError("counter broke")))
    engine = build_engine(store, FAST, control=control)
    summary = await engine.run(items_in(tmp_path, 5))
    assert summary.exit_code == 3 and store.puts == []
    assert summary.aborted is not None and summary.aborted.startswith("unexpected TypeError in the counting pass")


# --- the counting pass and the journal ---------------------------------------------------------


def test_a_counting_pass_that_raises_tells_on_error_once() -> None:
    def entries() -> Iterator[UploadItem]:
        yield UploadItem("/nowhere/a", "a", size=1)
        raise TypeError("walk double broke")

    told: list[BulkputError] = []
    counter = SourceCounter(entries()).start(on_error=told.append)
    count = counter.wait(10)
    assert not count.complete and count.objects == 1
    assert len(told) == 1 and told[0] is counter.error
    assert told[0].one_line().startswith("unexpected TypeError in the counting pass")


async def test_a_journal_writer_that_raises_stops_the_job_instead_of_hanging(tmp_path: Path) -> None:
    def broken() -> None:
        raise TypeError("disk double broke")

    journal = Journal.open(tmp_path / "state", "job", batch_size=1, write_fault=broken)
    store = MemoryStore()
    try:
        summary = await asyncio.wait_for(Engine(store, FAST, journal=journal).run(items_in(tmp_path / "d", 4)), 30)
    finally:
        with pytest.raises(BulkputError):
            journal.close()
    assert summary.exit_code == 3
    assert summary.aborted is not None
    assert "unexpected TypeError in the journal's writer" in summary.aborted
    assert summary.stored == 0  # confirmed by the store, but no record: not reported stored
