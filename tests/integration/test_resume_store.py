"""The journal answers only for the store it has seen, and only what that store confirms.

Each test runs ``bulkput put`` as a user would, against ``bulkput serve`` stores started in this
process, and checks what the store holds (listed and read back), the exit code, the report and
the server's PUT counters:

* identity: the same command with ``--endpoint`` A then B sends every object to B;
* lifecycle: a job that stored everything is complete, and running it again uploads again (one
  line says so); a partly failed job resumes; ``bulkput journal list|prune``;
* trust but verify: a resumed job lists the store first and sends again what the store lost
  (a memory store restarted) or holds changed; a file replaced by ``mv`` with the same size and
  mtime is sent again; ``--no-verify-resume`` trusts the journal;
* a damaged journal: exit 3, one line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.remote.store import ObjectHeaders
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle
from tests.integration.store_contents import bucket_objects

BUCKET = "resume-store"
FILES = 12


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    root.mkdir()
    for n in range(FILES):
        (root / f"f{n:02d}.txt").write_bytes(os.urandom(100 + n * 7))
    return root


def put(
    server: ServerHandle,
    tree: Path,
    state: Path,
    *extra: str,
    report: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    report_args = ["--report", str(report)] if report is not None else []
    return subprocess.run(
        [
            sys.executable, "-m", "bulkput", "put", str(tree), f"s3://{BUCKET}/job/",
            "--endpoint", server.endpoint_url, "--state-dir", str(state),
            "--progress", "none", "--retries", "0", *report_args, *extra,
        ],
        env={**os.environ, **(env if env is not None else server.env("s3"))},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def journal_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "journal", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def stored(server: ServerHandle) -> dict[str, bytes]:
    """Every object of the bucket, read back: key -> bytes."""
    return bucket_objects(server, BUCKET)


def expected(tree: Path, names: Sequence[str] | None = None) -> dict[str, bytes]:
    paths = sorted(tree.iterdir()) if names is None else [tree / n for n in names]
    return {f"job/{path.name}": path.read_bytes() for path in paths}


FAILS = "zz-fails.txt"  # fails at the server in the first run, then is deleted locally


def unfinished_job(
    factory: Callable[..., ServerHandle], tree: Path, state: Path
) -> ServerHandle:
    """A first run that stores every file of ``tree`` but one that the server refuses (exit 1:
    an unfinished job, which the next run resumes); that file is then removed from ``tree``,
    so the next run of the same command has nothing failing."""
    server = factory(
        buckets=[BUCKET], faults=FaultConfig(keys=(f"job/{FAILS}",), keys_kind="internal")
    )
    (tree / FAILS).write_bytes(b"refused by the server")
    first = put(server, tree, state)
    assert first.returncode == 1, first.stderr
    (tree / FAILS).unlink()
    server.reset_stats()
    return server


def summary_of(report: Path) -> dict[str, object]:
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    summary: dict[str, object] = lines[-1]["summary"]
    return summary


# --- identity ---------------------------------------------------------------------------------


def test_the_same_command_to_another_endpoint_sends_every_object_there(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    a = bulkput_server_factory(buckets=[BUCKET])
    b = bulkput_server_factory(buckets=[BUCKET])
    state = tmp_path / "state"
    first = put(a, tree, state)
    assert first.returncode == 0, first.stderr
    report = tmp_path / "b.jsonl"
    second = put(b, tree, state, "-v", report=report)
    assert second.returncode == 0, second.stderr
    assert stored(b) == expected(tree)  # on the old code: "skipped 12: journal", B empty
    assert b.stats.count("PutObject") == FILES
    journals = sorted(state.glob("*.sqlite"))
    assert len(journals) == 2  # one job per store
    summary = summary_of(report)
    assert summary["journal"] in {str(p) for p in journals}
    assert f"journal {summary['journal']}" in second.stderr  # -v names it


def test_the_journal_path_and_what_it_skipped_are_in_the_summary(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)
    report = tmp_path / "again.jsonl"
    again = put(server, tree, state, report=report)
    assert again.returncode == 0, again.stderr
    assert server.stats.count("PutObject") == 0
    (journal,) = state.glob("*.sqlite")
    summary = summary_of(report)
    assert summary["journal"] == str(journal)
    assert summary["skip_reasons"] == {"journal": FILES}
    notes = summary["journal_notes"]
    assert isinstance(notes, list) and "12 of 12 journaled objects present" in notes[0]
    assert f"journal: {journal} (skipped 12 it recorded as stored)" in again.stderr


# --- lifecycle --------------------------------------------------------------------------------


def test_a_completed_job_run_again_is_a_new_upload(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    server = bulkput_server_factory(buckets=[BUCKET])
    state = tmp_path / "state"
    assert put(server, tree, state).returncode == 0
    listed = journal_cli("list", "--state-dir", str(state), "--json")
    (info,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (info["state"], info["stored"]) == ("complete", FILES)
    again = put(server, tree, state)
    assert again.returncode == 0, again.stderr
    # put copies, as aws s3 cp does: every object is sent again (old code: skipped 12: journal)
    assert all(server.stats.puts(key) == 2 for key in expected(tree)), server.stats.puts_by_key
    notes = [line for line in again.stderr.splitlines() if "completed at" in line]
    assert len(notes) == 1 and "uploads every object again" in notes[0], again.stderr
    quiet = put(server, tree, state, "--quiet")  # the summary is not printed: nothing is
    assert quiet.returncode == 0 and quiet.stderr == ""
    assert stored(server) == expected(tree)


def test_a_partly_failed_job_resumes_and_only_the_failed_object_is_sent(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    data = tmp_path / "store"  # a directory store: it keeps its objects across a restart
    refusing = bulkput_server_factory(
        dir=data, buckets=[BUCKET],
        faults=FaultConfig(keys=("job/f05.txt",), keys_kind="internal"),
    )  # fmt: skip
    state = tmp_path / "state"
    assert put(refusing, tree, state).returncode == 1
    listed = journal_cli("list", "--state-dir", str(state), "--json").stdout.splitlines()
    (info,) = [json.loads(line) for line in listed]
    assert (info["state"], info["stored"]) == ("running", FILES - 1)
    port = refusing.port
    refusing.stop()
    server = bulkput_server_factory(dir=data, buckets=[BUCKET], port=port)  # the fault is gone
    again = put(server, tree, state)
    assert again.returncode == 0, again.stderr
    assert server.stats.puts_by_key == {f"{BUCKET}/job/f05.txt": 1}
    assert stored(server) == expected(tree)


def test_journal_list_and_prune(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    server = bulkput_server_factory(buckets=[BUCKET])
    state = tmp_path / "state"
    assert put(server, tree, state).returncode == 0
    (journal,) = state.glob("*.sqlite")
    shown = journal_cli("list", "--state-dir", str(state))
    assert shown.returncode == 0
    assert journal.stem in shown.stdout and "complete" in shown.stdout
    assert f"s3://{BUCKET}/job/ at {server.endpoint_url}" in shown.stdout
    kept = journal_cli("prune", "--state-dir", str(state))  # 30 days by default: kept
    assert kept.returncode == 0 and journal.exists()
    gone = journal_cli("prune", "--state-dir", str(state), "--older-than", "0")
    assert gone.returncode == 0 and f"removed {journal}" in gone.stdout
    assert not journal.exists()
    assert "no journals" in journal_cli("list", "--state-dir", str(state)).stdout


# --- trust but verify -------------------------------------------------------------------------


def test_a_resumed_job_sends_again_what_a_restarted_memory_store_lost(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)
    port = server.port
    server.stop()  # the memory store forgets everything
    restarted = bulkput_server_factory(buckets=[BUCKET], port=port)
    report = tmp_path / "resume.jsonl"
    again = put(restarted, tree, state, report=report)
    assert again.returncode == 0, again.stderr
    # Old code: "skipped 12: journal", exit 0, with every object missing from the store.
    assert stored(restarted) == expected(tree)
    assert restarted.stats.count("PutObject") == FILES
    assert restarted.stats.count("ListObjectsV2") >= 1
    notes = summary_of(report)["journal_notes"]
    assert isinstance(notes, list) and "12 missing and 0 changed are sent again" in notes[0]


def test_objects_deleted_or_changed_in_the_store_are_sent_again_the_rest_skipped(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)

    async def meddle() -> None:
        _t, store = await open_destination(
            f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
        )
        try:
            await store.put_object(
                "job/f04.txt", b"someone else's bytes", content_md5=None, headers=ObjectHeaders()
            )
            await store.delete_objects(["job/f07.txt"])
        finally:
            await store.close()

    asyncio.run(meddle())
    server.reset_stats()
    again = put(server, tree, state)
    assert again.returncode == 0, again.stderr
    assert server.stats.puts_by_key == {f"{BUCKET}/job/{n}": 1 for n in ("f04.txt", "f07.txt")}
    assert stored(server) == expected(tree)


def test_no_verify_resume_trusts_the_journal_without_listing(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)
    report = tmp_path / "trusting.jsonl"
    again = put(server, tree, state, "--no-verify-resume", report=report)
    assert again.returncode == 0, again.stderr
    assert server.stats.count("ListObjectsV2") == 0 and server.stats.count("PutObject") == 0
    notes = summary_of(report)["journal_notes"]
    assert isinstance(notes, list) and "--no-verify-resume" in notes[0]


def test_a_file_replaced_by_mv_with_the_same_size_and_mtime_is_sent_again(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)
    target = tree / "f06.txt"
    before = target.stat()
    replacement = tmp_path / "new-f06.txt"
    replacement.write_bytes(os.urandom(before.st_size))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.rename(replacement, target)  # mv: same size, same mtime, other bytes
    after = target.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    again = put(server, tree, state)
    assert again.returncode == 0, again.stderr
    # Old code: f06 skipped from the journal, the old bytes left in the store.
    assert server.stats.puts_by_key == {f"{BUCKET}/job/f06.txt": 1}
    assert stored(server) == expected(tree)


# --- a damaged journal ------------------------------------------------------------------------


def test_a_damaged_journal_exits_3_with_one_line(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    server = unfinished_job(bulkput_server_factory, tree, state)
    (journal,) = state.glob("*.sqlite")
    with sqlite3.connect(journal) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(journal.read_bytes())
    page = 4096
    data[page : 2 * page] = b"\xa5" * page  # a b-tree page scribbled over
    journal.write_bytes(bytes(data))
    server.reset_stats()
    damaged = put(server, tree, state)
    assert damaged.returncode == 3
    lines = [line for line in damaged.stderr.splitlines() if line.strip()]
    assert lines == [
        f"bulkput put: aborted: journal at {journal} is damaged: run with --restart to start over"
    ], damaged.stderr
    assert server.stats.count("PutObject") == 0
    restarted = put(server, tree, state, "--restart")
    assert restarted.returncode == 0, restarted.stderr
    assert server.stats.count("PutObject") == FILES


# --- the Python API ---------------------------------------------------------------------------


async def test_the_api_journal_by_name_is_per_store_and_completes(
    bulkput_server_factory: Callable[..., ServerHandle], tree: Path, tmp_path: Path
) -> None:
    from bulkput.api import JobSpec, JournalSettings, StoreSettings, Uploader

    a = bulkput_server_factory(buckets=[BUCKET])
    b = bulkput_server_factory(buckets=[BUCKET])
    state = tmp_path / "state"
    paths = [str(path) for path in sorted(tree.iterdir())]

    async def upload(server: ServerHandle) -> set[str]:
        spec = JobSpec(
            f"s3://{BUCKET}/job",
            store=StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0]),
            journal=JournalSettings(source="nightly", state_dir=str(state)),
        )
        async with Uploader(spec) as up:
            results = [result async for result in up.upload(paths)]
            assert up.summary is not None and up.summary.exit_code == 0
        return {result.status.value for result in results}

    assert await upload(a) == {"stored"}
    assert await upload(b) == {"stored"}  # another store, another job: nothing skipped
    assert b.stats.count("PutObject") == FILES
    assert await upload(a) == {"stored"}  # the job on A was complete: a new upload
    assert all(a.stats.puts(key) == 2 for key in expected(tree))
    assert len(list(state.glob("*.sqlite"))) == 2
