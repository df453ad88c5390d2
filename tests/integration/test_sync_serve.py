"""``sync`` against ``bulkput serve`` in each dialect: the store's own counters say what was PUT."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bulkput.api import open_destination, sync_dir
from bulkput.config import RetryPolicy, TransferConfig
from bulkput.items import ObjectResult, Status
from bulkput.job.shard import Shard
from bulkput.job.subscriber import Subscriber
from bulkput.job.summary import JobSummary
from bulkput.local.filters import Filter
from bulkput.server.testing import ServerHandle

CONFIG = TransferConfig(concurrency=8, max_open_files=8, retry=RetryPolicy(max_attempts=3, base_delay=0.01))
PAST = 1_600_000_000  # files last changed long before any upload: no HEAD needed to skip them

TREE = {
    "a.txt": b"alpha",
    "a-b/c.bin": bytes(range(256)) * 4,
    "a/b.txt": b"nested",
    "dir with space/été.txt": "unicode 😀".encode(),
    "empty": b"",
    "z/deep/er/file": b"deep",
}


def make_tree(root: Path, files: dict[str, bytes], mtime: int | None = PAST) -> None:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))


class Collect(Subscriber):
    def __init__(self) -> None:
        self.results: list[ObjectResult] = []

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)

    def keys(self, status: Status) -> list[str]:
        return sorted(r.key for r in self.results if r.status is status)


async def sync(server: ServerHandle, src: Path, dest: str, **options: object) -> tuple[JobSummary, Collect]:
    collect = Collect()
    summary = await sync_dir(src, dest, endpoint=server.endpoint_url, access_key=server.access_key,
                             secret_key=server.secret_key, config=CONFIG, subscribers=[collect],
                             **options)  # type: ignore[arg-type]
    return summary, collect


async def stored(server: ServerHandle, dest: str) -> dict[str, bytes]:
    target, store = await open_destination(dest, endpoint=server.endpoint_url, access_key=server.access_key,
                                           secret_key=server.secret_key, config=CONFIG)
    try:
        prefix = target.key_for("")
        keys = [info.key async for info in store.list_objects(prefix)]
        return {key[len(prefix):]: await store.get_object(key) for key in keys}
    finally:
        await store.close()


def puts_under(server: ServerHandle, bucket: str, prefix: str) -> dict[str, int]:
    return {name.split("/", 1)[1]: count for name, count in server.stats.puts_by_key.items()
            if name.startswith(f"{bucket}/{prefix}")}


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
async def test_first_sync_uploads_all_then_a_second_makes_no_put(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str, scheme: str
) -> None:
    make_tree(tmp_path, TREE)
    dest = f"{scheme}://{bulkput_bucket}/backup"
    summary, _ = await sync(bulkput_server, tmp_path, dest)
    assert (summary.exit_code, summary.stored, summary.failed) == (0, len(TREE), 0)
    assert await stored(bulkput_server, dest) == TREE
    first_puts = puts_under(bulkput_server, bulkput_bucket, "backup/")
    assert first_puts == {f"backup/{key}": 1 for key in TREE}

    heads_before = bulkput_server.stats.count("HeadObject")
    summary, collect = await sync(bulkput_server, tmp_path, dest)
    assert (summary.exit_code, summary.stored, summary.skipped) == (0, 0, len(TREE))
    assert summary.skip_reasons == {"unchanged": len(TREE)}
    assert puts_under(bulkput_server, bulkput_bucket, "backup/") == first_puts
    assert bulkput_server.stats.count("HeadObject") == heads_before  # settled from the listing
    assert collect.keys(Status.SKIPPED) == sorted(f"backup/{key}" for key in TREE)


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
async def test_touch_grow_and_delete_are_each_picked_up(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str, scheme: str
) -> None:
    make_tree(tmp_path, TREE)
    dest = f"{scheme}://{bulkput_bucket}/p"
    await sync(bulkput_server, tmp_path, dest)

    os.utime(tmp_path / "a.txt")  # touched: same bytes, mtime now (after the upload)
    with open(tmp_path / "a/b.txt", "ab") as handle:  # grown
        handle.write(b" and more")
    os.utime(tmp_path / "a/b.txt", (PAST, PAST))  # size alone must tell
    (tmp_path / "z/deep/er/file").unlink()  # deleted
    summary, collect = await sync(bulkput_server, tmp_path, dest, delete=True)
    assert summary.exit_code == 0
    assert collect.keys(Status.STORED) == ["p/a.txt", "p/a/b.txt"]
    assert collect.keys(Status.DELETED) == ["p/z/deep/er/file"]
    assert (summary.stored, summary.deleted, summary.skipped) == (2, 1, len(TREE) - 3)
    expected = dict(TREE, **{"a/b.txt": b"nested and more"})
    del expected["z/deep/er/file"]
    assert await stored(bulkput_server, dest) == expected
    puts = puts_under(bulkput_server, bulkput_bucket, "p/")
    assert puts["p/a.txt"] == 2 and puts["p/a/b.txt"] == 2 and puts["p/a-b/c.bin"] == 1

    # and the touched file is now unchanged: the stored mtime matches after one HEAD at most
    summary, _ = await sync(bulkput_server, tmp_path, dest, delete=True)
    assert (summary.stored, summary.deleted, summary.exit_code) == (0, 0, 0)


async def test_fresh_files_are_confirmed_by_head_not_reuploaded(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    make_tree(tmp_path, {"new1": b"1", "new2": b"22"}, mtime=None)  # mtime: now, as uploaded
    dest = f"s3://{bulkput_bucket}/fresh"
    await sync(bulkput_server, tmp_path, dest)
    heads_before = bulkput_server.stats.count("HeadObject")
    summary, _ = await sync(bulkput_server, tmp_path, dest)
    assert (summary.stored, summary.skipped) == (0, 2)
    assert bulkput_server.stats.count("HeadObject") - heads_before <= 2
    assert puts_under(bulkput_server, bulkput_bucket, "fresh/") == {"fresh/new1": 1, "fresh/new2": 1}


async def test_delete_guarded_by_max_delete(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    make_tree(tmp_path, TREE)
    dest = f"oss://{bulkput_bucket}/m"
    await sync(bulkput_server, tmp_path, dest)
    for key in ("a.txt", "a/b.txt", "empty"):
        (tmp_path / key).unlink()
    make_tree(tmp_path, {"added": b"+"})
    summary, _ = await sync(bulkput_server, tmp_path, dest, delete=True, max_delete=2)
    assert summary.exit_code == 3 and "--max-delete 2" in (summary.aborted or "")
    assert summary.stored == 0 and summary.deleted == 0
    assert set(await stored(bulkput_server, dest)) == set(TREE)  # nothing changed at all

    summary, _ = await sync(bulkput_server, tmp_path, dest, delete=True, max_delete=3)
    assert (summary.exit_code, summary.deleted, summary.stored) == (0, 3, 1)
    assert set(await stored(bulkput_server, dest)) == (set(TREE) - {"a.txt", "a/b.txt", "empty"}) | {"added"}


async def test_without_delete_remote_only_objects_stay(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    make_tree(tmp_path, {"keep": b"k"})
    dest = f"bos://{bulkput_bucket}/n"
    await sync(bulkput_server, tmp_path, dest)
    (tmp_path / "keep").unlink()
    summary, _ = await sync(bulkput_server, tmp_path, dest)
    assert (summary.deleted, summary.exit_code) == (0, 0)
    assert await stored(bulkput_server, dest) == {"keep": b"k"}


async def test_filters_choose_uploads_and_protect_excluded_objects(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    make_tree(tmp_path, {"keep.txt": b"k", "skip.tmp": b"t", "cache/x": b"c", ".hidden": b"h",
                         "big.bin": b"x" * 5000})
    dest = f"s3://{bulkput_bucket}/f"
    flt = Filter.from_patterns(path_rules=[("exclude", "*.tmp"), ("exclude", "cache/")], exclude_hidden=True,
                               max_size="4K")
    summary, _ = await sync(bulkput_server, tmp_path, dest, filter=flt)
    assert sorted(await stored(bulkput_server, dest)) == ["keep.txt"]
    assert summary.stored == 1

    # objects the filter excludes are never deleted, even with --delete and no local file
    _, store = await open_destination(dest, endpoint=bulkput_server.endpoint_url,
                                           access_key=bulkput_server.access_key,
                                           secret_key=bulkput_server.secret_key)
    try:
        from bulkput.remote.store import ObjectHeaders

        for key in ("f/remote.tmp", "f/cache/y", "f/.dot", "f/orphan"):
            await store.put_object(key, b"r", content_md5=None, headers=ObjectHeaders())
    finally:
        await store.close()
    summary, collect = await sync(bulkput_server, tmp_path, dest, filter=flt, delete=True)
    assert collect.keys(Status.DELETED) == ["f/orphan"]
    assert sorted(await stored(bulkput_server, dest)) == [".dot", "cache/y", "keep.txt", "remote.tmp"]


async def test_symlinks_skipped_by_default_followed_on_request_loops_reported(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"real/file": b"r", "top": b"t"})
    (src / "link-file").symlink_to(src / "top")
    (src / "link-dir").symlink_to(src / "real")
    (src / "real" / "loop").symlink_to(src)
    dest = f"s3://{bulkput_bucket}/s"
    summary, collect = await sync(bulkput_server, src, dest)
    assert summary.exit_code == 0
    assert summary.skip_reasons == {"symlink": 3}
    assert sorted(await stored(bulkput_server, dest)) == ["real/file", "top"]

    summary, collect = await sync(bulkput_server, src, dest, follow_symlinks=True)
    assert summary.exit_code == 1  # the loop is an error; everything else went
    failed = [r for r in collect.results if r.status is Status.FAILED]
    assert [r.error_code for r in failed] == ["SymlinkLoopError"] * 2
    assert all("loop" in (r.message or "") for r in failed)
    assert sorted(await stored(bulkput_server, dest)) == ["link-dir/file", "link-file", "real/file", "top"]


async def test_shards_upload_and_delete_only_their_own_keys(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    files = {f"k{i:02d}": str(i).encode() for i in range(30)}
    make_tree(tmp_path, files)
    dest = f"s3://{bulkput_bucket}/sh"
    stored_by: list[list[str]] = []
    for index in range(3):
        summary, collect = await sync(bulkput_server, tmp_path, dest, shard=Shard(index, 3))
        stored_by.append(collect.keys(Status.STORED))
        assert all(Shard(index, 3).owns(key) for key in stored_by[-1])
    assert sorted(key for keys in stored_by for key in keys) == sorted(f"sh/{k}" for k in files)

    for key in list(files)[:10]:
        (tmp_path / key).unlink()
    deleted: list[str] = []
    for index in range(3):
        summary, collect = await sync(bulkput_server, tmp_path, dest, shard=f"{index}/3", delete=True)
        assert all(Shard(index, 3).owns(key) for key in collect.keys(Status.DELETED))
        assert summary.stored == 0
        deleted += collect.keys(Status.DELETED)
    assert sorted(deleted) == sorted(f"sh/{k}" for k in list(files)[:10])


async def test_missing_bucket_aborts_with_exit_3(tmp_path: Path, bulkput_server: ServerHandle) -> None:
    make_tree(tmp_path, {"a": b"a"})
    summary, _ = await sync(bulkput_server, tmp_path, "s3://no-such-bucket-here/x", delete=True)
    assert summary.exit_code == 3
    assert "NoSuchBucket" in (summary.aborted or "")



async def test_checksum_compares_multipart_objects_by_their_md5_metadata(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    big = bytes(range(256)) * 1200  # 300 KiB: multipart above a 256 KiB threshold
    make_tree(tmp_path, {"big.bin": big, "small": b"s"})
    dest = f"s3://{bulkput_bucket}/mp"
    multipart = TransferConfig(concurrency=4, max_open_files=4, multipart_threshold=256 * 1024,
                               part_size=5 * 1024 * 1024, retry=CONFIG.retry)
    collect = Collect()
    options = dict(endpoint=bulkput_server.endpoint_url, access_key=bulkput_server.access_key,
                   secret_key=bulkput_server.secret_key, config=multipart, subscribers=[collect])
    summary = await sync_dir(tmp_path, dest, **options)  # type: ignore[arg-type]
    assert summary.stored == 2
    _, store = await open_destination(dest, endpoint=bulkput_server.endpoint_url,
                                      access_key=bulkput_server.access_key, secret_key=bulkput_server.secret_key)
    try:
        info = await store.head_object("mp/big.bin")
    finally:
        await store.close()
    assert info is not None and (info.etag or "").endswith("-1")  # not an MD5: needs the metadata
    assert info.metadata.get("mtime") == f"{PAST}.000000000"

    heads = bulkput_server.stats.count("HeadObject")
    summary = await sync_dir(tmp_path, dest, strategy="checksum", **options)  # type: ignore[arg-type]
    assert (summary.stored, summary.skip_reasons) == (0, {"same-checksum": 2})
    assert bulkput_server.stats.count("HeadObject") - heads == 1  # only the multipart object

    changed = bytearray(big)
    changed[1000] ^= 0xFF  # same size, same mtime, different bytes: only --checksum sees it
    (tmp_path / "big.bin").write_bytes(bytes(changed))
    os.utime(tmp_path / "big.bin", (PAST, PAST))
    summary = await sync_dir(tmp_path, dest, **options)  # type: ignore[arg-type]
    assert summary.stored == 0
    summary = await sync_dir(tmp_path, dest, strategy="checksum", **options)  # type: ignore[arg-type]
    assert summary.stored == 1
    assert (await stored(bulkput_server, dest))["big.bin"] == bytes(changed)


async def test_sync_dir_checks_option_values_before_any_request(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    """As ``bulkput sync`` does: a value the store would refuse stops the job before the listing."""
    from bulkput.errors import UsageError
    from bulkput.remote.store import ObjectHeaders

    make_tree(tmp_path, TREE)
    requests_before = bulkput_server.stats.total
    with pytest.raises(UsageError, match="--acl"):
        await sync(bulkput_server, tmp_path, f"s3://{bulkput_bucket}/checked",
                   defaults=ObjectHeaders(acl="everyone-may-write"))  # fmt: skip
    assert bulkput_server.stats.total == requests_before


async def test_sync_dir_stopped_before_it_starts_sends_nothing(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    from bulkput.job.run import JobControl

    make_tree(tmp_path, TREE)
    control = JobControl()
    control.stop()  # as a SIGINT while the store was being opened
    summary, _ = await sync(bulkput_server, tmp_path, f"s3://{bulkput_bucket}/stopped", control=control)
    assert summary.exit_code == 130 and summary.stored == 0
    assert puts_under(bulkput_server, bulkput_bucket, "stopped/") == {}


async def test_sync_dir_control_names_the_syncs_own_abort(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    """--max-delete refused: the control says why the job stopped (the progress display's and
    the failure lines' ``aborted()``), and nothing was deleted."""
    from bulkput.errors import MaxDeleteExceeded
    from bulkput.job.run import JobControl

    make_tree(tmp_path, TREE)
    dest = f"s3://{bulkput_bucket}/capped"
    assert (await sync(bulkput_server, tmp_path, dest))[0].exit_code == 0
    for key in ("a.txt", "a/b.txt"):
        (tmp_path / key).unlink()
    deletes_before = bulkput_server.stats.count("DeleteObjects") + bulkput_server.stats.count("DeleteObject")
    control = JobControl()
    summary, _ = await sync(bulkput_server, tmp_path, dest, delete=True, max_delete=1, control=control)
    assert summary.exit_code == 3
    assert isinstance(control.aborted, MaxDeleteExceeded)
    deletes = bulkput_server.stats.count("DeleteObjects") + bulkput_server.stats.count("DeleteObject")
    assert deletes == deletes_before
    assert await stored(bulkput_server, dest) == TREE  # the two files gone locally are still stored
