"""An exception no part of bulkput raises on purpose, met by a job against ``bulkput serve``:
the job ends aborted (exit 3, the Python API raises), with one line naming the part and the
exception; never exit 0 with objects the store does not hold. The store is asked what it holds.

The command-line test runs ``bulkput sync`` in a child process whose store client is patched
(``python -c``: no sitecustomize) to raise a TypeError from its listing.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bulkput.api import JobSpec, StoreSettings, Uploader
from bulkput.cli import main
from bulkput.errors import JobAbortedError, UnexpectedError
from bulkput.items import UploadItem
from bulkput.job.report import merge_reports
from bulkput.job.run import JobControl, run_job
from bulkput.remote.client import HttpObjectStore
from bulkput.remote.store import ObjectInfo
from bulkput.server.testing import ServerHandle


def make_items(root: Path, count: int, prefix: str) -> list[UploadItem]:
    root.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        (root / f"f{n}").write_bytes(b"object %d\n" % n)
    return [UploadItem(str(root / f"f{n}"), f"{prefix}/f{n}") for n in range(count)]


def spec_for(server: ServerHandle, bucket: str, prefix: str, **fields: object) -> JobSpec:
    store = StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0])
    return JobSpec(f"s3://{bucket}/{prefix}", store=store, **fields)  # type: ignore[arg-type]


async def test_a_store_client_that_raises_makes_the_api_raise_job_aborted(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_put(self: HttpObjectStore, key: str, *args: object, **kwargs: object) -> None:
        raise TypeError("client double broke")

    monkeypatch.setattr(HttpObjectStore, "put_object", broken_put)
    items = make_items(tmp_path / "src", 8, "api")
    with pytest.raises(JobAbortedError) as raised:
        async with Uploader(spec_for(bulkput_server, bulkput_bucket, "api")) as up:
            async for _result in up.upload(items):
                pass
    cause = raised.value.cause
    assert isinstance(cause, UnexpectedError) and isinstance(cause.__cause__, TypeError)
    assert cause.one_line().startswith("unexpected TypeError in sending objects (at ")
    assert up.summary is not None and up.summary.exit_code == 3 and up.summary.stored == 0
    assert all(bulkput_server.stats.puts(item.key, bucket=bulkput_bucket) == 0 for item in items)


async def test_a_resume_listing_that_raises_aborts_the_job_exit_3(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    items = make_items(tmp_path / "src", 6, "resume")
    first = await run_job(spec_for(bulkput_server, bulkput_bucket, "resume"), items[:3])
    assert first.exit_code == 0
    real_list = HttpObjectStore.list_objects
    calls: list[str] = []

    async def listing_breaks(
        self: HttpObjectStore, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        calls.append(prefix)
        async for info in real_list(self, prefix, page_size, start_after=start_after):
            yield info
            if len(calls) > 1:  # the probe before the job answers; the slice's listing breaks
                raise TypeError("listing double broke")

    monkeypatch.setattr(HttpObjectStore, "list_objects", listing_breaks)
    summary = await run_job(spec_for(bulkput_server, bulkput_bucket, "resume", resume_from_store=True), items)
    assert summary.exit_code == 3
    assert summary.aborted is not None
    assert summary.aborted.startswith("unexpected TypeError in the listing for resume from the store")
    assert len(calls) == 2
    # nothing past the broken listing was claimed: the three new objects were never sent
    assert all(bulkput_server.stats.puts(item.key, bucket=bulkput_bucket) == 0 for item in items[3:])


CHILD = textwrap.dedent(
    """
    import sys
    from bulkput.cli import main
    from bulkput.remote.client import HttpObjectStore

    async def broken_listing(self, prefix, page_size=1000, *, start_after=None):
        raise TypeError("listing double broke")
        yield

    HttpObjectStore.list_objects = broken_listing
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sync_whose_listing_raises_exits_3_with_one_line_and_deletes_nothing(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    env = {**os.environ, **bulkput_server.env("s3")}
    dest = f"s3://{bulkput_bucket}/sync/"
    source = tmp_path / "src"
    make_items(source, 3, "unused")  # f0, f1, f2: new to the destination
    gone = tmp_path / "gone"
    gone.mkdir()
    for name in ("old0", "old1"):  # objects with no local file: --delete would remove them
        (gone / name).write_bytes(name.encode())
    first = subprocess.run(
        [sys.executable, "-m", "bulkput", "put", str(gone / "old0"), str(gone / "old1"), dest,
         "--endpoint", bulkput_server.endpoint_url, "--progress", "none"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    command = [
        sys.executable, "-c", CHILD, "sync", str(source), dest,
        "--endpoint", bulkput_server.endpoint_url, "--progress", "none", "--delete",
    ]  # fmt: skip
    deletes_before = bulkput_server.stats.count("DeleteObjects")

    child = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert child.returncode == 3, child.stderr
    aborted = [line for line in child.stderr.splitlines() if line.startswith("aborted: ")]
    assert len(aborted) == 1
    assert aborted[0].startswith("aborted: unexpected TypeError in the destination listing (at ")
    assert "listing double broke" in aborted[0]
    assert "Traceback" not in child.stderr
    assert bulkput_server.stats.count("DeleteObjects") == deletes_before
    assert all(bulkput_server.stats.puts(f"sync/f{n}", bucket=bulkput_bucket) == 0 for n in range(3))

    debug = subprocess.run([*command, "--debug"], env=env, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 3
    assert "Traceback (most recent call last)" in debug.stderr
    assert "TypeError: listing double broke" in debug.stderr


@pytest.fixture
def store_env(bulkput_server: ServerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in bulkput_server.env("s3").items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("store_env")
def test_an_exception_that_escapes_the_job_is_one_line_and_exit_3(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    async def broken_run_job(*_args: object, **_kwargs: object) -> None:
        raise TypeError("assembly double broke")

    monkeypatch.setattr("bulkput.job.run.run_job", broken_run_job)
    (tmp_path / "a").write_bytes(b"a")
    code = main(["put", str(tmp_path / "a"), f"s3://{bulkput_bucket}/escape/",
                 "--endpoint", bulkput_server.endpoint_url, "--progress", "none"])  # fmt: skip
    assert code == 3
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bulkput put: aborted: unexpected TypeError in bulkput put (at ")
    assert lines[0].endswith("in broken_run_job): assembly double broke (a bug; --debug shows the traceback)")


@pytest.mark.usefixtures("store_env")
def test_a_counting_pass_that_raises_ends_put_exit_3(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    def broken_size(_path: str) -> int:
        raise TypeError("counter double broke")

    monkeypatch.setattr("bulkput.job.counting._size_of", broken_size)  # a manifest line's stat
    items = make_items(tmp_path / "src", 50, "count")
    manifest = tmp_path / "files.txt"
    manifest.write_text("".join(f"{item.path}\n" for item in items))
    report = tmp_path / "report.jsonl"
    code = main(["put", "--manifest", str(manifest), f"s3://{bulkput_bucket}/count/",
                 "--endpoint", bulkput_server.endpoint_url, "--progress", "text",
                 "--report", str(report)])  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert "aborted: unexpected TypeError in the counting pass (at " in err
    assert "Traceback" not in err
    # the report's last summary line (what a reader and `report merge` take) says the same
    summaries = [line["summary"] for line in map(json.loads, report.read_text().splitlines())
                 if "summary" in line]  # fmt: skip
    assert summaries[-1]["exit_code"] == code
    assert summaries[-1]["aborted"].startswith("unexpected TypeError in the counting pass (at ")
    assert merge_reports([report]).exit_code == code


@pytest.mark.usefixtures("store_env")
def test_a_counting_pass_abort_that_comes_after_the_last_object_is_in_the_report_too(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    counter_failed = threading.Event()

    def broken_size(_path: str) -> int:
        raise TypeError("counter double broke")

    def abort_that_never_arrives(_self: JobControl, _loop: object) -> Callable[[object], None]:
        return lambda _error: counter_failed.set()  # the job runs to its last object

    real_put = HttpObjectStore.put_object

    async def put_once_the_count_failed(self: HttpObjectStore, *args: Any, **kwargs: Any) -> Any:
        await asyncio.to_thread(counter_failed.wait, 30)
        return await real_put(self, *args, **kwargs)

    monkeypatch.setattr("bulkput.job.counting._size_of", broken_size)
    monkeypatch.setattr(JobControl, "abort_from_thread", abort_that_never_arrives)
    monkeypatch.setattr(HttpObjectStore, "put_object", put_once_the_count_failed)
    items = make_items(tmp_path / "src", 5, "late")
    manifest = tmp_path / "files.txt"
    manifest.write_text("".join(f"{item.path}\n" for item in items))
    report = tmp_path / "report.jsonl"
    code = main(["put", "--manifest", str(manifest), f"s3://{bulkput_bucket}/late/",
                 "--endpoint", bulkput_server.endpoint_url, "--progress", "text",
                 "--report", str(report)])  # fmt: skip
    assert counter_failed.is_set()
    assert all(bulkput_server.stats.puts(item.key, bucket=bulkput_bucket) == 1 for item in items)
    assert code == 3
    assert "aborted: unexpected TypeError in the counting pass (at " in capsys.readouterr().err
    summaries = [line["summary"] for line in map(json.loads, report.read_text().splitlines())
                 if "summary" in line]  # fmt: skip
    assert summaries[-1]["stored"] == 5
    assert summaries[-1]["exit_code"] == code
    assert merge_reports([report]).exit_code == code
