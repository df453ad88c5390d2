"""A store that goes away mid-job is waited for (``--outage-wait``), with one note, and the job
ends with every object stored; an endpoint that never answered still fails fast (exit 3)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle, serve_in_thread

FILES = 400


def clean_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_"))
        and k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
    }
    return {**base, "HOME": str(home), **extra}


def put(source: Path, endpoint: str, tmp_path: Path, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "bulkput", "put", str(source), "s3://outage/job/",
        "--endpoint", endpoint, "--progress", "none", "--state-dir", str(tmp_path / "state"),
        "--report", str(tmp_path / "report.jsonl"), *options,
    ]  # fmt: skip


@pytest.mark.slow
def test_a_three_second_outage_mid_job_is_waited_for(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for n in range(FILES):
        (source / f"f{n:04d}.txt").write_bytes(b"%d " % n * 20)
    data = tmp_path / "store"
    # 20 ms per request and 4 in flight: the job takes about two seconds without the outage
    faults = FaultConfig(rate=1.0, mix=("latency",), latency_ms=20)
    server = serve_in_thread(memory=False, dir=data, buckets=["outage"], faults=faults)
    port, env = server.port, clean_env(tmp_path, server.env())
    process = subprocess.Popen(
        put(source, server.endpoint_url, tmp_path, "--concurrency", "4"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while server.stats.count("PutObject") < 40 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()  # the store goes away mid-job, connections and all
        stored_before = server.stats.count("PutObject")
        time.sleep(3)
        server = serve_in_thread(memory=False, dir=data, buckets=["outage"], port=port)
        _, stderr = process.communicate(timeout=180)
        stored = asyncio.run(listing(server))
    finally:
        process.kill()
        server.stop()
    assert 0 < stored_before < FILES, "the outage did not fall mid-job"
    assert process.returncode == 0, stderr
    assert "store unreachable, retrying for 120 s" in stderr
    assert stderr.count("store unreachable") == 1, stderr
    assert stored == {f"job/{p.name}": p.stat().st_size for p in source.iterdir()}


async def listing(server: ServerHandle) -> dict[str, int]:
    _t, store = await open_destination("s3://outage/", endpoint=server.endpoint_url, env=server.env())
    try:
        return {info.key: info.size async for info in store.list_objects("job/")}
    finally:
        await store.close()


def test_an_endpoint_that_never_answered_fails_fast(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_bytes(b"x")
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = clean_env(tmp_path, {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk"})
    # far below the 120 s an outage is waited for: an endpoint never reached is not waited for
    done = subprocess.run(
        put(tmp_path / "one.txt", closed, tmp_path), capture_output=True, text=True, env=env,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "EndpointUnreachable" in done.stderr and "store unreachable" not in done.stderr


def test_outage_wait_is_an_option_and_zero_stops_at_the_first_failure(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for n in range(200):
        (source / f"f{n:04d}.txt").write_bytes(b"x" * n)
    faults = FaultConfig(rate=1.0, mix=("latency",), latency_ms=20)
    server = serve_in_thread(memory=True, buckets=["outage"], faults=faults)
    process = subprocess.Popen(
        put(source, server.endpoint_url, tmp_path, "--concurrency", "2", "--outage-wait", "0"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=clean_env(tmp_path, server.env()),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while server.stats.count("PutObject") < 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.stop()
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 3, stderr
    assert "store unreachable, retrying for 0 s" in stderr and "EndpointUnreachable" in stderr
