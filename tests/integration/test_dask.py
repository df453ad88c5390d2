"""The Dask path: a LocalCluster with 3 worker processes runs the shards of one job."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

from bulkput.config import TransferConfig  # noqa: E402
from bulkput.job.cluster import DaskJobResult, ShardProgress, run_put_on_dask  # noqa: E402
from bulkput.job.spec import JobSpec, JournalSettings, PutSource, StoreSettings  # noqa: E402
from bulkput.server.faults import FaultConfig  # noqa: E402
from bulkput.server.testing import ServerHandle  # noqa: E402

OBJECTS = 3000


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    with distributed.LocalCluster(
        n_workers=3, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, silence_logs=40,
    ) as local, distributed.Client(local) as client:  # fmt: skip
        yield client


def _make_files(root: Path, count: int) -> tuple[Path, dict[str, bytes]]:
    contents: dict[str, bytes] = {}
    lines = []
    for i in range(count):
        rel = f"part-{i % 10}/obj-{i:05d}.txt"
        data = f"object {i}\n".encode() * (1 + i % 7)
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        contents[rel] = data
        lines.append(json.dumps({"path": str(path), "key": rel}))
    manifest = root / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest, contents


def _run(
    server: ServerHandle, bucket: str, manifest: Path, tmp_path: Path, client: distributed.Client,
    progress: list[list[ShardProgress]],
) -> DaskJobResult:  # fmt: skip
    source = PutSource(manifest=str(manifest))
    spec = JobSpec(
        f"s3://{bucket}/",
        store=StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0]),
        transfer=TransferConfig(concurrency=8),
        journal=JournalSettings(source=source.describe(), state_dir=str(tmp_path / "state")),
    )
    return run_put_on_dask(
        spec, source, scheduler=client, shards=3, report_dir=tmp_path / "reports",
        on_progress=progress.append, poll_interval=0.5,
    )  # fmt: skip


def _records(path: str) -> list[dict]:
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the kill
    return records


def _assert_all_stored_once(result: DaskJobResult, server: ServerHandle, bucket: str,
                            contents: dict[str, bytes]) -> None:  # fmt: skip
    summary = result.summary
    assert summary.stored + summary.skip_reasons.get("journal", 0) == OBJECTS
    assert summary.failed == 0
    assert summary.exit_code == 0
    # Each shard's last attempt accounts for every key of the shard exactly once.
    last_attempts: dict[str, str] = {}
    for path in sorted(result.report_files, key=lambda p: int(p.rsplit("attempt-", 1)[1][:-6])):
        last_attempts[path.rsplit(".attempt-", 1)[0]] = path
    accounted = [
        r["key"] for path in last_attempts.values() for r in _records(path)
        if r.get("status") == "stored" or r.get("reason") == "journal"
    ]  # fmt: skip
    assert len(accounted) == len(set(accounted)) == OBJECTS
    # No object reported stored by one attempt was sent again by a later one.
    stored_lines = [r["key"] for p in result.report_files for r in _records(p) if r.get("status") == "stored"]
    assert len(stored_lines) == len(set(stored_lines)), "an object reported stored was re-sent"
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
    )  # fmt: skip
    listed = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            listed[obj["Key"]] = obj["Size"]
    assert listed == {key: len(data) for key, data in contents.items()}
    for key in list(contents)[::150]:
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == contents[key]


def test_local_cluster_uploads_3000_objects(
    cluster: distributed.Client, bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    manifest, contents = _make_files(tmp_path / "data", OBJECTS)
    progress: list[list[ShardProgress]] = []
    result = _run(bulkput_server, bulkput_bucket, manifest, tmp_path, cluster, progress)
    _assert_all_stored_once(result, bulkput_server, bulkput_bucket, contents)
    assert result.summary.stored == OBJECTS
    assert sorted(result.shard_exit_codes.items()) == [(0, 0), (1, 0), (2, 0)]
    assert len(result.report_files) == 3, "one attempt per shard"
    assert progress and sum(p.stored for p in progress[-1]) == OBJECTS
    for key in contents:
        assert bulkput_server.stats.puts(key, bucket=bulkput_bucket) == 1
    # the shard reports name their job, shard and attempt: report merge checks them as one job
    from bulkput.cli import main

    assert main(["report", "merge", *result.report_files]) == 0
    assert main(["report", "merge", *result.report_files[:2]]) == 3


def test_killing_a_worker_mid_job_still_stores_every_object_once(
    cluster: distributed.Client, bulkput_server_factory, tmp_path: Path
) -> None:
    # A little latency per PUT keeps the job running long enough to kill a worker in the middle.
    server = bulkput_server_factory(
        buckets=["dask-kill"], faults=FaultConfig(mix=("latency",), rate=1.0, latency_ms=8, seed=3)
    )
    manifest, contents = _make_files(tmp_path / "data", OBJECTS)
    outcome: dict[str, object] = {}

    def job() -> None:
        try:
            outcome["result"] = _run(server, "dask-kill", manifest, tmp_path, cluster, [])
        except BaseException as exc:  # surfaced by the assertion below
            outcome["error"] = exc

    runner = threading.Thread(target=job)
    runner.start()
    # Kill once every shard has reported a stored object: its journal has committed a batch, so
    # whichever shard dies has something to resume from (a PUT count alone raced the journal's
    # first commit on a fast machine).
    reports = tmp_path / "reports"

    def shards_with_stored() -> int:
        files = reports.glob("*.attempt-1.jsonl") if reports.is_dir() else []
        return sum(any(r.get("status") == "stored" for r in _records(str(f))) for f in files)

    deadline = time.monotonic() + 120
    while shards_with_stored() < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.stats.count("PutObject") < OBJECTS, "the job ended before the kill"
    pids = cluster.run(os.getpid)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=240)
    assert not runner.is_alive()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert isinstance(result, DaskJobResult)
    _assert_all_stored_once(result, server, "dask-kill", contents)
    assert len(result.report_files) > 3, "the killed worker's shard ran again"
    assert result.summary.skip_reasons.get("journal", 0) > 0, "the re-run resumed from the journal"


def test_put_command_with_dask_flag_runs_the_shards_and_merges_reports(
    cluster: distributed.Client, bulkput_server: ServerHandle, bulkput_bucket: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from bulkput.cli import main

    manifest, contents = _make_files(tmp_path / "data", 300)
    for name, value in bulkput_server.env("s3").items():
        monkeypatch.setenv(name, value)
    code = main([
        "put", "--manifest", str(manifest), f"s3://{bulkput_bucket}/", "--endpoint",
        bulkput_server.endpoint_url, "--state-dir", str(tmp_path / "state"),
        "--dask", cluster.scheduler.address, "--shards", "4", "--report-dir", str(tmp_path / "r"),
    ])  # fmt: skip
    assert code == 0
    reports = sorted((tmp_path / "r").glob("*.jsonl"))
    assert len(reports) == 4
    stored = [r["key"] for p in reports for r in _records(str(p)) if r.get("status") == "stored"]
    assert sorted(stored) == sorted(contents)
    err = capsys.readouterr().err
    assert '"progress"' in err and bulkput_server.secret_key not in err
