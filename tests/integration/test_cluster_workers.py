"""``bulkput put --dask`` against a real cluster whose workers are not the client: a
``dask scheduler`` and two ``dask worker`` processes started as docs/scale-out.md says
(``--preload bulkput.cluster``), each worker with its own HOME and working directory, and
credentials only where the test puts them."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from bulkput.server.testing import ServerHandle  # noqa: E402
from tests.fixtures.dask_cluster import dask_scheduler, dask_worker  # noqa: E402

pytestmark = pytest.mark.slow

# Variables that would hand the client (or a worker) credentials or settings the test did
# not give it.
_SCRUBBED_PREFIXES = ("AWS_", "BCE_", "OSS_", "ALIBABA_CLOUD_", "XDG_")


def _clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    # absolute: each process has its own working directory
    paths = filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))
    env.update(
        HOME=str(home),
        PYTHONPATH=os.pathsep.join(os.path.abspath(p) for p in paths),
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",  # never ask an instance-metadata address
        **extra,
    )
    return env


@dataclass
class RealCluster:
    address: str
    worker_dirs: list[Path]


@pytest.fixture(scope="module")
def real_cluster(
    bulkput_server: ServerHandle, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RealCluster]:
    """Workers with the store's credentials in their environment; the client gets none."""
    root = tmp_path_factory.mktemp("cluster")
    with contextlib.ExitStack() as stack:
        address = stack.enter_context(dask_scheduler(root, _clean_env(root)))
        worker_dirs = []
        for n in range(2):
            home = root / f"worker-{n}"
            (home / "cwd").mkdir(parents=True)
            worker_dirs.append(home / "cwd")
            env = _clean_env(home, XDG_CACHE_HOME=str(home / "cache"), **bulkput_server.env("s3"))
            stack.enter_context(dask_worker(f"worker-{n}", address, cwd=home / "cwd", env=env,
                                            nthreads=1, local_dir=home / "dask",
                                            preload="bulkput.cluster"))  # fmt: skip
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield RealCluster(address, worker_dirs)


def _put(cwd: Path, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "put", *argv], cwd=cwd, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def _tree(root: Path, count: int) -> dict[str, bytes]:
    """``count`` files under ``root/data``, keyed by their path relative to ``root``."""
    contents = {}
    for i in range(count):
        rel = f"data/d{i % 4}/f{i:04d}.txt"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        contents[rel] = f"object {i}\n".encode() * (1 + i % 5)
        (root / rel).write_bytes(contents[rel])
    return contents


def _stored(server: ServerHandle, bucket: str, contents: dict[str, bytes], prefix: str) -> None:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
    )  # fmt: skip
    listed = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            listed[obj["Key"]] = obj["Size"]
    assert listed == {prefix + key: len(data) for key, data in contents.items()}
    for key in list(contents)[::37]:
        assert s3.get_object(Bucket=bucket, Key=prefix + key)["Body"].read() == contents[key]
    for key in contents:
        assert server.stats.puts(prefix + key, bucket=bucket) == 1


