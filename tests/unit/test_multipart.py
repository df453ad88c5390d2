"""Part-size choice, the hash pass, and upload_file's resume logic against an in-memory store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bulkput.config import GiB, KiB, MiB, RetryPolicy, TransferConfig
from bulkput.errors import (
    BulkputError,
    FileChangedError,
    JournalError,
    NotFoundError,
    ReadStopped,
    ServiceError,
    TransportError,
    UsageError,
    ValidationError,
    error_from_response,
)
from bulkput.items import UploadItem
from bulkput.job.headers import HeaderBuilder
from bulkput.job.journal import Journal, UploadRecord
from bulkput.job.limited_store import LimitedStore
from bulkput.job.multipart import (
    DEFAULT_PART_SIZE,
    INITIATING,
    MAX_PART_SIZE,
    MAX_PARTS,
    MultipartResult,
    TransferContext,
    choose_part_size,
    hash_parts,
    needs_multipart,
    part_ranges,
    upload_file,
)
from bulkput.local.digest import crc64_ecma, md5_file
from bulkput.remote.retry import AdaptiveLimiter, Retrier
from bulkput.remote.store import (
    Body,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    PartInfo,
    PutResult,
    UploadInfo,
)

DIALECTS = ("s3", "oss", "bos")
TIB = 1024 * GiB
LARGEST = MAX_PARTS * MAX_PART_SIZE  # 48.8 TiB


# --- part size ------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "size",
    [0, 1, 64 * MiB, 64 * MiB + 1, 5 * GiB, 5 * GiB + 1, 80 * GiB, 1 * TIB, 5 * TIB, LARGEST],
)
def test_automatic_part_size_fits_10000_parts_within_limits(dialect: str, size: int) -> None:
    part = choose_part_size(size, dialect)
    assert DEFAULT_PART_SIZE <= part <= MAX_PART_SIZE
    assert len(part_ranges(size, part)) <= MAX_PARTS
    assert part % MiB == 0


def test_automatic_part_size_values() -> None:
    assert choose_part_size(0, "s3") == 8 * MiB
    assert choose_part_size(64 * MiB + 1, "s3") == 8 * MiB
    assert choose_part_size(80 * GiB, "oss") == 9 * MiB  # 80 GiB / 10,000 = 8.19 MiB
    assert choose_part_size(LARGEST, "bos") == MAX_PART_SIZE
    assert len(part_ranges(LARGEST, MAX_PART_SIZE)) == MAX_PARTS


@pytest.mark.parametrize("dialect", DIALECTS)
def test_larger_than_10000_parts_of_5_gib_is_refused(dialect: str) -> None:
    with pytest.raises(ValidationError, match=r"48\.8 TiB"):
        choose_part_size(LARGEST + 1, dialect)


def test_requested_part_size_respects_each_dialects_minimum() -> None:
    assert choose_part_size(1 * MiB, "oss", requested=100 * KiB) == 100 * KiB
    with pytest.raises(UsageError, match="oss minimum"):
        choose_part_size(1 * MiB, "oss", requested=100 * KiB - 1)
    for dialect in ("s3", "bos"):
        assert choose_part_size(20 * MiB, dialect, requested=5 * MiB) == 5 * MiB
        with pytest.raises(UsageError, match="minimum"):
            choose_part_size(20 * MiB, dialect, requested=5 * MiB - 1)
    with pytest.raises(UsageError, match="5 GiB"):
        choose_part_size(20 * GiB, "s3", requested=5 * GiB + 1)


def test_requested_part_size_too_small_for_the_file_is_raised_to_fit() -> None:
    part = choose_part_size(1 * TIB, "s3", requested=5 * MiB)
    assert part > 5 * MiB
    assert len(part_ranges(1 * TIB, part)) <= MAX_PARTS


@given(
    st.integers(0, LARGEST),
    st.sampled_from(DIALECTS),
    st.one_of(st.none(), st.integers(0, 6 * GiB)),
)
def test_part_size_property(size: int, dialect: str, requested: int | None) -> None:
    try:
        part = choose_part_size(size, dialect, requested)
    except UsageError:
        assert requested is not None
        return
    assert len(part_ranges(size, part)) <= MAX_PARTS
    assert part <= MAX_PART_SIZE
    ranges = part_ranges(size, part)
    assert sum(length for _, _, length in ranges) == size
    assert all(length == part for _, _, length in ranges[:-1])


def test_part_ranges_cover_the_file_with_an_odd_tail() -> None:
    assert part_ranges(0, 5) == [(1, 0, 0)]
    assert part_ranges(1, 5) == [(1, 0, 1)]
    assert part_ranges(5, 5) == [(1, 0, 5)]
    assert part_ranges(11, 5) == [(1, 0, 5), (2, 5, 5), (3, 10, 1)]


def test_threshold_and_the_5_gib_single_put_limit() -> None:
    config = TransferConfig(multipart_threshold=64 * MiB)
    assert not needs_multipart(0, config)
    assert not needs_multipart(64 * MiB, config)
    assert needs_multipart(64 * MiB + 1, config)
    huge_threshold = TransferConfig(multipart_threshold=100 * GiB)
    assert not needs_multipart(5 * GiB, huge_threshold)
    assert needs_multipart(5 * GiB + 1, huge_threshold)


# --- the hash pass --------------------------------------------------------------------------


@pytest.mark.parametrize("parallel", [True, False], ids=["helper-thread", "one-thread"])
@pytest.mark.parametrize("chunk_size", [333, 1000, 4096])
def test_hash_parts_gives_whole_and_part_digests_and_crc(
    tmp_path: Path, parallel: bool, chunk_size: int
) -> None:
    data = os.urandom(3 * 1000 + 17)
    path = tmp_path / "f"
    path.write_bytes(data)
    hashes = hash_parts(
        str(path), len(data), 1000, want_crc=True, chunk_size=chunk_size, parallel=parallel
    )
    assert hashes.md5 == hashlib.md5(data).digest()
    assert hashes.size == len(data)
    assert [d.hex() for d in hashes.part_md5s] == [
        hashlib.md5(data[i : i + 1000]).hexdigest() for i in range(0, len(data), 1000)
    ]
    assert hashes.crc64 == crc64_ecma(data)
    short = hash_parts(str(path), len(data) + 5, 1000, want_crc=False, parallel=parallel)
    assert short.size == len(data) and short.crc64 is None


# --- upload_file against an in-memory store ------------------------------------------------


async def upload(
    store: object,
    item: UploadItem,
    size: int,
    mtime_ns: int,
    *,
    config: TransferConfig,
    journal: Journal | None = None,
    on_retry: Callable[[str, BulkputError], object] | None = None,
    on_bytes: Callable[[int], object] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> MultipartResult:
    """upload_file with a TransferContext as the engine builds one."""
    ctx = TransferContext(
        store=store,  # type: ignore[arg-type]
        config=config,
        retrier=Retrier(config.retry, on_retry=on_retry),
        journal=journal,
        on_bytes=on_bytes,
        should_stop=should_stop or (lambda: False),
    )
    return await upload_file(ctx, item, size, mtime_ns, HeaderBuilder().for_item(item))



class MemoryMultipartStore:
    """A test double of the multipart half of ObjectStore, counting every request."""

    def __init__(self, dialect: str = "s3") -> None:
        self.bucket = "bucket"
        self.dialect_name = dialect
        self.objects: dict[str, bytes] = {}
        self.metadata: dict[str, dict[str, str]] = {}
        self.uploads: dict[str, tuple[str, ObjectHeaders, dict[int, bytes]]] = {}
        self.part_puts: Counter[tuple[str, int]] = Counter()
        self.calls: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.fail_part: dict[int, int] = {}  # part number -> failures left
        self.crc_offset = 0
        self.gate: asyncio.Event | None = None  # parts wait on it when set
        # Answers lost on the way back: the request is served, then the client sees a timeout.
        self.lose_initiate_answers = 0
        self.lose_complete_answers = 0
        self.kms = False  # answer as SSE-KMS does: part ETags that are not the parts' MD5
        self._next = 0

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        self.calls["create"] += 1
        self._next += 1
        upload_id = f"upload-{self._next}"
        self.uploads[upload_id] = (key, headers, {})
        if self.lose_initiate_answers > 0:
            self.lose_initiate_answers -= 1
            raise TransportError("read timed out (the answer was lost)", code="Timeout")
        return upload_id

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, content_md5: str | None
    ) -> PartInfo:
        self.calls["part"] += 1
        if upload_id not in self.uploads:
            raise error_from_response(404, "NoSuchUpload", key=key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)
            if self.gate is not None:
                await self.gate.wait()
                if upload_id not in self.uploads:
                    raise error_from_response(404, "NoSuchUpload", key=key)
            assert isinstance(body, FileRange)
            with open(body.path, "rb") as handle:
                handle.seek(body.offset)
                data = handle.read(body.length)
            if (
                content_md5 is not None
                and base64.b64decode(content_md5) != hashlib.md5(data).digest()
            ):
                raise error_from_response(400, "BadDigest", key=key)
            if self.fail_part.get(part_number, 0) > 0:
                self.fail_part[part_number] -= 1
                raise error_from_response(500, "InternalError", key=key)
            self.part_puts[(key, part_number)] += 1
            self.uploads[upload_id][2][part_number] = data
            if self.kms:
                return PartInfo(part_number, hashlib.sha256(data).hexdigest()[:32], len(data), etag_is_md5=False)
            return PartInfo(part_number, hashlib.md5(data).hexdigest(), len(data))
        finally:
            self.in_flight -= 1

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        self.calls["list_parts"] += 1
        if upload_id not in self.uploads:
            raise error_from_response(404, "NoSuchUpload", key=key)
        parts = self.uploads[upload_id][2]
        return [PartInfo(n, hashlib.md5(d).hexdigest(), len(d)) for n, d in sorted(parts.items())]

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> PutResult:
        self.calls["complete"] += 1
        if upload_id not in self.uploads:
            raise error_from_response(404, "NoSuchUpload", key=key)
        _key, headers, stored = self.uploads.pop(upload_id)
        assert [p.part_number for p in parts] == sorted(stored)
        data = b"".join(stored[p.part_number] for p in parts)
        self.objects[key] = data
        self.metadata[key] = dict(headers.metadata)
        crc = crc64_ecma(data) + self.crc_offset if self.dialect_name == "oss" else None
        if self.lose_complete_answers > 0:
            self.lose_complete_answers -= 1
            raise TransportError("read timed out (the answer was lost)", code="Timeout")
        return PutResult(f"etag-{len(parts)}", "req-1", crc)

    async def head_object(self, key: str) -> ObjectInfo | None:
        self.calls["head"] += 1
        if key not in self.objects:
            return None
        return ObjectInfo(key, len(self.objects[key]), "etag-head", metadata=self.metadata[key])

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self.calls["abort"] += 1
        if self.uploads.pop(upload_id, None) is None:
            raise error_from_response(404, "NoSuchUpload", key=key)

    async def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]:
        for upload_id, (key, _h, _p) in self.uploads.items():
            yield UploadInfo(key, upload_id)


PART = 1000
CONFIG = TransferConfig(
    multipart_threshold=PART,
    part_size=None,
    chunk_size=256,
    concurrency=4,
    retry=RetryPolicy(base_delay=0.0, throttle_base_delay=0.0),
)


def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of 1000 bytes, so tests move kilobytes, not megabytes."""
    monkeypatch.setattr("bulkput.job.multipart.choose_part_size", lambda size, dialect, req=None: PART)


