"""The Python API: `Uploader` yields results as objects finish, from sync or async inputs."""

from __future__ import annotations

import os
from pathlib import Path

from bulkput.api import JobSpec, StoreSettings, TransferConfig, Uploader
from bulkput.items import Status, UploadItem
from bulkput.server.faults import FaultConfig


async def test_uploader_paths_pairs_items_and_async_sources(bulkput_server, bulkput_bucket, tmp_path: Path) -> None:
    files = {}
    for n in range(6):
        path = tmp_path / f"f{n}.bin"
        path.write_bytes(os.urandom(100 + n))
        files[n] = path
    settings = StoreSettings(
        endpoint=bulkput_server.endpoint_url, credentials=bulkput_server.credentials[0]
    )
    async with Uploader(JobSpec(f"oss://{bulkput_bucket}/api", store=settings)) as up:
        results = [r async for r in up.upload([
            str(files[0]),
            (str(files[1]), "pairs/one.bin"),
            UploadItem(str(files[2]), "absolute/key.bin"),
            str(tmp_path / "missing"),
        ])]  # fmt: skip
        assert up.summary is not None and up.summary.exit_code == 1

        async def more():
            for n in (3, 4, 5):
                yield str(files[n])

        again = [r async for r in up.upload(more())]
        assert up.summary.exit_code == 0
        stored = {r.key: r for r in results + again if r.status is Status.STORED}
        assert set(stored) == {
            "api/f0.bin", "api/pairs/one.bin", "absolute/key.bin", "api/f3.bin", "api/f4.bin", "api/f5.bin"
        }  # fmt: skip
        assert await up.store.get_object("api/pairs/one.bin") == files[1].read_bytes()
        assert await up.store.get_object("absolute/key.bin") == files[2].read_bytes()
        [failed] = [r for r in results if r.status is Status.FAILED]
        assert failed.key == "api/missing" and "no such file" in (failed.message or "")


async def test_uploader_stop_counts_the_objects_it_never_started(bulkput_server_factory, tmp_path: Path) -> None:
    """``Uploader.stop()`` is what SIGINT does: the summary says interrupted, how many were not
    started (each one has its result), and the objects reported stored are in the store."""
    paths = []
    for n in range(300):
        path = tmp_path / f"f{n}.bin"
        path.write_bytes(b"%d" % n)
        paths.append(str(path))
    server = bulkput_server_factory(  # every PUT 100 ms late: the stop comes mid-job
        buckets=["stop"], faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=100)
    )
    settings = StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0])
    results = []
    spec = JobSpec("s3://stop/stop", store=settings, transfer=TransferConfig(concurrency=8))
    async with Uploader(spec) as up:
        async for result in up.upload(paths):
            results.append(result)
            if len(results) == 5:
                up.stop()
        summary = up.summary
        assert summary is not None and summary.interrupted and summary.exit_code == 130
        by_status = {status: [r for r in results if r.status is status] for status in Status}
        assert summary.not_started == len(by_status[Status.NOT_STARTED]) > 0
        assert summary.stored == len(by_status[Status.STORED]) >= 5
        assert summary.stored + summary.not_started + summary.interrupted_objects == 300
        assert summary.to_dict()["not_started"] == summary.not_started
        listed = {info.key async for info in up.store.list_objects("stop/")}
        assert {r.key for r in by_status[Status.STORED]} == listed
