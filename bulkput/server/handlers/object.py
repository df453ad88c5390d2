"""Object operations: PUT, HEAD, GET (with ranges), DELETE and DeleteObjects."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from bulkput.server import validation as checks
from bulkput.server.answers import stamp
from bulkput.server.body import BytesSink, read_body
from bulkput.server.documents import parse_delete_request
from bulkput.server.handlers.common import fill_crc64, require_bucket
from bulkput.server.services import ServeError
from bulkput.server.storage import ObjectMeta

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState

MAX_DELETE_BODY = 2 * 1024 * 1024
_CHECKSUM_ECHOES = ("x-amz-checksum-crc32", "x-amz-checksum-sha256", "x-amz-checksum-sha1")
# GET/HEAD query parameters that override a header of the answer
_RESPONSE_OVERRIDES = {
    "response-content-type": "content-type",
    "response-content-disposition": "content-disposition",
    "response-cache-control": "cache-control",
    "response-content-encoding": "content-encoding",
    "response-content-language": "content-language",
    "response-expires": "expires",
}


def object_template(call: Call) -> ObjectMeta:
    """Headers and metadata of a new object, checked (PutObject and multipart initiation)."""
    assert call.key is not None
    storage_class, acl, encryption = checks.check_choice(call.service, call.headers)
    return ObjectMeta(
        key=call.key,
        size=0,
        etag="",
        last_modified=time.time(),
        content_type=call.headers.get("content-type") or "application/octet-stream",
        content_headers=checks.content_headers(call.headers),
        user_metadata=checks.parse_metadata(call.service, call.headers),
        storage_class=storage_class,
        acl=acl,
        encryption=encryption,
    )


async def put_object(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    template = object_template(call)
    writer = server.storage.new_writer()
    body = await read_body(
        call, writer, limit=server.config.max_single_put,
        want_crc64=call.service.name == "oss", timeout=server.config.body_timeout,
    )  # fmt: skip
    meta = replace(
        template, size=body.size, etag=body.md5.hex(), last_modified=time.time(),
        crc64=body.crc64,
    )  # fmt: skip
    try:
        server.storage.commit_object(bucket, writer, meta)
    except BaseException:
        writer.abort()
        raise
    server.stats.stored(bucket, meta.key)
    headers = call.service.put_headers(meta)
    for name in _CHECKSUM_ECHOES:
        if name in call.headers:
            headers[name] = call.headers[name]
    return web.Response(status=200, headers=headers)


async def _stored_meta(server: ServerState, call: Call) -> tuple[str, ObjectMeta]:
    bucket = require_bucket(server, call)
    assert call.key is not None
    meta = server.storage.head_object(bucket, call.key)
    if meta is None:
        raise ServeError("NoSuchKey", "The specified key does not exist.", key=call.key)
    if call.service.name == "oss" and meta.crc64 is None:
        meta = await fill_crc64(server, bucket, meta)
    return bucket, meta


def _answer_headers(call: Call, meta: ObjectMeta) -> dict[str, str]:
    headers = call.service.object_headers(meta)
    for param, header in _RESPONSE_OVERRIDES.items():
        if param in call.params:
            headers[header] = call.params[param]
    return headers


async def head_object(server: ServerState, call: Call) -> web.StreamResponse:
    _, meta = await _stored_meta(server, call)
    response = web.StreamResponse(status=200, headers=_answer_headers(call, meta))
    response.content_length = meta.size
    return response


async def get_object(server: ServerState, call: Call) -> web.StreamResponse:
    bucket, meta = await _stored_meta(server, call)
    headers = _answer_headers(call, meta)
    span = checks.parse_range(call.headers.get("range"), meta.size)
    status = 200
    start, end = 0, meta.size
    if span is not None:
        start, end = span
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{meta.size}"
        headers.pop("x-oss-hash-crc64ecma", None)  # describes the whole object only
    response = web.StreamResponse(status=status, headers=headers)
    stamp(call, response)  # the headers go out with prepare()
    response.content_length = end - start
    await response.prepare(call.http)
    for chunk in server.storage.read_object(bucket, meta.key, start, end):
        await response.write(chunk)
    await response.write_eof()
    return response


async def delete_object(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    assert call.key is not None
    server.storage.delete_object(bucket, call.key)
    return web.Response(status=204)


async def delete_objects(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    sink = BytesSink()
    await read_body(
        call, sink, limit=MAX_DELETE_BODY, want_crc64=False, timeout=server.config.body_timeout
    )
    request = parse_delete_request(sink.getvalue(), json_document=call.service.name == "bos")
    deleted: list[str] = []
    errors: list[tuple[str, str, str]] = []
    for key in request.keys:
        try:
            checks.check_key(key)
        except ServeError as error:
            errors.append((key, call.service.error_spec(error.name).code, error.message))
            continue
        server.storage.delete_object(bucket, key)
        deleted.append(key)
    body, content_type = call.service.delete_result(
        deleted, errors, quiet=request.quiet, encode=call.params.get("encoding-type") == "url"
    )
    return web.Response(status=200, body=body, headers={"content-type": content_type})
