"""Crash-safe resume: ``bulkput put`` killed with SIGKILL in the middle of many small files and
of a large multipart file, then run again, twice; and SIGTERM leaving the upload for resume.

What is checked is what a user relies on: in the end every object is stored byte-exact, and
nothing confirmed before a kill is sent again: no object the journal had committed, and no part
the server already held (the server's per-key and per-part PUT counters are the witness).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.config import KiB
from bulkput.remote.store import ObjectStore
from bulkput.server.faults import FaultConfig
from bulkput.server.stats import StatsSnapshot
from bulkput.server.testing import ServerHandle

BUCKET = "resume-bucket"
SMALL_FILES = 300
BIG = "big.bin"  # sorts before the small files, so it starts first
BIG_SIZE = 5 * 1024 * KiB + 4321  # 52 parts of 100 KiB (the OSS minimum) with an odd tail
PART = 100 * KiB


@pytest.fixture
def slow_server(bulkput_server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    # Every PUT and part is held 30 ms: slow enough that the job is still running when the
    # test decides to kill it, whatever the machine's speed.
    return bulkput_server_factory(
        buckets=[BUCKET], faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=30)
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / BIG).write_bytes(os.urandom(BIG_SIZE))
    for n in range(SMALL_FILES):
        (root / f"f{n:04d}.txt").write_bytes(os.urandom(1 + (n * 37) % 2048))
    return root


def put_command(
    server: ServerHandle, tree: Path, state: Path, report: Path, *, small_threshold: bool = True
) -> list[str]:
    """The job; with ``small_threshold`` the big file goes multipart in parts of ``PART``."""
    threshold = ["--multipart-threshold", str(PART)] if small_threshold else []
    return [
        sys.executable, "-m", "bulkput", "put", str(tree), f"oss://{BUCKET}/job/",
        "--endpoint", server.endpoint_url,
        *threshold,
        "--part-size", str(PART),
        "--concurrency", "4",
        "--state-dir", str(state),
        "--report", str(report),
        "--progress", "none",
    ]  # fmt: skip


def journal_state(state: Path) -> tuple[set[str], dict[str, set[int]]]:
    """What the journal has committed: stored keys, and parts per key of uploads in flight."""
    files = list(state.glob("*.sqlite"))
    if not files:
        return set(), {}
    (path,) = files
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as connection:
            stored = {bytes(k).decode() for (k,) in connection.execute("SELECT key FROM stored")}
            parts: dict[str, set[int]] = {}
            for key, number in connection.execute("SELECT key, part_number FROM parts"):
                parts.setdefault(bytes(key).decode(), set()).add(number)
    except sqlite3.OperationalError:  # the database is being created
        return set(), {}
    return stored, parts


def run_until_killed(
    command: list[str], env: dict[str, str], ready: Callable[[], bool], sig: int = signal.SIGKILL
) -> int:
    """Start the job, send ``sig`` once ``ready()`` holds, return its exit status."""
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if process.poll() is not None:
                raise AssertionError(f"the job ended before the kill: {process.stderr.read()}")  # type: ignore[union-attr]
            if time.monotonic() > deadline:
                raise AssertionError("the job never reached the point to kill it")
            time.sleep(0.01)
        process.send_signal(sig)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def settled_stats(server: ServerHandle) -> StatsSnapshot:
    """The counters once requests the dead client left behind have been answered."""
    previous = server.stats
    while True:
        time.sleep(0.2)
        current = server.stats
        if current.total == previous.total:
            return current
        previous = current


@contextlib.asynccontextmanager
async def job_store(server: ServerHandle) -> AsyncIterator[ObjectStore]:
    """The job's bucket, as the OSS dialect sees it."""
    _t, store = await open_destination(
        f"oss://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("oss")
    )
    try:
        yield store
    finally:
        await store.close()


async def read_objects(server: ServerHandle, names: list[str]) -> dict[str, bytes]:
    async with job_store(server) as store:
        return {name: await store.get_object(f"job/{name}") for name in names}


