"""S3-compatible stores answering as they do where AWS would answer otherwise, played by small
scripted servers on 127.0.0.1 (tests/fixtures/misbehaving.py):

- SeaweedFS answers a PUT to a missing bucket with ``500 InternalError``: the job must stop
  as for NoSuchBucket, not retry every object in full;
- Ceph, MinIO or OBS have storage classes AWS does not know: they must be sent as given.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bulkput.cli import main
from tests.fixtures.misbehaving import Request, ScriptedServer, error_answer, put_ok

FILES = 20


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., int]:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "compat-ak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "compat-sk")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    # the command adds a stderr handler once per process: each test gets its own (capsys)
    monkeypatch.setattr(logging.getLogger("bulkput"), "handlers", [])

    def run(*args: str) -> int:
        return main(["put", *args, "--progress", "none", "--no-journal", "--region", "us-east-1"])

    return run


def make_files(root: Path, count: int = FILES) -> Path:
    root.mkdir()
    for n in range(count):
        (root / f"f{n:02d}.txt").write_bytes(b"%d" % n)
    return root


async def head_answer(writer: asyncio.StreamWriter, status: int) -> bool:
    writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n\r\n".encode())
    await writer.drain()
    return True


def seaweed_missing_bucket(code: str) -> Callable[[int, Request, asyncio.StreamWriter], object]:
    """PUTs to bucket ``gone`` answered 500 with ``code`` (SeaweedFS says InternalError), HEAD
    on the bucket 404."""

    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.method == "HEAD" and request.target.rstrip("/") == "/gone":
            return await head_answer(writer, 404)
        if request.method == "PUT":
            message = "We encountered an internal error, please try again."
            return await error_answer(writer, 500, code, message, "Internal Server Error")
        return await head_answer(writer, 501)

    return behave


def count(server: ScriptedServer, method: str) -> int:
    return sum(1 for request in server.requests if request.method == method)


@pytest.mark.parametrize("code", ["InternalError", "NoSuchBucket"])
def test_a_500_for_a_missing_bucket_stops_the_job_without_retrying_every_object(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str], code: str
) -> None:
    src = make_files(tmp_path / "src")
    with ScriptedServer(seaweed_missing_bucket(code)) as server:  # type: ignore[arg-type]
        assert cli(str(src), "s3://gone/p/", "--endpoint", server.url) == 3
    err = capsys.readouterr().err
    assert "NoSuchBucket" in err
    # each object was tried once at most (the retry budget is 10 attempts per object)
    assert count(server, "PUT") <= FILES
    assert count(server, "HEAD") <= 1


def test_a_transient_500_in_a_bucket_that_exists_is_retried_and_asks_once(
    cli: Callable[..., int], tmp_path: Path
) -> None:
    src = make_files(tmp_path / "src")
    failed_once: set[str] = set()

    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        if request.method == "HEAD":
            return await head_answer(writer, 200)
        if request.target not in failed_once:
            failed_once.add(request.target)
            return await error_answer(writer, 500, "InternalError", "try again", "Error")
        return await put_ok(request, writer)

    with ScriptedServer(behave) as server:  # type: ignore[arg-type]
        assert cli(str(src), "s3://here/p/", "--endpoint", server.url) == 0
    assert count(server, "PUT") == 2 * FILES  # every object: one 500, then stored
    assert count(server, "HEAD") == 1  # the bucket was asked about once, not per 500


def test_a_storage_class_of_the_store_is_sent_as_given_with_one_warning(
    cli: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_files(tmp_path / "src", 3)

    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        return await put_ok(request, writer)

    with ScriptedServer(behave) as server:  # type: ignore[arg-type]
        code = cli(str(src), "s3://ceph-bucket/p/", "--endpoint", server.url,
                   "--storage-class", "WARM")  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    puts = [request for request in server.requests if request.method == "PUT"]
    assert len(puts) == 3
    assert {request.headers.get("x-amz-storage-class") for request in puts} == {"WARM"}
    assert err.count("storage class 'WARM' is not one of AWS S3's") == 1
