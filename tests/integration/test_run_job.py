"""run_job: the one assembly of a job (store, journal, engine), as every entry point uses it."""

from __future__ import annotations

import pickle
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bulkput.api import Uploader
from bulkput.config import TransferConfig
from bulkput.errors import UsageError
from bulkput.items import ObjectResult, Status, UploadItem
from bulkput.job.run import JobControl, run_job
from bulkput.job.shard import Shard
from bulkput.job.spec import JobSpec, JournalSettings, PutSource, StoreSettings
from bulkput.job.subscriber import Subscriber
from bulkput.local.filters import Filter
from bulkput.remote.credentials import Credentials
from bulkput.remote.store import ObjectHeaders
from bulkput.server.testing import ServerHandle


class Results(Subscriber):
    def __init__(self) -> None:
        self.results: list[ObjectResult] = []

    def on_result(self, result: ObjectResult) -> None:
        self.results.append(result)


def make_tree(root: Path, count: int) -> list[UploadItem]:
    root.mkdir(parents=True, exist_ok=True)
    items = []
    for n in range(count):
        path = root / f"f{n}.txt"
        path.write_bytes(f"object {n}\n".encode() * (n + 1))
        items.append(UploadItem(str(path), f"run/f{n}.txt"))
    return items


def spec_for(server: ServerHandle, bucket: str, **fields: object) -> JobSpec:
    store = StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0])
    return JobSpec(f"s3://{bucket}/run", store=store, **fields)  # type: ignore[arg-type]


def test_a_spec_survives_pickling_whole(tmp_path: Path) -> None:
    # A Dask task receives the spec pickled; every setting must arrive, the secret included.
    spec = JobSpec(
        "oss://bucket/prefix",
        store=StoreSettings(endpoint="http://127.0.0.1:9", addressing="path",
                            credentials=Credentials("AK", "SK", "token", source="test"), profile="p"),
        transfer=TransferConfig(concurrency=3, part_size=8_000_000),
        journal=JournalSettings(source="paths:[]", state_dir=str(tmp_path), restart=True),
        shard=Shard(1, 4),
        defaults=ObjectHeaders(cache_control="no-cache", metadata={"a": "b"}),
        filters=Filter.from_patterns([("exclude", "*.tmp")], min_size="1K"),
        dry_run=True,
    )  # fmt: skip
    copy = pickle.loads(pickle.dumps(spec))
    assert replace(copy, filters=None) == replace(spec, filters=None)  # a Filter has no ==
    assert copy.target == spec.target and copy.target.prefix == "prefix"
    assert copy.store.credentials is not None and copy.store.credentials.secret_key == "SK"
    assert copy.filters is not None and copy.filters.exclude_reason("a.tmp") is not None
    assert copy.filters.min_size == 1024


def test_a_bad_destination_is_refused_when_the_job_is_described() -> None:
    with pytest.raises(UsageError, match="ftp"):
        JobSpec("ftp://bucket/prefix")