def make_file(tmp_path: Path, size: int, name: str = "big.bin") -> tuple[UploadItem, bytes]:
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return UploadItem(path=str(path), key=f"dir/{name}", metadata={"owner": "me"}), data


def stat(item: UploadItem) -> tuple[int, int]:
    info = os.stat(item.path)
    return info.st_size, info.st_mtime_ns


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_upload_stores_exact_bytes_with_md5_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dialect: str
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore(dialect)
    item, data = make_file(tmp_path, 4 * PART + 123)
    seen: list[int] = []
    result = await upload(store, item, *stat(item), config=CONFIG, on_bytes=seen.append)
    assert store.objects[item.key] == data
    assert store.metadata[item.key] == {"owner": "me", "md5": hashlib.md5(data).hexdigest()}
    assert result.md5_hex == hashlib.md5(data).hexdigest()
    assert (result.parts_sent, result.parts_reused, result.resumed) == (5, 0, False)
    assert result.etag == "etag-5"
    assert sum(seen) == len(data)
    assert set(store.part_puts.values()) == {1}


async def test_parts_of_an_sse_kms_upload_are_not_checked_against_their_etags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore("s3")
    store.kms = True
    item, data = make_file(tmp_path, 3 * PART + 7)
    await upload(store, item, *stat(item), config=CONFIG)
    assert store.objects[item.key] == data
    assert set(store.part_puts.values()) == {1}  # each part sent once, none refused


