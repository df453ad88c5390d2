"""``LimitedStore``: an :class:`~bulkput.remote.store.ObjectStore` that holds the job's budgets
for every request it sends.

Each request (PUT, part, HEAD, GET, LIST page, DELETE, initiate, complete, abort...) holds one
slot of the job's :class:`~bulkput.remote.retry.AdaptiveLimiter` while it is in flight; a
throttling answer (:class:`~bulkput.errors.ThrottledError`) lowers the limit, any other answer
to a single request counts as a success (listing pages only take and give back a slot). A request whose body is streamed from disk (a
:class:`~bulkput.remote.store.FileRange`) also holds one of the job's open-file slots, so the job
never has more files open than ``max_open_files``. The limiter slot is taken first, so a file
is opened only once its request may go.

It does not retry (that is :class:`~bulkput.remote.retry.Retrier`'s job, around each call, so
a request waiting to be retried holds no slot). Listings hold a slot per page step, never
across a ``yield``: a consumer that waits on uploads while a listing is open cannot starve
them.

Build one per job (``LimitedStore.for_config(store, config)``, or
``LimitedStore(store, limiter, open_files)``) and send every request of the job through it;
an engine given a ``LimitedStore`` uses its limiter and slots instead of making its own.

``close`` closes the wrapped store.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from bulkput.config import TransferConfig
from bulkput.errors import ThrottledError
from bulkput.remote.concurrency import controller_for
from bulkput.remote.retry import AdaptiveLimiter
from bulkput.remote.store import (
    Body,
    DeleteFailure,
    FileRange,
    ObjectHeaders,
    ObjectInfo,
    ObjectStore,
    PartInfo,
    PutResult,
    UploadInfo,
)

T = TypeVar("T")


class LimitedStore:
    """``store`` with every request under ``limiter`` and every streamed body under one of
    ``open_files``. See the module doc."""

    def __init__(
        self, store: ObjectStore, limiter: AdaptiveLimiter, open_files: asyncio.Semaphore
    ) -> None:
        self.store = store
        self.limiter = limiter
        self.open_files = open_files
        self.bucket = store.bucket
        self.dialect_name = store.dialect_name

    @classmethod
    def for_config(
        cls,
        store: ObjectStore,
        config: TransferConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> LimitedStore:
        """``config.concurrency`` requests in flight (fewer while throttled), or an adaptive
        number up to ``config.max_concurrency`` when it is None; ``config.max_open_files``
        streamed bodies."""
        ceiling, controller = controller_for(
            config.concurrency, config.max_concurrency, config.initial_concurrency, clock(),
            # built on the job's event loop (see open_job_store): this thread's CPU clock
            cpu=time.thread_time,
        )
        return cls(
            store,
            AdaptiveLimiter(ceiling, clock=clock, controller=controller),
            asyncio.Semaphore(max(1, config.max_open_files)),
        )

    def __repr__(self) -> str:
        return f"LimitedStore({self.store!r}, limit {self.limiter.limit})"

    async def _limited(self, request: Callable[[], Awaitable[T]]) -> T:
        limiter = self.limiter
        epoch = await limiter.acquire()
        started, in_flight = limiter.now(), limiter.in_flight
        try:
            result = await request()
        except ThrottledError:
            limiter.record_throttle(epoch)
            raise
        finally:
            limiter.release()
        limiter.record_success(0, started, in_flight)
        return result

    async def _with_body(self, body: Body, request: Callable[[], Awaitable[T]]) -> T:
        limiter = self.limiter
        epoch = await limiter.acquire()
        started, in_flight = limiter.now(), limiter.in_flight
        try:
            if isinstance(body, FileRange):
                async with self.open_files:  # the body is read from disk while it is sent
                    result = await request()
            else:
                result = await request()
        except ThrottledError:
            limiter.record_throttle(epoch)
            raise
        finally:
            limiter.release()
        limiter.record_success(body.length if isinstance(body, FileRange) else len(body), started,
                               in_flight)
        return result

    async def _limited_pages(self, pages: AsyncIterator[T]) -> AsyncIterator[T]:
        """Each step of ``pages`` (which may send a page request) under a slot."""
        limiter = self.limiter
        try:
            while True:
                epoch = limiter.try_acquire()
                if epoch is None:
                    epoch = await limiter.acquire()
                try:
                    entry = await anext(pages)
                except StopAsyncIteration:
                    return
                except ThrottledError:
                    limiter.record_throttle(epoch)
                    raise
                finally:
                    limiter.release()
                yield entry
        finally:
            if isinstance(pages, AsyncGenerator):  # left early: close the page requests too
                await pages.aclose()

    # --- ObjectStore ----------------------------------------------------------------------

    def validate(self, key: str, headers: ObjectHeaders) -> None:
        self.store.validate(key, headers)

    async def put_object(
        self, key: str, body: Body, *, content_md5: str | None, headers: ObjectHeaders
    ) -> PutResult:
        # Written out rather than through _with_body: this is the small-file hot path.
        limiter = self.limiter
        epoch = await limiter.acquire()
        started, in_flight = limiter.now(), limiter.in_flight
        try:
            if isinstance(body, FileRange):
                async with self.open_files:
                    put = await self.store.put_object(
                        key, body, content_md5=content_md5, headers=headers
                    )
            else:
                put = await self.store.put_object(
                    key, body, content_md5=content_md5, headers=headers
                )
        except ThrottledError:
            limiter.record_throttle(epoch)
            raise
        finally:
            limiter.release()
        limiter.record_success(body.length if isinstance(body, FileRange) else len(body), started,
                               in_flight)
        return put

    async def head_object(self, key: str) -> ObjectInfo | None:
        return await self._limited(lambda: self.store.head_object(key))

    async def get_object(self, key: str, byte_range: tuple[int, int] | None = None) -> bytes:
        return await self._limited(lambda: self.store.get_object(key, byte_range))

    def list_objects(
        self, prefix: str, page_size: int = 1000, *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        return self._limited_pages(
            self.store.list_objects(prefix, page_size, start_after=start_after)
        )

    async def delete_objects(self, keys: Sequence[str]) -> list[DeleteFailure]:
        return await self._limited(lambda: self.store.delete_objects(keys))

    async def create_bucket(self) -> None:
        await self._limited(self.store.create_bucket)

    async def create_multipart_upload(self, key: str, headers: ObjectHeaders) -> str:
        return await self._limited(lambda: self.store.create_multipart_upload(key, headers))

    async def upload_part(
        self, key: str, upload_id: str, part_number: int, body: Body, *, content_md5: str | None
    ) -> PartInfo:
        return await self._with_body(
            body,
            lambda: self.store.upload_part(
                key, upload_id, part_number, body, content_md5=content_md5
            ),
        )

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        return await self._limited(lambda: self.store.list_parts(key, upload_id))

    async def complete_multipart_upload(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> PutResult:
        return await self._limited(
            lambda: self.store.complete_multipart_upload(key, upload_id, parts)
        )

    async def abort_multipart_upload(self, key: str, upload_id: str) -> None:
        await self._limited(lambda: self.store.abort_multipart_upload(key, upload_id))

    def list_multipart_uploads(self, prefix: str = "") -> AsyncIterator[UploadInfo]:
        return self._limited_pages(self.store.list_multipart_uploads(prefix))

    async def close(self) -> None:
        await self.store.close()
