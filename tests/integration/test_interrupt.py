"""SIGINT and SIGTERM in the middle of ``bulkput put`` against a slow ``bulkput serve``: the
exit code, the summary's counts (stored + not started + interrupted + failed is every object),
the report's lines, the store's own listing, and a second run of the same command that sends
only what the first did not store."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle, serve_in_subprocess

FILES = 200


@pytest.fixture
def slow_server() -> ServerHandle:
    """``bulkput serve`` in its own process, every PUT 200 ms late."""
    server = serve_in_subprocess(
        buckets=["slow"], faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=200)
    )
    try:
        yield server
    finally:
        server.stop()


def listed(server: ServerHandle, dest: str) -> dict[str, tuple[int, str | None]]:
    """key -> (size, etag) as the store lists them."""

    async def listing() -> dict[str, tuple[int, str | None]]:
        target, store = await open_destination(dest, endpoint=server.endpoint_url, env=server.env("s3"))
        try:
            return {info.key: (info.size, info.etag) async for info in store.list_objects(target.prefix)}
        finally:
            await store.close()

    return asyncio.run(listing())


def report(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert "summary" in lines[-1], "the report has no summary line"
    return lines[:-1], lines[-1]["summary"]


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_put_reports_what_it_never_started_and_the_same_command_resumes(
    slow_server: ServerHandle, tmp_path: Path, signum: signal.Signals
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    contents = {f"p/f{n:03d}.txt": f"object {n}\n".encode() * (n + 1) for n in range(FILES)}
    for key, data in contents.items():
        (src / key.removeprefix("p/")).write_bytes(data)
    first_report, second_report = tmp_path / "first.jsonl", tmp_path / "second.jsonl"

    def command(report_path: Path) -> list[str]:
        return [sys.executable, "-m", "bulkput", "put", "--concurrency", "16", "--progress", "none",
                "--report", str(report_path), "--state-dir", str(tmp_path / "state"),
                "--endpoint", slow_server.endpoint_url, str(src), "s3://slow/p/"]  # fmt: skip

    env = {**os.environ, **slow_server.env("s3"), "HOME": str(tmp_path)}
    process = subprocess.Popen(
        command(first_report), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while slow_server.stats.count("PutObject") < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130, stderr
    lines, summary = report(first_report)
    statuses = Counter(line["status"] for line in lines)
    assert set(statuses) <= {"stored", "not_started", "interrupted", "failed"}, statuses
    assert sorted(line["key"] for line in lines) == sorted(contents)  # one line per object
    assert 0 < summary["stored"] < FILES and summary["not_started"] > 0
    assert summary["failed"] == 0  # nothing failed: the store never refused anything
    assert (statuses["stored"], statuses["not_started"], statuses["interrupted"]) == (
        summary["stored"], summary["not_started"], summary["interrupted_objects"])  # fmt: skip
    assert summary["stored"] + summary["not_started"] + summary["interrupted_objects"] == FILES
    assert all(line.get("attempts", 0) == 0 and "error_code" not in line
               for line in lines if line["status"] == "not_started")  # fmt: skip
    # the human summary: the count, and that the same command resumes
    counts = next(line for line in stderr.splitlines() if line.startswith("stored "))
    assert f"not started {summary['not_started']:,}" in counts, stderr
    assert re.search(r"run the same command again to resume", stderr), stderr
    assert "error:" not in stderr  # no line per object never started

    # every object reported stored is in the store's listing, with its bytes' MD5
    stored_first = {line["key"] for line in lines if line["status"] == "stored"}
    in_store = listed(slow_server, "s3://slow/p/")
    for key in stored_first:
        assert in_store[key] == (len(contents[key]), hashlib.md5(contents[key]).hexdigest())

    slow_server.reset_stats()
    again = subprocess.run(command(second_report), env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    lines, summary = report(second_report)
    by_key = {line["key"]: line for line in lines}
    assert sorted(by_key) == sorted(contents)
    assert {key for key, line in by_key.items() if line["status"] == "skipped"} == stored_first
    assert summary["stored"] == FILES - len(stored_first) and summary["not_started"] == 0
    in_store = listed(slow_server, "s3://slow/p/")
    assert in_store == {key: (len(data), hashlib.md5(data).hexdigest()) for key, data in contents.items()}
    stats = slow_server.stats
    assert stats.count("PutObject") == FILES - len(stored_first)  # the stored ones not sent again
    assert all(stats.puts(key, "slow") == 0 for key in stored_first)
