"""Credentials as values: a key pair and token (``Credentials``, whose ``repr`` masks the
secret and the token, so a credential can be logged, put in an exception or shown in a
debugger without leaking), where it was found (``CredentialOrigin``), and the temporary kind a
chain renews (``RefreshingCredentials``). Below both :mod:`bulkput.remote.credentials` (which
finds them) and :mod:`bulkput.remote.credential_chains` (the providers' chains that make them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal


def mask(secret: str | None) -> str:
    """What a secret looks like wherever it could be printed."""
    return "None" if secret is None else "******"


OriginKind = Literal["flags", "environment", "profile", "chain"]


@dataclass(frozen=True, slots=True)
class CredentialOrigin:
    """Where credentials were found, as a message names it (never a value): ``kind``, and
    ``where`` (the variables, the file, the chain's method), with the ``profile`` read."""

    kind: OriginKind
    where: str
    profile: str | None = None

    def describe(self) -> str:
        """``profile 'dev' in ~/.aws/credentials``, ``environment variables AWS_...``."""
        if self.kind == "flags":
            return f"{self.where} on the command line"
        if self.kind == "environment":
            return f"environment variables {self.where}"
        if self.kind == "profile":
            return f"profile {self.profile!r} in {self.where}" if self.profile else self.where
        named = f", profile {self.profile!r}" if self.profile else ""
        return f"the credential chain ({self.where}{named})"


FLAGS_ORIGIN = CredentialOrigin("flags", "--access-key/--secret-key")


@dataclass(frozen=True, slots=True)
class Credentials:
    """One key pair (and token). ``source`` is a stable label of where they came from (the
    journal's identity of temporary credentials uses it); ``origin`` the same place, typed,
    for the messages that name it (an auth error says which credentials were rejected)."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    source: str = "explicit"  # "env AWS_ACCESS_KEY_ID", "~/.aws/credentials [dev]"...
    origin: CredentialOrigin | None = None

    def __repr__(self) -> str:
        return (
            f"Credentials(access_key={self.access_key!r}, secret_key={mask(self.secret_key)}, "
            f"session_token={mask(self.session_token)}, source={self.source!r})"
        )

    __str__ = __repr__


class RefreshingCredentials:
    """Temporary credentials that a chain renews (STS, SSO, container or instance roles).

    ``fetch`` (blocking: it may call STS) returns the chain's current credentials; the chain's
    library decides when to renew them. :meth:`fresh` asks it again at most every
    ``check_every`` seconds, in a thread, one caller at a time, so requests are always signed
    with current credentials and the event loop never waits on the network for them.
    """

    def __init__(
        self,
        fetch: Callable[[], Credentials],
        *,
        first: Credentials,
        check_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._current = first
        self._check_every = check_every
        self._clock = clock
        self._next_check = clock() + check_every
        self._lock: asyncio.Lock | None = None

    @property
    def access_key(self) -> str:
        return self._current.access_key

    @property
    def source(self) -> str:
        return self._current.source

    @property
    def origin(self) -> CredentialOrigin | None:
        return self._current.origin

    def current(self) -> Credentials:
        return self._current

    async def fresh(self) -> Credentials:
        """The credentials to sign with now (renewed first when it is time to ask again)."""
        if self._clock() < self._next_check:
            return self._current
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._clock() >= self._next_check:
                self._current = await asyncio.to_thread(self._fetch)
                self._next_check = self._clock() + self._check_every
        return self._current

    def __repr__(self) -> str:
        return f"RefreshingCredentials({self._current!r})"

    __str__ = __repr__


# What a store signs with: fixed keys, or a chain's renewing credentials.
CredentialSource = Credentials | RefreshingCredentials
