"""Multipart uploads of large files, resumable from the job journal.

One file goes through these steps (:func:`upload_file`):

1. **Resume check.** If the journal holds an upload of this key for the same size and mtime,
   ``list_parts`` tells whether it still exists (gone: start the file again) and which parts
   the server has. An upload recorded for an older version of the file is aborted.
2. **Hash pass.** The file is read once, in order, in ``chunk_size`` pieces: the whole-file MD5
   (stored as user metadata ``md5`` at initiate, which is why this pass comes first: the
   metadata must be known before the upload starts, and a multipart ETag is not the file's MD5),
   every part's MD5 (its Content-MD5, and the proof that a part the server already has is the
   right one), and on OSS the CRC-64 of the whole object. The parts are then read a second time
   while sending, usually from the page cache. Memory: one chunk, plus 16 bytes per part.
3. **Initiate** (unless resuming), recorded in the journal twice: the intent (upload id
   :data:`INITIATING`) committed before the request goes, then the upload id. An Initiate that
   had to be retried may have created uploads whose answer was lost: this key's other uploads
   are listed and aborted; so are all of them when a run finds an intent only (it was killed
   while the answer was in flight).
4. **Parts** are sent concurrently as :class:`~bulkput.remote.store.FileRange` bodies streamed from
   disk, each with its own Content-MD5, each retried alone, each request holding one slot of the
   job's request limiter and one open-file slot (the job's
   :class:`~bulkput.job.limited_store.LimitedStore`: parts share the job's connection and memory
   budget with single PUTs: memory is bounded by requests in flight times the transport's chunk
   size). Each confirmed part is journaled.
5. **Re-check** the file's size and mtime; if it changed, the upload is aborted and the object
   fails with :class:`~bulkput.errors.FileChangedError`.
6. **Complete** (a 200 whose body is an error raises in the store). On OSS the returned
   ``x-oss-hash-crc64ecma`` must equal the CRC-64 computed in step 2. A retried Complete that
   gets NoSuchUpload (the answer to an earlier attempt was lost), or a journaled upload found
   gone in step 1 (a run killed while its Complete was in flight), is settled by the store: a
   HEAD whose size and ``md5`` metadata match the file means stored; otherwise the file is
   sent again as a new upload (once).

Interrupted (task cancelled: SIGINT/SIGTERM), the upload is left in place and in the journal for
the next run; ``bulkput abort-incomplete`` removes leftovers on demand. Without a journal, an
upload that fails is aborted, since nothing could resume it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from bulkput.config import GiB, KiB, MiB, TransferConfig
from bulkput.errors import (
    BulkputError,
    FileChangedError,
    LocalInputError,
    NotFoundError,
    ReadStopped,
    ServiceError,
    UsageError,
    ValidationError,
)
from bulkput.items import UploadItem
from bulkput.job.journal import UploadRecord
from bulkput.job.journal_protocol import JobJournal
from bulkput.job.store_resume import already_stored
from bulkput.local.digest import b64, crc64_ecma
from bulkput.remote.retry import Retrier
from bulkput.remote.store import (
    MAX_SINGLE_PUT,
    FileRange,
    ObjectHeaders,
    ObjectStore,
    PartInfo,
    PutResult,
)

log = logging.getLogger("bulkput.job.multipart")

T = TypeVar("T")
R = TypeVar("R")

MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * GiB
DEFAULT_PART_SIZE = 8 * MiB
MD5_METADATA = "md5"  # user metadata name holding the whole file's MD5 (hex)
# The upload id a journal records for an Initiate sent whose answer is not known yet.
INITIATING = ""

# The smallest part each service accepts (all but the last part). OSS takes 100 KiB; an
# automatic choice is never below DEFAULT_PART_SIZE, so this only limits what a user may ask.
MIN_PART_SIZE: dict[str, int] = {"s3": 5 * MiB, "oss": 100 * KiB, "bos": 5 * MiB}

_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


def min_part_size(dialect: str) -> int:
    return MIN_PART_SIZE.get(dialect, 5 * MiB)


def choose_part_size(size: int, dialect: str, requested: int | None = None) -> int:
    """The part size for a file of ``size`` bytes.

    - nothing requested: ``DEFAULT_PART_SIZE`` (8 MiB), or the smallest whole number of MiB
      that fits the file in 10,000 parts;
    - requested: that size, raised (to whole MiB) when the file would not fit in 10,000 parts;
      below the dialect's minimum or above 5 GiB is a :class:`UsageError`.

    A file larger than 10,000 parts of 5 GiB (48.8 TiB) is a :class:`ValidationError`.
    """
    if size < 0:
        raise ValueError("size must be >= 0")
    if size > MAX_PARTS * MAX_PART_SIZE:
        raise ValidationError(
            f"file of {size} bytes is larger than {MAX_PARTS} parts of 5 GiB (48.8 TiB),"
            " the most a multipart upload can hold"
        )
    if requested is not None:
        minimum = min_part_size(dialect)
        if requested < minimum:
            raise UsageError(
                f"--part-size {requested} is below the {dialect} minimum of {minimum} bytes"
            )
        if requested > MAX_PART_SIZE:
            raise UsageError(f"--part-size {requested} is above the 5 GiB maximum")
        base = requested
    else:
        base = DEFAULT_PART_SIZE
    fitting = -(-size // MAX_PARTS)  # ceil
    if base >= fitting:
        return base
    return min(MAX_PART_SIZE, -(-fitting // MiB) * MiB)


def part_count(size: int, part_size: int) -> int:
    """Parts for ``size`` bytes: at least one (an empty file is one empty part)."""
    return max(1, -(-size // part_size))


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(part_number, offset, length)`` of every part, numbered from 1; the last is the tail."""
    return [
        (n + 1, n * part_size, min(part_size, size - n * part_size))
        for n in range(part_count(size, part_size))
    ]


