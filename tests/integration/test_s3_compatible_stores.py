"""S3-compatible stores answering as they do where AWS would answer otherwise, played by small
scripted servers on 127.0.0.1 (tests/fixtures/misbehaving.py):

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
from tests.fixtures.misbehaving import Request, ScriptedServer, put_ok


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


def make_files(root: Path, count: int) -> Path:
    root.mkdir()
    for n in range(count):
        (root / f"f{n:02d}.txt").write_bytes(b"%d" % n)
    return root


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