async def test_parts_share_the_jobs_request_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 30 * PART)
    limiter = AdaptiveLimiter(3)
    open_files = asyncio.Semaphore(2)
    await upload(LimitedStore(store, limiter, open_files), item, *stat(item), config=CONFIG)
    assert store.objects[item.key] == data
    assert store.max_in_flight == 2  # open files bound it below the limiter's 3
    assert limiter.in_flight == 0
    limiter = AdaptiveLimiter(3)
    store = MemoryMultipartStore()
    await upload(
        LimitedStore(store, limiter, asyncio.Semaphore(64)), item, *stat(item), config=CONFIG
    )
    assert store.max_in_flight == 3


async def test_a_failing_part_is_retried_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    store.fail_part = {2: 2}
    item, data = make_file(tmp_path, 3 * PART)
    retried: list[str] = []
    result = await upload(
        store,
        item,
        *stat(item),
        config=CONFIG,
        on_retry=lambda key, error: retried.append(error.code),
    )
    assert store.objects[item.key] == data
    assert retried == ["InternalError", "InternalError"]
    assert result.attempts == 3
    assert store.calls["part"] == 5  # parts 1 and 3 once, part 2 three times


async def test_resume_sends_only_the_missing_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 5 * PART + 1)
    # First run: parts 1 and 2 go through, then the job is interrupted.
    with Journal.open(tmp_path / "state", "job") as journal:
        store.gate = asyncio.Event()
        config = replace(CONFIG, concurrency=2)
        task = asyncio.ensure_future(
            upload(store, item, *stat(item), config=config, journal=journal)
        )
        while store.in_flight < 2:
            await asyncio.sleep(0)
        store.gate.set()
        while sum(store.part_puts.values()) < 2:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert store.calls["abort"] == 0
    confirmed = dict(store.part_puts)
    assert len(store.uploads) == 1
    # Second run resumes the same upload.
    store.gate = None
    with Journal.open(tmp_path / "state", "job") as journal:
        assert journal.upload_for(item.key) is not None
        result = await upload(store, item, *stat(item), config=CONFIG, journal=journal)
        journal.flush()
        assert journal.upload_for(item.key) is None
        assert journal.is_stored(item.key, *stat(item))
    assert result.resumed and result.parts_reused == len(confirmed)
    assert store.objects[item.key] == data
    assert store.calls["create"] == 1
    for part_key in confirmed:
        assert store.part_puts[part_key] == 1, (
            f"{part_key} confirmed before the interrupt was sent again"
        )
    assert sum(store.part_puts.values()) == 6


