"""Reliability under faults (issue 8 items 1 and 2): nothing lost, nothing stored wrong.

- 10,000 objects through ``bulkput put`` while ``bulkput serve`` fails 10% of the PUTs with the
  whole mix (400 RequestTimeout, 503 SlowDown, 500 InternalError, a connection cut in the middle
  of the body, an answer held back longer than the client's timeout): every object is stored
  byte-exact, the report says 10,000 stored and shows the retries, exit 0.
- One object failing every time: it alone fails, after exactly its retry budget; exit 1.
- ``rclone serve s3`` with a directory backend, at high concurrency: every file byte-exact on its
  disk.
- Throttling: SlowDown above a request rate halves the engine's concurrency limit (AIMD), which
  climbs back once the throttling stops; every object stored.

Byte-exactness is proven cheaply: the server computes each ETag from the bytes it received, so
listing the bucket and comparing every ETag with the local MD5 checks every object; a sample is
also read back with GET.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from benchmarks import soak
from bulkput.api import open_destination
from bulkput.config import RetryPolicy, Timeouts, TransferConfig
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.engine import Engine
from bulkput.job.subscriber import Subscriber
from bulkput.server.faults import FaultConfig, FaultInjector
from bulkput.server.testing import ServerHandle
from tests.fixtures.rclone import start_rclone

FAULT_MIX = ("requesttimeout", "slowdown", "internal", "reset", "slow")


def make_files(root: Path, count: int, *, seed: int = 8, max_size: int = 600) -> dict[str, bytes]:
    """``count`` small files of seeded random bytes in 50 folders; relative name -> bytes."""
    rng = random.Random(seed)
    files: dict[str, bytes] = {}
    for folder in range(min(50, count)):
        (root / f"d{folder:02d}").mkdir(parents=True, exist_ok=True)
    for n in range(count):
        name = f"d{n % 50:02d}/f{n:05d}.bin"
        data = rng.randbytes(1 + rng.randrange(max_size))
        (root / name).write_bytes(data)
        files[name] = data
    return files


def run_put(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_"))}
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "put", *args],
        capture_output=True, text=True, timeout=timeout, env={**clean, **env},
    )  # fmt: skip


def read_report(path: Path) -> tuple[list[dict], dict]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert "summary" in lines[-1], "the report has no summary line"
    return lines[:-1], lines[-1]["summary"]


async def listed_etags(
    dest: str, endpoint: str, env: dict[str, str], prefix: str
) -> dict[str, str]:
    _target, store = await open_destination(dest, endpoint=endpoint, env=env)
    try:
        return {info.key: (info.etag or "").lower() async for info in store.list_objects(prefix)}
    finally:
        await store.close()


async def read_objects(
    dest: str, endpoint: str, env: dict[str, str], keys: list[str]
) -> dict[str, bytes]:
    _target, store = await open_destination(dest, endpoint=endpoint, env=env)
    try:
        return {key: await store.get_object(key) for key in keys}
    finally:
        await store.close()


def assert_stored_exactly(
    files: dict[str, bytes], dest: str, endpoint: str, env: dict[str, str], prefix: str
) -> None:
    """Every file is listed under ``prefix`` with the ETag of its MD5; a sample reads back equal."""
    etags = listed_etags(dest, endpoint, env, prefix)
    listed = asyncio.run(etags)
    expected = {f"{prefix}{name}": hashlib.md5(data).hexdigest() for name, data in files.items()}
    assert set(listed) == set(expected), "the bucket does not hold exactly the files sent"
    wrong = [key for key, md5 in expected.items() if listed[key] != md5]
    assert not wrong, f"{len(wrong)} objects stored with other bytes, e.g. {wrong[:3]}"
    sample = random.Random(1).sample(sorted(files), min(100, len(files)))
    got = asyncio.run(read_objects(dest, endpoint, env, [prefix + name for name in sample]))
    for name in sample:
        assert got[prefix + name] == files[name], f"{name} reads back different bytes"


def test_10000_objects_with_10_percent_faults_all_stored_byte_exact(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    faults = FaultConfig(rate=0.10, mix=FAULT_MIX, slow_ms=2500, seed=2024)
    server = bulkput_server_factory(buckets=["faulty"], faults=faults)
    files = make_files(tmp_path / "src", 10_000)
    report = tmp_path / "report.jsonl"
    done = run_put(
        str(tmp_path / "src"), "s3://faulty/job/", "--endpoint", server.endpoint_url,
        "--timeout", "1", "--report", str(report), "--progress", "none",
        "--state-dir", str(tmp_path / "state"), env=server.env("s3"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines, summary = read_report(report)
    assert summary["stored"] == 10_000 and summary["failed"] == 0, summary
    assert len(lines) == 10_000 and {line["status"] for line in lines} == {"stored"}
    for line in lines:  # the report's MD5 is the local file's
        assert line["md5"] == hashlib.md5(files[line["key"].removeprefix("job/")]).hexdigest()
    retried = [line for line in lines if line["attempts"] > 1]
    assert summary["retries"] > 0 and retried, "no retry shows in the report"
    assert summary["retries"] >= sum(line["attempts"] - 1 for line in retried)
    # every kind of fault really happened during the job
    assert set(server.stats.faults) == set(FAULT_MIX), server.stats.faults
    assert_stored_exactly(files, "s3://faulty/", server.endpoint_url, server.env("s3"), "job/")


def test_one_object_failing_every_time_fails_alone_after_its_retry_budget(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    doomed = "job/d07/f00107.bin"
    server = bulkput_server_factory(buckets=["doom"], faults=FaultConfig(keys=(doomed,)))
    files = make_files(tmp_path / "src", 300)
    report = tmp_path / "report.jsonl"
    retries = 3
    done = run_put(
        str(tmp_path / "src"), "s3://doom/job/", "--endpoint", server.endpoint_url,
        "--retries", str(retries), "--report", str(report), "--progress", "none",
        "--state-dir", str(tmp_path / "state"), env=server.env("s3"),
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    lines, summary = read_report(report)
    assert summary["stored"] == 299 and summary["failed"] == 1
    [failed] = [line for line in lines if line["status"] == "failed"]
    assert failed["key"] == doomed and failed["attempts"] == retries + 1
    assert failed["error_code"] == "InternalError"
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and doomed in errors[0] and "InternalError" in errors[0]
    assert server.stats.faults == {"internal": retries + 1}  # exactly the budget was spent
    del files["d07/f00107.bin"]
    assert_stored_exactly(files, "s3://doom/", server.endpoint_url, server.env("s3"), "job/")


def test_rclone_directory_backend_at_high_concurrency_stores_every_file_exact(
    tmp_path: Path,
) -> None:
    backend = tmp_path / "rclone-root"
    (backend / "dirbucket").mkdir(parents=True)
    files = make_files(tmp_path / "src", 2_000, max_size=4096)
    report = tmp_path / "report.jsonl"
    with start_rclone(str(backend)) as rclone:
        env = {"AWS_ACCESS_KEY_ID": rclone.access_key, "AWS_SECRET_ACCESS_KEY": rclone.secret_key}
        done = run_put(
            str(tmp_path / "src"), "s3://dirbucket/up/", "--endpoint", rclone.endpoint,
            "--region", rclone.region, "--concurrency", "128", "--report", str(report),
            "--progress", "none", "--state-dir", str(tmp_path / "state"), env=env,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    _lines, summary = read_report(report)
    assert summary["stored"] == 2_000 and summary["failed"] == 0
    for name, data in files.items():  # the directory backend's own files are the objects
        assert (backend / "dirbucket" / "up" / name).read_bytes() == data, name


class _StopThrottlingAfter(Subscriber):
    """Subscriber: once ``count`` objects are stored and the limit has gone down, the server
    stops throttling; remembers the limiter's state at that moment."""

    def __init__(self, server: ServerHandle, engine_ref: list[Engine], count: int) -> None:
        self.server = server
        self.engine_ref = engine_ref
        self.count = count
        self.stored = 0
        self.switched_at: tuple[int, int] | None = None  # (history length, limit)

    def on_result(self, result: ObjectResult) -> None:
        if result.status is Status.STORED:
            self.stored += 1
        limiter = self.engine_ref[0].limiter
        if self.switched_at is None and self.stored >= self.count and limiter.decreases:
            inner = self.server._server  # the in-process app: swap its fault injector
            assert inner is not None
            inner.faults = FaultInjector(FaultConfig())
            self.switched_at = (len(limiter.history), limiter.limit)


