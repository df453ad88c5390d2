"""One request to the store, parsed (by :mod:`bulkput.server.reading`): which service it
talks to, its bucket, key and :class:`Route` (a row of the table in
:mod:`bulkput.server.routing`). The handlers take a Call; a Route names its handler: both are
here, below the handlers and the table that names them.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bulkput.server.services import EmulatedService
    from bulkput.server.state import ServerState

Handler = Callable[["ServerState", "Call"], Awaitable[web.StreamResponse]]


class Target(enum.Enum):
    SERVICE = "service"  # no bucket: the account
    BUCKET = "bucket"
    OBJECT = "object"


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    target: Target
    needs: tuple[str, ...]
    operation: str
    handler: Handler
    # ``needs`` as (name, required value or None), split once: routing runs on every request
    _needs: tuple[tuple[str, str | None], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        split = tuple(
            (name, value if has_value else None)
            for name, has_value, value in (need.partition("=") for need in self.needs)
        )
        object.__setattr__(self, "_needs", split)

    def matches(self, params: Mapping[str, str]) -> bool:
        """True when the query has every name (and value) this row needs."""
        for name, value in self._needs:
            if name not in params or (value is not None and params[name] != value):
                return False
        return True


@dataclass(slots=True)
class Call:
    """One request, parsed. ``headers`` has lower-case names; ``params`` is the decoded query
    with valueless names mapped to ``""``."""

    http: web.Request
    method: str
    host: str
    raw_path: str
    query: list[tuple[str, str | None]]
    params: dict[str, str]
    headers: dict[str, str]
    service: EmulatedService
    bucket: str | None
    key: str | None
    route: Route
    request_id: str
    hold_seconds: float = 0.0  # a ``slow`` fault holds the answer back this long

    @property
    def operation(self) -> str:
        return self.route.operation
