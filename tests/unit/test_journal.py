"""The job journal: batched writes, committed-only reads, resume lookups, restart, failures."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from bulkput.errors import JournalError
from bulkput.job.journal import (
    Journal,
    default_state_dir,
    describe_source,
    job_id,
    open_job_journal,
)
from bulkput.remote.store import PartInfo


def committed_keys(path: Path) -> set[str]:
    """What another process (a restarted job) would read from the database file."""
    with sqlite3.connect(path) as connection:
        return {bytes(row[0]).decode() for row in connection.execute("SELECT key FROM stored")}


def test_default_state_dir_follows_xdg_then_home() -> None:
    assert default_state_dir({"XDG_CACHE_HOME": "/x/cache", "HOME": "/h"}) == Path(
        "/x/cache/bulkput"
    )
    assert default_state_dir({"HOME": "/h"}) == Path("/h/.cache/bulkput")


def test_job_id_is_stable_and_separates_dest_source_and_shard() -> None:
    a = job_id("s3://b/p", "manifest:/data/list.txt")
    assert a == job_id("s3://b/p", "manifest:/data/list.txt")
    assert a == job_id("s3://b/p", "manifest:/data/list.txt", "0/1")
    assert a != job_id("s3://b/q", "manifest:/data/list.txt")
    assert a != job_id("s3://b/p", "manifest:/data/other.txt")
    assert job_id("s3://b/p", "m", "0/3") != job_id("s3://b/p", "m", "1/3")


def test_records_are_batched_and_visible_only_after_commit(tmp_path: Path) -> None:
    # A long interval and a big batch: nothing is committed until flush().
    journal = Journal.open(tmp_path, "job", flush_interval=60, batch_size=10_000)
    try:
        journal.record_stored("a/1.txt", 10, 111, "0" * 32, "etag1")
        assert not journal.is_stored("a/1.txt", 10, 111)
        assert committed_keys(journal.path) == set()
        journal.flush()
        assert journal.is_stored("a/1.txt", 10, 111)
        assert committed_keys(journal.path) == {"a/1.txt"}
    finally:
        journal.close()


def test_a_full_batch_commits_without_waiting_for_the_interval(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, "job", flush_interval=60, batch_size=100)
    try:
        for n in range(100):
            journal.record_stored(f"k{n}", n, n, None, None)
        # The writer wakes on the full batch; wait for it without flush() forcing it.
        for _ in range(200):
            if len(committed_keys(journal.path)) == 100:
                break
            threading.Event().wait(0.05)
        assert len(committed_keys(journal.path)) == 100
    finally:
        journal.close()


def test_interval_commits_a_partial_batch(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path, "job", flush_interval=0.05, batch_size=10_000)
    try:
        journal.record_stored("only", 1, 2, None, None)
        for _ in range(200):
            if committed_keys(journal.path):
                break
            threading.Event().wait(0.05)
        assert committed_keys(journal.path) == {"only"}
    finally:
        journal.close()


def test_resume_lookup_matches_size_and_mtime(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored("photo.jpg", 4096, 1_700_000_000_000_000_000, "ab" * 16, "e")
        journal.record_stored("unicode é/☃ key", 1, 5, None, None)
    with Journal.open(tmp_path, "job") as journal:
        assert journal.is_stored("photo.jpg", 4096, 1_700_000_000_000_000_000)
        assert not journal.is_stored("photo.jpg", 4097, 1_700_000_000_000_000_000)  # grew
        assert not journal.is_stored("photo.jpg", 4096, 1_700_000_000_000_000_001)  # touched
        assert not journal.is_stored("other.jpg", 4096, 1_700_000_000_000_000_000)
        assert journal.is_stored("unicode é/☃ key", 1, 5)
        assert journal.stored_record("photo.jpg") == (
            4096,
            1_700_000_000_000_000_000,
            "ab" * 16,
            "e",
        )
        assert journal.stored_count() == 2


def test_keys_that_are_not_valid_utf8_round_trip(tmp_path: Path) -> None:
    key = b"dir/\xff\xfe.bin".decode("utf-8", "surrogateescape")
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored(key, 3, 4, None, None)
    with Journal.open(tmp_path, "job") as journal:
        assert journal.is_stored(key, 3, 4)


def test_multipart_state_survives_reopen_and_ends(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        journal.begin_upload("big.bin", "up-1", 8 << 20, 20 << 20, 99, "cd" * 16)
        journal.record_part("big.bin", "up-1", 1, "e1", 8 << 20)
        journal.record_part("big.bin", "up-1", 3, "e3", 4 << 20)
    with Journal.open(tmp_path, "job") as journal:
        record = journal.upload_for("big.bin")
        assert record is not None
        assert (record.upload_id, record.part_size, record.size, record.mtime_ns, record.md5) == (
            "up-1",
            8 << 20,
            20 << 20,
            99,
            "cd" * 16,
        )
        assert journal.parts_for("big.bin", "up-1") == [
            PartInfo(1, "e1", 8 << 20),
            PartInfo(3, "e3", 4 << 20),
        ]
        assert [u.key for u in journal.uploads()] == ["big.bin"]
        # A new upload of the same key replaces the old one and its parts.
        journal.begin_upload("big.bin", "up-2", 8 << 20, 20 << 20, 100, None)
        journal.flush()
        assert journal.upload_for("big.bin").upload_id == "up-2"  # type: ignore[union-attr]
        assert journal.parts_for("big.bin", "up-1") == []
        journal.end_upload("big.bin", "up-2")
        journal.flush()
        assert journal.upload_for("big.bin") is None


def test_restart_forgets_everything(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored("a", 1, 1, None, None)
        journal.begin_upload("b", "u", 1, 1, 1)
    with Journal.open(tmp_path, "job", restart=True) as journal:
        assert not journal.is_stored("a", 1, 1)
        assert journal.upload_for("b") is None
        assert journal.stored_count() == 0


def test_one_process_per_job(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job"), pytest.raises(JournalError, match="in use"):
        Journal.open(tmp_path, "job")
    # Another job in the same directory is independent.
    with Journal.open(tmp_path, "job"), Journal.open(tmp_path, "other"):
        pass


def test_state_dir_that_cannot_be_created_is_a_journal_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(JournalError, match="cannot be created") as info:
        Journal.open(blocker / "state", "job")
    assert info.value.exit_code == 3


def test_read_only_state_dir_is_a_journal_error(tmp_path: Path) -> None:
    state = tmp_path / "state"
    state.mkdir()
    if os.geteuid() == 0:
        # root ignores permission bits: make the directory read-only with a bind mount instead.
        done = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(state), str(state)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip("cannot make a read-only directory as root here")
        try:
            with pytest.raises(JournalError) as info:
                Journal.open(state, "job")
        finally:
            subprocess.run(["umount", str(state)], check=False)
    else:
        state.chmod(0o500)
        try:
            with pytest.raises(JournalError) as info:
                Journal.open(state, "job")
        finally:
            state.chmod(0o700)
    assert info.value.exit_code == 3
    assert str(state) in info.value.one_line()


def test_injected_write_failure_stops_the_journal_and_claims_nothing(tmp_path: Path) -> None:
    failing = threading.Event()

    def disk(*_: object) -> None:
        if failing.is_set():
            raise OSError(28, "No space left on device")

    journal = Journal.open(tmp_path, "job", flush_interval=60, write_fault=disk)
    journal.record_stored("before", 1, 1, None, None)
    journal.flush()
    failing.set()
    journal.record_stored("after", 1, 1, None, None)
    with pytest.raises(JournalError, match="No space left"):
        journal.flush()
    assert journal.error is not None
    with pytest.raises(JournalError):
        journal.record_stored("later", 1, 1, None, None)
    with pytest.raises(JournalError):
        journal.close()
    assert committed_keys(journal.path) == {"before"}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to mount a tiny tmpfs")
def test_full_disk_stops_the_journal(tmp_path: Path) -> None:
    disk = tmp_path / "tiny"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount tmpfs here")
    try:
        journal = Journal.open(disk, "job", flush_interval=60, batch_size=1_000_000)
        long_etag = "e" * 200
        with pytest.raises(JournalError) as info:
            for n in range(100_000):
                journal.record_stored(f"object/{n:08d}", n, n, "0" * 32, long_etag)
                if n % 500 == 499:
                    journal.flush()
        assert "full" in str(info.value) or "space" in str(info.value)
        with pytest.raises(JournalError):
            journal.close()
        # Whatever the journal committed is readable and is a prefix of what was recorded.
        with sqlite3.connect(journal.path) as connection:
            count = connection.execute("SELECT count(*) FROM stored").fetchone()[0]
        assert 0 < count < 100_000
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_open_job_journal_names_the_job_and_honours_no_journal(tmp_path: Path) -> None:
    source = describe_source(manifest="list.txt")
    assert source == "manifest:" + os.path.abspath("list.txt")
    assert describe_source(manifest="-") == "manifest:-"
    assert open_job_journal("s3://b/p", source, state_dir=tmp_path, enabled=False) is None
    journal = open_job_journal("s3://b/p", source, shard="1/3", state_dir=tmp_path)
    assert journal is not None
    with journal:
        assert journal.path == tmp_path / f"{job_id('s3://b/p', source, '1/3')}.sqlite"
    with sqlite3.connect(journal.path) as connection:
        meta = dict(connection.execute("SELECT name, value FROM meta"))
    assert meta["dest"] == "s3://b/p" and meta["shard"] == "1/3"


def test_commit_counters_and_listener(tmp_path: Path) -> None:
    commits = threading.Semaphore(0)
    failing = threading.Event()

    def disk() -> None:
        if failing.is_set():
            raise OSError(5, "Input/output error")

    journal = Journal.open(tmp_path, "job", flush_interval=60, write_fault=disk)
    journal.commit_listener = commits.release
    journal.record_stored("a", 1, 1, None, None)
    journal.record_part("b", "u", 1, "e")
    assert (journal.submitted, journal.committed) == (2, 0)
    journal.flush()
    assert commits.acquire(timeout=10)
    assert journal.committed == 2
    failing.set()
    journal.record_stored("c", 1, 1, None, None)
    with pytest.raises(JournalError):
        journal.flush()
    assert (journal.submitted, journal.committed) == (3, 2)  # the failed batch is not durable
    with pytest.raises(JournalError):
        journal.close()


def test_stored_before_open_says_whether_an_earlier_run_stored_anything(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        assert not journal.stored_before_open
        journal.record_stored("a", 1, 1, None, None)
        journal.flush()
        assert not journal.stored_before_open  # this run's own records do not count
        assert journal.is_stored("a", 1, 1)  # but stay visible to an explicit lookup
    with Journal.open(tmp_path, "job") as journal:
        assert journal.stored_before_open
    with Journal.open(tmp_path, "job", restart=True) as journal:
        assert not journal.stored_before_open
