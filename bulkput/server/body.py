"""Request bodies: received into a sink, digested on the way, checked against their headers.

Reading a body is four steps, each its own function:

1. :func:`check_framing`: the body is framed in a way the service accepts (a Content-Length,
   or chunked where the service allows it; never aws-chunked) and not over the limit;
2. :class:`BodyDigests`: the digests its headers ask for (MD5 always; SHA-256, SHA-1, CRC-32,
   CRC-64 when a header names them or the service computes them);
3. :func:`_receive`: the bytes, one read for a small body and a stream for a large one, with
   a stall timeout;
4. :meth:`BodyDigests.mismatch`: Content-MD5, ``x-amz-content-sha256`` and the checksum headers
   compared with what arrived.

A body that fails any step is aborted in its sink: nothing half-received is ever stored.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bulkput.local.digest import crc64_ecma
from bulkput.server.services import ServeError
from bulkput.server.storage import BlobWriter
from bulkput.server.validation import parse_content_md5

if TYPE_CHECKING:
    from bulkput.server.call import Call

SMALL_BODY = 1024 * 1024  # read in one call below this; stream above


@dataclass(frozen=True, slots=True)
class BodyInfo:
    """What was received: size, MD5 and, when the service wanted it, the CRC-64/ECMA."""

    size: int
    md5: bytes
    crc64: int | None


class BytesSink:
    """A small request body (delete lists, complete lists) kept in memory."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.parts.append(chunk)
        self.size += len(chunk)

    def abort(self) -> None:
        self.parts.clear()

    def getvalue(self) -> bytes:
        return b"".join(self.parts)


def _stalled() -> ServeError:
    return ServeError(
        "RequestTimeout",
        "Your socket connection to the server was not read "
        "from or written to within the timeout period.",
        close=True,
    )


def _too_large(limit: int) -> ServeError:
    return ServeError(
        "EntityTooLarge",
        f"Your proposed upload exceeds the maximum allowed size of {limit} bytes.",
        close=True,
    )


def check_framing(call: Call, limit: int) -> int | None:
    """The declared length (None for chunked), once the framing is one the service accepts."""
    headers = call.headers
    if "aws-chunked" in headers.get("content-encoding", "") or headers.get(
        "x-amz-content-sha256", ""
    ).startswith("STREAMING-"):
        raise ServeError("NotImplemented", "aws-chunked uploads are not supported.", close=True)
    length = call.http.content_length
    chunked = "chunked" in headers.get("transfer-encoding", "").lower()
    if length is None and (not chunked or call.service.name == "s3"):
        raise ServeError(
            "MissingContentLength", "You must provide the Content-Length HTTP header.", close=True
        )
    if length is not None and length > limit:
        raise _too_large(limit)
    return length


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