def test_sigkill_twice_then_resume_sends_nothing_confirmed_again(
    slow_server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    report = tmp_path / "report.jsonl"
    env = {**os.environ, **slow_server.env("oss")}
    command = put_command(slow_server, tree, state, report)
    big_key = f"job/{BIG}"

    def big_parts_on_server() -> dict[int, int]:
        return slow_server.stats.part_uploads(big_key, BUCKET)

    # Kill 1: some small objects and some parts of the big file are committed in the journal,
    # the big file is not complete.
    def first_point() -> bool:
        stored, parts = journal_state(state)
        return len(stored) >= 10 and len(parts.get(big_key, ())) >= 3

    assert run_until_killed(command, env, first_point) == -signal.SIGKILL
    at_kill_1 = settled_stats(slow_server)
    journal_1, _parts_1 = journal_state(state)
    assert at_kill_1.puts(big_key, BUCKET) == 0, "the big file completed before the kill"
    assert len(journal_1) < SMALL_FILES + 1, "the job completed before the kill"

    # Kill 2, in the resumed run: once it has committed more than the first run did.
    def second_point() -> bool:
        stored, _parts = journal_state(state)
        return len(stored) >= len(journal_1) + 20

    assert run_until_killed(command, env, second_point) == -signal.SIGKILL
    at_kill_2 = settled_stats(slow_server)
    journal_2, _parts_2 = journal_state(state)

    # The final run completes the job.
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = slow_server.stats

    names = [BIG, *(f"f{n:04d}.txt" for n in range(SMALL_FILES))]
    stored = asyncio.run(read_objects(slow_server, names))
    for name in names:
        assert stored[name] == (tree / name).read_bytes(), f"{name} is not stored byte-exact"

    # Nothing the journal had committed at a kill was PUT again afterwards. (An object the
    # server stored in the last half second before a kill, not yet committed, may be sent
    # twice: that is the price of batched journal writes, and it is never reported wrongly.)
    for journal, at_kill in ((journal_1, at_kill_1), (journal_2, at_kill_2)):
        for key in journal:
            assert at_kill.puts(key, BUCKET) >= 1, f"{key} journaled but never stored"
            assert final.puts(key, BUCKET) == at_kill.puts(key, BUCKET), f"{key} sent again"
    # No part the server held at a kill was sent again; the big file was completed once.
    for at_kill in (at_kill_1, at_kill_2):
        for number, count in at_kill.part_uploads(big_key, BUCKET).items():
            assert final.part_uploads(big_key, BUCKET)[number] == count, f"part {number} resent"
    assert set(final.part_uploads(big_key, BUCKET)) == set(range(1, 53))
    assert final.puts(big_key, BUCKET) == 1
    assert final.count("AbortMultipartUpload") == 0

    # The final report: what earlier runs confirmed is skipped by the journal, the rest stored.
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    summary = lines[-1]["summary"]
    assert summary["failed"] == 0
    assert summary["stored"] + summary["skipped"] == len(names)
    skipped = {line["key"] for line in lines[:-1] if line["status"] == "skipped"}
    assert journal_2 <= skipped
    assert summary["skip_reasons"] == {"journal": summary["skipped"]}
    assert journal_state(state)[1] == {}, "the journal still lists an upload in flight"


def sigterm_during_the_big_files_parts(
    server: ServerHandle, tree: Path, state: Path, report: Path
) -> StatsSnapshot:
    """Run the job and stop it with SIGTERM once three of the big file's parts are stored;
    returns the server's counters once settled."""
    env = {**os.environ, **server.env("oss")}
    big_key = f"job/{BIG}"

    def some_parts_sent() -> bool:
        return len(server.stats.part_uploads(big_key, BUCKET)) >= 3

    command = put_command(server, tree, state, report)
    assert run_until_killed(command, env, some_parts_sent, signal.SIGTERM) == 130
    return settled_stats(server)


def test_sigterm_stops_cleanly_and_leaves_the_upload_for_resume(
    slow_server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    report = tmp_path / "report.jsonl"
    env = {**os.environ, **slow_server.env("oss")}
    command = put_command(slow_server, tree, state, report)
    big_key = f"job/{BIG}"
    at_stop = sigterm_during_the_big_files_parts(slow_server, tree, state, report)
    stored_at_stop, parts_at_stop = journal_state(state)
    assert at_stop.count("AbortMultipartUpload") == 0
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    assert summary["interrupted"] is True
    # The clean stop flushed the journal: everything the server confirmed is recorded.
    for key, count in at_stop.puts_by_key.items():
        if count:
            assert key.split("/", 1)[1] in stored_at_stop
    if at_stop.puts(big_key, BUCKET) == 0:  # the big file was left for resume
        assert parts_at_stop[big_key] == set(at_stop.part_uploads(big_key, BUCKET))

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = slow_server.stats
    for number, count in at_stop.part_uploads(big_key, BUCKET).items():
        assert final.part_uploads(big_key, BUCKET)[number] == count, f"part {number} resent"
    for key in stored_at_stop:
        assert final.puts(key, BUCKET) == at_stop.puts(key, BUCKET) == 1, key
    stored = asyncio.run(read_objects(slow_server, [BIG, "f0000.txt", "f0299.txt"]))
    for name, data in stored.items():
        assert data == (tree / name).read_bytes()


async def uploads_in_flight(server: ServerHandle) -> list[str]:
    async with job_store(server) as store:
        return [upload.key async for upload in store.list_multipart_uploads("job/")]


def test_an_upload_left_in_flight_is_resumed_even_when_the_threshold_now_says_single_put(
    slow_server: ServerHandle, tree: Path, tmp_path: Path
) -> None:
    # Stopped during the big file's parts with a small --multipart-threshold, then run again
    # with the default one (512 MiB), under which the 5 MiB file would be a single PUT: the
    # upload in flight is resumed, not left behind on the server beside a new object.
    state = tmp_path / "state"
    report = tmp_path / "report.jsonl"
    env = {**os.environ, **slow_server.env("oss")}
    big_key = f"job/{BIG}"
    at_stop = sigterm_during_the_big_files_parts(slow_server, tree, state, report)
    assert at_stop.puts(big_key, BUCKET) == 0, "the big file completed before the stop"
    assert asyncio.run(uploads_in_flight(slow_server)) == [big_key]

    default_threshold = put_command(slow_server, tree, state, report, small_threshold=False)
    done = subprocess.run(default_threshold, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    final = slow_server.stats
    assert final.puts(big_key, BUCKET) == 1
    for number, count in at_stop.part_uploads(big_key, BUCKET).items():
        assert final.part_uploads(big_key, BUCKET)[number] == count, f"part {number} resent"
    assert final.count("AbortMultipartUpload") == 0
    assert asyncio.run(uploads_in_flight(slow_server)) == []
    assert asyncio.run(read_objects(slow_server, [BIG]))[BIG] == (tree / BIG).read_bytes()
