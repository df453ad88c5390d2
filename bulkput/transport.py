"""HTTP for every store of a job: one aiohttp session, bounded connections, bodies streamed
from disk, and the network's exceptions mapped onto :mod:`bulkput.errors` in one table.

``Transport.send`` is on the hot path (thousands of small PUTs a second), so it does as little
as possible: the URL is already encoded (``yarl.URL(url, encoded=True)`` skips re-quoting),
aiohttp's automatic ``Accept``, ``Accept-Encoding`` and ``Content-Type`` headers are off (a
header aiohttp added behind the signer's back would break OSS V1 and BOS signatures), and
answers are read whole (error and listing bodies are small; GET is for checks).

A :class:`~bulkput.store.FileRange` body is read from disk in ``config.chunk_size`` pieces
in a worker thread with an explicit ``Content-Length`` (never chunked encoding, which OSS and
BOS refuse with 411), and is opened afresh for every attempt, so a retry re-reads the file.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _import_aiohttp_without_default_cas() -> None:
    """Import aiohttp without loading the system CA bundle into its two module-level default
    SSL contexts (about 60 ms of CPU per process, twice the bundle parsed, even for an
    ``http://`` endpoint).

    Safe for bulkput because :class:`Transport` never uses those defaults: an ``https`` request
    always carries bulkput's own context (:meth:`Transport._ssl_context`). A context left
    without CAs fails closed (every certificate is refused), so nothing is ever accepted
    unverified. Only done by the command line (``bulkput.cli`` sets ``runtime.lazy_tls`` for
    its client verbs), on the main thread, before anything imported aiohttp: a program that
    imports bulkput as a library keeps aiohttp's defaults as they are.
    """
    from bulkput import runtime

    if (
        "aiohttp" in sys.modules
        or not runtime.lazy_tls
        or threading.current_thread() is not threading.main_thread()
    ):
        return
    context_class: Any = ssl.SSLContext
    if "set_default_verify_paths" in vars(context_class):  # someone else patched it: leave it
        return
    context_class.set_default_verify_paths = lambda self: None
    try:
        import aiohttp  # noqa: F401
    finally:
        del context_class.set_default_verify_paths


_import_aiohttp_without_default_cas()

import aiohttp  # noqa: E402
from aiohttp.abc import AbstractStreamWriter  # noqa: E402
from multidict import CIMultiDict, CIMultiDictProxy  # noqa: E402
from yarl import URL  # noqa: E402

from bulkput import __version__  # noqa: E402
from bulkput.config import TransferConfig  # noqa: E402
from bulkput.errors import (  # noqa: E402
    BulkputError,
    ConnectError,
    FileChangedError,
    LocalInputError,
    TransportError,
)
from bulkput.store import Body, FileRange  # noqa: E402

USER_AGENT = f"bulkput/{__version__}"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    """A whole answer: status, headers (case-insensitive) and body bytes."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def response(status: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Response:
    """A Response with case-insensitive headers, as ``send`` returns (for tests and fakes)."""
    return Response(status, CIMultiDictProxy(CIMultiDict(headers or {})), body)


# --- aiohttp and OS exceptions -> bulkput.errors, first match wins ------------------------------
#
# ConnectError means no connection was made, so the server cannot have seen the request: the
# retry loop counts those toward EndpointUnreachable. Everything else may have reached it.

_DNS_ERROR: type[BaseException] = getattr(
    aiohttp, "ClientConnectorDNSError", aiohttp.ClientConnectorError
)
_CONNECT_TIMEOUT: type[BaseException] = getattr(
    aiohttp, "ConnectionTimeoutError", aiohttp.ServerTimeoutError
)
_READ_TIMEOUT: type[BaseException] = getattr(
    aiohttp, "SocketTimeoutError", aiohttp.ServerTimeoutError
)

ERROR_TABLE: tuple[tuple[type[BaseException], type[TransportError], str], ...] = (
    (_DNS_ERROR, ConnectError, "cannot resolve the endpoint's host name"),
    (
        aiohttp.ClientConnectorCertificateError,
        ConnectError,
        "the endpoint's TLS certificate was not accepted",
    ),
    (aiohttp.ClientSSLError, ConnectError, "TLS handshake with the endpoint failed"),
    (aiohttp.ClientConnectorError, ConnectError, "cannot connect to the endpoint"),
    (_CONNECT_TIMEOUT, ConnectError, "timed out connecting to the endpoint"),
    (ConnectionRefusedError, ConnectError, "the endpoint refused the connection"),
    (_READ_TIMEOUT, TransportError, "timed out waiting for the server"),
    (aiohttp.ServerDisconnectedError, TransportError, "the server closed the connection"),
    (aiohttp.ClientPayloadError, TransportError, "the server's answer was cut short"),
    (ConnectionResetError, TransportError, "the connection was reset"),
    (aiohttp.ClientOSError, TransportError, "connection error"),
    (asyncio.TimeoutError, TransportError, "timed out"),
    (aiohttp.ClientError, TransportError, "HTTP error"),
    (OSError, TransportError, "network error"),
)


def _classify(exc: BaseException) -> tuple[type[TransportError], str]:
    for exc_type, error_type, what in ERROR_TABLE:
        if isinstance(exc, exc_type):
            return error_type, what
    return TransportError, "network error"


def map_transport_error(exc: BaseException, method: str, url: str) -> TransportError:
    """The :class:`TransportError` (or :class:`ConnectError`) for one exception of a request."""
    error_type, what = _classify(exc)
    host = URL(url, encoded=True).host or "?"
    detail = str(exc) or type(exc).__name__
    return error_type(f"{what} ({method} {host}: {detail})", code=type(exc).__name__)


_MAPPED: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


class _GuardedPayload(aiohttp.Payload):
    """A body written in pieces, each of which must leave within ``stall_timeout`` seconds.

    aiohttp starts its read timeout only once the body is sent, so a server that stops reading
    in the middle of a body would otherwise hang the request for ever.
    """

    def __init__(self, value: object, size: int, chunk_size: int, stall_timeout: float) -> None:
        super().__init__(value, content_type=None)
        self._size = size
        self._chunk_size = max(1, chunk_size)
        self._stall_timeout = stall_timeout
        self.stalled = False
        self.local_error: LocalInputError | None = None

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("a request body is not text")

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def _send(self, writer: AbstractStreamWriter, chunk: bytes | memoryview) -> None:
        try:
            await asyncio.wait_for(writer.write(chunk), self._stall_timeout)
        except asyncio.TimeoutError:
            self.stalled = True
            raise

    def close_file(self) -> None:
        """Release what one attempt opened (nothing for in-memory bodies)."""


class BytesBodyPayload(_GuardedPayload):
    """An in-memory body too large to be sure it fits the socket buffers: sent piecewise."""

    def __init__(self, body: bytes, chunk_size: int, stall_timeout: float) -> None:
        super().__init__(body, len(body), chunk_size, stall_timeout)
        self._view = memoryview(body)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        end = len(self._view) if content_length is None else min(content_length, len(self._view))
        for start in range(0, end, self._chunk_size):
            await self._send(writer, self._view[start : min(start + self._chunk_size, end)])


class FileRangePayload(_GuardedPayload):
    """``length`` bytes of a file from ``offset``, read in ``chunk_size`` pieces off the loop.

    The file is opened by :meth:`open` (once per attempt). A local failure is kept in
    ``local_error`` so :meth:`Transport.send` reports it as the file's fault, not the network's.
    """

    def __init__(
        self,
        file_range: FileRange,
        chunk_size: int,
        stall_timeout: float = 60.0,
        read_ahead: bool = True,
    ) -> None:
        super().__init__(file_range, file_range.length, chunk_size, stall_timeout)
        self._range = file_range
        self._fd: int | None = None
        self._read_ahead = read_ahead

    def open(self) -> None:
        path = self._range.path
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise LocalInputError(f"cannot open: {exc.strerror or exc}", path=path) from None
        try:
            size = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise LocalInputError(f"cannot stat: {exc.strerror or exc}", path=path) from None
        if size < self._range.offset + self._range.length:
            os.close(fd)
            raise FileChangedError(
                f"file is {size} bytes now, shorter than the {self._range.offset + self._range.length}"
                " bytes being sent (it changed during the upload)",
                path=path,
            )
        self._fd = fd

    def close_file(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    async def write_with_length(
        self, writer: AbstractStreamWriter, content_length: int | None
    ) -> None:
        fd = self._fd
        if fd is None:
            raise RuntimeError("FileRangePayload.open() was not called")
        remaining = (
            self._range.length
            if content_length is None
            else min(content_length, self._range.length)
        )
        position = self._range.offset
        loop = asyncio.get_running_loop()
        chunk_size = self._chunk_size
        # With read_ahead, the next chunk is read in a thread while this one is written, so
        # disk and socket overlap (two chunks of this body in memory instead of one).
        ahead: asyncio.Future[bytes] | None = None
        if remaining > 0:
            ahead = loop.run_in_executor(None, os.pread, fd, min(chunk_size, remaining), position)
        try:
            while ahead is not None:
                try:
                    chunk = await ahead
                except OSError as exc:
                    ahead = None
                    self.local_error = LocalInputError(
                        f"read failed at byte {position}: {exc.strerror or exc}",
                        path=self._range.path,
                    )
                    raise self.local_error from None
                ahead = None
                if not chunk:
                    self.local_error = FileChangedError(
                        f"file ended at byte {position}, before the {self._range.length} bytes "
                        "being sent (it shrank during the upload)",
                        path=self._range.path,
                    )
                    raise self.local_error
                position += len(chunk)
                remaining -= len(chunk)
                if remaining > 0 and self._read_ahead:
                    ahead = loop.run_in_executor(
                        None, os.pread, fd, min(chunk_size, remaining), position
                    )
                await self._send(writer, chunk)
                if remaining > 0 and ahead is None:
                    ahead = loop.run_in_executor(
                        None, os.pread, fd, min(chunk_size, remaining), position
                    )
        finally:
            if ahead is not None:
                # the file is closed after this returns: let the read in flight finish first
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ahead)


# Streamed bodies read one chunk ahead only while at most this many stream at once (a few
# large files): with many parts in flight the socket, not the disk, is the limit, and the
# extra chunk each would only add to the memory bound.
READ_AHEAD_STREAMS = 8

# In-memory bodies up to this size go to aiohttp as they are (the hot path); the socket
# buffers take them whole, so aiohttp's read timeout covers a server that never answers.
DIRECT_BODY_LIMIT = 64 * 1024


class Transport:
    """One aiohttp session for a job; shared by every store of the job.

    The session is created on first use (inside the running event loop), with
    ``TCPConnector(limit=concurrency, limit_per_host=per_host or concurrency)``.
    """

    def __init__(self, config: TransferConfig | None = None) -> None:
        self.config = config or TransferConfig()
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | None = None
        self._streams = 0  # file bodies being sent now

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS context of every ``https`` request: built on the first one (so a job against
        an ``http://`` endpoint never loads the CA bundle), verified unless ``verify_tls`` is
        off."""
        if self._tls is None:
            if self.config.verify_tls:
                context = ssl.create_default_context()
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(("http/1.1",))
            self._tls = context
        return self._tls

    def _open_session(self) -> aiohttp.ClientSession:
        config = self.config
        if not config.verify_tls:
            # info, not warning: the command line has already warned once, in its own words
            _log.info("TLS certificate verification is off: answers may be forged")
        connector = aiohttp.TCPConnector(
            limit=config.concurrency,
            limit_per_host=config.per_host or config.concurrency,
            ttl_dns_cache=300,
        )
        # sock_connect/sock_read only: ``connect`` would also count time queued for a free
        # connection, which is the scheduler's business, not a network fault.
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.timeouts.connect, sock_read=config.timeouts.read
        )
        # No session-wide headers: the User-Agent goes into each request's own headers, which
        # saves aiohttp a merge per request.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            skip_auto_headers=("Accept", "Accept-Encoding", "Content-Type"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self._session

    async def send(
        self, method: str, url: str, headers: Mapping[str, str], body: Body | None = None
    ) -> Response:
        """Send one request and read the whole answer. Never retries.

        ``headers`` may be a plain dict: it gets a ``User-Agent`` when it has none (the dict is
        the caller's per-request one and is not reused).

        Raises :class:`ConnectError` / :class:`TransportError` for network failures,
        :class:`LocalInputError` when a file body cannot be read.
        """
        session = self._session
        if session is None or session.closed:
            session = self._open_session()
        payload: _GuardedPayload | None = None
        data: Any = body
        if body is None:
            pass
        elif isinstance(body, FileRange):
            file_payload = FileRangePayload(
                body,
                self.config.chunk_size,
                self.config.timeouts.read,
                read_ahead=self._streams < READ_AHEAD_STREAMS,
            )
            file_payload.open()
            payload = data = file_payload
            self._streams += 1
        elif len(body) > DIRECT_BODY_LIMIT:
            payload = data = BytesBodyPayload(
                body, self.config.chunk_size, self.config.timeouts.read
            )
        if "user-agent" not in headers and "User-Agent" not in headers:
            headers = {**headers, "User-Agent": USER_AGENT}
        try:
            if url.startswith("https:"):
                request = session.request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    ssl=self._ssl_context(),
                )
            else:
                request = session.request(
                    method, URL(url, encoded=True), headers=headers, data=data, allow_redirects=False
                )
            async with request as answer:
                # HEAD and 204/304 answers have no body to wait for
                content = await answer.read() if answer.content_length != 0 else b""
                return Response(answer.status, answer.headers, content)
        except BulkputError:
            raise
        except _MAPPED as exc:
            if payload is not None:
                if payload.local_error is not None:
                    raise payload.local_error from None
                if payload.stalled:
                    raise TransportError(
                        f"the server stopped reading the request body for "
                        f"{self.config.timeouts.read:g} s ({method} {URL(url, encoded=True).host})",
                        code="WriteTimeout",
                    ) from exc
            raise map_transport_error(exc, method, url) from exc
        finally:
            if payload is not None:
                payload.close_file()
                if isinstance(payload, FileRangePayload):
                    self._streams -= 1

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
