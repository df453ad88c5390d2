"""Multipart uploads: initiate, upload a part, list parts, list uploads, abort, complete."""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from aiohttp import web

from bulkput.server import validation as checks
from bulkput.server.body import BytesSink, drain, read_body
from bulkput.server.documents import parse_part_list
from bulkput.server.handlers.common import fill_crc64, int_param, require_bucket
from bulkput.server.handlers.object import object_template
from bulkput.server.listing import MAX_LIST, build_uploads_page
from bulkput.server.services import ServeError
from bulkput.server.storage import NoSuchUploadError, PendingUpload, StoredPart

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState

MAX_COMPLETE_BODY = 4 * 1024 * 1024


def _pending_upload(server: ServerState, call: Call) -> PendingUpload:
    """The upload named by ``uploadId``, which must be for this call's key."""
    bucket = require_bucket(server, call)
    upload = server.storage.get_upload(bucket, call.params.get("uploadId", ""))
    if upload.key != call.key:
        raise NoSuchUploadError(upload.upload_id)
    return upload


async def initiate(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    template = object_template(call)
    await drain(call, server.config.body_timeout)
    upload = server.storage.create_upload(bucket, template)
    return web.Response(
        body=call.service.initiate(upload), headers={"content-type": call.service.content_type}
    )


async def upload_part(server: ServerState, call: Call) -> web.StreamResponse:
    number = checks.parse_part_number(call.params.get("partNumber"))
    upload = _pending_upload(server, call)
    writer = server.storage.new_writer()
    body = await read_body(
        call, writer, limit=server.config.max_single_put,
        want_crc64=call.service.name == "oss", timeout=server.config.body_timeout,
    )  # fmt: skip
    part = StoredPart(number, body.size, body.md5.hex(), time.time(), body.crc64)
    try:
        server.storage.put_part(upload, part, writer)
    except BaseException:
        writer.abort()
        raise
    server.stats.part_stored(upload.bucket, upload.key, number)
    return web.Response(status=200, headers=call.service.part_headers(part))


async def list_parts(server: ServerState, call: Call) -> web.StreamResponse:
    upload = _pending_upload(server, call)
    params = call.params
    marker = int_param(params, ("part-number-marker", "partNumberMarker"), 0, 10_000)
    max_parts = int_param(params, ("max-parts", "maxParts"), MAX_LIST, MAX_LIST)
    parts = [p for p in server.storage.list_parts(upload) if p.number > marker]
    truncated = len(parts) > max_parts
    body = call.service.list_parts(
        upload, parts[:max_parts], marker=marker, max_parts=max_parts, truncated=truncated
    )
    return web.Response(body=body, headers={"content-type": call.service.content_type})


async def list_uploads(server: ServerState, call: Call) -> web.StreamResponse:
    bucket = require_bucket(server, call)
    params = call.params
    prefix = params.get("prefix", "")
    delimiter = params.get("delimiter", "")
    key_marker = params.get("key-marker", params.get("keyMarker", ""))
    id_marker = params.get("upload-id-marker", "")
    max_uploads = int_param(params, ("max-uploads", "maxUploads"), MAX_LIST, MAX_LIST)
    page = build_uploads_page(
        server.storage, bucket, prefix=prefix, delimiter=delimiter, key_marker=key_marker,
        upload_id_marker=id_marker, max_uploads=max_uploads,
    )  # fmt: skip
    body = call.service.list_uploads(
        bucket, page.uploads, page.prefixes, prefix=prefix, delimiter=delimiter,
        key_marker=key_marker, upload_id_marker=id_marker, max_uploads=max_uploads,
        truncated=page.truncated, encode=params.get("encoding-type") == "url",
    )  # fmt: skip
    return web.Response(body=body, headers={"content-type": call.service.content_type})


async def abort(server: ServerState, call: Call) -> web.StreamResponse:
    upload = _pending_upload(server, call)
    server.storage.abort_upload(upload)
    return web.Response(status=204)


def _chosen_parts(
    requested: list[tuple[int, str]], stored: dict[int, StoredPart], *, min_size: int, key: str
) -> list[StoredPart]:
    """The stored parts a part list names, checked: ascending numbers, matching ETags, every
    part but the last at least ``min_size`` bytes."""
    chosen: list[StoredPart] = []
    previous = 0
    for number, etag in requested:
        if number <= previous:
            raise ServeError("InvalidPartOrder", "The list of parts was not in ascending order.")
        previous = number
        part = stored.get(number)
        if part is None or etag.strip().strip('"').lower() != part.md5_hex:
            raise ServeError(
                "InvalidPart", f"Part {number} was not found or its ETag did not match.", key=key
            )
        chosen.append(part)
    for part in chosen[:-1]:
        if part.size < min_size:
            raise ServeError(
                "EntityTooSmall", f"Part {part.number} is {part.size} bytes; every part but "
                f"the last must be at least {min_size} bytes.", key=key,
            )  # fmt: skip
    return chosen


async def complete(server: ServerState, call: Call) -> web.StreamResponse:
    upload = _pending_upload(server, call)
    sink = BytesSink()
    # The BOS SDK sends the whole object's x-bce-content-crc32 on complete: it describes the
    # assembled object, not this request's part list, so it is not checked against the body.
    await read_body(
        call, sink, limit=MAX_COMPLETE_BODY, want_crc64=False,
        timeout=server.config.body_timeout, body_checksums=False,
    )  # fmt: skip
    is_bos = call.service.name == "bos"
    requested = parse_part_list(sink.getvalue(), json_document=is_bos)
    min_size = server.config.min_part_size
    if min_size is None:
        min_size = call.service.min_part_size
    stored = {p.number: p for p in server.storage.list_parts(upload)}
    chosen = _chosen_parts(requested, stored, min_size=min_size, key=upload.key)
    md5s = b"".join(bytes.fromhex(p.md5_hex) for p in chosen)
    extra_metadata = checks.parse_metadata(call.service, call.headers) if is_bos else {}
    meta = replace(
        upload.template,
        size=sum(p.size for p in chosen),
        etag=f"{hashlib.md5(md5s).hexdigest()}-{len(chosen)}",
        last_modified=time.time(),
        multipart=True,
        user_metadata={**upload.template.user_metadata, **extra_metadata},
    )
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, server.storage.complete_upload, upload, chosen, meta)
    server.stats.stored(upload.bucket, upload.key)
    if call.service.name == "oss":
        meta = await fill_crc64(server, upload.bucket, meta)
    location = f"{call.http.scheme}://{call.host}/{upload.bucket}/{upload.key}"
    headers = {"content-type": call.service.content_type}
    headers.update(call.service.put_headers(meta))
    if call.service.name == "s3":
        headers.pop("etag", None)  # S3 gives the ETag in the body only
    return web.Response(
        body=call.service.complete(location, upload.bucket, meta), headers=headers
    )
