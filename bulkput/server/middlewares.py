"""The store's request pipeline: :class:`StorePipeline`'s aiohttp middlewares, outermost
first (closures over one server: no lookups per request):

0. :func:`serve_admin`: the admin endpoints (``/_bulkput/...``) are answered here, apart;
1. :func:`hold_slow_answers`: a ``slow`` fault's answer waits ``slow_ms`` before it leaves;
2. :func:`count_requests`: every request is counted (operation, status) once its answer is
   decided, so a held answer is counted even when the client gives up waiting;
3. :func:`answer_errors`: a :class:`~bulkput.server.services.ServeError` (or a storage
   "no such bucket/upload") becomes the service's error answer; every answer gets the
   service's request-id headers;
4. :func:`parse_request`: the call (service, bucket, key, route) is read from the request;
5. :func:`check_request`: method allowed, signature valid, operation implemented, bucket and
   key names valid, in the order the services check them;
6. :func:`inject_faults`: the configured faults (errors, resets, latency, held answers).

The innermost handler, :meth:`StorePipeline.dispatch`, runs the route's handler: every request takes the
one aiohttp route, as the services' operations are not told apart by path.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, NoReturn

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler
from aiohttp.typedefs import Middleware

from bulkput.server import validation as checks
from bulkput.server.admin import ADMIN_PREFIX, answer_admin
from bulkput.server.answers import error_response, stamp
from bulkput.server.body import drain
from bulkput.server.call import Call
from bulkput.server.reading import parse_call, unreadable_call
from bulkput.server.request_state import call_of, call_or_none, set_call
from bulkput.server.routing import METHOD_NOT_ALLOWED, NOT_IMPLEMENTED, refusal
from bulkput.server.services import ServeError
from bulkput.server.storage import NoSuchBucketError, NoSuchUploadError

if TYPE_CHECKING:
    from bulkput.server.state import ServerState


class ConnectionCut(Exception):
    """Raised after an injected connection reset: there is nothing to answer."""


class StorePipeline:
    """The middlewares of one server, in order (:attr:`middlewares`), and the route handler."""

    def __init__(self, server: ServerState) -> None:
        self.server = server
        self.middlewares: tuple[Middleware, ...] = (
            self.serve_admin,
            self.hold_slow_answers,
            self.count_requests,
            self.answer_errors,
            self.parse_request,
            self.check_request,
            self.inject_faults,
        )

    @web.middleware
    async def serve_admin(self, request: web.Request, handler: NextHandler) -> web.StreamResponse:
        if request.path.startswith(ADMIN_PREFIX):
            return await answer_admin(request)
        return await handler(request)

    @web.middleware
    async def hold_slow_answers(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        response = await handler(request)
        call = call_or_none(request)
        if call is not None and call.hold_seconds:
            await asyncio.sleep(call.hold_seconds)
        return response

    @web.middleware
    async def count_requests(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        stats = self.server.stats
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        try:
            response = await handler(request)
        except ConnectionCut:
            # the transport is already aborted: this answer goes nowhere, by design
            stats.request(request.method, _operation(request), 0, peer)
            return web.Response(status=500)
        except ConnectionResetError:  # aiohttp's ClientConnectionResetError is one too
            # The client went away mid-request (killed, timed out): nothing to answer, and
            # nothing worth a traceback; the partial body was already discarded.
            stats.request(request.method, _operation(request), 0, peer)
            return web.Response(status=499)
        stats.request(request.method, _operation(request), response.status, peer)
        return response

    @web.middleware
    async def answer_errors(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        try:
            response = await handler(request)
        except ServeError as error:
            return error_response(_call_for_error(request), error)
        except NoSuchBucketError:
            missing = ServeError("NoSuchBucket", "The specified bucket does not exist.")
            return error_response(call_of(request), missing)
        except NoSuchUploadError:
            call = call_of(request)
            missing = ServeError(
                "NoSuchUpload", "The specified upload does not exist.", key=call.key
            )
            return error_response(call, missing)
        stamp(call_of(request), response)
        return response

    @web.middleware
    async def parse_request(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        set_call(request, parse_call(request, self.server.config.virtual_host_suffixes))
        return await handler(request)

    @web.middleware
    async def check_request(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        call = call_of(request)
        if call.route is METHOD_NOT_ALLOWED:  # answered before the signature, as services do
            raise refusal(call.operation)
        outcome = self.server.authenticate(
            call.method, call.host, call.raw_path, call.query, call.headers, call.bucket,
            call.key,
        )  # fmt: skip
        if not outcome.ok:
            raise ServeError(
                outcome.code or "AccessDenied", outcome.message or "Access denied.",
                status=outcome.status,
            )  # fmt: skip
        if call.route is NOT_IMPLEMENTED:
            raise refusal(call.operation)
        if call.bucket is not None:
            checks.check_bucket_name(call.bucket)
        if call.key is not None:
            checks.check_key(call.key)
        return await handler(request)

    @web.middleware
    async def inject_faults(
        self, request: web.Request, handler: NextHandler
    ) -> web.StreamResponse:
        server = self.server
        call = call_of(request)
        faults = server.faults  # read anew: it may be replaced while the store runs
        kind = faults.choose(call.operation, call.key)
        if kind is None:
            return await handler(request)
        server.stats.fault(kind)
        if kind == "latency":
            await asyncio.sleep(faults.config.latency_ms / 1000)
            return await handler(request)
        if kind == "slow":
            response = await handler(request)
            call.hold_seconds = faults.config.slow_ms / 1000  # only a served request is held
            return response
        await _fail(call, kind, server.config.body_timeout)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """The store route's handler: the call's route answers it."""
        call = call_of(request)
        return await call.route.handler(self.server, call)


def _operation(request: web.Request) -> str:
    call = call_or_none(request)
    return call.operation if call is not None else "Unknown"


def _call_for_error(request: web.Request) -> Call:
    call = call_or_none(request)
    if call is None:  # the target itself was unreadable
        call = unreadable_call(request)
        set_call(request, call)
    return call


async def _fail(call: Call, kind: str, body_timeout: float) -> NoReturn:
    """Fail the call the way ``kind`` says."""
    if kind == "reset":
        # take part of the body, then cut the connection without an answer
        length = call.http.content_length or 0
        if length > 1:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.IncompleteReadError):
                await asyncio.wait_for(call.http.content.readexactly(length // 2), 5)
        transport = call.http.transport
        if transport is not None:
            transport.abort()
        raise ConnectionCut()
    await drain(call, body_timeout)
    if kind == "requesttimeout":
        raise ServeError(
            "RequestTimeout",
            "Your socket connection to the server was not "
            "read from or written to within the timeout period. (injected)",
        )
    if kind == "slowdown":
        raise ServeError("SlowDown", "Please reduce your request rate. (injected)")
    raise ServeError(
        "InternalError", "We encountered an internal error. Please try again. (injected)"
    )
