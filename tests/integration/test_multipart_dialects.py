"""Multipart uploads through ``bulkput put`` in every dialect, against ``bulkput serve`` and
``rclone serve s3``: sizes around the threshold, several parts with an odd tail, byte-exact
read-back and the whole file's MD5 in the object's metadata."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.config import KiB, MiB
from bulkput.local.digest import crc64_ecma
from bulkput.server.testing import ServerHandle

THRESHOLD = 256 * KiB
PART = 5 * MiB  # the S3 and BOS minimum; bulkput serve is as strict as the services
SIZES = {
    "empty.bin": 0,
    "one.bin": 1,
    "at-threshold.bin": THRESHOLD,
    "over-threshold.bin": THRESHOLD + 1,  # one part, smaller than the minimum (it is the last)
    "three-parts.bin": 2 * PART + 777,  # two full parts and an odd tail
}
MULTIPART = {"over-threshold.bin": 1, "three-parts.bin": 3}

# (scheme, --signature-version)
DIALECTS = [("bos", "v4"), ("oss", "v1"), ("oss", "v4"), ("s3", "v4")]


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multipart-src")
    for name, size in SIZES.items():
        (root / name).write_bytes(os.urandom(size))
    return root


def run_put(
    source: Path, dest: str, endpoint: str, env: dict[str, str], state: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, object]]]:
    report = state / "report.jsonl"
    done = subprocess.run(
        [
            sys.executable, "-m", "bulkput", "put", str(source), dest,
            "--endpoint", endpoint,
            "--multipart-threshold", str(THRESHOLD),
            "--part-size", str(PART),
            "--state-dir", str(state),
            "--report", str(report),
            "--progress", "none",
            *extra,
        ],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    lines = (
        [json.loads(line) for line in report.read_text().splitlines()] if report.exists() else []
    )
    return done, lines


async def read_back(
    dest: str, endpoint: str, env: dict[str, str], keys: list[str], signature_version: str = "v4"
) -> dict[str, tuple[bytes, dict[str, str], str | None]]:
    """``key -> (bytes, user metadata, etag)`` through the client, as a user would check."""
    _target, store = await open_destination(
        dest, endpoint=endpoint, env=env, signature_version=signature_version
    )
    try:
        found = {}
        for key in keys:
            info = await store.head_object(key)
            assert info is not None, f"{key} is missing"
            data = await store.get_object(key) if info.size else b""
            found[key] = (data, dict(info.metadata), info.etag)
        return found
    finally:
        await store.close()


def check_stored(
    source: Path,
    prefix: str,
    lines: list[dict[str, object]],
    stored: dict[str, tuple[bytes, dict[str, str], str | None]],
    multipart_etags: bool = True,
) -> None:
    results = {line["key"]: line for line in lines if "key" in line}
    for name in SIZES:
        key = f"{prefix}{name}"
        data = (source / name).read_bytes()
        body, metadata, etag = stored[key]
        assert body == data, f"{key}: stored bytes differ from the file"
        assert results[key]["status"] == "stored"
        assert results[key]["md5"] == hashlib.md5(data).hexdigest()
        if name in MULTIPART:
            assert metadata.get("md5") == hashlib.md5(data).hexdigest(), f"{key}: no md5 metadata"
            if multipart_etags:  # rclone's memory backend answers the whole MD5 instead
                assert etag is not None and etag.endswith(f"-{MULTIPART[name]}"), etag
        else:
            assert etag == hashlib.md5(data).hexdigest()
    summary = lines[-1]["summary"]
    assert isinstance(summary, dict) and summary["stored"] == len(SIZES)


@pytest.mark.parametrize(("scheme", "signature"), DIALECTS, ids=[f"{s}-{v}" for s, v in DIALECTS])
def test_multipart_sizes_in_every_dialect(
    bulkput_server: ServerHandle,
    bulkput_bucket: str,
    source_dir: Path,
    tmp_path: Path,
    scheme: str,
    signature: str,
) -> None:
    prefix = f"{scheme}-{signature}/"
    dest = f"{scheme}://{bulkput_bucket}/{prefix}"
    env = bulkput_server.env(scheme)
    bulkput_server.reset_stats()
    done, lines = run_put(
        source_dir,
        dest,
        bulkput_server.endpoint_url,
        env,
        tmp_path,
        "--signature-version",
        signature,
    )
    assert done.returncode == 0, done.stderr
    stored = asyncio.run(
        read_back(dest, bulkput_server.endpoint_url, env, [prefix + n for n in SIZES], signature)
    )
    check_stored(source_dir, prefix, lines, stored)
    stats = bulkput_server.stats
    for name in SIZES:
        parts = stats.part_uploads(prefix + name, bulkput_bucket)
        expected = MULTIPART.get(name, 0)
        assert parts == {n: 1 for n in range(1, expected + 1)}, f"{name}: parts sent {parts}"
        assert stats.puts(prefix + name, bulkput_bucket) == 1
    assert stats.count("AbortMultipartUpload") == 0

    # The same command again: the job was complete, so it is a new upload (put copies, as
    # aws s3 cp): every object and part is sent once more (resuming: test_resume_store.py).
    bulkput_server.reset_stats()
    again, lines = run_put(
        source_dir,
        dest,
        bulkput_server.endpoint_url,
        env,
        tmp_path,
        "--signature-version",
        signature,
    )
    assert again.returncode == 0, again.stderr
    stats = bulkput_server.stats
    for name in SIZES:
        expected = MULTIPART.get(name, 0)
        assert stats.part_uploads(prefix + name, bulkput_bucket) == {
            n: 1 for n in range(1, expected + 1)
        }, name
        assert stats.puts(prefix + name, bulkput_bucket) == 1
    summary = lines[-1]["summary"]
    assert isinstance(summary, dict) and summary["stored"] == len(SIZES)


def test_multipart_sizes_against_rclone(
    rclone_server: object, source_dir: Path, tmp_path: Path
) -> None:
    from tests.fixtures.rclone import RcloneServer

    assert isinstance(rclone_server, RcloneServer)
    bucket = "h7-multipart"
    env = {
        "AWS_ACCESS_KEY_ID": rclone_server.access_key,
        "AWS_SECRET_ACCESS_KEY": rclone_server.secret_key,
        "AWS_REGION": rclone_server.region,
    }

    async def make_bucket() -> None:
        _t, store = await open_destination(
            f"s3://{bucket}/", endpoint=rclone_server.endpoint, env=env
        )
        try:
            await store.create_bucket()
        finally:
            await store.close()

    asyncio.run(make_bucket())
    dest = f"s3://{bucket}/rclone/"
    done, lines = run_put(source_dir, dest, rclone_server.endpoint, env, tmp_path)
    assert done.returncode == 0, done.stderr
    stored = asyncio.run(
        read_back(dest, rclone_server.endpoint, env, [f"rclone/{n}" for n in SIZES])
    )
    check_stored(source_dir, "rclone/", lines, stored, multipart_etags=False)


@pytest.mark.parametrize("signature", ["v1", "v4"])
async def test_oss_crc64_of_the_whole_object_is_checked(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, signature: str
) -> None:
    from bulkput.config import TransferConfig
    from bulkput.items import UploadItem
    from bulkput.job.headers import HeaderBuilder
    from bulkput.job.multipart import TransferContext, upload_file
    from bulkput.local.digest import crc64_ecma

    data = os.urandom(3 * 100 * KiB + 99)
    path = tmp_path / "crc.bin"
    path.write_bytes(data)
    info = path.stat()
    _t, store = await open_destination(
        f"oss://{bulkput_bucket}/",
        endpoint=bulkput_server.endpoint_url,
        env=bulkput_server.env("oss"),
        signature_version=signature,
    )
    try:
        item = UploadItem(path=str(path), key="crc/object.bin")
        result = await upload_file(
            TransferContext(store, TransferConfig(part_size=100 * KiB)),
            item,
            info.st_size,
            info.st_mtime_ns,
            HeaderBuilder().for_item(item),
        )
        assert await store.get_object("crc/object.bin") == data
    finally:
        await store.close()
    # The server's x-oss-hash-crc64ecma came back and matched the CRC computed while reading.
    assert result.crc64 == crc64_ecma(data)
    assert (result.parts_sent, result.md5_hex) == (4, hashlib.md5(data).hexdigest())


@pytest.mark.parametrize(("scheme", "signature"), DIALECTS, ids=[f"{s}-{v}" for s, v in DIALECTS])
def test_multipart_sizes_in_every_dialect_on_the_directory_backend(
    bulkput_server_factory: Callable[..., ServerHandle],
    source_dir: Path,
    tmp_path: Path,
    scheme: str,
    signature: str,
) -> None:
    # The directory backend keeps parts in SQLite: OSS parts carry a CRC-64, and half of all
    # CRC-64s do not fit a signed 64-bit integer (such uploads used to fail with HTTP 500).
    # The first part of three-parts.bin is drawn until its CRC-64 is such a value.
    source = tmp_path / "source"
    shutil.copytree(source_dir, source)
    while crc64_ecma(first_part := os.urandom(PART)) < 1 << 63:
        pass
    rest = os.urandom(SIZES["three-parts.bin"] - PART)
    (source / "three-parts.bin").write_bytes(first_part + rest)
    server = bulkput_server_factory(memory=False, dir=tmp_path / "store", buckets=["dir-bucket"])
    dest = f"{scheme}://dir-bucket/p/"
    env = server.env(scheme)
    state = tmp_path / "state"
    state.mkdir()
    done, lines = run_put(
        source, dest, server.endpoint_url, env, state, "--signature-version", signature
    )
    assert done.returncode == 0, done.stderr
    stored = asyncio.run(
        read_back(dest, server.endpoint_url, env, ["p/" + n for n in SIZES], signature)
    )
    check_stored(source, "p/", lines, stored)
