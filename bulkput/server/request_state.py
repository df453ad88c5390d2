"""What the store keeps on an aiohttp request between its middlewares, typed.

The application holds the :class:`~bulkput.server.state.ServerState` (for the admin
endpoints); a request holds its parsed :class:`~bulkput.server.call.Call`, from the parsing
middleware on. Both under typed keys (``web.AppKey``, ``web.RequestKey``: aiohttp warns of
string keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bulkput.server.call import Call
    from bulkput.server.state import ServerState

SERVER: web.AppKey[ServerState] = web.AppKey("bulkput_server")
_CALL: web.RequestKey[Call] = web.RequestKey("bulkput_call")


def server_of(request: web.Request) -> ServerState:
    return request.app[SERVER]


def set_call(request: web.Request, call: Call) -> None:
    request[_CALL] = call


def call_or_none(request: web.Request) -> Call | None:
    return request.get(_CALL)


def call_of(request: web.Request) -> Call:
    """The call, for the middlewares after the parsing one."""
    return request[_CALL]
