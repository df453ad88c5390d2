"""What a test bucket of a `bulkput serve` handle holds, read back through bulkput's own
client: the truth a test compares a job's files with."""

from __future__ import annotations

import asyncio

from bulkput.api import open_destination
from bulkput.server.testing import ServerHandle


def bucket_objects(server: ServerHandle, bucket: str) -> dict[str, bytes]:
    """Every object of ``bucket``, read back: key -> bytes."""

    async def read() -> dict[str, bytes]:
        _t, store = await open_destination(
            f"s3://{bucket}/", endpoint=server.endpoint_url, env=server.env("s3")
        )
        try:
            keys = [info.key async for info in store.list_objects("")]
            return {key: await store.get_object(key) for key in keys}
        finally:
            await store.close()

    return asyncio.run(read())