async def test_resume_when_the_upload_is_gone_starts_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 3 * PART)
    with Journal.open(tmp_path / "state", "job") as journal:
        journal.begin_upload(item.key, "vanished", PART, *stat(item))
    with Journal.open(tmp_path / "state", "job") as journal:
        await upload(store, item, *stat(item), config=CONFIG, journal=journal)
    assert store.calls["list_parts"] == 1
    assert store.calls["create"] == 1
    assert store.objects[item.key] == data


async def test_an_upload_of_an_older_version_is_aborted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    old_id = await store.create_multipart_upload("dir/big.bin", ObjectHeaders())
    item, data = make_file(tmp_path, 3 * PART)
    size, mtime_ns = stat(item)
    with Journal.open(tmp_path / "state", "job") as journal:
        journal.begin_upload(item.key, old_id, PART, size - 1, mtime_ns - 5)
    with Journal.open(tmp_path / "state", "job") as journal:
        await upload(store, item, size, mtime_ns, config=CONFIG, journal=journal)
    assert old_id not in store.uploads
    assert store.calls["abort"] == 1
    assert store.objects[item.key] == data


async def test_a_file_changed_during_upload_is_aborted_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _data = make_file(tmp_path, 3 * PART)
    size, mtime_ns = stat(item)
    store.gate = asyncio.Event()
    with Journal.open(tmp_path / "state", "job") as journal:
        task = asyncio.ensure_future(
            upload(store, item, size, mtime_ns, config=CONFIG, journal=journal)
        )
        while store.in_flight < 3:
            await asyncio.sleep(0)
        with open(item.path, "ab") as handle:
            handle.write(b"grown")
        store.gate.set()
        with pytest.raises(FileChangedError):
            await task
        journal.flush()
        assert journal.upload_for(item.key) is None
        assert not journal.is_stored(item.key, size, mtime_ns)
    assert store.calls["abort"] == 1
    assert store.uploads == {}
    assert item.key not in store.objects


