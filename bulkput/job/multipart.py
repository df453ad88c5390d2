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
3. **Initiate** (unless resuming), recorded in the journal.
4. **Parts** are sent concurrently as :class:`~bulkput.remote.store.FileRange` bodies streamed from
   disk, each with its own Content-MD5, each retried alone, each request holding one slot of the
   job's request limiter (so parts share the job's connection and memory budget with single
   PUTs: memory is bounded by requests in flight times the transport's chunk size). Each
   confirmed part is journaled.
5. **Re-check** the file's size and mtime; if it changed, the upload is aborted and the object
   fails with :class:`~bulkput.errors.FileChangedError`.
6. **Complete** (a 200 whose body is an error raises in the store). On OSS the returned
   ``x-oss-hash-crc64ecma`` must equal the CRC-64 computed in step 2.

Interrupted (task cancelled: SIGINT/SIGTERM), the upload is left in place and in the journal for
the next run; ``bulkput abort-incomplete`` removes leftovers on demand. Without a journal, an
upload that fails is aborted, since nothing could resume it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import mimetypes
import os
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Protocol, TypeVar

from bulkput.config import GiB, KiB, MiB, RetryPolicy, TransferConfig
from bulkput.errors import (
    BulkputError,
    FileChangedError,
    LocalInputError,
    NotFoundError,
    ServiceError,
    ThrottledError,
    UsageError,
    ValidationError,
)
from bulkput.items import UploadItem
from bulkput.job.journal import UploadRecord
from bulkput.job.journal_protocol import JobJournal
from bulkput.remote.retry import RetryHook, call_with_retry
from bulkput.remote.store import FileRange, ObjectHeaders, ObjectStore, PartInfo, PutResult

T = TypeVar("T")
R = TypeVar("R")

MAX_PARTS = 10_000
MAX_PART_SIZE = 5 * GiB
MAX_SINGLE_PUT = 5 * GiB  # larger files always go multipart
DEFAULT_PART_SIZE = 8 * MiB
MD5_METADATA = "md5"  # user metadata name holding the whole file's MD5 (hex)

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


# --- running requests ---------------------------------------------------------------------


class RequestRunner(Protocol):
    """How one request of an object is sent: concurrency slot, retries, retry events.

    Returns ``(result, attempts)``. :class:`RetryingRunner` is the usual one; tests may pass
    their own.
    """

    def __call__(self, key: str, op: Callable[[], Awaitable[T]]) -> Awaitable[tuple[T, int]]: ...


class ExecutorRun(Protocol):
    """Runs a blocking function off the event loop (the engine's executor)."""

    def __call__(self, fn: Callable[[], R]) -> Awaitable[R]: ...


async def _in_executor(executor_run: ExecutorRun | None, fn: Callable[[], R]) -> R:
    if executor_run is not None:
        return await executor_run(fn)
    return await asyncio.get_running_loop().run_in_executor(None, fn)


class Limiter(Protocol):
    async def acquire(self) -> int: ...

    def release(self) -> None: ...

    def record_success(self) -> None: ...

    def record_throttle(self, epoch: int | None = None) -> None: ...


