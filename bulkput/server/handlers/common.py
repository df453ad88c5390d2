"""What several handlers share: the bucket a call needs, query integers, an object's CRC-64."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import TYPE_CHECKING

from bulkput.local.digest import crc64_ecma
from bulkput.server.services import ServeError
from bulkput.server.storage import NoSuchBucketError, ObjectMeta

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState


def require_bucket(server: ServerState, call: Call) -> str:
    """The call's bucket, which must exist (NoSuchBucket otherwise)."""
    assert call.bucket is not None
    if not server.storage.bucket_exists(call.bucket):
        raise NoSuchBucketError(call.bucket)
    return call.bucket


def int_param(params: dict[str, str], names: tuple[str, ...], default: int, cap: int) -> int:
    """The first of ``names`` present, as a non-negative integer at most ``cap``."""
    for name in names:
        if name in params:
            try:
                value = int(params[name])
            except ValueError:
                raise ServeError("InvalidArgument", f"{name} must be an integer.") from None
            if value < 0:
                raise ServeError("InvalidArgument", f"{name} must not be negative.")
            return min(value, cap)
    return default


async def fill_crc64(server: ServerState, bucket: str, meta: ObjectMeta) -> ObjectMeta:
    """``meta`` with its CRC-64/ECMA (OSS answers it), computed once off the loop and kept."""

    def compute() -> int:
        crc = 0
        for chunk in server.storage.read_object(bucket, meta.key, 0, meta.size):
            crc = crc64_ecma(chunk, crc)
        return crc

    crc = await asyncio.get_running_loop().run_in_executor(None, compute)
    filled = replace(meta, crc64=crc)
    server.storage.update_meta(bucket, filled)
    return filled
