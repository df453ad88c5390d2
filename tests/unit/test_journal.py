"""The job journal: batched writes, committed-only reads, resume lookups, restart, failures."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from bulkput.errors import JournalDamagedError, JournalError
from bulkput.job.journal import (
    Journal,
    StoreIdentity,
    default_state_dir,
    describe_source,
    job_id,
    list_journals,
    open_job_journal,
    prune,
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


STORE = StoreIdentity(
    dialect="s3", scheme="http", host="127.0.0.1", port=9000, path_style=True,
    region="us-east-1", bucket="b", prefix="p/", principal="AKID",
)  # fmt: skip


@pytest.mark.parametrize(
    "field, other",
    [
        ("dialect", "oss"), ("scheme", "https"), ("host", "127.0.0.2"), ("port", 9001),
        ("path_style", False), ("region", "eu-west-1"), ("bucket", "c"), ("prefix", "q/"),
        ("principal", "OTHER"),
    ],
)  # fmt: skip
def test_job_id_changes_with_every_field_of_the_store(field: str, other: object) -> None:
    assert job_id(STORE, "m") != job_id(dataclasses.replace(STORE, **{field: other}), "m")


def test_job_id_is_stable_and_separates_source_and_shard() -> None:
    a = job_id(STORE, "manifest:/data/list.txt")
    assert a == job_id(dataclasses.replace(STORE), "manifest:/data/list.txt")
    assert a == job_id(STORE, "manifest:/data/list.txt", "0/1")
    assert a != job_id(STORE, "manifest:/data/other.txt")
    assert job_id(STORE, "m", "0/3") != job_id(STORE, "m", "1/3")


def test_store_identity_from_an_endpoint_never_holds_a_secret() -> None:
    from bulkput.remote.target import Endpoint, Target

    endpoint = Endpoint("http", "LocalHost", 9000, "us-east-1", path_style=True)
    identity = StoreIdentity.of("s3", endpoint, Target("s3", "b", "p/"), "AKID")
    assert identity == dataclasses.replace(STORE, host="localhost")
    assert identity.describe() == "s3://b/p/ at http://localhost:9000 (path, us-east-1) as AKID"


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
    assert open_job_journal(STORE, source, state_dir=tmp_path, enabled=False) is None
    journal = open_job_journal(STORE, source, shard="1/3", state_dir=tmp_path)
    assert journal is not None
    with journal:
        assert journal.path == tmp_path / f"{job_id(STORE, source, '1/3')}.sqlite"
    with sqlite3.connect(journal.path) as connection:
        meta = dict(connection.execute("SELECT name, value FROM meta"))
    assert meta["dest"] == "s3://b/p/" and meta["shard"] == "1/3"
    assert meta["store"] == STORE.describe() and meta["state"] == "running"


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


def test_a_completed_journal_opens_as_a_new_job(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored("a", 1, 1, None, None)
        journal.flush()
        assert journal.renewed is None
    with Journal.open(tmp_path, "job") as journal:  # not complete: a resume
        assert journal.renewed is None and journal.stored_before_open
        before = time.time()
        journal.mark_complete()
    (info,) = list_journals(tmp_path)
    assert info.state == "complete" and info.stored == 1
    assert info.completed_at is not None and info.completed_at >= before
    with Journal.open(tmp_path, "job") as journal:
        assert journal.renewed == info.completed_at
        assert not journal.stored_before_open and not journal.is_stored("a", 1, 1)
    (info,) = list_journals(tmp_path)
    assert (info.state, info.stored, info.completed_at) == ("running", 0, None)


def test_inode_and_ctime_are_part_of_a_file_s_identity(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored("a", 10, 111, None, None, ino=5, ctime_ns=222)
        journal.record_stored("old", 10, 111, None, None)  # recorded without them
        journal.flush()
        assert journal.is_stored("a", 10, 111, 5, 222)
        assert not journal.is_stored("a", 10, 111, 6, 222)  # another file moved in
        assert not journal.is_stored("a", 10, 111, 5, 223)  # replaced in place
        assert not journal.is_stored("a", 10, 112, 5, 222)
        assert journal.is_stored("a", 10, 111)  # a caller without them compares what it has
        assert journal.is_stored("old", 10, 111, 6, 333)


def test_stored_pages_in_byte_order_and_forget(tmp_path: Path) -> None:
    keys = [f"k{n:03d}" for n in range(250)] + ["z\u00e9", "z\U0001f600", "Z"]
    with Journal.open(tmp_path, "job") as journal:
        for key in reversed(keys):
            journal.record_stored(key, 1, 1, "m" * 32, '"e"')
        journal.flush()
        seen: list[str] = []
        after = None
        while page := journal.stored_page(after, limit=100):
            seen += [record.key for record in page]
            after = page[-1].key
        assert seen == sorted(keys, key=lambda k: k.encode())
        assert journal.stored_page(None, 1)[0].etag == '"e"'
        journal.forget_stored(keys[:200])
        journal.flush()
        assert journal.stored_count() == len(keys) - 200
        assert not journal.is_stored("k000", 1, 1) and journal.is_stored("k200", 1, 1)


def test_prune_removes_old_completed_journals_only(tmp_path: Path) -> None:
    now = time.time()
    for name in ("old-complete", "new-complete", "old-unfinished"):
        with Journal.open(tmp_path, name) as journal:
            journal.record_stored("a", 1, 1, None, None)
            if "complete" in name and "unfinished" not in name:
                journal.mark_complete()
    day = 86400
    for name in ("old-complete", "old-unfinished"):
        for path in tmp_path.glob(f"{name}.sqlite*"):
            os.utime(path, (now - 31 * day, now - 31 * day))
    with sqlite3.connect(tmp_path / "old-complete.sqlite") as connection:
        connection.execute(
            "UPDATE meta SET value = ? WHERE name = 'completed_at'", (repr(now - 31 * day),)
        )
    for path in tmp_path.glob("old-complete.sqlite*"):
        os.utime(path, (now - 31 * day, now - 31 * day))
    import fcntl

    with open(tmp_path / "old-complete.sqlite.lock", "w") as lock:  # in use: never removed
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert prune(tmp_path, now=now) == []
    assert prune(tmp_path, now=now) == [tmp_path / "old-complete.sqlite"]
    assert sorted(p.name for p in tmp_path.glob("*.sqlite")) == [
        "new-complete.sqlite", "old-unfinished.sqlite"
    ]
    assert prune(tmp_path, older_than=0, now=now + 1) == [tmp_path / "new-complete.sqlite"]


def test_opening_a_journal_prunes_its_directory(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "done") as journal:
        journal.mark_complete()
    now = time.time()
    with sqlite3.connect(tmp_path / "done.sqlite") as connection:
        connection.execute(
            "UPDATE meta SET value = ? WHERE name = 'completed_at'", (repr(now - 40 * 86400),)
        )
    for path in tmp_path.glob("done.sqlite*"):
        os.utime(path, (now - 40 * 86400, now - 40 * 86400))
    with Journal.open(tmp_path, "other"):
        pass
    assert [p.name for p in tmp_path.glob("*.sqlite")] == ["other.sqlite"]


@pytest.mark.parametrize("damage", ["header", "page"])
def test_a_damaged_journal_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    with Journal.open(tmp_path, "job") as journal:
        for n in range(2000):
            journal.record_stored(f"key-{n:05d}-{'x' * 40}", n, n, "0" * 32, "e" * 32)
        path = journal.path
    with sqlite3.connect(path) as connection:  # checkpoint the WAL into the main file
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    if damage == "header":
        data[0:16] = b"not a database!!"
    else:  # scribble over a page in the middle of the stored table's b-tree
        middle = (len(data) // 4096 // 2) * 4096
        data[middle : middle + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))
    with pytest.raises(JournalDamagedError) as raised:
        Journal.open(tmp_path, "job")
    assert raised.value.one_line() == (
        f"journal at {path} is damaged: run with --restart to start over"
    )
    assert raised.value.exit_code == 3
    with Journal.open(tmp_path, "job", restart=True) as journal:  # the way out works
        assert journal.stored_count() == 0


def test_a_journal_damaged_while_open_is_the_same_one_line(tmp_path: Path) -> None:
    with Journal.open(tmp_path, "job") as journal:
        for n in range(3000):
            journal.record_stored(f"key-{n:05d}-{'x' * 60}", n, n, "0" * 32, "e" * 32)
    with sqlite3.connect(tmp_path / "job.sqlite") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    journal = Journal.open(tmp_path, "job")
    try:
        with open(journal.path, "r+b") as file:  # another program scribbles over the pages
            size = file.seek(0, os.SEEK_END)
            for offset in range(4096, size, 4096):
                file.seek(offset)
                file.write(b"\xa5" * 4096)
        with pytest.raises(JournalDamagedError) as raised:
            for n in range(3000):
                journal.is_stored(f"key-{n:05d}-{'x' * 60}", n, n)
        assert "is damaged: run with --restart" in raised.value.one_line()
    finally:
        with contextlib.suppress(JournalError):
            journal.close()


def test_is_stored_with_the_stores_md5_needs_the_recorded_one(tmp_path: Path) -> None:
    md5 = "0123456789abcdef0123456789abcdef"
    with Journal.open(tmp_path, "job") as journal:
        journal.record_stored("a", 1, 1, md5, None)
        journal.record_stored("b", 1, 1, None, None)
        journal.flush()
        assert journal.is_stored("a", 1, 1, md5_hex=md5.upper())
        assert not journal.is_stored("a", 1, 1, md5_hex="f" * 32)  # the store holds other bytes
        assert not journal.is_stored("b", 1, 1, md5_hex=md5)  # nothing recorded to compare
        assert journal.is_stored("b", 1, 1)
