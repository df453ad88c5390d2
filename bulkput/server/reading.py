"""Reading a request into a :class:`~bulkput.server.call.Call`: its service, bucket, key and
route.

The target is read raw (``request.raw_path``), so a key's bytes reach the checks exactly as
the client percent-encoded them. Path-style (``/bucket/key``) and virtual-hosted
(``bucket.SUFFIX[:port]``) addressing both give a bucket and a key.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote, unquote_plus

from aiohttp import web

from bulkput.server.call import Call, Target
from bulkput.server.routing import UNKNOWN, route_for
from bulkput.server.services import ServeError, detect_service


def parse_query(raw: str) -> list[tuple[str, str | None]]:
    """Decoded query pairs; ``+`` is a space, as the services read it (requests-based SDKs such
    as oss2 send spaces that way; signing clients send a literal ``+`` as ``%2B``)."""
    pairs: list[tuple[str, str | None]] = []
    for item in raw.split("&"):
        if not item:
            continue
        name, sep, value = item.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value) if sep else None))
    return pairs


def _virtual_host_bucket(host: str, suffixes: Sequence[str]) -> str | None:
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for suffix in suffixes:
        if hostname.endswith("." + suffix):
            return hostname[: -len(suffix) - 1]
    return None


def _bucket_and_key(
    raw_path: str, host: str, suffixes: Sequence[str]
) -> tuple[str | None, str | None]:
    try:
        path = unquote(raw_path, errors="strict")
    except UnicodeDecodeError:
        raise ServeError("InvalidObjectName", "The object key is not valid UTF-8.") from None
    path = path[1:] if path.startswith("/") else path
    bucket = _virtual_host_bucket(host, suffixes)
    if bucket is not None:
        return bucket, path or None
    bucket_part, slash, key_part = path.partition("/")
    return bucket_part or None, key_part if slash and key_part else None


def parse_call(request: web.Request, virtual_host_suffixes: Sequence[str]) -> Call:
    """The request as the store reads it; ServeError when its target cannot be read."""
    raw_path, _, raw_query = request.raw_path.partition("?")
    query = parse_query(raw_query)
    params = {name: (value or "") for name, value in query}
    headers = {name.lower(): value for name, value in request.headers.items()}
    host = headers.get("host", "")
    service = detect_service(headers.get("authorization"), params, headers)
    bucket, key = _bucket_and_key(raw_path, host, virtual_host_suffixes)
    target = Target.SERVICE if bucket is None else Target.BUCKET if key is None else Target.OBJECT
    return Call(
        http=request, method=request.method, host=host, raw_path=raw_path, query=query,
        params=params, headers=headers, service=service, bucket=bucket, key=key,
        route=route_for(request.method, target, params, headers),
        request_id=service.new_request_id(),
    )  # fmt: skip


def unreadable_call(request: web.Request) -> Call:
    """A stand-in for a request whose target could not be parsed, to answer its error in the
    right service's format."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    service = detect_service(headers.get("authorization"), {}, headers)
    return Call(
        http=request, method=request.method, host="", raw_path=request.path, query=[],
        params={}, headers=headers, service=service, bucket=None, key=None, route=UNKNOWN,
        request_id=service.new_request_id(),
    )  # fmt: skip