@dataclass
class RetryingRunner:
    """``call_with_retry`` around each request; each attempt holds one slot of the job's
    limiter (none while backing off), and throttling answers lower it, as single PUTs do."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiter: Limiter | None = None
    on_retry: RetryHook | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    rng: Callable[[], float] = random.random

    async def __call__(self, key: str, op: Callable[[], Awaitable[T]]) -> tuple[T, int]:
        limiter = self.limiter

        async def attempt() -> T:
            if limiter is None:
                return await op()
            epoch = await limiter.acquire()
            try:
                result = await op()
            except ThrottledError:
                limiter.record_throttle(epoch)
                raise
            finally:
                limiter.release()
            limiter.record_success()
            return result

        return await call_with_retry(
            attempt,
            self.policy,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.rng,
            on_retry=self.on_retry,
        )


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
) -> FileHashes:
    """Read ``path`` once: whole-file MD5, each part's MD5, and the CRC-64 when asked.

    Blocking: run it in an executor. Reads at most ``size`` bytes; ``FileHashes.size`` shorter
    than ``size`` means the file shrank. With ``parallel`` the whole-file digests run in a
    helper thread beside the part digests (hashlib releases the GIL), so the pass that must
    end before a multipart upload can start takes about one MD5's time instead of two.
    """
    from bulkput.local.digest import crc64_ecma

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


def headers_for(item: UploadItem) -> ObjectHeaders:
    """Object headers from an upload item (content type guessed from the name when not given)."""
    content_type = item.content_type or mimetypes.guess_type(item.key)[0]
    return ObjectHeaders(
        content_type=content_type or "application/octet-stream",
        cache_control=item.cache_control,
        content_disposition=item.content_disposition,
        content_encoding=item.content_encoding,
        expires=item.expires,
        acl=item.acl,
        storage_class=item.storage_class,
        metadata=dict(item.metadata),
    )


def _file_state(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _never() -> bool:
    return False


@dataclass
class _Progress:
    attempts: int = 1  # 1 + every retry of every request of this object
    parts_sent: int = 0
    parts_reused: int = 0

    def add(self, attempts: int) -> None:
        self.attempts += attempts - 1


@dataclass(frozen=True, slots=True)
class MultipartResult(PutResult):
    """What :func:`upload_file` returns: a :class:`PutResult` (the multipart ETag, the complete
    request's id, the stored CRC-64) plus what the report needs."""

    md5_hex: str = ""  # the whole file's MD5 (also stored as user metadata ``md5``)
    attempts: int = 1  # one plus every retry of every request of this object
    parts_sent: int = 0
    parts_reused: int = 0  # confirmed by an earlier run and found on the server
    resumed: bool = False


async def upload_file(
    store: ObjectStore,
    item: UploadItem,
    size: int,
    mtime_ns: int,
    *,
    config: TransferConfig,
    journal: JobJournal | None = None,
    headers: ObjectHeaders | None = None,
    limiter: Limiter | None = None,
    open_files: asyncio.Semaphore | None = None,
    on_retry: RetryHook | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_bytes: Callable[[int], object] | None = None,
    runner: RequestRunner | None = None,
    executor_run: ExecutorRun | None = None,
    should_stop: Callable[[], bool] | None = None,
    hash_slots: asyncio.Semaphore | None = None,
) -> MultipartResult:
    """Upload one file as a multipart upload, resuming from the journal when possible.

    ``size`` and ``mtime_ns`` are what the engine stat'ed; the file must still match them when
    read and before completing. ``headers`` are the object's headers (built from ``item`` when
    None); the whole file's MD5 is added as user metadata ``md5``.

    Shared with the engine: ``limiter`` (each request attempt holds one slot, throttling lowers
    it), ``open_files`` (held while hashing and while each part's body is read from disk),
    ``on_retry(error, attempt, delay)`` and ``clock``/``sleep``/``rng`` for the retry loop
    (``runner`` replaces all of those when given). ``on_bytes`` is told each part's size as the
    server confirms it (parts found from an earlier run are told at once). ``should_stop``
    (the engine's "interrupted" flag) is checked before each part: once true, parts in flight
    finish, no new part starts, and the upload is left for the next run (``CancelledError``).
    ``hash_slots`` (the engine's, one per CPU) is held during the hash pass.

    The object is journaled as stored (with the whole file's MD5) only after the server
    confirmed it. Raises :class:`~bulkput.errors.BulkputError` subclasses on failure (with an
    ``attempts`` attribute); cancelled, it leaves the upload for the next run.
    """
    runner = runner or RetryingRunner(config.retry, limiter, on_retry, clock, sleep, rng)
    progress = _Progress()
    try:
        return await _upload_file(
            store,
            item,
            size,
            mtime_ns,
            config,
            journal,
            headers,
            runner,
            open_files,
            on_bytes,
            executor_run,
            progress,
            should_stop or _never,
            hash_slots,
        )
    except BulkputError as error:
        error.attempts = progress.attempts
        raise


async def _upload_file(
    store: ObjectStore,
    item: UploadItem,
    size: int,
    mtime_ns: int,
    config: TransferConfig,
    journal: JobJournal | None,
    headers: ObjectHeaders | None,
    runner: RequestRunner,
    file_slots: asyncio.Semaphore | None,
    on_bytes: Callable[[int], object] | None,
    executor_run: ExecutorRun | None,
    progress: _Progress,
    should_stop: Callable[[], bool],
    hash_slots: asyncio.Semaphore | None = None,
) -> MultipartResult:
    key = item.key
    dialect = store.dialect_name
    base_headers = headers if headers is not None else headers_for(item)

    # 1. what an earlier run left
    record = journal.upload_for(key) if journal is not None else None
    server_parts: dict[int, PartInfo] = {}
    if record is not None and (record.size, record.mtime_ns) != (size, mtime_ns):
        await _abandon(store, runner, journal, record)  # the file changed since
        record = None
    if record is not None:
        earlier_id = record.upload_id
        try:
            listed, attempts = await runner(key, lambda: store.list_parts(key, earlier_id))
            progress.add(attempts)
            server_parts = {p.part_number: p for p in listed}
        except NotFoundError:
            if journal is not None:
                journal.end_upload(key, earlier_id)
            record = None
    part_size = (
        record.part_size
        if record is not None
        else choose_part_size(size, dialect, config.part_size)
    )
    ranges = part_ranges(size, part_size)

    # 2. the hash pass
    want_crc = dialect == "oss"

    def hash_now() -> FileHashes:
        return hash_parts(
            item.path, size, part_size, want_crc=want_crc, chunk_size=config.chunk_size
        )

    try:
        async with file_slots or contextlib.nullcontext(), hash_slots or contextlib.nullcontext():
            hashes = await _in_executor(executor_run, hash_now)
        state_after_hash = await _in_executor(executor_run, lambda: _file_state(item.path))
    except OSError as exc:
        raise LocalInputError(
            f"cannot read: {exc.strerror or exc}", key=key, path=item.path
        ) from None
    if hashes.size != size or state_after_hash != (size, mtime_ns):
        if record is not None:
            await _abandon(store, runner, journal, record)
        raise FileChangedError(
            "file changed while it was read (size or mtime); not uploaded", key=key, path=item.path
        )
    md5_hex = hashes.md5.hex()
    if item.md5 is not None and item.md5 != _b64(hashes.md5):
        raise LocalInputError(
            f"file MD5 {_b64(hashes.md5)} differs from the manifest's {item.md5}",
            key=key,
            path=item.path,
        )
    if record is not None and record.md5 is not None and record.md5 != md5_hex:
        # Same size and mtime but other bytes: the parts on the server are not this file's.
        await _abandon(store, runner, journal, record)
        record, server_parts = None, {}

    # Parts the server already has and that hold exactly these bytes.
    journal_parts = (
        {p.part_number: p for p in journal.parts_for(key, record.upload_id)}
        if journal is not None and record is not None
        else {}
    )
    done: dict[int, PartInfo] = {}
    for number, _offset, length in ranges:
        listed_part = server_parts.get(number)
        if listed_part is None or (listed_part.size is not None and listed_part.size != length):
            continue
        etag = listed_part.etag.strip('"').lower()
        expected = hashes.part_md5s[number - 1].hex()
        journaled = journal_parts.get(number)
        if etag == expected or (
            not _MD5_HEX.match(etag)
            and journaled is not None
            and journaled.etag == listed_part.etag
        ):
            done[number] = PartInfo(number, listed_part.etag, length)

    # 3. initiate
    if should_stop():
        raise asyncio.CancelledError  # interrupted while hashing: nothing started yet
    resumed = record is not None
    if record is None:
        metadata = {**base_headers.metadata, MD5_METADATA: md5_hex}
        object_headers = replace(base_headers, metadata=metadata)
        upload_id, attempts = await runner(
            key, lambda: store.create_multipart_upload(key, object_headers)
        )
        progress.add(attempts)
        record = UploadRecord(key, upload_id, part_size, size, mtime_ns, md5_hex)
        if journal is not None:
            journal.begin_upload(key, upload_id, part_size, size, mtime_ns, md5_hex)
    upload_id = record.upload_id

    # 4. parts
    progress.parts_reused = len(done)
    if on_bytes is not None and done:
        on_bytes(sum(p.size or 0 for p in done.values()))
    try:
        todo = [r for r in ranges if r[0] not in done]
        await _send_parts(
            store,
            runner,
            journal,
            item.path,
            key,
            upload_id,
            todo,
            hashes,
            config,
            done,
            progress,
            on_bytes,
            file_slots,
            should_stop,
        )
        if len(done) < len(ranges):
            raise asyncio.CancelledError  # interrupted: parts in flight ended, the rest wait
        # 5. the file must not have changed while the parts were sent
        if await _in_executor(executor_run, lambda: _file_state(item.path)) != (size, mtime_ns):
            raise FileChangedError(
                "file changed while it was uploaded (size or mtime); upload aborted",
                key=key,
                path=item.path,
            )
        # 6. complete
        parts = [done[number] for number, _o, _l in ranges]
        result, attempts = await runner(
            key, lambda: store.complete_multipart_upload(key, upload_id, parts)
        )
        progress.add(attempts)
    except asyncio.CancelledError:
        raise  # interrupted: the journal keeps the upload for the next run
    except FileChangedError:
        await _abandon(store, runner, journal, record)
        raise
    except NotFoundError as error:
        if error.service_code == "NoSuchUpload" and journal is not None:
            journal.end_upload(key, upload_id)  # gone: the next run starts the file again
        raise
    except BulkputError as error:
        # Without a journal nothing can resume this upload; a refused complete will not
        # succeed later either. Otherwise keep it for the next run.
        if journal is None or (
            isinstance(error, ServiceError) and not error.retryable and not error.fatal_for_job
        ):
            await _abandon(store, runner, journal, record)
        raise
    except OSError as exc:
        raise LocalInputError(
            f"cannot read: {exc.strerror or exc}", key=key, path=item.path
        ) from None

    if journal is not None:
        journal.end_upload(key, upload_id)
    if hashes.crc64 is not None and result.crc64 is not None and result.crc64 != hashes.crc64:
        raise ServiceError(
            f"stored object's CRC-64 {result.crc64} differs from the file's {hashes.crc64}",
            code="Crc64Mismatch",
            key=key,
            bucket=store.bucket,
            request_id=result.request_id,
            retryable=False,
        )
    if journal is not None:
        journal.record_stored(key, size, mtime_ns, md5_hex, result.etag)
    return MultipartResult(
        etag=result.etag,
        request_id=result.request_id,
        crc64=result.crc64,
        md5_hex=md5_hex,
        attempts=progress.attempts,
        parts_sent=progress.parts_sent,
        parts_reused=progress.parts_reused,
        resumed=resumed,
    )


async def _send_parts(
    store: ObjectStore,
    runner: RequestRunner,
    journal: JobJournal | None,
    path: str,
    key: str,
    upload_id: str,
    todo: Sequence[tuple[int, int, int]],
    hashes: FileHashes,
    config: TransferConfig,
    done: dict[int, PartInfo],
    progress: _Progress,
    on_bytes: Callable[[int], object] | None,
    file_slots: asyncio.Semaphore | None,
    should_stop: Callable[[], bool],
) -> None:
    """Send ``todo`` with a few workers; each request takes its slot from ``runner``, so the
    number of workers only bounds how many parts of this file wait for a slot."""
    pending = iter(todo)

    async def send_one(number: int, offset: int, length: int) -> None:
        digest = hashes.part_md5s[number - 1]
        expected = digest.hex()
        content_md5 = _b64(digest) if config.content_md5 else None
        body = FileRange(path, offset, length)

        async def op() -> PartInfo:
            if file_slots is None:
                info = await store.upload_part(
                    key, upload_id, number, body, content_md5=content_md5
                )
            else:
                async with file_slots:  # the body is read from disk while it is sent
                    info = await store.upload_part(
                        key, upload_id, number, body, content_md5=content_md5
                    )
            etag = info.etag.strip('"').lower()
            if _MD5_HEX.match(etag) and etag != expected:
                raise ServiceError(
                    f"part {number}: ETag {etag} is not the MD5 {expected} of the bytes sent",
                    code="BadDigest",
                    key=key,
                    retryable=True,
                )
            return info

        info, attempts = await runner(key, op)
        progress.add(attempts)
        progress.parts_sent += 1
        done[number] = PartInfo(number, info.etag, length)
        if journal is not None:
            journal.record_part(key, upload_id, number, info.etag, length)
        if on_bytes is not None:
            on_bytes(length)

    async def worker() -> None:
        for number, offset, length in pending:
            if should_stop():
                return
            await send_one(number, offset, length)

    workers = [asyncio.ensure_future(worker()) for _ in range(min(len(todo), config.concurrency))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def _abandon(
    store: ObjectStore, runner: RequestRunner, journal: JobJournal | None, record: UploadRecord
) -> None:
    """Abort an upload that will not be completed, and forget it. Best effort: an upload that
    cannot be aborted is left for ``bulkput abort-incomplete``."""
    with contextlib.suppress(BulkputError):
        await runner(record.key, lambda: store.abort_multipart_upload(record.key, record.upload_id))
    if journal is not None:
        with contextlib.suppress(BulkputError):
            journal.end_upload(record.key, record.upload_id)
