"""Outages: a ConnectError after the endpoint has answered in this job is an ``outage``
(transport), and the retry loop waits ``RetryPolicy.outage_wait`` seconds for it, whatever
``max_attempts`` says; one that never answered still aborts after ``connect_attempts``."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bulkput.config import RetryPolicy, TransferConfig
from bulkput.errors import ConnectError, EndpointUnreachable
from bulkput.remote.retry import call_with_retry
from bulkput.remote.transport import Transport


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def failing(outage: bool, failures: int):
    calls = {"n": 0}

    async def op() -> str:
        calls["n"] += 1
        if calls["n"] <= failures:
            error = ConnectError("the endpoint refused the connection")
            error.outage = outage
            raise error
        return "stored"

    return op, calls


async def test_an_outage_is_retried_past_max_attempts_until_it_ends() -> None:
    clock = FakeClock()
    op, calls = failing(outage=True, failures=30)
    policy = RetryPolicy(max_attempts=3, max_delay=2.0, outage_wait=120.0)
    result, attempts = await call_with_retry(
        op, policy, clock=clock, sleep=clock.sleep, rng=lambda: 0.99
    )
    assert result == "stored" and attempts == 31 and calls["n"] == 31
    assert clock.now <= 120


async def test_an_outage_longer_than_outage_wait_aborts_the_job() -> None:
    clock = FakeClock()
    op, _ = failing(outage=True, failures=10_000)
    policy = RetryPolicy(max_delay=2.0, outage_wait=30.0)
    with pytest.raises(EndpointUnreachable):
        await call_with_retry(op, policy, clock=clock, sleep=clock.sleep, rng=lambda: 0.99)
    assert 25 <= clock.now <= 30  # waited out the outage budget, no more


async def test_an_endpoint_never_reached_still_aborts_after_connect_attempts() -> None:
    clock = FakeClock()
    op, calls = failing(outage=False, failures=10_000)
    policy = RetryPolicy(connect_attempts=4, outage_wait=120.0)
    with pytest.raises(EndpointUnreachable):
        await call_with_retry(op, policy, clock=clock, sleep=clock.sleep, rng=lambda: 0.5)
    assert calls["n"] == 4 and clock.now < 1


async def test_transport_marks_connect_errors_after_an_answer_as_an_outage_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/b/k"
    caplog.set_level(logging.WARNING, logger="bulkput")
    async with Transport(TransferConfig(retry=RetryPolicy(outage_wait=42))) as transport:
        with pytest.raises(ConnectError) as before:  # nothing answered yet: a wrong endpoint?
            await transport.send("GET", url.replace(url.split(":")[2].split("/")[0], "9"), {})
        assert not before.value.outage
        assert (await transport.send("GET", url, {})).status == 200
        server.close()
        await server.wait_closed()
        for _ in range(3):
            with pytest.raises(ConnectError) as during:
                await transport.send("GET", url, {})
            assert during.value.outage and during.value.retryable
    notes = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith("store unreachable, retrying for 42 s")
