"""Bucket operations: the account's bucket list, create, head, location, delete, and listing
a bucket's objects (V1 with markers, V2 with continuation tokens)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING

from aiohttp import web

from bulkput.server import validation as checks
from bulkput.server.body import drain
from bulkput.server.handlers.common import int_param, require_bucket
from bulkput.server.listing import MAX_LIST, build_page
from bulkput.server.services import ServeError
from bulkput.server.storage import BucketNotEmptyError

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState


def _region(server: ServerState) -> str:
    return server.config.region or "us-east-1"


async def list_buckets(server: ServerState, call: Call) -> web.StreamResponse:
    body = call.service.list_buckets(server.storage.list_buckets(), _region(server))
    return web.Response(body=body, content_type=call.service.content_type.split(";")[0])


async def create_bucket(server: ServerState, call: Call) -> web.StreamResponse:
    assert call.bucket is not None
    checks.check_bucket_name(call.bucket)
    await drain(call, server.config.body_timeout)
    if not server.storage.create_bucket(call.bucket):
        raise ServeError(
            "BucketAlreadyOwnedByYou",
            "Your previous request to create the named bucket succeeded and you already own it.",
        )
    headers = {"location": f"/{call.bucket}"} if call.service.name != "bos" else {}
    return web.Response(status=200, headers=headers)


async def head_bucket(server: ServerState, call: Call) -> web.StreamResponse:
    require_bucket(server, call)
    return web.Response(headers={"x-amz-bucket-region": _region(server)})


async def get_location(server: ServerState, call: Call) -> web.StreamResponse:
    require_bucket(server, call)
    region = _region(server)
    if call.service.name == "bos":
        return web.Response(
            body=json.dumps({"locationConstraint": region}).encode(),
            content_type="application/json",
        )
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint>{region}</LocationConstraint>'
    return web.Response(body=body.encode(), content_type="application/xml")


async def delete_bucket(server: ServerState, call: Call) -> web.StreamResponse:
    assert call.bucket is not None
    try:
        server.storage.delete_bucket(call.bucket)
    except BucketNotEmptyError:
        raise ServeError("BucketNotEmpty", "The bucket you tried to delete is not empty.") from None
    return web.Response(status=204)


def encode_token(key: str) -> str:
    """A V2 continuation token: the last key or prefix of the page, opaque to clients."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")


def decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ServeError(
            "InvalidArgument", "The continuation token provided is incorrect."
        ) from None


async def list_objects(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    marker = params.get("marker", "")
    max_keys = int_param(params, ("max-keys", "maxKeys"), MAX_LIST, MAX_LIST)
    page = build_page(
        server.storage, bucket, prefix=prefix, delimiter=delimiter, after=marker, max_keys=max_keys
    )
    body = call.service.list_v1(
        bucket, page, prefix=prefix, marker=marker, delimiter=delimiter, max_keys=max_keys,
        encode=params.get("encoding-type") == "url",
    )  # fmt: skip
    return web.Response(body=body, headers={"content-type": call.service.content_type})


async def list_objects_v2(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    token = params.get("continuation-token")
    start_after = params.get("start-after")
    after = decode_token(token) if token else (start_after or "")
    max_keys = int_param(params, ("max-keys",), MAX_LIST, MAX_LIST)
    page = build_page(
        server.storage, bucket, prefix=prefix, delimiter=delimiter, after=after, max_keys=max_keys
    )
    next_token = encode_token(page.next_marker) if page.truncated and page.next_marker else None
    body = call.service.list_v2(
        bucket, page, prefix=prefix, delimiter=delimiter, max_keys=max_keys,
        encode=params.get("encoding-type") == "url", continuation=token,
        start_after=start_after, next_token=next_token,
    )  # fmt: skip
    return web.Response(body=body, headers={"content-type": call.service.content_type})


