"""Signature checks of `bulkput serve`: a thin adapter over :mod:`bulkput.remote.signing.verify`.

The server never signs or canonicalises anything itself; it hands the request as received
(method, Host, raw path, decoded query, headers) to the signing package's verifier, with a
lookup of its configured credentials and the current time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing.verify import verify


@dataclass(frozen=True, slots=True)
class AuthOutcome:
    ok: bool
    access_key: str | None = None
    code: str | None = None  # service error code when refused
    message: str = ""
    status: int = 403


class Authenticator(Protocol):
    def __call__(
        self,
        method: str,
        host: str,
        raw_path: str,
        query: Sequence[tuple[str, str | None]],
        headers: Mapping[str, str],
        bucket: str | None,
        key: str | None,
    ) -> AuthOutcome: ...


class SignatureAuthenticator:
    """Verifies every request against the configured credentials (by access key)."""

    def __init__(self, credentials: Sequence[Credentials], region: str | None = None) -> None:
        self._by_key = {c.access_key: c for c in credentials}
        self._region = region

    def lookup(self, access_key: str) -> Credentials | None:
        return self._by_key.get(access_key)

    def __call__(
        self,
        method: str,
        host: str,
        raw_path: str,
        query: Sequence[tuple[str, str | None]],
        headers: Mapping[str, str],
        bucket: str | None,
        key: str | None,
    ) -> AuthOutcome:
        result = verify(
            method, host, raw_path, tuple(query), headers, self.lookup, datetime.now(timezone.utc),
            bucket=bucket, key=key if key is not None or bucket is None else "",
            region=self._region,
        )  # fmt: skip
        if result.ok:
            return AuthOutcome(True, result.access_key)
        return AuthOutcome(
            False, result.access_key, result.code or "AccessDenied", result.message, result.status
        )
