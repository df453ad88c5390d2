"""What one small PUT costs the client in aiohttp, against a bare asyncio protocol.

    python benchmarks/http_request_cost.py [--requests 5000] [--concurrency 64] [--pairs 5]

Both clients send the same requests (``PUT /bucket/kN`` with a 4 KiB body, 64 at a time on
kept-alive connections, uvloop) to one ``rclone serve s3 :memory:`` on 127.0.0.1 and read
every answer whole; the requests are unsigned, so the server refuses them the same cheap way
for both, and what differs is the client. Each run is its own process, the two alternate, and
the client CPU (user + system) per request is printed for every pair. The aiohttp client is
configured as bulkput's transport configures its session; the bare one writes the request
with one ``writelines`` and finds the end of the answer by its Content-Length. It is a
measuring stick for docs/dev/limits.md, not a client: no timeouts, no chunked answers, no TLS.
Writes ``benchmarks/results/standalone/http-request-cost.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BODY = os.urandom(4096)


async def with_aiohttp(host: str, port: int, requests: int, concurrency: int) -> None:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False,
        skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type"),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as session:  # fmt: skip
        numbers = iter(range(requests))

        async def worker() -> None:
            for n in numbers:
                headers = {"content-length": str(len(BODY)), "user-agent": "bench"}
                async with session.request(
                    "PUT", f"http://{host}:{port}/bench/k{n}", headers=headers, data=BODY,
                    allow_redirects=False,
                ) as answer:  # fmt: skip
                    await answer.read()

        await asyncio.gather(*(worker() for _ in range(concurrency)))


class _BareConnection(asyncio.Protocol):
    """One kept-alive connection: one request at a time, the answer ended by Content-Length."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.answer: asyncio.Future[int] | None = None
        self.transport: Any = None  # uvloop's TCPTransport (not an asyncio.Transport subclass)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = 0
        for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        del self.buffer[: end + 4 + length]
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(ConnectionError("closed"))


async def with_bare_protocol(host: str, port: int, requests: int, concurrency: int) -> None:
    loop = asyncio.get_running_loop()
    numbers = iter(range(requests))

    async def worker() -> None:
        _, connection = await loop.create_connection(_BareConnection, host, port)
        assert connection.transport is not None
        for n in numbers:
            connection.answer = loop.create_future()
            head = (
                f"PUT /bench/k{n} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"content-length: {len(BODY)}\r\nuser-agent: bench\r\n\r\n"
            )
            connection.transport.writelines((head.encode(), BODY))
            await connection.answer
        connection.transport.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def one_run(client: str, host: str, port: int, requests: int, concurrency: int) -> float:
    """In this process: the client CPU per request, in milliseconds."""
    import uvloop

    uvloop.install()
    run = with_aiohttp if client == "aiohttp" else with_bare_protocol
    before = resource.getrusage(resource.RUSAGE_SELF)
    asyncio.run(run(host, port, requests, concurrency))
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu / requests * 1000


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument(
        "--results",
        default=str(REPO / "benchmarks" / "results" / "standalone" / "http-request-cost.json"),
    )
    parser.add_argument("--one", nargs=3, metavar=("CLIENT", "HOST", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        client, host, port = args.one
        print(one_run(client, host, int(port), args.requests, args.concurrency))
        return 0

    from benchmarks.servers import RCLONE_MEMORY, start_server

    per_request: dict[str, list[float]] = {"aiohttp": [], "bare": []}
    with tempfile.TemporaryDirectory() as work, start_server(RCLONE_MEMORY, Path(work)) as server:
        for pair in range(args.pairs):
            for client in ("aiohttp", "bare"):
                out = subprocess.run(
                    [sys.executable, __file__, "--requests", str(args.requests),
                     "--concurrency", str(args.concurrency),
                     "--one", client, server.host, str(server.port)],
                    check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                per_request[client].append(float(out))
            print(
                f"pair {pair + 1}: aiohttp {per_request['aiohttp'][-1]:.3f} ms/request, "
                f"bare protocol {per_request['bare'][-1]:.3f} ms/request"
            )
    medians = {client: statistics.median(values) for client, values in per_request.items()}
    print(
        f"median client CPU per request: aiohttp {medians['aiohttp']:.3f} ms, "
        f"bare protocol {medians['bare']:.3f} ms"
    )
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "requests": args.requests, "concurrency": args.concurrency,
        "ms_per_request": per_request, "median_ms_per_request": medians,
    }, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