async def test_a_file_changed_before_hashing_is_not_uploaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _data = make_file(tmp_path, 3 * PART)
    size, mtime_ns = stat(item)
    with pytest.raises(FileChangedError):
        await upload(store, item, size + 1, mtime_ns, config=CONFIG)
    assert store.calls["create"] == 0


async def test_oss_crc64_mismatch_fails_and_is_not_journaled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore("oss")
    store.crc_offset = 1
    item, _data = make_file(tmp_path, 2 * PART + 5)
    with Journal.open(tmp_path / "state", "job") as journal:
        with pytest.raises(ServiceError, match="CRC-64") as info:
            await upload(store, item, *stat(item), config=CONFIG, journal=journal)
        assert info.value.code == "Crc64Mismatch"
        journal.flush()
        assert not journal.is_stored(item.key, *stat(item))


async def test_without_a_journal_a_failed_upload_is_aborted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    store.fail_part = {1: 100}
    item, _data = make_file(tmp_path, 2 * PART)
    config = replace(CONFIG, retry=RetryPolicy(max_attempts=2, base_delay=0))
    with pytest.raises(ServiceError):
        await upload(store, item, *stat(item), config=config)
    assert store.calls["abort"] == 1 and store.uploads == {}


async def test_with_a_journal_a_failed_upload_is_kept_for_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    store.fail_part = {1: 2}
    item, data = make_file(tmp_path, 2 * PART)
    config = replace(CONFIG, retry=RetryPolicy(max_attempts=2, base_delay=0))
    with Journal.open(tmp_path / "state", "job") as journal, pytest.raises(ServiceError):
        await upload(store, item, *stat(item), config=config, journal=journal)
    assert store.calls["abort"] == 0
    with Journal.open(tmp_path / "state", "job") as journal:
        await upload(store, item, *stat(item), config=config, journal=journal)
    assert store.objects[item.key] == data
    assert store.part_puts[(item.key, 2)] == 1  # part 2 was confirmed in the first run


async def test_a_journal_write_failure_stops_the_upload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _data = make_file(tmp_path, 3 * PART)

    def full_disk() -> None:
        raise OSError(28, "No space left on device")

    journal = Journal.open(tmp_path / "state", "job", write_fault=full_disk)
    journal.record_stored("x", 1, 1, None, None)
    with pytest.raises(JournalError):
        journal.flush()
    with pytest.raises(JournalError):
        await upload(store, item, *stat(item), config=CONFIG, journal=journal)
    assert item.key not in store.objects
    with pytest.raises(JournalError):
        journal.close()