def needs_multipart(size: int, config: TransferConfig) -> bool:
    """Above the threshold, and always above 5 GiB (the largest single PUT)."""
    return size > min(config.multipart_threshold, MAX_SINGLE_PUT)


# --- what one job shares ------------------------------------------------------------------


class ExecutorRun(Protocol):
    """Runs a blocking function off the event loop (the engine's executor)."""

    def __call__(self, fn: Callable[[], R]) -> Awaitable[R]: ...


def _never() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class TransferContext:
    """What every multipart upload of one job shares with the engine (one per job).

    - ``store``: usually a :class:`~bulkput.job.limited_store.LimitedStore`, so each request
      holds a slot of the job's limiter and each part body one of its open-file slots;
    - ``retrier``: the job's retry loop (policy, clock, sleep, ``on_retry(key, error)``);
    - ``journal``: where uploads, parts and stored objects are recorded (None: no resume);
    - ``open_files`` and ``hash_slots``: held during the hash pass (the engine's semaphores);
    - ``on_bytes(n)``: told each part's size as the store confirms it;
    - ``executor_run``: the engine's executor for blocking reads;
    - ``should_stop``: the engine's "interrupted" flag, checked before each part.
    """

    store: ObjectStore
    config: TransferConfig
    retrier: Retrier = field(default_factory=Retrier)
    journal: JobJournal | None = None
    open_files: asyncio.Semaphore | None = None
    hash_slots: asyncio.Semaphore | None = None
    on_bytes: Callable[[int], object] | None = None
    executor_run: ExecutorRun | None = None
    should_stop: Callable[[], bool] = _never

    async def in_executor(self, fn: Callable[[], R]) -> R:
        if self.executor_run is not None:
            return await self.executor_run(fn)
        return await asyncio.get_running_loop().run_in_executor(None, fn)


# --- the hash pass ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FileHashes:
    md5: bytes  # whole file
    part_md5s: tuple[bytes, ...]  # index 0 is part 1
    crc64: int | None
    size: int  # bytes read


