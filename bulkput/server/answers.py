"""What every answer of the store carries, and how an error is answered in a call's service."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from bulkput.server.services import ServeError, format_http_date

if TYPE_CHECKING:
    from bulkput.server.call import Call


def stamp(call: Call, response: web.StreamResponse) -> None:
    """The service's request-id headers and a Date, unless the answer has already started."""
    if response.prepared:
        return
    for name, value in call.service.request_id_headers(call.request_id).items():
        response.headers[name] = value
    response.headers["date"] = format_http_date(time.time())


def error_response(call: Call, error: ServeError) -> web.Response:
    """``error`` as the call's service writes it (a HEAD answer has headers only)."""
    service = call.service
    spec = service.error_spec(error.name, error.status)
    bodiless = call.method == "HEAD"
    body = service.error_body(
        spec, error.message, call.request_id, bucket=call.bucket,
        key=error.key if error.key is not None else call.key,
    )  # fmt: skip
    headers = service.error_headers(spec, body, bodiless=bodiless)
    headers.update(service.request_id_headers(call.request_id))
    headers["date"] = format_http_date(time.time())
    if bodiless:
        response = web.Response(status=spec.status, headers=headers)
    else:
        response = web.Response(status=spec.status, body=body, headers=headers)
    if error.close:
        response.force_close()
    return response