async def test_a_missing_upload_during_parts_is_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _data = make_file(tmp_path, 3 * PART)
    store.gate = asyncio.Event()
    with Journal.open(tmp_path / "state", "job") as journal:
        task = asyncio.ensure_future(
            upload(store, item, *stat(item), config=CONFIG, journal=journal)
        )
        while not store.uploads:
            await asyncio.sleep(0)
        store.uploads.clear()  # someone ran abort-incomplete
        store.gate.set()
        with pytest.raises(NotFoundError):
            await task
        journal.flush()
        assert journal.upload_for(item.key) is None


async def test_a_stop_leaves_the_upload_for_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 10 * PART)
    stopping = False
    sent: list[int] = []

    def count(n: int) -> None:
        nonlocal stopping
        sent.append(n)
        stopping = len(sent) >= 3  # interrupted after the third confirmed part

    config = replace(CONFIG, concurrency=1)
    with Journal.open(tmp_path / "state", "job") as journal:
        with pytest.raises(asyncio.CancelledError):
            await upload(
                store,
                item,
                *stat(item),
                config=config,
                journal=journal,
                on_bytes=count,
                should_stop=lambda: stopping,
            )
        assert store.calls["part"] == 3
    assert store.calls["abort"] == 0 and len(store.uploads) == 1
    with Journal.open(tmp_path / "state", "job") as journal:
        result = await upload(store, item, *stat(item), config=config, journal=journal)
    assert (result.parts_reused, result.parts_sent) == (3, 7)
    assert store.objects[item.key] == data


async def test_a_stop_while_the_file_is_hashed_ends_the_hash_and_sends_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The hash pass of a large file asks the stop before each part: a Ctrl-C does not wait
    for the rest of the file to be read, and no upload is begun."""
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _ = make_file(tmp_path, 10 * PART)
    asked = 0

    def stop_after_three_parts() -> bool:
        nonlocal asked
        asked += 1
        return asked > 3

    with pytest.raises(asyncio.CancelledError):
        await upload(store, item, *stat(item), config=CONFIG, should_stop=stop_after_three_parts)
    assert asked == 4  # three parts hashed, then it stopped
    assert sum(store.calls.values()) == 0 and not store.uploads


def test_hash_parts_and_md5_file_stop_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(4 * PART))
    with pytest.raises(ReadStopped):
        hash_parts(str(path), 4 * PART, PART, want_crc=False, stop=lambda: True)
    with pytest.raises(ReadStopped):
        md5_file(str(path), chunk_size=PART, stop=lambda: True)
    assert md5_file(str(path), chunk_size=PART, stop=lambda: False)[1] == 4 * PART


# --- lost answers ---------------------------------------------------------------------------


async def test_a_complete_whose_answer_was_lost_is_confirmed_by_a_head(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store completed the upload but the answer never came: the retry gets NoSuchUpload,
    and a HEAD with the file's size and md5 metadata proves the object is stored."""
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    store.lose_complete_answers = 1
    item, data = make_file(tmp_path, 3 * PART)
    with Journal.open(tmp_path / "state", "job") as journal:
        result = await upload(store, item, *stat(item), config=CONFIG, journal=journal)
        journal.flush()
        assert journal.is_stored(item.key, *stat(item)) and journal.upload_for(item.key) is None
    assert store.objects[item.key] == data
    assert (store.calls["complete"], store.calls["head"], store.calls["create"]) == (2, 1, 1)
    assert result.attempts == 2  # the Complete was sent twice
    assert result.md5_hex == hashlib.md5(data).hexdigest()


