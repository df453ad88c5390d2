"""HTTP for every store of a job: one aiohttp session, bounded connections, bodies streamed
from disk, and the network's exceptions mapped onto :mod:`bulkput.errors` in one table.

``Transport.send`` is on the hot path (thousands of small PUTs a second), so it does as little
as possible: the URL is already encoded (``yarl.URL(url, encoded=True)`` skips re-quoting),
aiohttp's automatic ``Accept``, ``Accept-Encoding`` and ``Content-Type`` headers are off (a
header aiohttp added behind the signer's back would break OSS V1 and BOS signatures), and
answers are read up to a limit per request (64 KiB unless the caller expects a listing page),
the rest never read. Every attempt has a deadline, ``--timeout`` plus its size at
``--min-rate``, so a server that trickles bytes cannot hold it for ever.

A :class:`~bulkput.remote.store.FileRange` body goes with an explicit ``Content-Length`` (never
chunked encoding, which OSS and BOS refuse with 411) and is opened afresh for every attempt,
so a retry re-reads the file. On a plain-HTTP connection it goes with ``os.sendfile`` from a
thread (page cache to socket, never through Python memory: a 1 GB upload of four files cost
2.5 s of client CPU before, 2.0 s after); over TLS, or when ``config.sendfile`` is off, it is
read in ``config.chunk_size`` pieces in a worker thread and written through aiohttp.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import math
import os
import select
import ssl
import sys
import threading
import time
import urllib.request
import weakref
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from bulkput import __version__, redact
from bulkput.config import TransferConfig
from bulkput.errors import (
    BulkputError,
    ConnectError,
    FileChangedError,
    LocalInputError,
    TransportError,
    UsageError,
)
from bulkput.redact import url_password, without_password
from bulkput.remote.store import Body, FileRange

USER_AGENT = f"bulkput/{__version__}"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Response:
    """An answer: status, headers (case-insensitive) and body bytes, at most the request's
    ``answer_limit`` of them; ``truncated`` when the server sent more (the rest was never read:
    the connection was closed instead)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False


def response(
    status: int, headers: Mapping[str, str] | None = None, body: bytes = b"", truncated: bool = False
) -> Response:
    """A Response with case-insensitive headers, as ``send`` returns (for tests and fakes)."""
    return Response(status, CIMultiDictProxy(CIMultiDict(headers or {})), body, truncated)


# How much of an answer's body is read. An error's text, an upload's acknowledgement: a few
# hundred bytes, so 64 KiB is plenty; a listing page of 1,000 keys of 1,024 bytes each is under
# 2 MiB. Whatever a server sends beyond is never read, so a 512 MiB error page costs 64 KiB.
SMALL_ANSWER_LIMIT = 64 * 1024
PAGE_ANSWER_LIMIT = 8 * 1024 * 1024


# --- aiohttp and OS exceptions -> bulkput.errors, first match wins ------------------------------
#
# ConnectError means no connection was made, so the server cannot have seen the request: the
# retry loop counts those toward EndpointUnreachable. Everything else may have reached it.

# (aiohttp >= 3.14, the pinned floor, has the DNS, connect-timeout and read-timeout classes)
_DNS_ERROR = aiohttp.ClientConnectorDNSError
_CONNECT_TIMEOUT = aiohttp.ConnectionTimeoutError
_READ_TIMEOUT = aiohttp.SocketTimeoutError

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


# What OpenSSL says when the answer to its ClientHello is not TLS at all (an HTTP server's
# "400 Bad Request"), from one version to the next
_PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)


