"""``bulkput put`` against servers that misbehave on purpose (tests/fixtures/misbehaving.py):
a trickling answer fails its attempt at the deadline and is retried; a 512 MiB error body is
read 64 KiB deep, the client's peak memory measured from outside."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.misbehaving import Request, ScriptedServer, huge_error, put_ok, trickle

KEYS = {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret-key-for-tests"}


def clean_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_")) and k.lower() not in (
            "http_proxy", "https_proxy", "no_proxy", "all_proxy"
        )
    }
    return {**base, **KEYS, "HOME": str(home), **(extra or {})}


def put_command(source: Path, server: ScriptedServer, tmp_path: Path, *options: str) -> list[str]:
    return [
        sys.executable, "-m", "bulkput", "put", str(source), "s3://bkt/p/",
        "--endpoint", server.url, "--addressing", "path", "--progress", "none",
        "--report", str(tmp_path / "report.jsonl"), "--state-dir", str(tmp_path / "state"),
        *options,
    ]  # fmt: skip


def report(tmp_path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (tmp_path / "report.jsonl").read_text().splitlines()]


def test_trickling_answer_fails_its_attempt_and_the_retry_stores_the_object(
    tmp_path: Path,
) -> None:
    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        if n == 0:
            return await trickle(writer, every=0.3)  # a byte each 0.3 s: never idle for 2 s
        return await put_ok(request, writer)

    source = tmp_path / "one.txt"
    source.write_bytes(b"trickled once")
    with ScriptedServer(behave) as server:
        done = subprocess.run(
            put_command(source, server, tmp_path, "--timeout", "2"),
            capture_output=True, text=True, env=clean_env(tmp_path),
            timeout=120,  # the old code waited for the 1,000 bytes: five minutes
        )  # fmt: skip
        puts = [r for r in server.requests if r.method == "PUT"]
    assert done.returncode == 0, done.stderr
    assert len(puts) == 2 and puts[1].body == b"trickled once"
    assert puts[0].target == puts[1].target == "/bkt/p/one.txt"
    line, summary = report(tmp_path)
    assert line["status"] == "stored" and line["attempts"] == 2
    assert summary["summary"]["retries"] == 1


# Runs a command and writes its peak resident set (KiB) to argv[1]. A small launcher of its own,
# because a child's peak counts the memory of the process that forked it until the exec (here
# that would be pytest's, hundreds of MB late in a run), and this one is small.
MEASURED_RUN = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "w") as out:
    out.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


@pytest.mark.slow
def test_huge_error_bodies_are_read_only_a_little_way(tmp_path: Path) -> None:
    size = 512 * 1024 * 1024

    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        return await huge_error(writer, size)

    sources = tmp_path / "src"
    sources.mkdir()
    for n in range(4):
        (sources / f"f{n}.txt").write_bytes(b"x" * (n + 1))
    peak_file = tmp_path / "peak"
    with ScriptedServer(behave) as server:
        done = subprocess.run(
            [sys.executable, "-c", MEASURED_RUN, str(peak_file),
             *put_command(sources, server, tmp_path, "--retries", "1")],
            capture_output=True, text=True, env=clean_env(tmp_path),
            timeout=240,  # the old code read 4 GiB and more
        )  # fmt: skip
    peak_mb = int(peak_file.read_text()) / 1024  # KiB on Linux
    assert done.returncode == 1, done.stderr
    assert peak_mb < 200, f"client peak RSS {peak_mb:.0f} MB"
    lines = report(tmp_path)[:-1]
    assert len(lines) == 4 and {line["status"] for line in lines} == {"failed"}
    assert all(line["error_code"] == "InternalError" for line in lines), lines
    assert all(line["attempts"] == 2 for line in lines)