async def test_run_job_resumes_from_the_journal_it_names_and_closes_it(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    items = make_tree(tmp_path / "data", 5)
    missing = UploadItem(str(tmp_path / "data" / "not-yet.txt"), "run/not-yet.txt")
    journal = JournalSettings(source="api:nightly", state_dir=str(tmp_path / "state"))
    spec = spec_for(bulkput_server, bulkput_bucket, journal=journal)
    first = await run_job(spec, [*items, missing])
    assert (first.stored, first.failed, first.exit_code) == (5, 1, 1)  # not complete: resumable
    # The journal is closed (its lock released) and carries the job's identity, as the CLI's.
    (path,) = (tmp_path / "state").glob("*.sqlite")
    with sqlite3.connect(path) as connection:
        meta = dict(connection.execute("SELECT name, value FROM meta"))
    assert (meta["dest"], meta["source"], meta["shard"]) == (spec.destination, "api:nightly", "0/1")
    Path(missing.path).write_text("here now")
    again = await run_job(spec, [*items, missing])
    assert (again.stored, again.skip_reasons["journal"], again.exit_code) == (1, 5, 0)
    assert again.journal == str(path)  # the summary names the journal it resumed from
    for item in items:
        assert bulkput_server.stats.puts(item.key, bucket=bulkput_bucket) == 1


async def test_uploader_opens_the_journal_the_way_the_command_line_does(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    items = make_tree(tmp_path / "data", 3)
    source = PutSource(paths=(str(tmp_path / "data"),))
    journal = JournalSettings(source=source.describe(), state_dir=str(tmp_path / "state"))
    async with Uploader(spec_for(bulkput_server, bulkput_bucket, journal=journal)) as up:
        results = [r async for r in up.upload(items)]
    assert {r.status for r in results} == {Status.STORED}
    (path,) = (tmp_path / "state").glob("*.sqlite")
    with sqlite3.connect(path) as connection:
        meta = dict(connection.execute("SELECT name, value FROM meta"))
    assert meta["source"] == source.describe() and meta["dest"] == f"s3://{bulkput_bucket}/run"


async def test_a_job_stopped_before_it_starts_sends_nothing(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    items = make_tree(tmp_path / "data", 4)
    control = JobControl()
    control.stop()
    summary = await run_job(spec_for(bulkput_server, bulkput_bucket), items, control=control)
    assert summary.interrupted and summary.exit_code == 130
    assert all(bulkput_server.stats.puts(i.key, bucket=bulkput_bucket) == 0 for i in items)


async def test_defaults_and_shard_of_the_spec_reach_every_object(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    items = make_tree(tmp_path / "data", 12)
    spec = spec_for(
        bulkput_server, bulkput_bucket, shard=Shard(0, 2),
        defaults=ObjectHeaders(cache_control="max-age=60", metadata={"team": "data"}),
    )  # fmt: skip
    seen = Results()
    summary = await run_job(spec, items, [seen])
    mine = {item.key for item in items if Shard(0, 2).owns(item.key)}
    assert {r.key for r in seen.results if r.status is Status.STORED} == mine
    assert summary.stored == len(mine) and 0 < len(mine) < 12
    async with Uploader(spec) as up:
        info = await up.store.head_object(sorted(mine)[0])
    assert info is not None and info.metadata.get("team") == "data"


async def test_a_remote_task_names_its_host_and_directory_when_a_file_cannot_be_read(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import socket

    here = tmp_path / "worker-cwd"
    here.mkdir()
    monkeypatch.chdir(here)
    items = [*make_tree(tmp_path / "data", 2), UploadItem("gone/x.txt", "run/x.txt")]
    seen = Results()
    summary = await run_job(spec_for(bulkput_server, bulkput_bucket, remote=True), items, [seen])
    assert (summary.stored, summary.failed, summary.exit_code) == (2, 1, 1)
    (failed,) = [r for r in seen.results if r.status is Status.FAILED]
    assert failed.message == (
        f"run/x.txt: cannot read gone/x.txt: no such file "
        f"(on host {socket.gethostname()}, working directory {here})"
    )
    # run here, by this process, the message stays as short as before
    seen = Results()
    await run_job(spec_for(bulkput_server, bulkput_bucket), items[2:], [seen])
    assert seen.results[0].message == "run/x.txt: cannot read gone/x.txt: no such file"



async def test_a_job_of_a_few_listed_objects_starts_a_few_senders_not_the_ceilings(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    import asyncio

    items = make_tree(tmp_path / "data", 3)
    loop = asyncio.get_running_loop()
    created = 0

    def counting(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> asyncio.Task[Any]:
        nonlocal created
        created += 1
        return asyncio.Task(coro, loop=loop, **options)

    loop.set_task_factory(counting)
    try:
        summary = await run_job(spec_for(bulkput_server, bulkput_bucket), items)
    finally:
        loop.set_task_factory(None)
    assert summary.stored == 3
    # one sender per object at most (was one per slot of the 512 the limit may grow to)
    assert 0 < created < 32
