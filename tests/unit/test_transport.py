"""Transport: what goes on the wire, file bodies streamed, and network failures mapped.

Servers here are tiny asyncio servers on 127.0.0.1 that record requests, or misbehave on
purpose (reset, close, never answer).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from bulkput.config import Timeouts, TransferConfig
from bulkput.errors import ConnectError, FileChangedError, LocalInputError, TransportError
from bulkput.remote.store import FileRange
from bulkput.remote.transport import (
    _STALLED,
    ERROR_TABLE,
    FileRangePayload,
    Transport,
    _sendfile_blocking,
    map_transport_error,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Recorded:
    def __init__(self) -> None:
        self.requests: list[tuple[bytes, dict[str, str], bytes]] = []


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return lines[0], headers, body


# More than the socket buffers of a loopback connection hold: a body this size cannot leave
# unless the server reads it.
BEYOND_SOCKET_BUFFERS = 32 * 1024 * 1024


def never_reading(release: asyncio.Event) -> Handler:
    """A server that takes the connection and reads nothing until ``release`` is set."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    return handle


def sparse_file(path: Path, size: int) -> Path:
    """A file of ``size`` zero bytes that costs no disk."""
    with open(path, "wb") as handle:
        handle.truncate(size)
    return path


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(handler: Handler) -> str:
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


