"""Lost answers of multipart uploads against ``bulkput serve`` faults (issue 15, point 4).

A ``slow`` fault serves the request and then holds its answer back longer than the client's
``--timeout``: the client gives up and retries a request the store has already carried out.
What a user checks: the exit code, the report's status and attempts, the bytes in the store, the
server's counters (no part sent twice), and that no multipart upload is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.config import KiB
from bulkput.server.faults import FaultConfig, FaultInjector
from bulkput.server.testing import ServerHandle

pytestmark = pytest.mark.slow

BUCKET = "lost-answers"
PART = 100 * KiB  # the OSS minimum, so a small file has several parts
SIZE = 3 * PART + 777  # 4 parts
KEY = "job/big.bin"


def put_command(server: ServerHandle, source: Path, state: Path, report: Path, timeout: float) -> list[str]:
    return [
        sys.executable, "-m", "bulkput", "put", str(source), f"oss://{BUCKET}/job/",
        "--endpoint", server.endpoint_url,
        "--multipart-threshold", str(PART),
        "--part-size", str(PART),
        "--timeout", str(timeout),
        "--state-dir", str(state),
        "--report", str(report),
        "--progress", "none",
    ]  # fmt: skip


def report_of(report: Path) -> dict[str, dict[str, object]]:
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    return {line["key"]: line for line in lines if "key" in line}


async def store_state(server: ServerHandle) -> tuple[bytes, list[str]]:
    """The stored object's bytes and the upload ids still open in the bucket."""
    _t, store = await open_destination(
        f"oss://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("oss")
    )
    try:
        data = await store.get_object(KEY)
        uploads = [u.upload_id async for u in store.list_multipart_uploads("")]
    finally:
        await store.close()
    return data, uploads


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    (root / "big.bin").write_bytes(os.urandom(SIZE))
    return root


def slow_complete(factory: Callable[..., ServerHandle]) -> ServerHandle:
    return factory(
        buckets=[BUCKET],
        faults=FaultConfig(
            rate=1.0, mix=("slow",), slow_ms=6000, operations=frozenset({"CompleteMultipartUpload"})
        ),
    )


def test_a_complete_whose_answer_is_lost_is_reported_stored(
    bulkput_server_factory: Callable[..., ServerHandle], source: Path, tmp_path: Path
) -> None:
    """The retried Complete gets NoSuchUpload: the object was stored by the first one."""
    server = slow_complete(bulkput_server_factory)
    report = tmp_path / "report.jsonl"
    done = subprocess.run(
        put_command(server, source, tmp_path / "state", report, timeout=2),
        env={**os.environ, **server.env("oss")}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = report_of(report)[KEY]
    assert line["status"] == "stored"
    assert line["attempts"] == 2  # the Complete went twice
    data, uploads = asyncio.run(store_state(server))
    assert data == (source / "big.bin").read_bytes() and uploads == []
    stats = server.stats
    assert stats.puts(KEY, BUCKET) == 1
    assert set(stats.part_uploads(KEY, BUCKET).values()) == {1}


def test_a_kill_while_the_complete_answer_is_in_flight_then_resume_sends_nothing_again(
    bulkput_server_factory: Callable[..., ServerHandle], source: Path, tmp_path: Path
) -> None:
    server = slow_complete(bulkput_server_factory)
    state, report = tmp_path / "state", tmp_path / "report.jsonl"
    command = put_command(server, source, state, report, timeout=30)
    env = {**os.environ, **server.env("oss")}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while server.stats.puts(KEY, BUCKET) < 1:  # completed; its answer is held back 6 s
            assert process.poll() is None, "the job ended before the kill"
            assert time.monotonic() < deadline, "the Complete never arrived"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    parts_at_kill = server.stats.part_uploads(KEY, BUCKET)

    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert report_of(report)[KEY]["status"] == "stored"
    stats = server.stats
    assert stats.part_uploads(KEY, BUCKET) == parts_at_kill, "parts were sent again"
    assert stats.puts(KEY, BUCKET) == 1
    data, uploads = asyncio.run(store_state(server))
    assert data == (source / "big.bin").read_bytes() and uploads == []


def _seed_slowing_only_the_first(config: FaultConfig) -> FaultConfig:
    """``config`` with a seed under which the first Initiate is slowed and the second not."""
    for seed in range(1000):
        seeded = replace(config, seed=seed)
        injector = FaultInjector(seeded)
        if [injector.choose("InitiateMultipartUpload", KEY) for _ in range(2)] == ["slow", None]:
            return seeded
    raise AssertionError("no seed found")


def test_a_lost_initiate_answer_leaves_no_upload_behind(
    bulkput_server_factory: Callable[..., ServerHandle], source: Path, tmp_path: Path
) -> None:
    faults = FaultConfig(
        rate=0.5, mix=("slow",), slow_ms=4000, operations=frozenset({"InitiateMultipartUpload"})
    )
    server = bulkput_server_factory(
        buckets=[BUCKET], faults=_seed_slowing_only_the_first(faults)
    )
    report = tmp_path / "report.jsonl"
    done = subprocess.run(
        put_command(server, source, tmp_path / "state", report, timeout=2),
        env={**os.environ, **server.env("oss")}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    line = report_of(report)[KEY]
    assert line["status"] == "stored" and line["attempts"] == 2
    assert server.stats.count("AbortMultipartUpload") == 1  # the stray, not the one in use
    data, uploads = asyncio.run(store_state(server))
    assert data == (source / "big.bin").read_bytes()
    assert uploads == [], "the upload whose Initiate answer was lost is still open"