async def test_a_complete_finding_its_upload_gone_and_other_bytes_stored_sends_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 2 * PART)
    store.objects[item.key] = b"an older version"
    store.metadata[item.key] = {"md5": hashlib.md5(b"an older version").hexdigest()}
    original = store.complete_multipart_upload
    vanished = False

    async def complete_once_vanished(key: str, upload_id: str, parts: Sequence[PartInfo]) -> PutResult:
        nonlocal vanished
        if not vanished:  # someone aborted the upload just before the Complete
            vanished = True
            store.uploads.pop(upload_id)
        return await original(key, upload_id, parts)

    store.complete_multipart_upload = complete_once_vanished  # type: ignore[method-assign]
    result = await upload(store, item, *stat(item), config=CONFIG)
    assert store.objects[item.key] == data
    assert store.calls["create"] == 2 and store.calls["head"] == 1
    assert result.parts_sent == 4 and store.uploads == {}


async def test_an_upload_gone_on_resume_whose_complete_went_through_is_not_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed while its Complete was in flight: the journal still holds the upload, the
    store holds the object. The next run sends no part."""
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 3 * PART)
    size, mtime_ns = stat(item)
    md5_hex = hashlib.md5(data).hexdigest()
    store.objects[item.key] = data
    store.metadata[item.key] = {"owner": "me", "md5": md5_hex}
    with Journal.open(tmp_path / "state", "job") as journal:
        journal.begin_upload(item.key, "completed-before-the-kill", PART, size, mtime_ns, md5_hex)
    with Journal.open(tmp_path / "state", "job") as journal:
        result = await upload(store, item, size, mtime_ns, config=CONFIG, journal=journal)
        journal.flush()
        assert journal.is_stored(item.key, size, mtime_ns)
        assert journal.upload_for(item.key) is None
    assert (store.calls["part"], store.calls["create"], store.calls["complete"]) == (0, 0, 0)
    assert result.resumed and result.md5_hex == md5_hex and result.etag == "etag-head"


async def test_a_lost_initiate_answer_leaves_no_upload_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    other_key = await store.create_multipart_upload("dir/big.bin.other", ObjectHeaders())
    store.lose_initiate_answers = 1
    item, data = make_file(tmp_path, 2 * PART)
    with Journal.open(tmp_path / "state", "job") as journal:
        result = await upload(store, item, *stat(item), config=CONFIG, journal=journal)
    assert store.objects[item.key] == data
    assert list(store.uploads) == [other_key]  # another key's upload is left alone
    assert store.calls["abort"] == 1 and result.attempts == 2


async def test_an_initiate_in_flight_at_a_kill_is_cleaned_up_by_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal holds only the intent (the run died before the Initiate answer): the next
    run aborts the key's uploads nobody knows, then uploads the file."""
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, data = make_file(tmp_path, 2 * PART)
    size, mtime_ns = stat(item)
    orphan = await store.create_multipart_upload(item.key, ObjectHeaders())
    with Journal.open(tmp_path / "state", "job") as journal:
        journal.begin_upload(item.key, INITIATING, PART, size, mtime_ns)
    with Journal.open(tmp_path / "state", "job") as journal:
        await upload(store, item, size, mtime_ns, config=CONFIG, journal=journal)
        journal.flush()
        assert journal.upload_for(item.key) is None
    assert orphan not in store.uploads and store.uploads == {}
    assert store.objects[item.key] == data and store.calls["list_parts"] == 0


async def test_the_initiate_intent_is_committed_before_the_request_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_parts(monkeypatch)
    store = MemoryMultipartStore()
    item, _data = make_file(tmp_path, 2 * PART)
    seen: list[object] = []
    original = store.create_multipart_upload
    with Journal.open(tmp_path / "state", "job") as journal:

        async def initiate(key: str, headers: ObjectHeaders) -> str:
            seen.append(journal.upload_for(key))  # committed rows only
            return await original(key, headers)

        store.create_multipart_upload = initiate  # type: ignore[method-assign]
        await upload(store, item, *stat(item), config=CONFIG, journal=journal)
    (intent,) = seen
    assert isinstance(intent, UploadRecord) and intent.upload_id == INITIATING