def recording_handler(recorded: Recorded) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await read_request(reader)
                recorded.requests.append(request)
                body = b"<ok/>"
                writer.write(
                    b'HTTP/1.1 200 OK\r\nX-Amz-Request-Id: RID\r\nETag: "abc"\r\n'
                    + f"Content-Length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return handle


async def test_bytes_body_goes_out_as_given(serve: Callable[[Handler], Awaitable[str]]) -> None:
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    async with Transport(TransferConfig()) as transport:
        answer = await transport.send(
            "PUT",
            f"{base}/bkt/a%20b%2Bc%25d",
            {"content-length": "5", "content-md5": "XrY7u+Ae7tCTyyK7j1rNww==", "x-amz-date": "x"},
            b"hello",
        )
    assert answer.status == 200
    assert answer.headers["x-amz-request-id"] == "RID" == answer.headers["X-AMZ-REQUEST-ID"]
    assert answer.body == b"<ok/>"
    line, headers, body = recorded.requests[0]
    assert line == b"PUT /bkt/a%20b%2Bc%25d HTTP/1.1"  # the path exactly as encoded
    assert body == b"hello"
    assert headers["content-length"] == "5"
    # nothing added behind the signer's back
    assert "content-type" not in headers
    assert "accept-encoding" not in headers and "accept" not in headers
    assert "transfer-encoding" not in headers
    assert headers["user-agent"].startswith("bulkput/")


class SendfileSpy:
    """Counts os.sendfile calls (the plain-HTTP file body path)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = os.sendfile

        def spy(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
            self.calls += 1
            return real(out_fd, in_fd, offset, count)

        monkeypatch.setattr(os, "sendfile", spy)


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "chunks"])
async def test_file_range_streams_exact_slice_with_length(
    serve: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sendfile: bool,
) -> None:
    spy = SendfileSpy(monkeypatch)
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    path = tmp_path / "data.bin"
    data = bytes(range(256)) * 40
    path.write_bytes(data)
    big = tmp_path / "big.bin"
    big_data = os.urandom(6 * 1024 * 1024 + 3)  # more than the socket buffers hold at once
    big.write_bytes(big_data)
    config = TransferConfig(chunk_size=97, sendfile=sendfile)  # many small reads without it
    async with Transport(config) as transport:
        body = FileRange(str(path), 13, 5000)
        await transport.send("PUT", f"{base}/b/k", {"content-length": "5000"}, body)
        path.write_bytes(data[::-1])  # a retry re-reads the file as it is now
        await transport.send("PUT", f"{base}/b/k", {"content-length": "5000"}, body)
        length = len(big_data) - 11
        await transport.send(
            "PUT", f"{base}/b/big", {"content-length": str(length)}, FileRange(str(big), 7, length)
        )
    (_, first_headers, first), (_, _, second), (_, _, third) = recorded.requests
    assert first == data[13:5013]
    assert second == data[::-1][13:5013]
    assert third == big_data[7 : 7 + length]
    assert first_headers["content-length"] == "5000"
    assert "transfer-encoding" not in first_headers
    assert (spy.calls > 0) is sendfile


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "chunks"])
async def test_file_that_shrinks_after_it_was_opened_is_a_local_error(
    serve: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sendfile: bool,
) -> None:
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    path = tmp_path / "shrinks.bin"
    path.write_bytes(b"x" * 300_000)
    real_open = FileRangePayload.open

    def open_then_shrink(self: FileRangePayload) -> None:
        real_open(self)
        os.truncate(path, 100_000)  # after the size check, before the body is sent

    monkeypatch.setattr(FileRangePayload, "open", open_then_shrink)
    async with Transport(TransferConfig(sendfile=sendfile)) as transport:
        with pytest.raises(FileChangedError) as info:
            await transport.send(
                "PUT", f"{base}/b/k", {"content-length": "300000"}, FileRange(str(path), 0, 300_000)
            )
    assert "shrank during the upload" in info.value.message
    assert info.value.path == str(path)
    assert recorded.requests == []  # the server never got a whole request


def test_sendfile_thread_stops_on_its_own_conditions(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"y" * 1000)
    left, right = socket.socketpair()
    with left, right, open(path, "rb") as source:
        left.setblocking(False)
        stop = threading.Event()
        # the file ends 200 bytes before the range does: the bytes left are returned
        assert _sendfile_blocking(left.fileno(), source.fileno(), 100, 1100, 5.0, stop) == 200
        assert right.recv(2000) == b"y" * 900
        # a peer that never reads: no room for the stall timeout
        big = tmp_path / "big.bin"
        big.write_bytes(bytes(16 * 1024 * 1024))
        with open(big, "rb") as big_source:
            assert _sendfile_blocking(
                left.fileno(), big_source.fileno(), 0, 16 * 1024 * 1024, 0.3, stop
            ) == _STALLED
            stop.set()  # asked to stop: returns at once
            assert _sendfile_blocking(
                left.fileno(), big_source.fileno(), 0, 16 * 1024 * 1024, 60.0, stop
            ) == _STALLED


async def test_cancelled_sendfile_body_ends_promptly_and_closes_its_descriptors(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path
) -> None:
    release = asyncio.Event()
    base = await serve(never_reading(release))
    size = BEYOND_SOCKET_BUFFERS
    path = sparse_file(tmp_path / "big.bin", size)
    open_before = len(os.listdir("/proc/self/fd"))
    async with Transport(TransferConfig(timeouts=Timeouts(connect=5, read=60))) as transport:
        task = asyncio.create_task(
            transport.send("PUT", f"{base}/b/k", {"content-length": str(size)},
                           FileRange(str(path), 0, size))
        )
        await asyncio.sleep(0.5)  # the body is stuck: the server reads nothing
        task.cancel()
        started = asyncio.get_running_loop().time()
        with pytest.raises(asyncio.CancelledError):
            await task
        # the thread sees the stop within a tenth of a second, not after the 60 s timeout
        assert asyncio.get_running_loop().time() - started < 5
    release.set()
    await asyncio.sleep(0.1)
    assert len(os.listdir("/proc/self/fd")) <= open_before


async def test_missing_or_shrunk_file_is_a_local_error(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path
) -> None:
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    path = tmp_path / "short.bin"
    path.write_bytes(b"x" * 10)
    async with Transport(TransferConfig()) as transport:
        with pytest.raises(LocalInputError) as missing:
            await transport.send(
                "PUT",
                f"{base}/b/k",
                {"content-length": "5"},
                FileRange(str(tmp_path / "nope"), 0, 5),
            )
        with pytest.raises(FileChangedError):
            await transport.send(
                "PUT", f"{base}/b/k", {"content-length": "20"}, FileRange(str(path), 0, 20)
            )
    assert missing.value.path == str(tmp_path / "nope")
    assert not isinstance(missing.value, TransportError)
    assert recorded.requests == []  # nothing was sent


async def test_connection_refused_is_a_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with Transport(TransferConfig()) as transport:
            with pytest.raises(ConnectError) as info:
                await transport.send("GET", f"http://127.0.0.1:{port}/b/k", {})
    assert info.value.retryable
    assert "cannot connect" in info.value.message


async def test_reset_after_request_is_transport_error_not_connect(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()  # RST

    base = await serve(reset)
    async with Transport(TransferConfig()) as transport:
        with pytest.raises(TransportError) as info:
            await transport.send("PUT", f"{base}/b/k", {"content-length": "3"}, b"abc")
    assert not isinstance(info.value, ConnectError)
    assert info.value.retryable


async def test_close_without_answer_is_server_disconnected(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.close()

    base = await serve(hang_up)
    async with Transport(TransferConfig()) as transport:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", f"{base}/b/k", {})
    assert type(info.value) is TransportError
    assert "closed the connection" in info.value.message


async def test_silent_server_times_out_on_read(serve: Callable[[Handler], Awaitable[str]]) -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await release.wait()
        writer.close()

    base = await serve(silent)
    config = TransferConfig(timeouts=Timeouts(connect=5, read=0.2))
    async with Transport(config) as transport:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", f"{base}/b/k", {})
    release.set()
    assert type(info.value) is TransportError
    assert "timed out waiting for the server" in info.value.message


def _key() -> ConnectionKey:
    return ConnectionKey("h.invalid", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("exc", "cls", "fragment"),
    [
        (
            aiohttp.ClientConnectorDNSError(_key(), OSError(-2, "Name or service not known")),
            ConnectError,
            "resolve",
        ),
        (
            aiohttp.ClientConnectorError(_key(), ConnectionRefusedError(111, "refused")),
            ConnectError,
            "cannot connect",
        ),
        (aiohttp.ConnectionTimeoutError("connect"), ConnectError, "timed out connecting"),
        (aiohttp.SocketTimeoutError("read"), TransportError, "timed out waiting"),
        (aiohttp.ServerDisconnectedError(), TransportError, "closed the connection"),
        (aiohttp.ClientPayloadError("short"), TransportError, "cut short"),
        (
            aiohttp.ClientOSError(104, "Connection reset by peer"),
            TransportError,
            "connection error",
        ),
        (ConnectionResetError(104, "reset"), TransportError, "reset"),
        (asyncio.TimeoutError(), TransportError, "timed out"),
    ],
)
def test_error_table(exc: BaseException, cls: type[TransportError], fragment: str) -> None:
    error = map_transport_error(exc, "PUT", "http://127.0.0.1:9/b/k?uploadId=1")
    assert type(error) is cls
    assert fragment in error.message
    assert error.retryable
    assert "127.0.0.1" in error.message


def test_every_connect_phase_row_maps_to_connect_error() -> None:
    connect_rows = {row[0] for row in ERROR_TABLE if row[1] is ConnectError}
    assert aiohttp.ClientConnectorError in connect_rows
    assert all(issubclass(row[1], TransportError) for row in ERROR_TABLE)


async def test_large_bytes_body_is_sent_exactly(serve: Callable[[Handler], Awaitable[str]]) -> None:
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    body = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: sent piecewise
    async with Transport(TransferConfig(chunk_size=100_000)) as transport:
        await transport.send("PUT", f"{base}/b/k", {"content-length": str(len(body))}, body)
    assert recorded.requests[0][2] == body


@pytest.mark.parametrize("kind", ["bytes", "file", "file-in-chunks"])
async def test_server_that_stops_reading_the_body_times_out(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path, kind: str
) -> None:
    release = asyncio.Event()
    base = await serve(never_reading(release))
    size = BEYOND_SOCKET_BUFFERS
    path = sparse_file(tmp_path / "big.bin", size)
    body: bytes | FileRange = bytes(size) if kind == "bytes" else FileRange(str(path), 0, size)
    config = TransferConfig(timeouts=Timeouts(connect=5, read=0.3), sendfile=kind == "file")
    async with Transport(config) as transport:
        with pytest.raises(TransportError) as info:
            await transport.send("PUT", f"{base}/b/k", {"content-length": str(size)}, body)
    release.set()
    assert type(info.value) is TransportError and info.value.retryable
    assert "stopped reading the request body" in info.value.message


async def test_insecure_transport_says_so_in_its_log(
    caplog: pytest.LogCaptureFixture, serve: Callable[[Handler], Awaitable[str]]
) -> None:
    # At info: the command line prints the one warning a user sees (test_security.py).
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    with caplog.at_level("INFO", logger="bulkput.remote.transport"):
        async with Transport(TransferConfig(verify_tls=False)) as transport:
            await transport.send("GET", f"{base}/b/k", {})
    assert "TLS certificate verification is off" in caplog.text


def test_transfer_flags_reach_the_config() -> None:
    from bulkput.cli import build_parser
    from bulkput.commands.options import config_from_args

    parser = build_parser()
    defaults = config_from_args(parser.parse_args(["put", "a", "s3://b/p"]))
    assert defaults.sendfile and defaults.content_md5
    assert defaults.multipart_threshold == 512 * 1024 * 1024
    config = config_from_args(
        parser.parse_args(
            ["put", "a", "s3://b/p", "--no-sendfile", "--no-md5", "--multipart-threshold", "64M"]
        )
    )
    assert not config.sendfile and not config.content_md5
    assert config.multipart_threshold == 64 * 1024 * 1024
    assert defaults.readers == 4
    assert config_from_args(parser.parse_args(["put", "a", "s3://b/p", "--readers", "1"])).readers == 1
    assert defaults.inline_reads
    assert not config_from_args(
        parser.parse_args(["put", "a", "s3://b/p", "--no-inline-reads"])
    ).inline_reads


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "chunks"])
async def test_server_answering_before_the_body_ends_gives_its_answer_or_a_transport_error(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path, sendfile: bool
) -> None:
    # A server refusing a request (403 on a bad signature) may answer and close without
    # reading the body: the request ends either way, with the answer or a retryable error.
    async def refuses_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<Error><Code>AccessDenied</Code></Error>"
        writer.write(
            b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        writer.close()

    base = await serve(refuses_at_once)
    size = BEYOND_SOCKET_BUFFERS
    path = sparse_file(tmp_path / "big.bin", size)
    config = TransferConfig(timeouts=Timeouts(connect=5, read=5), sendfile=sendfile)
    async with Transport(config) as transport:
        for _ in range(3):
            try:
                answer = await transport.send(
                    "PUT", f"{base}/b/k", {"content-length": str(size)}, FileRange(str(path), 0, size)
                )
            except TransportError as error:
                assert error.retryable
            else:
                assert answer.status == 403 and b"AccessDenied" in answer.body


async def test_file_body_over_tls_is_never_sent_with_sendfile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tls_server_context: ssl.SSLContext
) -> None:
    # sendfile would put plain bytes into the TLS stream: over https the body goes through
    # aiohttp's TLS transport, and arrives intact.
    recorded = Recorded()
    server = await asyncio.start_server(
        recording_handler(recorded), "127.0.0.1", 0, ssl=tls_server_context
    )
    port = server.sockets[0].getsockname()[1]
    spy = SendfileSpy(monkeypatch)
    data = os.urandom(3 * 1024 * 1024 + 5)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    try:
        async with Transport(TransferConfig(verify_tls=False)) as transport:
            answer = await transport.send(
                "PUT",
                f"https://127.0.0.1:{port}/b/k",
                {"content-length": str(len(data))},
                FileRange(str(path), 0, len(data)),
            )
    finally:
        server.close()
        await server.wait_closed()
    assert answer.status == 200
    assert recorded.requests[0][2] == data
    assert spy.calls == 0


@pytest.mark.parametrize(
    ("failure", "outcome"),
    [
        (errno.EINVAL, "sent the ordinary way"),  # a file system without sendfile support
        (errno.EIO, "read failed"),  # the disk
        (errno.ECONNRESET, "connection error"),  # the network
    ],
)
async def test_sendfile_failures_are_told_apart(
    serve: Callable[[Handler], Awaitable[str]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    failure: int,
    outcome: str,
) -> None:
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    data = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(data)

    def failing_sendfile(out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(os, "sendfile", failing_sendfile)
    body = FileRange(str(path), 0, len(data))
    async with Transport(TransferConfig()) as transport:
        if outcome == "sent the ordinary way":
            answer = await transport.send(
                "PUT", f"{base}/b/k", {"content-length": str(len(data))}, body
            )
            assert answer.status == 200 and recorded.requests[0][2] == data
            return
        expected = LocalInputError if outcome == "read failed" else TransportError
        with pytest.raises(expected) as info:
            await transport.send("PUT", f"{base}/b/k", {"content-length": str(len(data))}, body)
    assert type(info.value) is expected
    assert outcome in info.value.message
    if expected is LocalInputError:
        assert info.value.path == str(path) and "at byte 0" in info.value.message


def trickling(every: float = 0.1) -> Handler:
    """A server whose 200 answer comes one byte each ``every`` seconds: never idle for long."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            for _ in range(100000):
                await writer.drain()
                await asyncio.sleep(every)
                writer.write(b"x")
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


async def test_trickling_server_fails_the_attempt_at_its_deadline(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    # 1 s read timeout, never reached by a byte each 0.1 s; the deadline is that second plus the
    # body's 10 bytes at 64 KiB/s, rounded up: 2 s at most
    base = await serve(trickling())
    config = TransferConfig(timeouts=Timeouts(connect=5, read=1, min_rate=64 * 1024))
    async with Transport(config) as transport:
        with pytest.raises(TransportError) as info:
            # the guard is for the old code, which waited for the 100,000 bytes (almost 3 h)
            await asyncio.wait_for(
                transport.send("PUT", f"{base}/b/k", {"content-length": "10"}, b"0123456789"), 60
            )
    assert info.value.code == "DeadlineExceeded" and info.value.retryable
    assert "deadline of 2 s" in info.value.message and "--min-rate" in info.value.message


def test_deadline_grows_with_the_size_at_the_minimum_rate() -> None:
    timeouts = Timeouts(connect=5, read=60, min_rate=64 * 1024)
    assert timeouts.deadline(0) == 60
    assert timeouts.deadline(8 * 1024 * 1024) == 60 + 128
    assert Timeouts(min_rate=0).deadline(10**9) is None


async def test_attempt_timeouts_are_shared_between_requests_of_similar_size() -> None:
    transport = Transport(TransferConfig(timeouts=Timeouts(connect=5, read=60, min_rate=1024)))
    small, small_deadline = transport._attempt_timeout(10)
    again, _ = transport._attempt_timeout(500)
    large, large_deadline = transport._attempt_timeout(10 * 1024)
    assert small is again and small.total == small_deadline == 61
    assert large.total == large_deadline == 70 and large.sock_read == 60
    assert large.sock_connect == 5


def huge_answer(status: int, size: int, sent: list[int]) -> Handler:
    """An answer of ``size`` body bytes, generated as it goes; ``sent`` counts what left."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        piece = b"<Error><Code>InternalError</Code></Error>".ljust(1024 * 1024)
        try:
            await read_request(reader)
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: {size}\r\n\r\n".encode())
            left = size
            while left > 0:
                writer.write(piece[: min(left, len(piece))])
                sent.append(min(left, len(piece)))
                left -= len(piece)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


@pytest.mark.parametrize(
    ("status", "limit"), [(500, 64 * 1024), (200, 1024 * 1024)], ids=["error", "page"]
)
async def test_an_answer_is_read_up_to_its_limit_and_the_connection_dropped(
    serve: Callable[[Handler], Awaitable[str]], status: int, limit: int
) -> None:
    sent: list[int] = []
    base = await serve(huge_answer(status, 256 * 1024 * 1024, sent))
    async with Transport(TransferConfig()) as transport:
        answer = await transport.send("GET", f"{base}/b/k", {}, answer_limit=limit)
        assert answer.status == status and answer.truncated
        assert len(answer.body) == limit and answer.body.startswith(b"<Error>")
        # the connection was closed: the server could not send the rest
        await asyncio.sleep(0.2)
        assert sum(sent) < 64 * 1024 * 1024
        pool = transport._session.connector  # type: ignore[union-attr]
        assert not pool._conns  # type: ignore[union-attr]


async def test_an_answer_within_its_limit_is_read_whole_and_the_connection_kept(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    recorded = Recorded()
    connections: list[int] = []
    handler = recording_handler(recorded)

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await handler(reader, writer)

    base = await serve(counting)
    async with Transport(TransferConfig()) as transport:
        first = await transport.send("GET", f"{base}/b/k", {}, answer_limit=5)
        second = await transport.send("GET", f"{base}/b/k", {}, answer_limit=5)
    assert first.body == second.body == b"<ok/>" and not first.truncated
    assert len(recorded.requests) == 2 and len(connections) == 1


async def test_a_content_encoding_header_goes_out_with_the_bytes_as_they_are_through_sendfile(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # an object stored with --content-encoding gzip: aiohttp must not compress it again, and
    # the sendfile path (which could not compress) stays in use
    spy = SendfileSpy(monkeypatch)
    recorded = Recorded()
    base = await serve(recording_handler(recorded))
    path = tmp_path / "page.html.gz"
    data = os.urandom(200_000)
    path.write_bytes(data)
    headers = {"content-length": str(len(data)), "content-encoding": "gzip"}
    async with Transport(TransferConfig()) as transport:
        await transport.send("PUT", f"{base}/b/k", headers, FileRange(str(path), 0, len(data)))
    [(_, sent_headers, body)] = recorded.requests
    assert body == data and sent_headers["content-encoding"] == "gzip" and spy.calls > 0


def _run_python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


CA_COUNTS = """
import aiohttp.connector as connector
from bulkput.remote.transport import Transport
print(connector._SSL_CONTEXT_VERIFIED.cert_store_stats()["x509_ca"],
      Transport()._ssl_context().cert_store_stats()["x509_ca"])
"""


def test_the_command_lines_explicit_import_skips_aiohttps_default_cas_and_a_library_keeps_them() -> None:
    system_cas = ssl.create_default_context().cert_store_stats()["x509_ca"]
    if system_cas == 0:
        pytest.skip("no system CA bundle on this machine")
    explicit = _run_python(
        "from bulkput.remote.aiohttp_import import import_aiohttp_without_default_cas as imp\n"
        "assert imp() and not imp()\n" + CA_COUNTS
    )
    library = _run_python(CA_COUNTS)
    # aiohttp's own default context is left empty, the transport's context has every CA
    assert explicit == f"0 {system_cas}"
    assert library == f"{system_cas} {system_cas}"


def _ssl_error(reason: str, text: str) -> ssl.SSLError:
    error = ssl.SSLError(1, f"[SSL: {reason}] {text} (_ssl.c:1006)")
    error.reason = reason  # type: ignore[misc]
    return error


def test_tls_to_a_plain_http_port_names_the_endpoint_and_suggests_http() -> None:
    exc = aiohttp.ClientConnectorSSLError(_key(), _ssl_error("WRONG_VERSION_NUMBER", "wrong version number"))
    assert "SSLContext" in str(exc) or "ssl:" in str(exc)  # what aiohttp would have shown
    error = map_transport_error(exc, "PUT", "https://127.0.0.1:9000/b/k")
    assert type(error) is ConnectError
    assert error.message == (
        "TLS handshake with the endpoint failed (PUT https://127.0.0.1:9000: wrong version "
        "number); the port answers in plain HTTP, not TLS: use http://127.0.0.1:9000 as the endpoint"
    )


def test_other_tls_failures_give_openssls_words_without_a_suggestion() -> None:
    exc = aiohttp.ClientConnectorSSLError(_key(), _ssl_error("TLSV1_ALERT_PROTOCOL_VERSION", "alert"))
    error = map_transport_error(exc, "PUT", "https://[::1]:9443/b/k")
    assert "https://[::1]:9443: tlsv1 alert protocol version" in error.message
    assert "plain HTTP" not in error.message and "ssl:" not in error.message
    cert = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cert.verify_message = "self-signed certificate"  # type: ignore[attr-defined]
    refused = map_transport_error(
        aiohttp.ClientConnectorCertificateError(_key(), cert), "GET", "https://127.0.0.1:9443/"
    )
    assert "(GET https://127.0.0.1:9443: self-signed certificate)" in refused.message


# --- TLS connections: how many, reused, resumed --------------------------------------------


class TlsConnections:
    """A TLS server on 127.0.0.1 (keep-alive, 200 to every request) that counts its connections,
    each one TLS handshake, and whether each resumed an earlier TLS session."""

    def __init__(self) -> None:
        self.resumed: list[bool] = []  # one per connection, in the order they were accepted
        self.requests = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.resumed.append(bool(writer.get_extra_info("ssl_object").session_reused))
        try:
            while True:
                await read_request(reader)
                self.requests += 1
                writer.write(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 0\r\n\r\n')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def run_on(loop_kind: str, coro: Awaitable[None]) -> None:
    if loop_kind == "job's loop":
        from bulkput import runtime

        runtime.run_async(coro)  # type: ignore[arg-type]
    else:
        asyncio.run(coro)  # type: ignore[arg-type]


LOOPS = ("job's loop", "asyncio's loop")


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_requests_over_tls_open_at_most_the_concurrency_in_connections_and_reuse_them(
    tmp_path: Path, tls_server_context: ssl.SSLContext, loop_kind: str
) -> None:
    counted = TlsConnections()

    async def job() -> None:
        server = await asyncio.start_server(counted.handle, "127.0.0.1", 0, ssl=tls_server_context)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/b/"
        config = TransferConfig(concurrency=4, ca_bundle=str(tmp_path / "cert.pem"))
        try:
            async with Transport(config) as transport:
                for _ in range(3):  # three waves of 40 at once
                    answers = await asyncio.gather(
                        *(transport.send("PUT", f"{url}k{i}", {"content-length": "2"}, b"hi")
                          for i in range(40))
                    )  # fmt: skip
                    assert [a.status for a in answers] == [200] * 40
        finally:
            server.close()
            await server.wait_closed()

    run_on(loop_kind, job())
    assert counted.requests == 120
    assert 1 <= len(counted.resumed) <= 4, f"{len(counted.resumed)} TLS handshakes for 4 in flight"


@pytest.mark.parametrize("loop_kind", LOOPS)
def test_new_tls_connections_resume_the_session_of_an_earlier_one(
    tmp_path: Path, tls_server_context: ssl.SSLContext, loop_kind: str
) -> None:
    # one request first (its connection gets the server's session ticket with the answer),
    # then 4 at once: 3 new connections, each resuming that session instead of checking the
    # certificate again
    counted = TlsConnections()

    async def job() -> None:
        server = await asyncio.start_server(counted.handle, "127.0.0.1", 0, ssl=tls_server_context)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/b/"
        config = TransferConfig(concurrency=8, ca_bundle=str(tmp_path / "cert.pem"))
        try:
            async with Transport(config) as transport:
                assert (await transport.send("PUT", f"{url}first", {"content-length": "0"})).status == 200
                answers = await asyncio.gather(
                    *(transport.send("PUT", f"{url}k{i}", {"content-length": "0"}) for i in range(4))
                )
                assert [a.status for a in answers] == [200] * 4
        finally:
            server.close()
            await server.wait_closed()

    run_on(loop_kind, job())
    assert counted.resumed == [False, True, True, True]


def test_the_tls_context_is_built_once_for_all_connections(
    tmp_path: Path, tls_server_context: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded: list[object] = []
    load = ssl.SSLContext.load_verify_locations

    def counting_load(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(args or kwargs)
        load(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting_load)
    counted = TlsConnections()

    async def job() -> None:
        server = await asyncio.start_server(counted.handle, "127.0.0.1", 0, ssl=tls_server_context)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/b/"
        config = TransferConfig(concurrency=8, ca_bundle=str(tmp_path / "cert.pem"))
        try:
            async with Transport(config) as transport:
                await asyncio.gather(
                    *(transport.send("PUT", f"{url}k{i}", {"content-length": "0"}) for i in range(20))
                )
        finally:
            server.close()
            await server.wait_closed()

    run_on("job's loop", job())
    assert len(counted.resumed) > 1  # several connections ...
    assert len(loaded) == 1  # ... one context, its CA bundle loaded once


def test_a_tls_session_is_never_offered_to_another_host(
    tls_server_context: ssl.SSLContext,
) -> None:
    # 127.0.0.1 and localhost are the same server here, and it would resume either's session:
    # the client must not offer one host's session to another
    counted = TlsConnections()

    async def job() -> None:
        server = await asyncio.start_server(counted.handle, "127.0.0.1", 0, ssl=tls_server_context)
        port = server.sockets[0].getsockname()[1]
        try:
            async with Transport(TransferConfig(concurrency=8, verify_tls=False)) as transport:
                # two connections to 127.0.0.1 (kept, with their tickets), then one to localhost
                for host, at_once in (("127.0.0.1", 2), ("127.0.0.1", 2), ("localhost", 1)):
                    answers = await asyncio.gather(
                        *(transport.send("PUT", f"https://{host}:{port}/b/k", {"content-length": "0"})
                          for _ in range(at_once))
                    )  # fmt: skip
                    assert [a.status for a in answers] == [200] * at_once
        finally:
            server.close()
            await server.wait_closed()

    run_on("job's loop", job())
    # the first connection full, the second may resume it (if it started after the first had
    # its ticket); localhost's, the last, must not
    assert len(counted.resumed) == 3 and not counted.resumed[0], counted.resumed
    assert counted.resumed[-1] is False, counted.resumed


def test_the_verifying_tls_context_checks_what_pythons_default_context_checks(
    tmp_path: Path, tls_server_context: ssl.SSLContext
) -> None:
    ours = Transport(TransferConfig(ca_bundle=str(tmp_path / "cert.pem")))._ssl_context()
    default = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    for setting in ("verify_mode", "check_hostname", "verify_flags", "minimum_version",
                    "maximum_version", "options"):  # fmt: skip
        assert getattr(ours, setting) == getattr(default, setting), setting
    assert ours.cert_store_stats() == default.cert_store_stats()


def test_an_error_answer_over_tls_leaves_its_connection_for_the_next_request(
    tmp_path: Path, tls_server_context: ssl.SSLContext
) -> None:
    # a 503 SlowDown with its XML body, then a 404 without one: both read to their end, so the
    # one connection serves the requests after them (no new handshake per error)
    connections: list[int] = []
    error_body = b"<Error><Code>SlowDown</Code><Message>Reduce your request rate.</Message></Error>"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        served = 0
        try:
            while True:
                await read_request(reader)
                served += 1
                if served == 1:
                    writer.write(b"HTTP/1.1 503 Slow Down\r\nContent-Type: application/xml\r\n"
                                 + f"Content-Length: {len(error_body)}\r\n\r\n".encode() + error_body)  # fmt: skip
                elif served == 2:
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                else:
                    writer.write(b'HTTP/1.1 200 OK\r\nETag: "e"\r\nContent-Length: 0\r\n\r\n')
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def job() -> list[int]:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls_server_context)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/b/k"
        config = TransferConfig(concurrency=4, ca_bundle=str(tmp_path / "cert.pem"))
        try:
            async with Transport(config) as transport:
                return [(await transport.send("PUT", url, {"content-length": "0"})).status
                        for _ in range(5)]  # fmt: skip
        finally:
            server.close()
            await server.wait_closed()

    statuses: list[int] = []

    async def run() -> None:
        statuses.extend(await job())

    run_on("job's loop", run())
    assert statuses == [503, 404, 200, 200, 200]
    assert len(connections) == 1, f"{len(connections)} TLS handshakes for 5 requests in a row"
