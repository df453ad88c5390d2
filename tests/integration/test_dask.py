"""``bulkput put --dask`` on a real cluster: a ``dask scheduler`` and two ``dask worker``
processes on 127.0.0.1 (2 threads each), each worker with its own HOME and working directory
and nothing shared with the client but the store (an in-process ``bulkput serve``). The client
is the command line, as a subprocess, with its own HOME and working directory too.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from bulkput.server.faults import FaultConfig  # noqa: E402
from bulkput.server.testing import ServerHandle  # noqa: E402
from tests.fixtures.dask_cluster import dask_scheduler, dask_worker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
THREADS_PER_WORKER = 2
CONCURRENCY = 8  # pinned, so what one worker has in flight is bounded: 2 threads x 8


@dataclass
class Cluster:
    address: str
    client: distributed.Client
    worker_dirs: list[Path]
    root: Path

    def processing(self) -> list[str]:
        """The tasks the scheduler has running on some worker."""

        def running(dask_scheduler: object) -> list[str]:
            tasks = dask_scheduler.tasks  # type: ignore[attr-defined]
            return [str(key) for key, task in tasks.items() if task.state == "processing"]

        return list(self.client.run_on_scheduler(running))


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "DASK_"))}
    env["HOME"] = str(home)
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    # absolute: each process has its own working directory
    env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in paths)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    (root / "scheduler-home").mkdir()
    with dask_scheduler(root, _env(root / "scheduler-home")) as address:
        dirs = []
        with contextlib.ExitStack() as stack:
            for n in range(2):
                home, cwd = root / f"worker-{n}-home", root / f"worker-{n}-cwd"
                home.mkdir()
                cwd.mkdir()
                dirs.append(cwd)
                stack.enter_context(dask_worker(f"worker-{n}", address, cwd=cwd, env=_env(home),
                                                nthreads=THREADS_PER_WORKER,
                                                local_dir=cwd / "dask"))  # fmt: skip
            with distributed.Client(address, timeout=30) as client:
                client.wait_for_workers(2, timeout=60)
                yield Cluster(client.scheduler.address, client, dirs, root)


def _make_tree(root: Path, count: int) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    for i in range(count):
        rel = f"part-{i % 10}/obj-{i:05d}.txt"
        data = f"object {i}\n".encode() * (1 + i % 7)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        contents[rel] = data
    return contents


def _manifest(root: Path, contents: dict[str, bytes]) -> Path:
    manifest = root / "manifest.txt"
    manifest.write_text("".join(f"{root / rel}\n" for rel in contents))
    return manifest


def _put_argv(cluster: Cluster, server: ServerHandle, source: list[str], dest: str) -> list[str]:
    return [sys.executable, "-m", "bulkput", "put", *source, dest, "--endpoint",
            server.endpoint_url, "--dask", cluster.address, "--concurrency", str(CONCURRENCY),
            "--progress", "none"]  # fmt: skip


def _client_env(tmp_path: Path, server: ServerHandle) -> dict[str, str]:
    home = tmp_path / "client-home"
    home.mkdir(exist_ok=True)
    return {**_env(home), **server.env("s3")}


def _put(argv: list[str], tmp_path: Path, server: ServerHandle) -> subprocess.CompletedProcess[str]:
    cwd = tmp_path / "client-cwd"
    cwd.mkdir(exist_ok=True)
    return subprocess.run(argv, cwd=cwd, env=_client_env(tmp_path, server), capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def _stored(server: ServerHandle, bucket: str, prefix: str) -> dict[str, int]:
    """Key -> size, as the store lists them (not as bulkput reported them)."""
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
    )  # fmt: skip
    listed = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            listed[obj["Key"].removeprefix(prefix)] = obj["Size"]
    return listed


def _sizes(contents: dict[str, bytes]) -> dict[str, int]:
    return {key: len(data) for key, data in contents.items()}


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _slow_store(factory: Callable[..., ServerHandle], bucket: str) -> ServerHandle:
    # 40 ms per PUT: 4 threads x 8 in flight pass ~800 objects/s, so 2,500 objects take ~3 s
    return factory(buckets=[bucket], faults=FaultConfig(mix=("latency",), rate=1.0, latency_ms=40,
                                                        seed=3, operations=("PutObject",)))  # fmt: skip


def test_a_walk_of_2500_files_is_stored_once_in_partitions_of_1000(
    cluster: Cluster, bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    contents = _make_tree(tmp_path / "data", 2500)
    before = bulkput_server.stats
    report = tmp_path / "report.jsonl"  # written by the client, the only one that has it all
    argv = _put_argv(cluster, bulkput_server, [str(tmp_path / "data")], f"s3://{bulkput_bucket}/a/")
    done = _put([*argv, "--report", str(report)], tmp_path, bulkput_server)
    assert done.returncode == 0, done.stderr
    summary = json.loads(report.read_text().splitlines()[-1])["summary"]
    assert (summary["stored"], summary["failed"], summary["exit_code"]) == (2500, 0, 0)
    assert _stored(bulkput_server, bulkput_bucket, "a/") == _sizes(contents)
    after = bulkput_server.stats
    puts = {k: n - before.puts_by_key.get(k, 0) for k, n in after.puts_by_key.items()
            if k.startswith(f"{bulkput_bucket}/")}  # fmt: skip
    assert sum(puts.values()) == len(contents), "the store's PUT counter: each object once"
    assert set(puts.values()) == {1}
    # the progress lines come from the client as partitions finish (a walk's count is not
    # known ahead: 1,000 objects each, so 3 partitions)
    last = [line for line in done.stderr.splitlines() if line.startswith("bulkput: partitions")][-1]
    assert last.startswith("bulkput: partitions 3/3 done: stored 2,500,"), done.stderr
    assert "stored 2,500 objects" in done.stderr
    assert cluster.processing() == []


@pytest.mark.slow
def test_b_a_worker_killed_mid_job_costs_only_its_objects_in_flight(
    cluster: Cluster, bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = _slow_store(bulkput_server_factory, "kill-worker")
    contents = _make_tree(tmp_path / "data", 2500)
    manifest = _manifest(tmp_path / "data", contents)
    argv = _put_argv(cluster, server, ["--manifest", str(manifest), "--base", str(tmp_path / "data")],
                     "s3://kill-worker/")  # fmt: skip
    cwd = tmp_path / "client-cwd"
    cwd.mkdir()
    with subprocess.Popen(argv, cwd=cwd, env=_client_env(tmp_path, server), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as client:  # fmt: skip
        _wait_for(lambda: server.stats.count("PutObject") >= 800, "the job to be under way")
        victim = sorted(cluster.client.run(os.getpid).values())[0]
        os.kill(victim, signal.SIGKILL)  # its nanny starts a new one for the next tests
        assert server.stats.count("PutObject") < 2000, "the job was nearly over at the kill"
        _, stderr = client.communicate(timeout=300)
    assert client.returncode == 0, stderr
    assert _stored(server, "kill-worker", "") == _sizes(contents)
    # The killed worker had at most 2 partitions running, each with at most 8 PUTs in flight:
    # only those can be sent twice. Every object the store already had is skipped by the
    # partition run again (it lists the store first), so nothing else is sent twice.
    in_flight_at_kill = THREADS_PER_WORKER * CONCURRENCY
    sent = server.stats.count("PutObject")
    assert len(contents) <= sent <= len(contents) + in_flight_at_kill, stderr
    twice = [k for k, n in server.stats.puts_by_key.items() if n > 1]
    assert len(twice) <= in_flight_at_kill
    assert "already in the store" in stderr, "the partition run again skipped what the store had"
    _wait_for(lambda: len(cluster.client.nthreads()) == 2, "the nanny's new worker")


@pytest.mark.slow
def test_c_a_killed_client_leaves_no_orphan_and_its_rerun_completes(
    cluster: Cluster, bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = _slow_store(bulkput_server_factory, "kill-client")
    contents = _make_tree(tmp_path / "data", 2500)
    manifest = _manifest(tmp_path / "data", contents)
    argv = _put_argv(cluster, server, ["--manifest", str(manifest), "--base", str(tmp_path / "data")],
                     "s3://kill-client/")  # fmt: skip
    cwd = tmp_path / "client-cwd"
    cwd.mkdir()
    with subprocess.Popen(argv, cwd=cwd, env=_client_env(tmp_path, server),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as client:  # fmt: skip
        _wait_for(lambda: server.stats.count("PutObject") >= 500, "the job to be under way")
        client.send_signal(signal.SIGKILL)
    rerun = _put(argv, tmp_path, server)
    assert rerun.returncode == 0, rerun.stderr
    assert _stored(server, "kill-client", "") == _sizes(contents)
    assert "already in the store" in rerun.stderr, "the rerun resumed from the store"
    # the killed client's tasks were dropped with it; the rerun's are done
    assert cluster.processing() == []


@pytest.mark.slow
def test_e_sigterm_on_the_client_cancels_its_tasks_and_exits_130(
    cluster: Cluster, bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = _slow_store(bulkput_server_factory, "stop-client")
    contents = _make_tree(tmp_path / "data", 2500)
    manifest = _manifest(tmp_path / "data", contents)
    # partitions of 1,000 objects last ~5 s each: long enough to see whether they stop
    argv = _put_argv(cluster, server, ["--manifest", str(manifest), "--base", str(tmp_path / "data"),
                                       "--partition-size", "1000"], "s3://stop-client/")  # fmt: skip
    cwd = tmp_path / "client-cwd"
    cwd.mkdir()
    with subprocess.Popen(argv, cwd=cwd, env=_client_env(tmp_path, server), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as client:  # fmt: skip
        _wait_for(lambda: server.stats.count("PutObject") >= 300, "the job to be under way")
        running = cluster.processing()  # the dashboard shows these keys
        assert running and all(key.startswith("bulkput-partition-") for key in running), running
        client.send_signal(signal.SIGTERM)
        _, stderr = client.communicate(timeout=60)
    at_exit = server.stats.count("PutObject")
    assert client.returncode == 130, stderr
    assert "interrupted: the job's tasks were cancelled" in stderr
    assert cluster.processing() == []
    # the partitions that were running stopped too: at most their requests in flight (3
    # partitions x 8) end after the client did, not the rest of each partition
    time.sleep(2)
    assert server.stats.count("PutObject") - at_exit <= 2 * THREADS_PER_WORKER * CONCURRENCY
    assert server.stats.count("PutObject") < len(contents)


def test_d_a_source_the_workers_cannot_read_exits_3_naming_worker_and_cause(
    cluster: Cluster, bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    # /proc/self/cwd is each process's own working directory: the client's holds data/, the
    # workers' (their own folders) do not, as when workers do not mount the client's disk.
    cwd = tmp_path / "client-cwd"
    _make_tree(cwd / "data", 60)
    before = bulkput_server.stats.count("PutObject")
    # 12 partitions of 5: the first 8 (2 per worker thread) are submitted, then none after
    # one failed (the others would meet the same cause)
    argv = _put_argv(cluster, bulkput_server, ["/proc/self/cwd/data"], f"s3://{bulkput_bucket}/d/")
    done = _put([*argv, "--partition-size", "5"], tmp_path, bulkput_server)
    assert done.returncode == 3, done.stderr
    failed = [line for line in done.stderr.splitlines() if line.startswith("bulkput put: partition ")]
    assert 1 <= len(failed) <= 2 * 2 * THREADS_PER_WORKER < 12, done.stderr
    assert "no further partition was submitted after one could not run" in done.stderr
    line = failed[0]
    assert re.match(r"bulkput put: partition \d+ could not run: partition \d+: ", line), line
    assert "cannot read source folder /proc/self/cwd/data" in line
    assert "No such file or directory" in line
    assert f"on worker {socket.gethostname()}" in line
    assert any(f"working directory {d}" in line for d in cluster.worker_dirs), line
    assert bulkput_server.stats.count("PutObject") == before
    assert _stored(bulkput_server, bulkput_bucket, "d/") == {}


def test_f_objects_that_fail_exit_1_each_printed_and_reported_by_the_client(
    cluster: Cluster, bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    contents = _make_tree(tmp_path / "data", 100)
    manifest = tmp_path / "data" / "manifest.jsonl"
    lines = [json.dumps({"path": str(tmp_path / "data" / rel), "key": rel}) for rel in contents]
    lines[10:10] = [json.dumps({"path": str(tmp_path / "data" / "part-1" / "gone.txt"), "key": "gone"}),
                    "{not json"]  # fmt: skip
    manifest.write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.jsonl"
    argv = _put_argv(cluster, bulkput_server, ["--manifest", str(manifest)], f"s3://{bulkput_bucket}/f/")
    done = _put([*argv, "--report", str(report)], tmp_path, bulkput_server)
    assert done.returncode == 1, done.stderr
    assert _stored(bulkput_server, bulkput_bucket, "f/") == _sizes(contents)
    gone = [line for line in done.stderr.splitlines() if line.startswith("error: f/gone:")]
    assert len(gone) == 1, done.stderr  # found by a worker, printed by the client
    assert "no such file" in gone[0] and f"host {socket.gethostname()}" in gone[0]
    assert any("line 12" in line for line in done.stderr.splitlines()), done.stderr  # the client's
    records = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(r.get("key", "") for r in records if r.get("status") == "failed") == ["", "f/gone"]
    assert (records[-1]["summary"]["stored"], records[-1]["summary"]["failed"]) == (100, 2)