def _connector_detail(exc: aiohttp.ClientConnectorError) -> str:
    """The OS's or OpenSSL's own words, without aiohttp's ``ssl:<ssl.SSLContext object at
    0x7f...>`` (the repr of the context object it tried)."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        return getattr(cause, "verify_message", None) or str(cause) or type(cause).__name__
    cause = exc.os_error
    # an ssl.SSLError has .reason (and a certificate error .verify_message) only when OpenSSL
    # raised it, so both are read with a default
    reason = getattr(cause, "reason", None)
    if isinstance(cause, ssl.SSLError) and isinstance(reason, str) and reason:
        return reason.replace("_", " ").lower()
    return cause.strerror or str(cause) or type(cause).__name__


def map_transport_error(exc: BaseException, method: str, url: str) -> TransportError:
    """The :class:`TransportError` (or :class:`ConnectError`) for one exception of a request.

    A connection that could not be made names the endpoint (scheme, host and port); an
    ``https`` one whose port answered in plain HTTP says to use ``http://``."""
    error_type, what = _classify(exc)
    parsed = URL(url, encoded=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        message = f"{what} ({method} {parsed.origin()}: {_connector_detail(exc)})"
        cause = exc.os_error
        if (
            parsed.scheme == "https"
            and isinstance(cause, ssl.SSLError)
            and getattr(cause, "reason", None) in _PLAIN_HTTP_REASONS
        ):
            plain = parsed.origin().with_scheme("http")
            message += f"; the port answers in plain HTTP, not TLS: use {plain} as the endpoint"
        return error_type(message, code=type(exc).__name__)
    detail = str(exc) or type(exc).__name__
    return error_type(f"{what} ({method} {parsed.host or '?'}: {detail})", code=type(exc).__name__)


_MAPPED: tuple[type[BaseException], ...] = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# TLS failures: the same again after any wait, never an outage
_TLS: tuple[type[BaseException], ...] = (aiohttp.ClientSSLError, ssl.SSLError)


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
        sendfile_sender: ThreadPoolExecutor | None = None,
    ) -> None:
        super().__init__(file_range, file_range.length, chunk_size, stall_timeout)
        self._range = file_range
        self._fd: int | None = None
        self._read_ahead = read_ahead
        # the threads that run os.sendfile; None: always read and write in chunks
        self.sendfile_sender = sendfile_sender

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

    async def _sendfile(self, writer: AbstractStreamWriter, fd: int, count: int) -> bool:
        """Send the range with ``os.sendfile`` when the connection allows it: the kernel moves
        page-cache pages to the socket, with no read into Python memory and no copy out of it
        (on plain-HTTP connections: about a third of the CPU a large body costs otherwise).

        Returns False, having sent nothing, when it cannot be used (TLS, chunked encoding, a
        writer that is not aiohttp's, bytes still queued in the transport, a file the kernel
        cannot send from): the caller then sends the range the ordinary way. (Compression,
        which would also rule it out, never happens: the transport never passes ``compress=``,
        and a ``Content-Encoding`` header alone does not make aiohttp compress.)
        """
        sender = self.sendfile_sender
        transport = getattr(writer, "transport", None)
        if (
            sender is None
            or transport is None
            or getattr(writer, "chunked", True)
            or transport.get_extra_info("ssl_object") is not None
        ):
            return False
        sock = transport.get_extra_info("socket")
        if sock is None:
            return False
        # aiohttp >= 3.12 holds the headers back to send them with the first piece of body
        send_headers = getattr(writer, "send_headers", None)
        if send_headers is not None:
            send_headers()
        if transport.get_write_buffer_size():
            return False  # the headers wait in the transport: the body must queue behind them
        # A duplicate of the socket's descriptor: if the connection is closed while the thread
        # sends, the number cannot be reused for another connection under it.
        sock_fd = os.dup(sock.fileno())
        stop = threading.Event()
        try:
            work = asyncio.get_running_loop().run_in_executor(
                sender,
                _sendfile_blocking,
                sock_fd,
                fd,
                self._range.offset,
                count,
                self._stall_timeout,
                stop,
            )
        except BaseException:
            os.close(sock_fd)
            raise
        try:
            outcome = await asyncio.shield(work)
        except _FileReadError as exc:
            raise self._read_failed(self._range.offset + exc.sent, str(exc)) from None
        finally:
            stop.set()
            # the descriptors are closed after this returns: let the thread see ``stop`` first
            with contextlib.suppress(BaseException):
                await asyncio.shield(work)
            os.close(sock_fd)
        if outcome == _SENT:
            return True
        if outcome == _UNSUPPORTED:
            return False  # nothing sent: the ordinary way, behind the headers already queued
        if outcome == _STALLED:
            self.stalled = True
            raise asyncio.TimeoutError
        raise self._shrank(self._range.offset + count - outcome)

    def _read_failed(self, position: int, why: str) -> LocalInputError:
        """The error of a body whose file could not be read at ``position`` (kept for
        ``Transport.send``, which reports it instead of the connection error it caused)."""
        error = LocalInputError(f"read failed at byte {position}: {why}", path=self._range.path)
        self.local_error = error
        return error

    def _shrank(self, position: int) -> FileChangedError:
        """The error of a body whose file ended at ``position``, before the range's end."""
        error = FileChangedError(
            f"file ended at byte {position}, before the {self._range.length} bytes "
            "being sent (it shrank during the upload)",
            path=self._range.path,
        )
        self.local_error = error
        return error

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
        if remaining > 0 and await self._sendfile(writer, fd, remaining):
            return
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
                    raise self._read_failed(position, exc.strerror or str(exc)) from None
                ahead = None
                if not chunk:
                    raise self._shrank(position)
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


