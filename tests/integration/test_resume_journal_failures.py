"""When the journal cannot be written: an unwritable state directory stops the job before its
first upload (exit 3); a journal that fails mid-job (a full disk) stops the job cleanly, and
exactly the objects whose record was committed are reported stored (the server holds them);
a damaged journal is one line and exit 3, never a traceback."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.config import TransferConfig
from bulkput.errors import JournalError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.engine import Engine
from bulkput.job.journal import Journal
from bulkput.job.subscriber import Subscriber
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle

BUCKET = "journal-bucket"
FILES = 400


@pytest.fixture
def server(bulkput_server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    # 5 ms per PUT spreads the job over several journal batches.
    return bulkput_server_factory(
        buckets=[BUCKET], faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=5)
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for n in range(FILES):
        (root / f"file-{n:04d}-{'x' * 150}.txt").write_bytes(os.urandom(64 + n))
    return root


def put(
    server: ServerHandle, tree: Path, state: Path, report: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "bulkput", "put", str(tree), f"s3://{BUCKET}/job/",
            "--endpoint", server.endpoint_url,
            "--concurrency", "8",
            "--state-dir", str(state),
            "--report", str(report),
            "--progress", "none",
        ],
        env={**os.environ, **server.env("s3")},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def stored_on_server(server: ServerHandle, tree: Path, keys: set[str]) -> None:
    """Every key given is stored, byte-exact."""
    import asyncio

    async def check() -> None:
        _t, store = await open_destination(
            f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
        )
        try:
            for key in sorted(keys):
                data = await store.get_object(key)
                assert data == (tree / key.removeprefix("job/")).read_bytes(), key
        finally:
            await store.close()

    asyncio.run(check())


def test_unwritable_state_dir_stops_before_any_upload(
    server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the state directory should be")
    state = blocker / "state"
    done = put(server, tree, state, tmp_path / "report.jsonl")
    assert done.returncode == 3
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and str(state) in errors[0], done.stderr
    assert server.stats.count("PutObject") == 0


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tiny tmpfs")
def test_full_disk_for_the_journal_stops_the_job_cleanly(
    server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "tiny"
    state.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(state)]).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        report = tmp_path / "report.jsonl"
        done = put(server, tree, state, report)
        assert done.returncode == 3, done.stderr
        assert "journal" in done.stderr and ("full" in done.stderr or "space" in done.stderr)
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        summary = lines[-1]["summary"]
        assert summary["aborted"] and "journal" in summary["aborted"]
        reported = {line["key"] for line in lines[:-1] if line["status"] == "stored"}
        # Only objects whose journal record was committed are reported stored (those the
        # server confirmed after the disk filled are not: the next run sends them again). How
        # many batches fit before the disk filled depends on the machine's speed (none, at
        # times: the first batch can be the one that fills it).
        assert len(reported) < FILES
        assert summary["stored"] == len(reported)
        not_journaled = [
            line for line in lines[:-1]
            if line["status"] == "failed" and "journal record was not written" in line.get("message", "")
        ]  # fmt: skip
        assert not_journaled and all(line["error_code"] == "JobAborted" for line in not_journaled)
        sent = {line["key"] for line in not_journaled}
        (journal_file,) = state.glob("*.sqlite")
        with sqlite3.connect(f"file:{journal_file}?mode=ro", uri=True) as connection:
            journaled = {bytes(k).decode() for (k,) in connection.execute("SELECT key FROM stored")}
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)
    # Reported stored is exactly what the journal committed (what a resumed run skips), and
    # the server holds all of it, byte-exact.
    assert journaled == reported and len(journaled) < FILES  # the disk filled part way
    # "sent, but not journaled" is true as well: the server holds those objects too
    stored_on_server(server, tree, reported | sent)


async def test_injected_journal_failure_mid_job(
    server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    batches = 0
    lock = threading.Lock()

    def disk() -> None:
        nonlocal batches
        with lock:
            batches += 1
            if batches >= 3:
                raise OSError(28, "No space left on device")

    journal = Journal.open(tmp_path / "state", "job", batch_size=20, write_fault=disk)
    results: list[ObjectResult] = []

    class Collect(Subscriber):
        def on_result(self, result: ObjectResult) -> None:
            results.append(result)

    _t, store = await open_destination(
        f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
    )
    items = [UploadItem(path=str(path), key=f"job/{path.name}") for path in sorted(tree.iterdir())]
    try:
        engine = Engine(
            store, TransferConfig(concurrency=8), journal=journal, subscribers=[Collect()]
        )
        summary = await engine.run(items)
    finally:
        await store.close()
    with pytest.raises(JournalError):
        journal.close()
    assert summary.exit_code == 3
    assert summary.aborted is not None and "No space left" in summary.aborted
    stored = {r.key for r in results if r.status is Status.STORED}
    assert 0 < len(stored) < FILES
    with sqlite3.connect(journal.path) as connection:
        journaled = {bytes(k).decode() for (k,) in connection.execute("SELECT key FROM stored")}
    # Two batches committed, then the disk "filled": exactly those objects are reported stored;
    # the ones the server confirmed afterwards are reported not journaled, never stored.
    assert stored == journaled
    not_journaled = {
        r.key for r in results
        if r.status is Status.FAILED and r.message and "journal record was not written" in r.message
    }  # fmt: skip
    assert not_journaled and not_journaled.isdisjoint(stored)
    # Every result says what happened: nothing vanished from the report.
    assert len(results) <= FILES
    await _check_async(server, tree, stored)


async def _check_async(server: ServerHandle, tree: Path, keys: set[str]) -> None:
    _t, store = await open_destination(
        f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
    )
    try:
        for key in sorted(keys):
            assert await store.get_object(key) == (tree / key.removeprefix("job/")).read_bytes()
    finally:
        await store.close()