def hash_parts(
    path: str,
    size: int,
    part_size: int,
    *,
    want_crc: bool,
    chunk_size: int = 1 * MiB,
    parallel: bool = True,
    stop: Callable[[], bool] | None = None,
) -> FileHashes:
    """Read ``path`` once: whole-file MD5, each part's MD5, and the CRC-64 when asked.

    Blocking: run it in an executor. Reads at most ``size`` bytes; ``FileHashes.size`` shorter
    than ``size`` means the file shrank. With ``parallel`` the whole-file digests run in a
    helper thread beside the part digests (hashlib releases the GIL), so the pass that must
    end before a multipart upload can start takes about one MD5's time instead of two.
    """
    whole = hashlib.md5()
    crc = 0
    part_md5s: list[bytes] = []
    # Two buffers: the helper hashes one while this thread reads the next into the other.
    buffers = [memoryview(bytearray(min(chunk_size, max(part_size, 1)))) for _ in range(2)]
    total = 0

    def whole_update(piece: memoryview) -> None:
        nonlocal crc
        whole.update(piece)
        if want_crc:
            crc = crc64_ecma(piece, crc)

    helper = ThreadPoolExecutor(1, thread_name_prefix="bulkput-hash") if parallel else None
    pending: Future[None] | None = None
    turn = 0
    try:
        with open(path, "rb", buffering=0) as handle:
            for _number, _offset, length in part_ranges(size, part_size):
                if stop is not None and stop():
                    raise ReadStopped("the job stopped while the file was hashed", path=path)
                part = hashlib.md5()
                remaining = length
                while remaining > 0:
                    view = buffers[turn]
                    count = handle.readinto(view[: min(len(view), remaining)])
                    if not count:
                        break
                    piece = view[:count]
                    if pending is not None:
                        pending.result()  # the helper is done with the other buffer
                    if helper is not None:
                        pending = helper.submit(whole_update, piece)
                        turn ^= 1
                    else:
                        whole_update(piece)
                    part.update(piece)
                    remaining -= count
                    total += count
                part_md5s.append(part.digest())
                if remaining:
                    break
        if pending is not None:
            pending.result()
    finally:
        if helper is not None:
            helper.shutdown(wait=True)
    return FileHashes(whole.digest(), tuple(part_md5s), crc if want_crc else None, total)


# --- one file -----------------------------------------------------------------------------