_SENT = 0
_STALLED = -1
_UNSUPPORTED = -2

# errno values of os.sendfile that are the connection's fault (the rest are the file's)
_SOCKET_ERRNOS = frozenset(
    (
        errno.EPIPE,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.ENETDOWN,
    )
)
# errno values meaning "this file cannot be sent this way" (some FUSE and network file systems)
_UNSUPPORTED_ERRNOS = frozenset(
    (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP))
)


class _FileReadError(Exception):
    """os.sendfile failed on the file's side after sending ``sent`` bytes."""

    def __init__(self, error: OSError, sent: int) -> None:
        super().__init__(error.strerror or str(error))
        self.sent = sent


def _sendfile_blocking(
    sock_fd: int, file_fd: int, offset: int, count: int, stall_timeout: float, stop: threading.Event
) -> int:
    """Send ``count`` bytes of ``file_fd`` from ``offset`` to the non-blocking socket, waiting
    for room with ``poll`` (so the event loop keeps its own registration of the socket).

    Returns ``_SENT``; ``_STALLED`` (no room for ``stall_timeout`` seconds, or ``stop`` set);
    ``_UNSUPPORTED`` when the file cannot be sent this way and nothing was sent yet; or the
    number of bytes left when the file ended early. Raises ``OSError`` for a broken connection
    and :class:`_FileReadError` when the file cannot be read.
    """
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    sent_total = 0
    while count > 0:
        if stop.is_set():
            return _STALLED
        try:
            sent = os.sendfile(sock_fd, file_fd, offset, count)
        except BlockingIOError:
            waited = 0.0
            # in slices, so that ``stop`` is seen within a tenth of a second
            while not poller.poll(100):
                waited += 0.1
                if stop.is_set() or waited >= stall_timeout:
                    return _STALLED
            continue
        except InterruptedError:
            continue
        except OSError as exc:
            if exc.errno in _SOCKET_ERRNOS:
                raise
            if exc.errno in _UNSUPPORTED_ERRNOS and sent_total == 0:
                return _UNSUPPORTED
            raise _FileReadError(exc, sent_total) from None
        if sent == 0:
            return count  # end of file before the range's end
        offset += sent
        count -= sent
        sent_total += sent
    return _SENT


# Streamed bodies read one chunk ahead only while at most this many stream at once (a few
# large files): with many parts in flight the socket, not the disk, is the limit, and the
# extra chunk each would only add to the memory bound.
READ_AHEAD_STREAMS = 8

# File bodies sent with os.sendfile at once at most, one thread each (a thread mostly waits in
# poll() for room in the socket): as many as the default concurrency, so with many parts in
# flight none falls back to the costlier chunked path (4 x 256 MiB in 8 MiB parts: client
# CPU 4.2 s -> 3.7 s, peak RSS 150 -> 50 MB with 64 instead of 8).
SENDFILE_STREAMS = 64
# poll() on a socket and os.sendfile's semantics as relied on here: Linux
_SENDFILE_WORKS = sys.platform.startswith("linux") and hasattr(os, "sendfile")

# In-memory bodies up to this size go to aiohttp as they are (the hot path); the socket
# buffers take them whole, so aiohttp's read timeout covers a server that never answers.
DIRECT_BODY_LIMIT = 64 * 1024


