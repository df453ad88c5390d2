"""Adaptive requests in flight against a store 200 ms away (`bulkput serve` adding latency to
every PutObject): the limit grows past the old fixed 64, every object is stored, and
`--concurrency N` pins it. Failed before the controller existed (the limit never rose)."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from bulkput.cli import main
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle


@pytest.fixture
def slow_link(bulkput_server_factory, monkeypatch, tmp_path) -> ServerHandle:  # type: ignore[no-untyped-def]
    server = bulkput_server_factory(
        buckets=["far"],
        faults=FaultConfig(rate=1.0, mix=("latency",), latency_ms=200,
                           operations=frozenset({"PutObject"})),
    )  # fmt: skip
    for name, value in server.env("s3").items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return server


def make_files(root: Path, count: int) -> None:
    root.mkdir()
    for n in range(count):
        (root / f"f{n:05d}.bin").write_bytes(os.urandom(64))


def limits_seen(log: str) -> list[int]:
    return [int(m) for m in re.findall(r"requests in flight \d+ -> (\d+)", log)]


def test_the_limit_grows_on_a_slow_link_and_everything_is_stored(
    slow_link: ServerHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # at 200 ms, 64 in flight pass 320 objects/s: growing pays even on a loaded machine
    make_files(tmp_path / "src", 1500)
    with caplog.at_level(logging.INFO, logger="bulkput.remote.retry"):
        code = main(["put", str(tmp_path / "src"), "s3://far/a/", "--endpoint",
                     slow_link.endpoint_url, "--progress", "none", "--no-journal"])  # fmt: skip
    assert code == 0
    assert sum(1 for key in slow_link.stats.puts_by_key if key.startswith("far/a/")) == 1500
    assert max(limits_seen(caplog.text), default=64) > 64, caplog.text[-2000:]
    assert "first round at 64" in caplog.text  # why it grew: the opening wave's throughput


def test_concurrency_pins_the_limit(
    slow_link: ServerHandle, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    make_files(tmp_path / "src", 100)
    with caplog.at_level(logging.INFO, logger="bulkput.remote.retry"):
        code = main(["put", str(tmp_path / "src"), "s3://far/p/", "--endpoint",
                     slow_link.endpoint_url, "--progress", "none", "--no-journal",
                     "--concurrency", "16"])  # fmt: skip
    assert code == 0
    assert limits_seen(caplog.text) == []
