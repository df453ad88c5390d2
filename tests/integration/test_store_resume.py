"""A shard resumes from the store, not from a journal: ``bulkput put --shard K/N`` run again with a
fresh state dir (another machine, a retried pod) lists its slice of the destination once and
sends only what the store does not hold with the same size and MD5.

Each test runs ``bulkput put`` as a user would against ``bulkput serve`` (started in this
process) and checks the exit code, the summary, the report and the server's PUT counters:
deleted and changed objects are sent again, the rest skipped as already in the store; the same
for a multipart object (its ``md5`` metadata); an unsorted manifest of thousands of lines; a
store that refuses listings (exit 3, one line, the way out).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.job.shard import Shard
from bulkput.remote.store import ObjectHeaders
from bulkput.server.testing import ServerHandle
from tests.fixtures.misbehaving import Request, ScriptedServer, error_answer, put_ok
from tests.integration.store_contents import bucket_objects

BUCKET = "store-resume"
SHARD = "0/2"


def put(
    server: ServerHandle, source: list[str], state: Path, *extra: str, report: Path | None = None
) -> subprocess.CompletedProcess[str]:
    report_args = ["--report", str(report)] if report is not None else []
    return subprocess.run(
        [
            sys.executable, "-m", "bulkput", "put", *source, f"s3://{BUCKET}/job/",
            "--endpoint", server.endpoint_url, "--state-dir", str(state),
            "--progress", "none", "--retries", "0", *report_args, *extra,
        ],
        env={**os.environ, **server.env("s3")},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def summary_of(report: Path) -> dict[str, object]:
    summary: dict[str, object] = json.loads(report.read_text().splitlines()[-1])["summary"]
    return summary


def objects(server: ServerHandle) -> dict[str, bytes]:
    """Every object of the bucket, read back: key -> bytes."""
    return bucket_objects(server, BUCKET)


def meddle(server: ServerHandle, delete: list[str], overwrite: dict[str, bytes]) -> None:
    """Someone else deletes and overwrites objects of the bucket."""

    async def run() -> None:
        _t, store = await open_destination(
            f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
        )
        try:
            for key, data in overwrite.items():
                await store.put_object(key, data, content_md5=None, headers=ObjectHeaders())
            await store.delete_objects(delete)
        finally:
            await store.close()

    asyncio.run(run())


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for n in range(40):
        (root / f"f{n:02d}.txt").write_bytes(os.urandom(50 + n))
    return root


def shard_keys(root: Path, shard: Shard) -> list[str]:
    return sorted(f"job/{p.name}" for p in root.iterdir() if shard.owns(f"job/{p.name}"))


def test_a_shard_rerun_without_its_journal_sends_only_what_the_store_lost_or_holds_changed(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    server = bulkput_server_factory(buckets=[BUCKET])
    first = put(server, [str(tree)], tmp_path / "state-1", "--shard", SHARD)
    assert first.returncode == 0, first.stderr
    mine = shard_keys(tree, Shard.parse(SHARD))
    assert sorted(objects(server)) == mine and len(mine) >= 12
    deleted = mine[:3]
    changed = mine[5]  # same size, other bytes: only the MD5 tells
    meddle(server, deleted, {changed: os.urandom(len(objects(server)[changed]))})
    server.reset_stats()
    report = tmp_path / "again.jsonl"
    again = put(server, [str(tree)], tmp_path / "state-2", "--shard", SHARD, report=report)
    assert again.returncode == 0, again.stderr
    # Old code: a fresh state dir sent every object of the shard again.
    assert server.stats.puts_by_key == {f"{BUCKET}/{key}": 1 for key in [*deleted, changed]}
    skipped = len(mine) - 4
    assert f"skipped {skipped} (already in the store)" in again.stderr
    summary = summary_of(report)
    assert summary["skipped_in_store"] == skipped and summary["stored"] == 4
    lines = [json.loads(line) for line in report.read_text().splitlines()[:-1]]
    assert {line["key"] for line in lines if line.get("reason") == "in_store"} == (
        set(mine) - {*deleted, changed}
    )
    assert objects(server) == {key: (tree / key[4:]).read_bytes() for key in mine}
    # the listing named only the shard's slice, once, and no HEAD was needed for single PUTs
    assert server.stats.count("HeadObject") == 0


def test_a_multipart_object_is_skipped_by_its_md5_metadata_and_sent_when_changed(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = bulkput_server_factory(buckets=[BUCKET])
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(6 * 1024 * 1024))
    small = tmp_path / "small.txt"
    small.write_bytes(b"small")
    streamed = tmp_path / "streamed.bin"  # a single PUT too large to read into memory
    streamed.write_bytes(os.urandom(3 * 1024 * 1024))
    files = [str(big), str(small), str(streamed)]
    options = ("--multipart-threshold", "5M", "--part-size", "5M", "--resume-from-store")
    first = put(server, files, tmp_path / "state-1", *options)
    assert first.returncode == 0, first.stderr
    assert server.stats.count("CompleteMultipartUpload") == 1
    server.reset_stats()
    again = put(server, files, tmp_path / "state-2", *options)
    assert again.returncode == 0, again.stderr
    # Old code: all three sent again (a fresh state dir knows nothing).
    assert server.stats.count("UploadPart") == 0 and server.stats.puts_by_key == {}
    assert server.stats.count("HeadObject") == 1  # the multipart ETag is not an MD5
    assert "skipped 3 (already in the store)" in again.stderr
    with big.open("r+b") as changed:  # same size, other bytes
        changed.seek(1024)
        changed.write(b"other bytes")
    with streamed.open("r+b") as changed:
        changed.seek(2 * 1024 * 1024)
        changed.write(b"other bytes")
    server.reset_stats()
    third = put(server, files, tmp_path / "state-3", *options)
    assert third.returncode == 0, third.stderr
    assert server.stats.puts_by_key == {f"{BUCKET}/job/{n}": 1 for n in ("big.bin", "streamed.bin")}
    assert server.stats.count("UploadPart") == 2
    assert objects(server) == {f"job/{Path(f).name}": Path(f).read_bytes() for f in files}


@pytest.mark.slow
def test_an_unsorted_manifest_of_thousands_of_lines_resumes_the_same(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = bulkput_server_factory(buckets=[BUCKET])
    root = tmp_path / "files"
    root.mkdir()
    names = [f"d{n % 17}/file-{n:05d}.txt" for n in range(3000)]
    for name in names:
        path = root / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(name.encode() * 3)
    manifest = tmp_path / "manifest.csv"
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    manifest.write_text("path,key\n" + "".join(f"{root / name},{name}\n" for name in shuffled))
    shard = Shard.parse("1/3")
    mine = sorted(f"job/{name}" for name in names if shard.owns(f"job/{name}"))
    first = put(server, [], tmp_path / "s1", "--manifest", str(manifest), "--shard", "1/3")
    assert first.returncode == 0, first.stderr
    assert sorted(objects(server)) == mine
    deleted = mine[10:15] + mine[-3:]
    meddle(server, deleted, {})
    random.Random(8).shuffle(shuffled)  # another order this time
    manifest.write_text("path,key\n" + "".join(f"{root / name},{name}\n" for name in shuffled))
    server.reset_stats()
    report = tmp_path / "again.jsonl"
    again = put(server, [], tmp_path / "s2", "--manifest", str(manifest), "--shard", "1/3",
                report=report)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert server.stats.puts_by_key == {f"{BUCKET}/{key}": 1 for key in deleted}
    assert summary_of(report)["skipped_in_store"] == len(mine) - len(deleted)
    assert sorted(objects(server)) == mine


def test_a_store_that_refuses_listings_exits_3_with_the_way_out(tmp_path: Path) -> None:
    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.method == "GET" and "list-type=2" in request.target:
            return await error_answer(writer, 403, "AccessDenied", "Access Denied", "Forbidden")
        return await put_ok(request, writer)

    source = tmp_path / "src"
    source.mkdir()
    for n in range(3):
        (source / f"{n}.txt").write_bytes(b"x" * n)
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_"))
    } | {"AWS_ACCESS_KEY_ID": "AKIDTEST", "AWS_SECRET_ACCESS_KEY": "secret-key-for-tests",
         "HOME": str(tmp_path)}  # fmt: skip

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bulkput", "put", str(source), "s3://bkt/p/",
             "--endpoint", server.url, "--addressing", "path", "--progress", "none",
             "--state-dir", str(tmp_path / "state"), "--shard", "0/1", *extra],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip

    with ScriptedServer(behave) as server:
        refused = run()
        puts_when_refused = [r for r in server.requests if r.method == "PUT"]
        way_out = run("--no-resume-from-store")
        puts = [r for r in server.requests if r.method == "PUT"]
    assert refused.returncode == 3, refused.stderr
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "refused" in lines[0] and "--no-resume-from-store" in lines[0], lines
    # the line names the credentials the store refused, as every other refusal does
    assert "credentials from environment variables" in lines[0], lines
    assert "(key id AK...) were refused access" in lines[0], lines
    assert puts_when_refused == []
    assert way_out.returncode == 0, way_out.stderr
    assert len(puts) == 3


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
async def test_each_dialect_lists_from_after_a_key(
    bulkput_server: ServerHandle, bulkput_bucket: str, scheme: str
) -> None:
    """The slice a shard lists starts after a key: S3's start-after, OSS's and BOS's marker,
    kept across pages."""
    _t, store = await open_destination(
        f"{scheme}://{bulkput_bucket}/", endpoint=bulkput_server.endpoint_url,
        env=bulkput_server.env(scheme),
    )  # fmt: skip
    try:
        keys = [f"slice/{n:02d}" for n in range(12)]
        for key in keys:
            await store.put_object(key, b"x", content_md5=None, headers=ObjectHeaders())
        listed = [info.key async for info in store.list_objects("slice/", 5, start_after="slice/04")]
        assert listed == keys[5:]
    finally:
        await store.close()


def test_a_shard_rerun_with_its_journal_lists_once_and_the_journal_skips_only_what_it_shows(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    from bulkput.job.shard import shard_of
    from bulkput.server.faults import FaultConfig

    fails = "zz-fails.txt"
    shard = f"{shard_of(f'job/{fails}', 2)}/2"
    server = bulkput_server_factory(
        buckets=[BUCKET], faults=FaultConfig(keys=(f"job/{fails}",), keys_kind="internal")
    )
    (tree / fails).write_bytes(b"refused by the server")
    state = tmp_path / "state"
    first = put(server, [str(tree)], state, "--shard", shard)
    assert first.returncode == 1, first.stderr  # unfinished: the next run resumes its journal
    (tree / fails).unlink()
    mine = shard_keys(tree, Shard.parse(shard))
    deleted, changed = mine[:2], mine[4]
    meddle(server, deleted, {changed: os.urandom(len(objects(server)[changed]))})
    server.reset_stats()
    report = tmp_path / "again.jsonl"
    again = put(server, [str(tree)], state, "--shard", shard, report=report)
    assert again.returncode == 0, again.stderr
    assert server.stats.puts_by_key == {f"{BUCKET}/{key}": 1 for key in [*deleted, changed]}
    # one request of one key before any work, then the slice: no second listing of the whole
    # prefix to check the journal (the earlier code listed it too)
    assert server.stats.count("ListObjectsV2") == 2
    summary = summary_of(report)
    skip_reasons = summary["skip_reasons"]
    assert isinstance(skip_reasons, dict) and skip_reasons.get("journal") == len(mine) - 3
    assert objects(server) == {key: (tree / key[4:]).read_bytes() for key in mine}
