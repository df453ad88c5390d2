"""The admin endpoints of `bulkput serve`, for tests and benchmarks (no signature):

* ``GET /_bulkput/stats``: the request counters as JSON;
* ``POST /_bulkput/reset-stats``: clear them; needs the header ``X-Bulkput-Admin`` and no
  foreign ``Origin`` (see :func:`reset_refusal`), so no web page can clear them;
* ``GET /_bulkput/health``: ``ok``.

Bucket names cannot start with ``_``, so these paths never name a bucket.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bulkput.server.request_state import server_of

ADMIN_PREFIX = "/_bulkput/"
ADMIN_HEADER = "X-Bulkput-Admin"  # any non-empty value: a browser cannot send it cross-site


def reset_refusal(headers: Mapping[str, str], *, scheme: str, host: str) -> str | None:
    """Why a reset-stats request is refused, or None to accept it.

    A page in a browser can POST to the store without being allowed to (a form, or ``fetch``
    with ``mode: "no-cors"``), but cannot add a custom header without the store's consent in
    a CORS preflight, which the store never gives; and a browser names the page's origin::

        X-Bulkput-Admin  Origin                         answer
        absent           (any)                          refused
        present          absent                         accepted (curl, urllib, test handles)
        present          the store's own scheme://host  accepted
        present          any other, or "null"           refused
    """
    if not headers.get(ADMIN_HEADER, "").strip():
        return f"reset-stats needs the header '{ADMIN_HEADER}: 1'"
    origin = headers.get("Origin")
    if origin is not None and origin.strip().lower() != f"{scheme}://{host}".lower():
        return f"reset-stats refused from the foreign origin {origin!r}"
    return None


async def stats(request: web.Request) -> web.Response:
    return web.json_response(server_of(request).stats.snapshot().to_json())


async def reset_stats(request: web.Request) -> web.Response:
    refusal = reset_refusal(request.headers, scheme=request.scheme, host=request.host)
    if refusal is not None:
        return web.json_response({"error": refusal}, status=403)
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