@dataclass
class BodyDigests:
    """The digests one body is checked with, updated piece by piece."""

    want_crc32: bool
    want_crc64: bool
    md5: hashlib._Hash = field(default_factory=hashlib.md5)
    sha256: hashlib._Hash | None = None
    sha1: hashlib._Hash | None = None
    crc32: int = 0
    crc64: int = 0

    @classmethod
    def for_headers(
        cls, headers: Mapping[str, str], *, want_crc64: bool, body_checksums: bool
    ) -> BodyDigests:
        """Only what the headers ask for: each digest costs CPU on every byte."""
        want_sha256 = (
            len(headers.get("x-amz-content-sha256", "")) == 64
            or "x-amz-checksum-sha256" in headers
            or "x-bce-content-sha256" in headers
        )
        want_crc32 = body_checksums and (
            "x-amz-checksum-crc32" in headers or "x-bce-content-crc32" in headers
        )
        return cls(
            want_crc32=want_crc32,
            want_crc64=want_crc64,
            sha256=hashlib.sha256() if want_sha256 else None,
            sha1=hashlib.sha1() if "x-amz-checksum-sha1" in headers else None,
        )

    def update(self, piece: bytes) -> None:
        self.md5.update(piece)
        if self.sha256 is not None:
            self.sha256.update(piece)
        if self.sha1 is not None:
            self.sha1.update(piece)
        if self.want_crc32:
            self.crc32 = zlib.crc32(piece, self.crc32)
        if self.want_crc64:
            self.crc64 = crc64_ecma(piece, self.crc64)

    def mismatch(
        self, headers: Mapping[str, str], *, expected_md5: bytes | None, body_checksums: bool
    ) -> ServeError | None:
        """The first header the body contradicts, as the error the service answers."""
        if expected_md5 is not None and expected_md5 != self.md5.digest():
            return ServeError(
                "BadDigest", "The Content-MD5 you specified did not match what we received."
            )
        hint = headers.get("x-amz-content-sha256", "")
        if self.sha256 is not None and len(hint) == 64 and self.sha256.hexdigest() != hint.lower():
            return ServeError(
                "XAmzContentSHA256Mismatch",
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            )
        if not body_checksums:
            return None
        sha256, sha1 = self.sha256, self.sha1
        expected = {
            "x-amz-checksum-crc32": lambda: _b64(self.crc32.to_bytes(4, "big")),
            "x-amz-checksum-sha256": lambda: _b64(sha256.digest()) if sha256 else "",
            "x-amz-checksum-sha1": lambda: _b64(sha1.digest()) if sha1 else "",
            "x-bce-content-crc32": lambda: str(self.crc32),
            "x-bce-content-sha256": lambda: sha256.hexdigest() if sha256 else "",
        }
        for name, compute in expected.items():
            given = headers.get(name)
            if given is not None and given.strip() != compute():
                return ServeError(
                    "BadDigest", f"The {name} you specified did not match what we received."
                )
        return None


async def _receive(call: Call, length: int | None, timeout: float) -> AsyncIterator[bytes]:
    """The body's bytes: one read when it is small and its length known, else as they come.
    A stall longer than ``timeout`` raises :class:`asyncio.TimeoutError`."""
    content = call.http.content
    if length is not None and length <= SMALL_BODY:
        if length:
            yield await asyncio.wait_for(content.readexactly(length), timeout)
        return
    while chunk := await asyncio.wait_for(content.readany(), timeout):
        yield chunk


async def read_body(
    call: Call, sink: BlobWriter, *, limit: int, want_crc64: bool, timeout: float,
    body_checksums: bool = True,
) -> BodyInfo:  # fmt: skip
    """Receive the body into ``sink`` and check it; on any failure the sink is aborted.

    ``body_checksums`` False skips the checksum headers that describe something other than this
    body (the BOS SDK sends the whole object's CRC-32 on CompleteMultipartUpload).
    """
    length = check_framing(call, limit)
    expected_md5 = parse_content_md5(call.headers.get("content-md5"))
    digests = BodyDigests.for_headers(
        call.headers, want_crc64=want_crc64, body_checksums=body_checksums
    )
    size = 0
    try:
        async for piece in _receive(call, length, timeout):
            size += len(piece)
            if size > limit:
                raise _too_large(limit)
            digests.update(piece)
            sink.write(piece)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError):
        sink.abort()
        raise _stalled() from None
    except BaseException:
        sink.abort()
        raise
    problem = None
    if length is not None and size < length:
        problem = ServeError(
            "RequestTimeout", "The request body was shorter than its Content-Length.", close=True
        )
    else:
        problem = digests.mismatch(
            call.headers, expected_md5=expected_md5, body_checksums=body_checksums
        )
    if problem is not None:
        sink.abort()
        raise problem
    return BodyInfo(size, digests.md5.digest(), digests.crc64 if want_crc64 else None)


async def drain(call: Call, timeout: float) -> None:
    """Read and drop whatever body came with a request that does not use one."""
    try:
        while await asyncio.wait_for(call.http.content.readany(), timeout):
            pass
    except (asyncio.TimeoutError, asyncio.IncompleteReadError):
        pass
