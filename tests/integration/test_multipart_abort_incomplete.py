"""``bulkput abort-incomplete DEST``: lists, and on demand aborts, leftover multipart uploads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from bulkput.api import open_destination
from bulkput.remote.store import ObjectHeaders
from bulkput.server.testing import ServerHandle


async def _uploads(server: ServerHandle, dest: str) -> list[tuple[str, str]]:
    _t, store = await open_destination(dest, endpoint=server.endpoint_url, env=server.env("oss"))
    try:
        return [(u.key, u.upload_id) async for u in store.list_multipart_uploads("")]
    finally:
        await store.close()


async def _start_uploads(server: ServerHandle, dest: str, keys: list[str]) -> None:
    _t, store = await open_destination(dest, endpoint=server.endpoint_url, env=server.env("oss"))
    try:
        for key in keys:
            upload_id = await store.create_multipart_upload(key, ObjectHeaders())
            await store.upload_part(key, upload_id, 1, b"part one", content_md5=None)
    finally:
        await store.close()


def _abort(server: ServerHandle, dest: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "abort-incomplete", dest, "--endpoint", server.endpoint_url, *extra],
        env={**os.environ, **server.env("oss")},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize("signature", ["v1", "v4"])
def test_abort_incomplete_lists_then_aborts_only_under_the_prefix(
    bulkput_server: ServerHandle, bulkput_bucket: str, signature: str
) -> None:
    bucket_url = f"oss://{bulkput_bucket}/"
    asyncio.run(
        _start_uploads(bulkput_server, bucket_url, ["left/a.bin", "left/b c.bin", "keep/x.bin"])
    )
    dest = f"oss://{bulkput_bucket}/left/"

    kept = _abort(bulkput_server, dest, "--older-than", "1h", "--signature-version", signature)
    assert kept.returncode == 0, kept.stderr
    assert "0 aborted, 2 kept" in kept.stdout
    assert len(asyncio.run(_uploads(bulkput_server, bucket_url))) == 3

    dry = _abort(bulkput_server, dest, "--dry-run", "--signature-version", signature)
    assert dry.returncode == 0, dry.stderr
    assert "left/a.bin" in dry.stdout and "left/b c.bin" in dry.stdout
    assert "keep/x.bin" not in dry.stdout
    assert "2 would abort" in dry.stdout
    assert len(asyncio.run(_uploads(bulkput_server, bucket_url))) == 3

    done = _abort(bulkput_server, dest, "--signature-version", signature)
    assert done.returncode == 0, done.stderr
    assert "2 aborted" in done.stdout
    assert [key for key, _ in asyncio.run(_uploads(bulkput_server, bucket_url))] == ["keep/x.bin"]


def test_abort_incomplete_with_wrong_credentials_exits_3(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulkput", "abort-incomplete", f"s3://{bulkput_bucket}/",
         "--endpoint", bulkput_server.endpoint_url],
        env={**os.environ, "AWS_ACCESS_KEY_ID": bulkput_server.access_key,
             "AWS_SECRET_ACCESS_KEY": "not-the-secret"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 3
    assert "SignatureDoesNotMatch" in done.stderr
    assert "not-the-secret" not in done.stderr + done.stdout
