"""The admin endpoints of `bulkput serve`, for tests and benchmarks (no signature):

* ``GET /_bulkput/stats``: the request counters as JSON;
* ``POST /_bulkput/reset-stats``: clear them;
* ``GET /_bulkput/health``: ``ok``.

Bucket names cannot start with ``_``, so these paths never name a bucket.
"""

from __future__ import annotations

from aiohttp import web

from bulkput.server.request_state import server_of

ADMIN_PREFIX = "/_bulkput/"


async def stats(request: web.Request) -> web.Response:
    return web.json_response(server_of(request).stats.snapshot().to_json())


async def reset_stats(request: web.Request) -> web.Response:
    server_of(request).stats.reset()
    return web.json_response({"reset": True})


async def health(request: web.Request) -> web.Response:
    return web.Response(text="ok")


_ENDPOINTS = {
    ("GET", "stats"): stats,
    ("HEAD", "stats"): stats,
    ("POST", "reset-stats"): reset_stats,
    ("GET", "health"): health,
    ("HEAD", "health"): health,
}


async def answer_admin(request: web.Request) -> web.Response:
    """The endpoint ``request`` names; 404 for a path or method not in the table."""
    endpoint = _ENDPOINTS.get((request.method, request.path[len(ADMIN_PREFIX) :]))
    if endpoint is None:
        return web.Response(status=404, text="unknown admin endpoint")
    return await endpoint(request)
