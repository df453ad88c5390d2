"""The HTTP side of `bulkput serve`: the aiohttp application and how it listens.

Every store request takes one aiohttp route and the middlewares of
:mod:`bulkput.server.middlewares` (faults, counters, error answers, parsing, signature
checks; the admin endpoints of :mod:`bulkput.server.admin` are answered by the first), then
the handler its row of :mod:`bulkput.server.routing` names (handlers by resource in
:mod:`bulkput.server.handlers`).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from aiohttp import web

from bulkput.server.config import ServerConfig
from bulkput.server.middlewares import StorePipeline
from bulkput.server.request_state import SERVER
from bulkput.server.state import ServerState

MAX_REQUEST_BODY = 1024**3  # aiohttp's cap for bodies it reads whole; ours stream

HANDLER_ARGS: dict[str, object] = {
    # long keys arrive percent-encoded (up to 3 bytes per byte): let them reach our own check
    "max_line_size": 65536,
    "max_field_size": 65536,
}


class BulkputServer(ServerState):
    """The store (its state: :class:`~bulkput.server.state.ServerState`) as an aiohttp
    application. The handlers and middlewares see the state alone, so they never import this
    module, which imports them."""

    def make_app(self) -> web.Application:
        pipeline = StorePipeline(self)
        app = web.Application(client_max_size=MAX_REQUEST_BODY, middlewares=pipeline.middlewares)
        app[SERVER] = self
        # [\s\S], not ".": a key may hold a newline (%0A), and "." stops at one
        app.router.add_route("*", r"/{tail:[\s\S]*}", pipeline.dispatch)
        app.on_cleanup.append(self._close)
        return app

    async def _close(self, app: web.Application) -> None:
        self.storage.close()


@dataclass
class Listening:
    """A started store: stop it with ``await runner.cleanup()``."""

    runner: web.AppRunner
    port: int


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server-side TLS context of ``--cert``/``--key``, or None for plain HTTP; ValueError
    with one line when they cannot be loaded."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"cannot load the certificate {config.tls_cert!r} with the key {config.tls_key!r}: "
            f"{error.strerror or error}"
        ) from None
    return context


LISTEN_BACKLOG = 4096  # connections waiting to be accepted (the kernel caps it at somaxconn)


async def listen(server: BulkputServer) -> Listening:
    """Bind the store to ``config.host:config.port`` (port 0: a free one) and serve, over TLS
    when the config has a certificate."""
    config = server.config
    ssl_context = tls_context(config)
    runner = web.AppRunner(server.make_app(), access_log=None, handler_cancellation=True,
                           **HANDLER_ARGS)  # type: ignore[arg-type]  # fmt: skip
    await runner.setup()
    try:
        # A client that raises its requests in flight from 256 to 512 opens 256 connections at
        # once; with aiohttp's listen backlog of 128 the kernel dropped the SYNs beyond it and
        # the client waited out TCP's 1 s retransmit (2,000 files 40 ms away: 1.9 s instead of
        # 0.9 s). A real store's front end does not drop them; neither should the test store.
        site = web.TCPSite(
            runner, config.host, config.port, reuse_address=True, ssl_context=ssl_context,
            backlog=LISTEN_BACKLOG,
        )
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    port = runner.addresses[0][1] if runner.addresses else config.port
    return Listening(runner, int(port))