def _file_state(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


@dataclass(frozen=True, slots=True)
class MultipartResult(PutResult):
    """What :func:`upload_file` returns: a :class:`PutResult` (the multipart ETag, the complete
    request's id, the stored CRC-64) plus what the report needs."""

    md5_hex: str = ""  # the whole file's MD5 (also stored as user metadata ``md5``)
    attempts: int = 1  # one plus every retry of every request of this object
    parts_sent: int = 0
    parts_reused: int = 0  # confirmed by an earlier run and found on the server
    resumed: bool = False
    in_store: bool = False  # not sent: the store holds these bytes (item.stored matched)


# What the engine calls for a large file: upload_file, or a test's stand-in.
# (ctx, item, size, mtime_ns, headers, file_id): file_id is (inode, ctime_ns) or None
MultipartUploader = Callable[
    [TransferContext, UploadItem, int, int, ObjectHeaders, "tuple[int, int] | None"],
    Awaitable[MultipartResult],
]


async def upload_file(
    ctx: TransferContext,
    item: UploadItem,
    size: int,
    mtime_ns: int,
    headers: ObjectHeaders,
    file_id: tuple[int, int] | None = None,
) -> MultipartResult:
    """Upload one file as a multipart upload, resuming from the journal when possible.

    ``size`` and ``mtime_ns`` are what the engine stat'ed; the file must still match them when
    read and before completing. ``headers`` are the object's headers (see
    :class:`bulkput.job.headers.HeaderBuilder`); the whole file's MD5 is added as user metadata
    ``md5``. Once ``ctx.should_stop()`` is true, parts in flight finish, no new part starts,
    and the upload is left for the next run (``CancelledError``).

    The object is journaled as stored (with the whole file's MD5) only after the server
    confirmed it. Raises :class:`~bulkput.errors.BulkputError` subclasses on failure, with
    ``attempts`` counting every attempt of every request of the object; cancelled, it leaves the
    upload for the next run.
    """
    upload = _FileUpload(ctx, item, size, mtime_ns, headers, file_id)
    try:
        return await upload.run()
    except BulkputError as error:
        error.attempts = upload.attempts
        raise


class _CompleteLost(Exception):
    """A Complete found its upload gone and the store does not hold this file."""

    def __init__(self, error: NotFoundError) -> None:
        super().__init__(error.message)
        self.error = error


class _FileUpload:
    """One file's way through the steps of the module doc, one method per step."""

    def __init__(
        self,
        ctx: TransferContext,
        item: UploadItem,
        size: int,
        mtime_ns: int,
        headers: ObjectHeaders,
        file_id: tuple[int, int] | None = None,
    ) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.journal = ctx.journal
        self.item = item
        self.key = item.key
        self.size = size
        self.mtime_ns = mtime_ns
        self.headers = headers
        self.file_id = file_id  # (inode, ctime_ns) from the engine's stat, journaled with it
        self.record: UploadRecord | None = None  # the upload the parts go to
        self.server_parts: dict[int, PartInfo] = {}  # what the server has of a resumed upload
        self.done: dict[int, PartInfo] = {}  # confirmed parts (reused or sent)
        self.attempts = 1  # 1 + every retry of every request of this object
        self.parts_sent = 0
        self.parts_reused = 0
        # The upload an earlier run recorded, found gone: its Complete may have gone through.
        self.gone: UploadRecord | None = None
        self.restarted = False  # sent again after a Complete found the upload gone

    async def request(self, op: Callable[[], Awaitable[T]]) -> T:
        """One request through the job's retry loop; its retries count in ``attempts``, also
        when it fails in the end."""
        try:
            result, attempts = await self.ctx.retrier.call(self.key, op)
        except BulkputError as error:
            self.attempts += max(1, error.attempts) - 1
            raise
        self.attempts += attempts - 1
        return result

    async def run(self) -> MultipartResult:
        await self.check_resume()
        part_size = (
            self.record.part_size
            if self.record is not None
            else choose_part_size(self.size, self.store.dialect_name, self.ctx.config.part_size)
        )
        ranges = part_ranges(self.size, part_size)
        hashes = await self.hash_pass(part_size)
        if already_stored(self.item, self.size, hashes.md5.hex()):
            if self.record is not None:  # an earlier run's upload of these bytes: not needed
                await self.abandon(self.record)
            return MultipartResult(etag=None, md5_hex=hashes.md5.hex(), in_store=True)
        if self.gone is not None:
            # The upload an earlier run recorded is gone: a Complete whose answer that run never
            # read (killed) may have stored the object. The store decides.
            stored = await self.stored_copy(hashes)
            if stored is not None:
                return self.finish(None, stored, hashes, resumed=True)
        self.match_server_parts(hashes, ranges)
        if self.ctx.should_stop():
            raise asyncio.CancelledError  # interrupted while hashing: nothing started yet
        resumed = self.record is not None
        while True:
            record = self.record or await self.initiate(part_size, hashes)
            try:
                await self.send_parts(record.upload_id, ranges, hashes)
                await self.recheck()
                result = await self.complete(record.upload_id, ranges, hashes)
                break
            except _CompleteLost as lost:
                # The upload vanished under a Complete and the store holds other bytes: send
                # the file once more, as a new upload.
                if self.journal is not None:
                    self.journal.end_upload(self.key, record.upload_id)
                if self.restarted:
                    raise lost.error from None
                self.restarted = True
                self.record, self.server_parts, self.done, resumed = None, {}, {}, False
            except asyncio.CancelledError:
                raise  # interrupted: the journal keeps the upload for the next run
            except FileChangedError:
                await self.abandon(record)
                raise
            except NotFoundError as error:
                if error.service_code == "NoSuchUpload" and self.journal is not None:
                    self.journal.end_upload(self.key, record.upload_id)  # the next run starts again
                raise
            except BulkputError as error:
                # Without a journal nothing can resume this upload; a refused complete will not
                # succeed later either. Otherwise keep it for the next run.
                if self.journal is None or (
                    isinstance(error, ServiceError)
                    and not error.retryable
                    and not error.fatal_for_job
                ):
                    await self.abandon(record)
                raise
            except OSError as exc:
                raise LocalInputError(
                    f"cannot read: {exc.strerror or exc}", key=self.key, path=self.item.path
                ) from None
        return self.finish(record.upload_id, result, hashes, resumed)

    # 1. what an earlier run left
    async def check_resume(self) -> None:
        journal = self.journal
        record = journal.upload_for(self.key) if journal is not None else None
        if record is not None and record.upload_id == INITIATING:
            # An earlier run was stopped while its Initiate was in flight: any upload that
            # made is known to nobody. Abort this key's uploads, then start afresh.
            await self.abort_strays(keep=None)
            if journal is not None:
                journal.end_upload(self.key, INITIATING)
            self.gone = record  # and its parts and Complete may have gone through before
            record = None
        if record is not None and (record.size, record.mtime_ns) != (self.size, self.mtime_ns):
            await self.abandon(record)  # the file changed since
            record = None
        if record is not None:
            earlier_id = record.upload_id
            try:
                listed = await self.request(lambda: self.store.list_parts(self.key, earlier_id))
                self.server_parts = {p.part_number: p for p in listed}
            except NotFoundError:
                if journal is not None:
                    journal.end_upload(self.key, earlier_id)
                self.gone = record
                record = None
        self.record = record

    # 2. the hash pass
    async def hash_pass(self, part_size: int) -> FileHashes:
        ctx, item = self.ctx, self.item
        want_crc = self.store.dialect_name == "oss"

        def hash_now() -> FileHashes:
            return hash_parts(
                item.path, self.size, part_size, want_crc=want_crc,
                chunk_size=ctx.config.chunk_size, stop=ctx.should_stop,
            )

        try:
            async with (
                ctx.open_files or contextlib.nullcontext(),
                ctx.hash_slots or contextlib.nullcontext(),
            ):
                hashes = await ctx.in_executor(hash_now)
            state_after_hash = await ctx.in_executor(lambda: _file_state(item.path))
        except ReadStopped:
            raise asyncio.CancelledError from None  # interrupted while hashing: nothing sent
        except OSError as exc:
            raise LocalInputError(
                f"cannot read: {exc.strerror or exc}", key=self.key, path=item.path
            ) from None
        if hashes.size != self.size or state_after_hash != (self.size, self.mtime_ns):
            if self.record is not None:
                await self.abandon(self.record)
            raise FileChangedError(
                "file changed while it was read (size or mtime); not uploaded",
                key=self.key,
                path=item.path,
            )
        if item.md5 is not None and item.md5 != b64(hashes.md5):
            raise LocalInputError(
                f"file MD5 {b64(hashes.md5)} differs from the manifest's {item.md5}",
                key=self.key,
                path=item.path,
            )
        record = self.record
        if record is not None and record.md5 is not None and record.md5 != hashes.md5.hex():
            # Same size and mtime but other bytes: the parts on the server are not this file's.
            await self.abandon(record)
            self.record, self.server_parts = None, {}
        return hashes

    def match_server_parts(self, hashes: FileHashes, ranges: Sequence[tuple[int, int, int]]) -> None:
        """Parts the server already has and that hold exactly these bytes go to ``done``."""
        record, journal = self.record, self.journal
        journal_parts = (
            {p.part_number: p for p in journal.parts_for(self.key, record.upload_id)}
            if journal is not None and record is not None
            else {}
        )
        for number, _offset, length in ranges:
            listed = self.server_parts.get(number)
            if listed is None or (listed.size is not None and listed.size != length):
                continue
            etag = listed.etag.strip('"').lower()
            journaled = journal_parts.get(number)
            if etag == hashes.part_md5s[number - 1].hex() or (
                not _MD5_HEX.match(etag) and journaled is not None and journaled.etag == listed.etag
            ):
                self.done[number] = PartInfo(number, listed.etag, length)

    # 3. initiate
    async def initiate(self, part_size: int, hashes: FileHashes) -> UploadRecord:
        """Start the upload. The intent is journaled (and committed) before the request goes,
        so a run killed while the answer is in flight leaves a trace for the next run; an
        answer lost within this run (the Initiate was retried) leaves uploads nobody knows,
        which are aborted once the one in use is known."""
        journal = self.journal
        md5_hex = hashes.md5.hex()
        if journal is not None:
            journal.begin_upload(
                self.key, INITIATING, part_size, self.size, self.mtime_ns, md5_hex
            )
            await self.ctx.in_executor(journal.flush)
        object_headers = replace(
            self.headers, metadata={**self.headers.metadata, MD5_METADATA: md5_hex}
        )
        attempts_before = self.attempts
        upload_id = await self.request(
            lambda: self.store.create_multipart_upload(self.key, object_headers)
        )
        record = UploadRecord(self.key, upload_id, part_size, self.size, self.mtime_ns, md5_hex)
        if journal is not None:
            journal.begin_upload(
                self.key, upload_id, part_size, self.size, self.mtime_ns, md5_hex
            )
        if self.attempts > attempts_before:
            await self.abort_strays(keep=upload_id)
        return record

    async def abort_strays(self, keep: str | None) -> None:
        """Abort this key's multipart uploads other than ``keep``: made by an Initiate whose
        answer was lost. What cannot be aborted is named in a warning."""
        key = self.key

        async def listed() -> list[str]:
            return [
                upload.upload_id
                async for upload in self.store.list_multipart_uploads(key)
                if upload.key == key and upload.upload_id != keep
            ]

        try:
            strays = await self.request(listed)
        except BulkputError as error:
            log.warning(
                "%s: cannot list its multipart uploads (%s); an Initiate answer was lost, so"
                " one may be left behind: run bulkput abort-incomplete", key, error.one_line()
            )
            return
        for upload_id in strays:
            await self.abort_stray(upload_id)

    async def abort_stray(self, upload_id: str) -> None:
        key = self.key
        try:
            await self.request(lambda: self.store.abort_multipart_upload(key, upload_id))
        except NotFoundError:
            pass  # gone already
        except BulkputError as error:
            log.warning(
                "%s: upload %s (its Initiate answer was lost) could not be aborted (%s):"
                " run bulkput abort-incomplete", key, upload_id, error.one_line()
            )
        else:
            log.info("%s: aborted upload %s, whose Initiate answer was lost", key, upload_id)

    # 4. parts
    async def send_parts(
        self, upload_id: str, ranges: Sequence[tuple[int, int, int]], hashes: FileHashes
    ) -> None:
        """Send the parts not yet ``done`` with a few workers; each request waits for its
        slot in the store, so the workers only bound how many parts of this file wait."""
        ctx, done = self.ctx, self.done
        self.parts_reused = len(done)
        if ctx.on_bytes is not None and done:
            ctx.on_bytes(sum(p.size or 0 for p in done.values()))
        todo = [r for r in ranges if r[0] not in done]
        pending = iter(todo)

        async def worker() -> None:
            for number, offset, length in pending:
                if ctx.should_stop():
                    return
                await self.send_part(upload_id, number, offset, length, hashes)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(len(todo), ctx.config.request_slots))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        if len(done) < len(ranges):
            raise asyncio.CancelledError  # interrupted: parts in flight ended, the rest wait

    async def send_part(
        self, upload_id: str, number: int, offset: int, length: int, hashes: FileHashes
    ) -> None:
        ctx, key = self.ctx, self.key
        digest = hashes.part_md5s[number - 1]
        expected = digest.hex()
        content_md5 = b64(digest) if ctx.config.content_md5 else None
        body = FileRange(self.item.path, offset, length)

        async def op() -> PartInfo:
            info = await self.store.upload_part(
                key, upload_id, number, body, content_md5=content_md5
            )
            etag = info.etag.strip('"').lower()
            if info.etag_is_md5 and _MD5_HEX.match(etag) and etag != expected:
                raise ServiceError(
                    f"part {number}: ETag {etag} is not the MD5 {expected} of the bytes sent",
                    code="BadDigest",
                    key=key,
                    retryable=True,
                )
            return info

        info = await self.request(op)
        self.parts_sent += 1
        self.done[number] = PartInfo(number, info.etag, length)
        if self.journal is not None:
            self.journal.record_part(key, upload_id, number, info.etag, length)
        if ctx.on_bytes is not None:
            ctx.on_bytes(length)

    # 5. the file must not have changed while the parts were sent
    async def recheck(self) -> None:
        path = self.item.path
        if await self.ctx.in_executor(lambda: _file_state(path)) != (self.size, self.mtime_ns):
            raise FileChangedError(
                "file changed while it was uploaded (size or mtime); upload aborted",
                key=self.key,
                path=path,
            )

    # 6. complete
    async def complete(
        self, upload_id: str, ranges: Sequence[tuple[int, int, int]], hashes: FileHashes
    ) -> PutResult:
        """Complete the upload. NoSuchUpload here most often means an earlier attempt's answer
        was lost after the store completed it: the store's copy is then accepted when its size
        and ``md5`` metadata match the file; otherwise :class:`_CompleteLost`."""
        parts = [self.done[number] for number, _o, _l in ranges]
        try:
            return await self.request(
                lambda: self.store.complete_multipart_upload(self.key, upload_id, parts)
            )
        except NotFoundError as error:
            if error.service_code != "NoSuchUpload":
                raise
            stored = await self.stored_copy(hashes)
            if stored is None:
                raise _CompleteLost(error) from None
            return stored

    async def stored_copy(self, hashes: FileHashes) -> PutResult | None:
        """The object as the store holds it, when it holds exactly this file: the size and the
        ``md5`` metadata set at initiate match (HEAD); else None."""
        info = await self.request(lambda: self.store.head_object(self.key))
        if (
            info is None
            or info.size != self.size
            or info.metadata.get(MD5_METADATA) != hashes.md5.hex()
        ):
            return None
        return PutResult(etag=info.etag)

    def finish(
        self, upload_id: str | None, result: PutResult, hashes: FileHashes, resumed: bool
    ) -> MultipartResult:
        """Stored: check the OSS CRC-64, journal the object, say what was done."""
        journal = self.journal
        md5_hex = hashes.md5.hex()
        if journal is not None and upload_id is not None:
            journal.end_upload(self.key, upload_id)
        if hashes.crc64 is not None and result.crc64 is not None and result.crc64 != hashes.crc64:
            raise ServiceError(
                f"stored object's CRC-64 {result.crc64} differs from the file's {hashes.crc64}",
                code="Crc64Mismatch",
                key=self.key,
                bucket=self.store.bucket,
                request_id=result.request_id,
                retryable=False,
            )
        if journal is not None:
            ino, ctime_ns = self.file_id or (None, None)
            journal.record_stored(
                self.key, self.size, self.mtime_ns, md5_hex, result.etag,
                ino=ino, ctime_ns=ctime_ns,
            )
        return MultipartResult(
            etag=result.etag,
            request_id=result.request_id,
            crc64=result.crc64,
            md5_hex=md5_hex,
            attempts=self.attempts,
            parts_sent=self.parts_sent,
            parts_reused=self.parts_reused,
            resumed=resumed,
        )

    async def abandon(self, record: UploadRecord) -> None:
        """Abort an upload that will not be completed, and forget it. Best effort: an upload
        that cannot be aborted is left for ``bulkput abort-incomplete``."""
        with contextlib.suppress(BulkputError):
            await self.request(
                lambda: self.store.abort_multipart_upload(record.key, record.upload_id)
            )
        if self.journal is not None:
            with contextlib.suppress(BulkputError):
                self.journal.end_upload(record.key, record.upload_id)