async def _read_at_most(content: aiohttp.StreamReader, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` bytes of an answer body, and whether there was more."""
    pieces: list[bytes] = []
    got = 0
    while got <= limit:
        piece = await content.read(limit + 1 - got)
        if not piece:
            return b"".join(pieces), False
        pieces.append(piece)
        got += len(piece)
    return b"".join(pieces)[:limit], True


class ResumingTLSContext(ssl.SSLContext):
    """A client TLS context whose new connections resume the TLS session of an earlier one to
    the same host (TLS 1.3 or 1.2 session tickets), which spares the client the check of the
    server's certificate chain and signature; the key exchange is still fresh each time.

    Neither aiohttp nor the event loop passes a session when it wraps a new connection (both
    call :meth:`wrap_bio` without one), so the context does: it keeps the last
    ``RECENT_CONNECTIONS`` connections it wrapped for each host (weakly) and offers the newest
    session taken from one of them that has its ticket (TLS 1.3 sends it after the handshake,
    with the first answer). A server that refuses the ticket answers with a full handshake,
    and that connection brings the next session. Sessions are kept per host name, the name the
    certificate was checked against, and never offered to another host.
    """

    # a burst of new connections all start before any has its ticket: only these few are
    # looked at for one, newest first, so that a burst of N costs N * this, not N * N
    RECENT_CONNECTIONS = 8
    # a session taken is offered for this long before a newer one is looked for (taking one
    # copies it, peer certificate and all: too dear for every connection)
    SESSION_REFRESH_SECONDS = 60.0

    # host name -> the newest session taken and when; host name -> the last connections wrapped
    _sessions: dict[str, tuple[ssl.SSLSession, float]]
    _recent: dict[str, collections.deque[weakref.ref[ssl.SSLObject]]]

    def __new__(cls, protocol: int = ssl.PROTOCOL_TLS_CLIENT) -> ResumingTLSContext:
        context = super().__new__(cls, protocol)
        context._sessions = {}
        context._recent = {}
        return context

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if server_side or not server_hostname:
            return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        recent = self._recent.get(server_hostname)
        if recent is None:
            recent = self._recent[server_hostname] = collections.deque(
                maxlen=self.RECENT_CONNECTIONS
            )
        if session is None:
            session = self._session_for(server_hostname, recent)
        connection = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        recent.append(weakref.ref(connection))
        return connection

    def _session_for(
        self, host: str, recent: collections.deque[weakref.ref[ssl.SSLObject]]
    ) -> ssl.SSLSession | None:
        kept = self._sessions.get(host)
        now = time.monotonic()
        if kept is not None and now - kept[1] < self.SESSION_REFRESH_SECONDS:
            return kept[0]
        for ref in reversed(recent):
            connection = ref()
            if connection is None:
                continue
            try:
                session = connection.session
            except ValueError:  # its handshake is not done yet
                continue
            if session is not None and session.has_ticket:
                self._sessions[host] = (session, now)
                return session
        return kept[0] if kept is not None else None


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
        self._sendfile_threads: ThreadPoolExecutor | None = None
        # HTTP proxies (see _find_proxies), found when the session opens; none: the hot path
        # pays one test. Not aiohttp's trust_env, which costs two thread hand-offs a request
        # (a .netrc lookup and the environment's proxies) and could add an Authorization header.
        self._proxies: dict[str, str] = {}
        self._proxy_by_origin: dict[str, str | None] = {}
        # one ClientTimeout per distinct deadline (whole seconds), built on first use
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        # an answer came, and none of the connections since failed (one test per answer)
        self._reachable = False
        self._answered = False  # some answer came in this job: the endpoint is the right one
        self._outage_noted = False
        # +1 when an outage starts: only a request started since can tell that it ended
        self._outage_epoch = 0

    def _ssl_context(self) -> ssl.SSLContext:
        """The TLS context of every ``https`` request: built on the first one (so a job against
        an ``http://`` endpoint never loads the CA bundle), verified unless ``verify_tls`` is
        off."""
        if self._tls is None:
            if self.config.verify_tls:
                context = self._verifying_context()
            else:
                context = ResumingTLSContext()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(("http/1.1",))
            self._tls = context
        return self._tls

    def _verifying_context(self) -> ssl.SSLContext:
        """The system's CAs, or only those of ``ca_bundle`` / ``$AWS_CA_BUNDLE`` (as aws-cli)."""
        bundle, source = self.config.ca_bundle, "--ca-bundle"
        if bundle is None:
            bundle, source = os.environ.get("AWS_CA_BUNDLE") or None, "AWS_CA_BUNDLE"
        # what ssl.create_default_context(cafile=bundle) makes (certificate and host name
        # checked, the same verify flags and key log), as a ResumingTLSContext
        context = ResumingTLSContext()
        if sys.version_info >= (3, 13):
            context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN | ssl.VERIFY_X509_STRICT
        keylog = os.environ.get("SSLKEYLOGFILE")
        if keylog and not sys.flags.ignore_environment:
            context.keylog_filename = keylog
        try:
            if bundle:
                context.load_verify_locations(cafile=bundle)
            else:
                context.load_default_certs(ssl.Purpose.SERVER_AUTH)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(
                f"the CA bundle {bundle} ({source}) cannot be loaded: {exc.strerror or exc}"
            ) from None
        return context

    def _proxy_for(self, url: str) -> str | None:
        """The proxy of a request to ``url`` (cached per scheme, host and port)."""
        origin = url[: url.find("/", url.find("//") + 2)] if url.count("/") > 2 else url
        try:
            return self._proxy_by_origin[origin]
        except KeyError:
            pass
        parts = URL(origin, encoded=True)
        proxy = self._proxies.get(parts.scheme)
        if proxy is not None and urllib.request.proxy_bypass(f"{parts.host}:{parts.port}"):
            proxy = None  # NO_PROXY names it
        if len(self._proxy_by_origin) < 1024:
            self._proxy_by_origin[origin] = proxy
        return proxy

    def _find_proxies(self) -> dict[str, str]:
        """``{"http": URL, "https": URL, "no": hosts}`` from ``config.proxy`` and the
        environment (``urllib.request.getproxies``: either case, lower case first; HTTP_PROXY
        ignored in a CGI request, as curl does)."""
        found = {k: v for k, v in urllib.request.getproxies().items() if k in ("http", "https", "no")}
        if self.config.proxy is not None:
            found["http"] = found["https"] = self.config.proxy
        for scheme in ("http", "https"):
            if scheme in found:
                redact.register(url_password(found[scheme]))
        if "http" in found or "https" in found:
            _log.info(
                "proxies: %s",
                ", ".join(f"{k} {without_password(v)}" for k, v in sorted(found.items())),
            )
            return found
        return {}

    def _open_session(self) -> aiohttp.ClientSession:
        config = self.config
        self._proxies = self._find_proxies()
        self._proxy_by_origin.clear()
        if not config.verify_tls:
            # info, not warning: the command line has already warned once, in its own words
            _log.info("TLS certificate verification is off: answers may be forged")
        connector = aiohttp.TCPConnector(
            limit=config.request_slots,
            limit_per_host=config.per_host or config.request_slots,
            ttl_dns_cache=300,
        )
        # Each request brings its own timeouts (see _attempt_timeout). sock_connect and
        # sock_read, never ``connect``, which would also count time queued for a free
        # connection: that is the scheduler's business, not a network fault.
        timeout = self._attempt_timeout(0)[0]
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

    def _sendfile_sender(self, url: str) -> ThreadPoolExecutor | None:
        """The threads for an ``os.sendfile`` body, when this request may use one: plain HTTP,
        allowed by the config, and a thread free (at most ``SENDFILE_STREAMS`` file bodies are
        being sent, so each sendfile body has its own thread at once; others are read and
        written in chunks)."""
        if (
            not self.config.sendfile
            or not _SENDFILE_WORKS
            or not url.startswith("http:")
            or self._streams >= SENDFILE_STREAMS
        ):
            return None
        if self._sendfile_threads is None:
            self._sendfile_threads = ThreadPoolExecutor(
                SENDFILE_STREAMS, thread_name_prefix="bulkput-sendfile"
            )
        return self._sendfile_threads

    def _attempt_timeout(self, size: int) -> tuple[aiohttp.ClientTimeout, float | None]:
        """The timeouts of one attempt moving ``size`` body bytes, and its deadline.

        The deadline is aiohttp's ``total`` (one timer per request, which aiohttp arms anyway),
        rounded up to a whole second so that the few distinct values are built once and shared.
        It counts from the moment the request is handed to aiohttp, so a wait for a pooled
        connection (only when ``--per-host`` is below ``--concurrency``) is inside it too.
        """
        timeouts = self.config.timeouts
        deadline = timeouts.deadline(size)
        seconds = None if deadline is None else float(math.ceil(deadline))
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            if len(self._timeouts) >= 64:
                self._timeouts.clear()
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(
                total=seconds, sock_connect=timeouts.connect, sock_read=timeouts.read
            )
        return timeout, seconds

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body | None = None,
        *,
        answer_limit: int = SMALL_ANSWER_LIMIT,
        answer_size: int = 0,
    ) -> Response:
        """Send one request and read its answer, at most ``answer_limit`` bytes of its body
        (beyond that the answer is ``truncated`` and the connection closed). Never retries.

        The attempt's deadline covers the request body and ``answer_size``, the answer bytes
        the caller expects (a ranged GET), at ``timeouts.min_rate``.

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
        size = answer_size
        if body is None:
            pass
        elif isinstance(body, FileRange):
            size += body.length
            file_payload = FileRangePayload(
                body,
                self.config.chunk_size,
                self.config.timeouts.read,
                read_ahead=self._streams < READ_AHEAD_STREAMS,
                sendfile_sender=self._sendfile_sender(url),
            )
            file_payload.open()
            payload = data = file_payload
            self._streams += 1
        else:
            size += len(body)
            if len(body) > DIRECT_BODY_LIMIT:
                payload = data = BytesBodyPayload(
                    body, self.config.chunk_size, self.config.timeouts.read
                )
        if "user-agent" not in headers and "User-Agent" not in headers:
            headers = {**headers, "User-Agent": USER_AGENT}
        timeout, deadline = self._attempt_timeout(size)
        epoch = self._outage_epoch
        proxy = self._proxy_for(url) if self._proxies else None
        try:
            if url.startswith("https:"):
                request = session.request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    timeout=timeout,
                    ssl=self._ssl_context(),
                    proxy=proxy,
                )
            else:
                request = session.request(
                    method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    timeout=timeout,
                    proxy=proxy,
                )
            async with request as answer:
                if not self._reachable and epoch == self._outage_epoch:
                    self._now_reachable()
                length = answer.content_length
                # HEAD and 204/304 answers have no body to wait for
                if length == 0 or method == "HEAD":
                    return Response(answer.status, answer.headers, b"")
                if length is not None and length <= answer_limit:
                    return Response(answer.status, answer.headers, await answer.read())
                content, truncated = await _read_at_most(answer.content, answer_limit)
                if truncated:
                    answer.close()  # the rest is never read: the connection goes, not back to the pool
                return Response(answer.status, answer.headers, content, truncated)
        except BulkputError:
            raise
        except _MAPPED as exc:
            host = URL(url, encoded=True).host
            if payload is not None:
                if payload.local_error is not None:
                    raise payload.local_error from None
                if payload.stalled:
                    raise TransportError(
                        f"the server stopped reading the request body for "
                        f"{self.config.timeouts.read:g} s ({method} {host})",
                        code="WriteTimeout",
                    ) from exc
            if type(exc) is asyncio.TimeoutError and deadline is not None:
                # aiohttp's ``total``: the other timeouts raise subclasses of it
                raise TransportError(
                    f"the attempt passed its deadline of {deadline:g} s (--timeout "
                    f"{self.config.timeouts.read:g} s plus {size} bytes at --min-rate "
                    f"{self.config.timeouts.min_rate} bytes/s; {method} {host})",
                    code="DeadlineExceeded",
                ) from exc
            error = map_transport_error(exc, method, url)
            if self._answered and isinstance(error, ConnectError) and not isinstance(exc, _TLS):
                error.outage = True
                self._unreachable_now(error)
            raise error from exc
        finally:
            if payload is not None:
                payload.close_file()
                if isinstance(payload, FileRangePayload):
                    self._streams -= 1

    def _now_reachable(self) -> None:
        if self._outage_noted:
            _log.warning("store reachable again")
        self._answered = self._reachable = True
        self._outage_noted = False

    def _unreachable_now(self, error: ConnectError) -> None:
        """A connection failed after the endpoint had answered: the retry loop waits for it
        (``ConnectError.outage``); the user is told once per outage."""
        self._reachable = False
        if not self._outage_noted:
            self._outage_noted = True
            self._outage_epoch += 1
            _log.warning(
                "store unreachable, retrying for %g s: %s",
                self.config.retry.outage_wait,
                error.message,
            )

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._sendfile_threads is not None:
            threads, self._sendfile_threads = self._sendfile_threads, None
            threads.shutdown(wait=False)  # idle: every body that used them has ended

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
