"""``sync`` and ``put`` with the names and paths a walk skips or cannot send, as a user runs them,
against ``bulkput serve`` and ``rclone serve s3``: what ``--delete`` leaves alone, which objects
fail alone, what is refused before sending, and how names are printed."""

from __future__ import annotations

import asyncio
import itertools
import os
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkput.api import open_destination
from bulkput.cli import main
from bulkput.config import RetryPolicy, TransferConfig
from bulkput.server.testing import ServerHandle
from tests.fixtures.rclone import RcloneServer

PAST = 1_600_000_000
CONFIG = TransferConfig(concurrency=4, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
_buckets = itertools.count(1)


@dataclass
class Store:
    """One server as the tests use it: the CLI pointed at it, a fresh bucket, its keys."""

    name: str
    endpoint: str
    access_key: str
    secret_key: str
    region: str
    bucket: str
    puts: Callable[[], int]  # PUT requests the server received (bulkput serve), else -1

    def cli(self, *args: str) -> int:
        return main([*args, "--endpoint", self.endpoint, "--region", self.region, "--progress", "none"])

    def keys(self, prefix: str) -> dict[str, bytes]:
        async def read() -> dict[str, bytes]:
            _, store = await open_destination(
                f"s3://{self.bucket}/", endpoint=self.endpoint, access_key=self.access_key,
                secret_key=self.secret_key, region=self.region, config=CONFIG)
            try:
                keys = [info.key async for info in store.list_objects(prefix)]
                return {key: await store.get_object(key) for key in keys}
            finally:
                await store.close()

        return asyncio.run(read())


@pytest.fixture(params=["bulkput-serve", "rclone"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    bucket = f"names-{next(_buckets)}"
    if request.param == "bulkput-serve":
        server: ServerHandle = request.getfixturevalue("bulkput_server")
        server.create_bucket(bucket)
        found = Store("bulkput-serve", server.endpoint_url, server.access_key, server.secret_key,
                      "us-east-1", bucket, lambda: server.stats.count("PutObject"))
    else:
        rclone: RcloneServer = request.getfixturevalue("rclone_server")
        found = Store("rclone", rclone.endpoint, rclone.access_key, rclone.secret_key, rclone.region,
                      bucket, lambda: -1)

        async def create() -> None:
            _, client = await open_destination(
                f"s3://{bucket}/", endpoint=rclone.endpoint, access_key=rclone.access_key,
                secret_key=rclone.secret_key, region=rclone.region, config=CONFIG)
            try:
                await client.create_bucket()
            finally:
                await client.close()

        asyncio.run(create())
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", found.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", found.secret_key)
    yield found


def make_tree(root: Path, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (PAST, PAST))


def warnings_and_errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(("warning:", "error:"))]


def test_delete_keeps_what_is_behind_symbolic_links_not_followed_and_warns_once(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"syl/realdir/file.txt": b"in the folder", "syl/realfile": b"a file", "top": b"t"})
    (src / "syl" / "linkdir").symlink_to("realdir")
    (src / "syl" / "linkfile").symlink_to("realfile")
    dest = f"s3://{store.bucket}/t/"
    assert store.cli("sync", str(src), dest, "--follow-symlinks") == 0
    stored = set(store.keys("t/"))
    assert {"t/syl/linkdir/file.txt", "t/syl/linkfile"} <= stored
    capsys.readouterr()

    assert store.cli("sync", str(src), dest, "--delete") == 0
    _, err = capsys.readouterr()
    assert set(store.keys("t/")) == stored  # nothing behind either link was deleted
    assert "deleted" not in err
    lines = warnings_and_errors(err)
    assert sorted(lines) == [
        f"warning: t/syl/linkdir: skipped symbolic link {src}/syl/linkdir (use --follow-symlinks to follow)",
        f"warning: t/syl/linkfile: skipped symbolic link {src}/syl/linkfile (use --follow-symlinks to follow)",
    ]


