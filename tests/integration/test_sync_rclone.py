"""``sync`` against a real S3 server, ``rclone serve s3``, and interplay with rclone's mtime."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest

from bulkput.api import open_destination, sync_dir
from bulkput.config import RetryPolicy, TransferConfig
from bulkput.items import ObjectResult, Status
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.remote.client import HttpObjectStore
from bulkput.remote.store import ObjectInfo
from tests.fixtures.rclone import RcloneServer

CONFIG = TransferConfig(concurrency=8, max_open_files=8, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
PAST = 1_600_000_000
_buckets = itertools.count(1)

TREE = {
    "a.txt": b"alpha",
    "a-b/c.bin": bytes(range(256)),
    "a/b.txt": b"nested",
    "sp ace/été.txt": b"unicode",
    "z/file": b"zz",
}


class Collect(Subscriber):
    def __init__(self) -> None:
        self.results: list[ObjectResult] = []

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)

    def keys(self, status: Status) -> list[str]:
        return sorted(r.key for r in self.results if r.status is status)


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (PAST, PAST))


def store_options(server: RcloneServer) -> dict[str, object]:
    return dict(endpoint=server.endpoint, access_key=server.access_key, secret_key=server.secret_key,
                region=server.region, config=CONFIG)


async def new_bucket(server: RcloneServer) -> str:
    name = f"sync-bucket-{next(_buckets)}"
    _, store = await open_destination(f"s3://{name}/", **store_options(server))  # type: ignore[arg-type]
    try:
        await store.create_bucket()
    finally:
        await store.close()
    return name


async def listing(server: RcloneServer, dest: str) -> dict[str, ObjectInfo]:
    target, store = await open_destination(dest, **store_options(server))  # type: ignore[arg-type]
    try:
        return {info.key: info async for info in store.list_objects(target.key_for(""))}
    finally:
        await store.close()


async def contents(server: RcloneServer, dest: str) -> dict[str, bytes]:
    target, store = await open_destination(dest, **store_options(server))  # type: ignore[arg-type]
    try:
        prefix = target.key_for("")
        keys = [info.key async for info in store.list_objects(prefix)]
        return {key[len(prefix):]: await store.get_object(key) for key in keys}
    finally:
        await store.close()


async def sync(server: RcloneServer, src: Path, dest: str, **options: object) -> tuple[JobSummary, Collect]:
    collect = Collect()
    summary = await sync_dir(src, dest, subscribers=[collect], **store_options(server), **options)  # type: ignore[arg-type]
    return summary, collect


async def test_rclone_first_sync_uploads_all_second_uploads_nothing(
    tmp_path: Path, rclone_server: RcloneServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, TREE)
    dest = f"s3://{await new_bucket(rclone_server)}/b"
    summary, _ = await sync(rclone_server, tmp_path, dest)
    assert (summary.exit_code, summary.stored) == (0, len(TREE))
    assert await contents(rclone_server, dest) == TREE
    before = await listing(rclone_server, dest)

    # rclone lists the stored mtime as LastModified: the re-sync decides from the listing alone
    heads: list[str] = []
    real_head = HttpObjectStore.head_object

    async def counting_head(self: HttpObjectStore, key: str) -> ObjectInfo | None:
        heads.append(key)
        return await real_head(self, key)

    monkeypatch.setattr(HttpObjectStore, "head_object", counting_head)
    summary, collect = await sync(rclone_server, tmp_path, dest)
    assert (summary.exit_code, summary.stored, summary.skipped) == (0, 0, len(TREE))
    assert collect.keys(Status.STORED) == [] and heads == []
    assert await listing(rclone_server, dest) == before  # same ETags, same LastModified: no PUT


async def test_rclone_touch_grow_delete_and_max_delete(tmp_path: Path, rclone_server: RcloneServer) -> None:
    make_tree(tmp_path, TREE)
    dest = f"s3://{await new_bucket(rclone_server)}/t"
    await sync(rclone_server, tmp_path, dest)

    os.utime(tmp_path / "a.txt")
    (tmp_path / "z/file").write_bytes(b"zz grown")
    (tmp_path / "a/b.txt").unlink()
    (tmp_path / "a-b/c.bin").unlink()
    summary, _ = await sync(rclone_server, tmp_path, dest, delete=True, max_delete=1)
    assert summary.exit_code == 3 and summary.stored == 0
    assert set(await contents(rclone_server, dest)) == set(TREE)

    summary, collect = await sync(rclone_server, tmp_path, dest, delete=True)
    assert summary.exit_code == 0
    assert collect.keys(Status.STORED) == ["t/a.txt", "t/z/file"]
    assert collect.keys(Status.DELETED) == ["t/a-b/c.bin", "t/a/b.txt"]
    assert await contents(rclone_server, dest) == {"a.txt": b"alpha", "sp ace/été.txt": b"unicode",
                                                   "z/file": b"zz grown"}
    summary, _ = await sync(rclone_server, tmp_path, dest, delete=True)
    assert (summary.stored, summary.deleted, summary.failed) == (0, 0, 0)