def test_worker_credentials_the_client_has_none_and_the_workers_bring_their_own(
    real_cluster: RealCluster, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    contents = _tree(tmp_path, 400)
    # absolute lines: keys relative to their common folder, tmp_path/data
    keyed = {key.removeprefix("data/"): data for key, data in contents.items()}
    manifest = tmp_path / "m.txt"
    manifest.write_text("".join(f"{tmp_path / key}\n" for key in contents))
    client_env = _clean_env(tmp_path / "client-home")  # no credentials anywhere
    argv = ["--manifest", str(manifest), f"s3://{bulkput_bucket}/w/", "--endpoint",
            bulkput_server.endpoint_url, "--dask", real_cluster.address, "--partition-size",
            "50", "--quiet"]  # fmt: skip

    refused = _put(tmp_path, argv, client_env)
    assert refused.returncode == 2, refused.stderr
    (line,) = refused.stderr.splitlines()
    assert line.startswith("bulkput put: no s3 credentials found") and "--worker-credentials" in line
    assert not any(bulkput_server.stats.puts(f"w/{key}", bucket=bulkput_bucket) for key in keyed)

    done = _put(tmp_path, [*argv, "--worker-credentials"], client_env)
    assert done.returncode == 0, done.stderr
    _stored(bulkput_server, bulkput_bucket, keyed, "w/")


def test_relative_manifest_and_relative_lines_reach_workers_with_other_directories(
    real_cluster: RealCluster, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    lists = tmp_path / "lists"
    contents = _tree(lists, 120)
    (lists / "m.txt").write_text("".join(f"{key}\n" for key in contents))
    client = tmp_path / "client"  # the client's own cwd: neither the manifest's nor a worker's
    client.mkdir()
    env = _clean_env(tmp_path / "client-home", **bulkput_server.env("s3"))
    done = _put(client, [
        "--manifest", "../lists/m.txt", f"s3://{bulkput_bucket}/r/", "--endpoint",
        bulkput_server.endpoint_url, "--dask", real_cluster.address, "--partition-size", "40",
        "--quiet",
    ], env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _stored(bulkput_server, bulkput_bucket, contents, "r/")  # keys as written in the lines


def test_the_partitions_a_worker_runs_reuse_its_connections(
    real_cluster: RealCluster, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    contents = _tree(tmp_path, 600)
    (tmp_path / "m.txt").write_text("".join(f"{key}\n" for key in contents))
    env = _clean_env(tmp_path / "client-home", **bulkput_server.env("s3"))
    bulkput_server.reset_stats()
    concurrency = 4  # pinned: a worker's store has at most this many connections
    done = _put(tmp_path, [
        "--manifest", "m.txt", f"s3://{bulkput_bucket}/c/", "--endpoint",
        bulkput_server.endpoint_url, "--dask", real_cluster.address, "--partition-size", "50",
        "--concurrency", str(concurrency), "--quiet",
    ], env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    # 12 partitions on 2 workers: each worker's pool serves all its partitions (one pool per
    # partition would be 12 pools, at least 12 connections)
    assert 2 <= bulkput_server.stats.connections <= 2 * concurrency
    _stored(bulkput_server, bulkput_bucket, contents, "c/")  # (its reads connect too)


def test_the_client_of_a_dask_job_imports_no_http_client(
    real_cluster: RealCluster, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    contents = _tree(tmp_path, 10)
    (tmp_path / "m.txt").write_text("".join(f"{key}\n" for key in contents))
    env = _clean_env(tmp_path / "client-home", **bulkput_server.env("s3"))
    argv = ["put", "--manifest", "m.txt", f"s3://{bulkput_bucket}/i/", "--endpoint",
            bulkput_server.endpoint_url, "--dask", real_cluster.address, "--quiet"]  # fmt: skip
    probe = ("import atexit, runpy, sys\n"
             "atexit.register(lambda: print('aiohttp' in sys.modules))\n"
             f"sys.argv = ['bulkput', *{argv!r}]\n"
             "runpy.run_module('bulkput', run_name='__main__')\n")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False"]  # every request is a worker's
    _stored(bulkput_server, bulkput_bucket, contents, "i/")


def test_a_worker_that_cannot_read_a_file_names_its_host_and_directory(
    real_cluster: RealCluster, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path,
) -> None:  # fmt: skip
    contents = _tree(tmp_path, 6)
    (tmp_path / "m.txt").write_text("".join(f"{key}\n" for key in [*contents, "data/gone.txt"]))
    env = _clean_env(tmp_path / "client-home", **bulkput_server.env("s3"))
    done = _put(tmp_path, [
        "--manifest", "m.txt", f"s3://{bulkput_bucket}/g/", "--endpoint",
        bulkput_server.endpoint_url, "--dask", real_cluster.address, "--report", "report.jsonl",
        "--quiet",
    ], env)  # fmt: skip
    assert done.returncode == 1, done.stderr
    _stored(bulkput_server, bulkput_bucket, contents, "g/")
    records = map(json.loads, (tmp_path / "report.jsonl").read_text().splitlines())
    (record,) = [r for r in records if r.get("status") == "failed"]
    where = [f"(on host {socket.gethostname()}, working directory {cwd})"
             for cwd in real_cluster.worker_dirs]  # fmt: skip
    message = record["message"]
    # one line: the key, the path, the cause, and the worker's host and working directory
    assert message.startswith(f"g/data/gone.txt: cannot read {tmp_path}/data/gone.txt: no such file ")
    assert message.endswith(tuple(where)), message
    assert f"error: {message}\n" in done.stderr


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ([], "--worker-credentials goes with --dask"),
        (["--dask", "tcp://127.0.0.1:1", "--access-key", "AK", "--secret-key", "SK"],
         "--worker-credentials and --access-key/--secret-key do not go together"),
    ],
)
def test_worker_credentials_without_dask_or_with_keys_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], says: str
) -> None:
    from bulkput.cli import main

    (tmp_path / "a.txt").write_text("a")
    code = main(["put", str(tmp_path / "a.txt"), "s3://photos/", "--worker-credentials", *extra])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"bulkput put: {says}") and err.count("\n") == 1, err
