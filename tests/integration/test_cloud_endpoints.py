"""Endpoints as real users write them, end to end through ``bulkput put``: a custom S3
endpoint named by host name (path-style by default, as boto3 and s5cmd), the hint when a
virtual-hosted name does not resolve, and an unknown region refused before any request.

Host names are resolved by a stand-in for ``socket.getaddrinfo`` that knows one name,
``storage.test``, as 127.0.0.1 and no other (``bkt.storage.test`` does not resolve), so
nothing leaves the loopback interface."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bulkput.cli import main
from bulkput.remote.client import open_store
from bulkput.remote.credentials import Credentials
from bulkput.remote.target import Target, resolve_endpoint
from tests.fixtures.fake_cloud import LoopbackNames


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> LoopbackNames:
    return LoopbackNames("storage.test").install(monkeypatch)


def _read(server: Any, bucket: str, key: str) -> bytes:
    async def go() -> bytes:
        target = Target.parse(f"s3://{bucket}")
        store = open_store(
            target,
            endpoint=resolve_endpoint(target, server.endpoint_url),
            credentials=Credentials(server.access_key, server.secret_key),
        )
        async with store:
            return await store.get_object(key)

    return asyncio.run(go())


def _put(server: Any, tmp_path: Path, dest: str, *extra: str) -> int:
    source = tmp_path / "hello.txt"
    source.write_bytes(b"hello from a named endpoint\n")
    return main([
        "put", str(source), dest, "--endpoint", f"http://storage.test:{server.port}",
        "--access-key", server.access_key, "--secret-key", server.secret_key,
        "--state-dir", str(tmp_path / "state"), "--quiet", *extra,
    ])  # fmt: skip


def test_custom_s3_endpoint_by_name_is_path_style(
    bulkput_server: Any, bulkput_bucket: str, tmp_path: Path, resolver: LoopbackNames
) -> None:
    assert _put(bulkput_server, tmp_path, f"s3://{bulkput_bucket}/named/") == 0
    assert _read(bulkput_server, bulkput_bucket, "named/hello.txt") == b"hello from a named endpoint\n"
    assert f"{bulkput_bucket}.storage.test" not in resolver.asked


def test_unresolvable_virtual_host_suggests_path_addressing(
    bulkput_server: Any,
    bulkput_bucket: str,
    tmp_path: Path,
    resolver: LoopbackNames,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _put(bulkput_server, tmp_path, f"s3://{bulkput_bucket}/v/", "--addressing", "virtual")
    err = capsys.readouterr().err
    assert code == 3
    assert f"{bulkput_bucket}.storage.test" in resolver.asked
    assert "try --addressing path" in err


@pytest.mark.parametrize(
    ("dest", "region", "env", "suggestion"),
    [
        ("oss://bkt/x/", "cn-hangzho", {"OSS_ACCESS_KEY_ID": "AK", "OSS_ACCESS_KEY_SECRET": "SK"}, "cn-hangzhou"),
        ("s3://bkt/x/", "eu-wset-1", {"AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK"}, "eu-west-1"),
    ],
)
def test_unknown_region_is_refused_before_any_request(
    dest: str,
    region: str,
    env: dict[str, str],
    suggestion: str,
    tmp_path: Path,
    resolver: LoopbackNames,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    source = tmp_path / "a.txt"
    source.write_text("a")
    code = main(["put", str(source), dest, "--region", region, "--state-dir", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 2
    assert resolver.asked == []  # no name looked up, no request made
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "did you mean" in lines[0] and suggestion in lines[0]