def test_delete_keeps_the_objects_of_a_folder_the_filter_excludes(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"keep/a.txt": b"a", "cache/b.bin": b"b", "cache/deep/c.bin": b"c", "gone.txt": b"g"})
    dest = f"s3://{store.bucket}/f/"
    assert store.cli("sync", str(src), dest) == 0
    (src / "gone.txt").unlink()
    assert store.cli("sync", str(src), dest, "--delete", "--exclude", "cache/*") == 0
    assert sorted(store.keys("f/")) == ["f/cache/b.bin", "f/cache/deep/c.bin", "f/keep/a.txt"]


def test_names_equal_after_nfc_fail_alone_and_the_job_goes_on(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    nfc, nfd = unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")
    make_tree(src, {f"n/{nfd}": b"decomposed", f"n/{nfc}": b"composed", "n/other.txt": b"o", "z.txt": b"z"})
    dest = f"s3://{store.bucket}/u/"
    assert store.cli("sync", str(src), dest, "--delete") == 1
    _, err = capsys.readouterr()
    keys = store.keys("u/")
    # the first name in byte order keeps the key; everything else is stored
    assert keys == {f"u/n/{nfc}": b"decomposed", "u/n/other.txt": b"o", "u/z.txt": b"z"}
    lines = warnings_and_errors(err)
    assert len(lines) == 1 and "NFC" in lines[0] and lines[0].startswith(f"error: u/n/{nfc}: ")
    assert "aborted" not in err and "failed 1: DuplicateNameError" in err


def test_keys_with_dot_segments_are_refused_before_sending(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"ok.txt": b"ok"})
    puts = store.puts()
    assert store.cli("put", str(src), f"s3://{store.bucket}/a/../b/") == 1
    _, err = capsys.readouterr()
    lines = warnings_and_errors(err)
    assert len(lines) == 1
    assert lines[0].startswith("error: a/../b/ok.txt: refused before sending: the key has a '..' segment")
    assert f"(file {src}/ok.txt)" in lines[0] and "--allow-dot-segments" in lines[0]
    assert store.puts() == puts  # nothing was sent
    assert store.keys("") == {}
    assert store.cli("sync", str(src), f"s3://{store.bucket}/./c") == 1
    assert store.keys("") == {}
    if store.name == "bulkput-serve":  # rclone maps keys to paths: it has no such key to store
        assert store.cli("put", str(src), f"s3://{store.bucket}/a/../b/", "--allow-dot-segments") == 0
        assert store.keys("") == {"a/../b/ok.txt": b"ok"}


def test_a_newline_in_a_name_is_refused_and_printed_escaped(
    tmp_path: Path, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src"
    make_tree(src, {"x\nerror: forged.txt": b"f", "fine.txt": b"ok"})
    dest = f"s3://{store.bucket}/e/"
    assert store.cli("sync", str(src), dest, "--dry-run") == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [  # one line per object; the refused one is an error on stderr
        f"(dry run) upload {src}/fine.txt -> s3://{store.bucket}/e/fine.txt (2 B, new)",
    ]
    errors = warnings_and_errors(err)
    assert len(errors) == 1 and errors[0].startswith("error: e/x\\nerror: forged.txt: refused before sending")
    assert not any(line.startswith("error: forged") for line in (out + err).splitlines())
    assert store.cli("sync", str(src), dest) == 1
    _, err = capsys.readouterr()
    lines = warnings_and_errors(err)
    assert len(lines) == 1 and lines[0].startswith("error: e/x\\nerror: forged.txt: refused before sending")
    assert store.keys("e/") == {"e/fine.txt": b"ok"}
    assert store.cli("put", str(src), f"s3://{store.bucket}/p/") == 1
    _, err = capsys.readouterr()
    assert not any(line.startswith("error: forged") for line in err.splitlines())
    assert store.keys("p/") == {"p/fine.txt": b"ok"}