async def test_throttling_lowers_concurrency_then_it_recovers_and_all_is_stored(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    # well under what even a loaded 2-core machine sends, so the store throttles for sure
    server = bulkput_server_factory(buckets=["throttled"], faults=FaultConfig(throttle_rps=120))
    files = make_files(tmp_path / "src", 3_000)
    maximum = 32
    config = TransferConfig(
        concurrency=maximum,
        timeouts=Timeouts(connect=5, read=10),
        retry=RetryPolicy(max_attempts=30, throttle_base_delay=0.05, max_delay=1.0),
    )
    _target, store = await open_destination(
        "s3://throttled/", endpoint=server.endpoint_url, env=server.env("s3"), config=config
    )
    engine_ref: list[Engine] = []
    switch = _StopThrottlingAfter(server, engine_ref, count=1_000)
    try:
        engine = Engine(store, config, subscribers=[switch])
        engine_ref.append(engine)
        items = [
            UploadItem(path=str(tmp_path / "src" / name), key=f"t/{name}") for name in sorted(files)
        ]
        summary = await engine.run(items)
    finally:
        await store.close()
    assert summary.stored == 3_000 and summary.failed == 0
    assert server.stats.faults.get("slowdown", 0) > 0, "the server never throttled"
    limiter = engine.limiter
    assert limiter.decreases > 0
    assert switch.switched_at is not None, "the limit never went down"
    index, limit_at_switch = switch.switched_at
    history = list(limiter.history)
    assert min(limit for _t, limit in history[:index]) < maximum  # went down while throttled
    assert limit_at_switch < maximum
    after = [limit for _t, limit in history[index:]]
    assert after and max(after) > limit_at_switch, "the limit did not climb back"
    etags = await listed_etags("s3://throttled/", server.endpoint_url, server.env("s3"), "t/")
    assert etags == {f"t/{name}": hashlib.md5(data).hexdigest() for name, data in files.items()}


def test_kill_and_restart_never_resends_a_confirmed_object(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    """The CI-size kill run of benchmarks/soak.py: 3,000 objects, SIGKILL at 2 seeded moments,
    restarted each time. In the end every object is stored byte-exact, and no object with a
    ``stored`` line in one run's report was PUT by any later run (server's per-key counters)."""
    server = bulkput_server_factory(
        buckets=[soak.BUCKET], faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=5)
    )
    md5s = soak.make_tree(tmp_path / "src", 3_000)
    result = soak.kill_run(
        server, tmp_path / "src", md5s, tmp_path, kills=2, seed=8
    )
    assert result.final_exit == 0, result.runs
    assert result.kills_done == 2, "the job ended before it could be killed"
    assert any(run["confirmed"] for run in result.runs[:-1]), "no confirmation to check"
    assert not result.wrong_objects, result.wrong_objects[:5]
    assert not result.resent_after_confirmation, dict(
        list(result.resent_after_confirmation.items())[:5]
    )
