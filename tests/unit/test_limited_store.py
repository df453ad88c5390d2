"""LimitedStore: every request kind under the job's limiter, streamed bodies under open-file slots."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import pytest

from bulkput.config import TransferConfig
from bulkput.errors import ThrottledError, error_from_response
from bulkput.job.limited_store import LimitedStore
from bulkput.remote.retry import AdaptiveLimiter
from bulkput.remote.store import (
    Body,
    DeleteFailure,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    PartInfo,
    PutResult,
    UploadInfo,
)


class SpyStore:
    """Records, for every request, how many limiter slots and open-file slots were taken."""

    bucket = "b"
    dialect_name = "s3"

    def __init__(self, limiter: AdaptiveLimiter, open_files: asyncio.Semaphore, files: int) -> None:
        self.limiter = limiter
        self.open_files = open_files
        self.files = files
        self.seen: list[tuple[str, int, int]] = []  # (request, slots in flight, files taken)
        self.throttle_next = False

    def _note(self, name: str) -> None:
        taken = self.files - self.open_files._value
        self.seen.append((name, self.limiter.in_flight, taken))
        if self.throttle_next:
            self.throttle_next = False
            raise error_from_response(503, "SlowDown")

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        self.seen.append(("validate", self.limiter.in_flight, 0))

    async def put_object(self, key: str, body: Body, *, content_md5: str | None, headers: ObjectHeaders) -> PutResult:
        self._note("put-file" if isinstance(body, FileRange) else "put-bytes")
        return PutResult("e")

    async def head_object(self, key: str) -> ObjectInfo | None:
        self._note("head")
        return None

    async def get_object(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        self._note("get")
        return b""

    async def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        for n in range(3):
            self._note("list")
            yield ObjectInfo(f"k{n}", n)

    async def delete_objects(self, keys: Sequence[str]) -> list[DeleteFailure]:
        self._note("delete")
        return []

    async def create_bucket(self) -> None:
        self._note("create-bucket")

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        self._note("initiate")
        return "u"

    async def upload_part(self, key: str, upload_id: str, part_number: int, body: Body, *, content_md5: str | None) -> PartInfo:
        self._note("part")
        return PartInfo(part_number, "e")

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        self._note("list-parts")
        return []

    async def complete_multipart_upload(self, key: str, upload_id: str, parts: Sequence[PartInfo]) -> PutResult:
        self._note("complete")
        return PutResult("e")

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        self._note("abort")

    async def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]:
        self._note("list-uploads")
        yield UploadInfo("k", "u")

    async def close(self) -> None:
        self.seen.append(("close", self.limiter.in_flight, 0))


def make(files: int = 4) -> tuple[LimitedStore, SpyStore]:
    limiter = AdaptiveLimiter(8)
    open_files = asyncio.Semaphore(files)
    spy = SpyStore(limiter, open_files, files)
    return LimitedStore(spy, limiter, open_files), spy


async def test_every_request_kind_holds_one_slot_and_streamed_bodies_one_file() -> None:
    store, spy = make()
    body = FileRange("/dev/null", 0, 0)
    store.validate("k", ObjectHeaders())
    await store.put_object("k", b"x", content_md5=None, headers=ObjectHeaders())
    await store.put_object("k", body, content_md5=None, headers=ObjectHeaders())
    await store.head_object("k")
    await store.get_object("k")
    assert [info.key async for info in store.list_objects("")] == ["k0", "k1", "k2"]
    await store.delete_objects(["k"])
    await store.create_bucket()
    await store.create_multipart_upload("k", ObjectHeaders())
    await store.upload_part("k", "u", 1, body, content_md5=None)
    await store.list_parts("k", "u")
    await store.complete_multipart_upload("k", "u", [])
    await store.abort_multipart_upload("k", "u")
    assert [u.upload_id async for u in store.list_multipart_uploads("")] == ["u"]
    await store.close()
    assert spy.seen == [
        ("validate", 0, 0),
        ("put-bytes", 1, 0),
        ("put-file", 1, 1),
        ("head", 1, 0),
        ("get", 1, 0),
        ("list", 1, 0),
        ("list", 1, 0),
        ("list", 1, 0),
        ("delete", 1, 0),
        ("create-bucket", 1, 0),
        ("initiate", 1, 0),
        ("part", 1, 1),
        ("list-parts", 1, 0),
        ("complete", 1, 0),
        ("abort", 1, 0),
        ("list-uploads", 1, 0),
        ("close", 0, 0),
    ]
    assert store.limiter.in_flight == 0


@pytest.mark.parametrize("request_kind", ["put", "head", "list", "delete", "part"])
async def test_a_throttling_answer_of_any_kind_lowers_the_limit(request_kind: str) -> None:
    store, spy = make()
    spy.throttle_next = True
    with pytest.raises(ThrottledError):
        if request_kind == "put":
            await store.put_object("k", b"x", content_md5=None, headers=ObjectHeaders())
        elif request_kind == "head":
            await store.head_object("k")
        elif request_kind == "list":
            [info async for info in store.list_objects("")]
        elif request_kind == "delete":
            await store.delete_objects(["k"])
        else:
            await store.upload_part("k", "u", 1, FileRange("/dev/null", 0, 0), content_md5=None)
    assert store.limiter.limit == 4 and store.limiter.in_flight == 0


async def test_a_listing_holds_no_slot_between_entries() -> None:
    """A consumer that waits on uploads while a listing is open must not starve them."""
    limiter = AdaptiveLimiter(1)
    open_files = asyncio.Semaphore(1)
    spy = SpyStore(limiter, open_files, 1)
    store = LimitedStore(spy, limiter, open_files)
    listing = store.list_objects("")
    assert (await anext(listing)).key == "k0"
    # the one slot is free while the consumer holds the listing open
    await asyncio.wait_for(store.head_object("k"), 1)
    assert [info.key async for info in listing] == ["k1", "k2"]


def test_for_config_sizes_the_limits_from_the_transfer_config() -> None:
    spy = SpyStore(AdaptiveLimiter(1), asyncio.Semaphore(1), 1)
    store = LimitedStore.for_config(spy, TransferConfig(concurrency=12, max_open_files=3))
    assert store.limiter.maximum == 12 and store.open_files._value == 3
    assert (store.bucket, store.dialect_name) == ("b", "s3")
