"""The one small interface every signing algorithm implements.

A signer is a pure function of (request, credentials, time): it never reads the clock or the
environment, so tests pass the time in and the server uses the same code to verify.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bulkput.remote.credentials import Credentials

UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"


@dataclass(frozen=True, slots=True)
class SignableRequest:
    """What a signer needs to know about one HTTP request, exactly as it will be sent.

    ``path`` is the request path on the wire, already percent-encoded (``/bucket/a%20b`` for
    path-style, ``/a%20b`` for virtual-hosted). ``query`` holds *decoded* names and values in
    send order; ``None`` is a valueless sub-resource such as ``?uploads``. ``headers`` has
    lower-case names and holds every header that will be sent except the ones the signer adds.
    ``bucket`` and ``key`` are given apart because OSS signs ``/bucket/key`` whatever the
    addressing style. ``signed_headers`` forces the exact set of headers to sign (the server
    uses it to verify what the client said it signed); ``None`` means the algorithm's default.
    """

    method: str
    host: str
    path: str
    query: tuple[tuple[str, str | None], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    bucket: str | None = None
    key: str | None = None
    payload_hash: str | None = None  # SigV4: hex SHA-256 of the body, or None for UNSIGNED-PAYLOAD
    signed_headers: tuple[str, ...] | None = None


class Signer(Protocol):
    """One signing algorithm. Implementations cache their derived keys per date."""

    name: str  # "bce-v1", "oss-v1", "oss-v4", "s3-v4"

    def sign(
        self, request: SignableRequest, credentials: Credentials, now: datetime
    ) -> dict[str, str]:
        """Return the headers to add to the request (Authorization, dates, token, hashes).

        ``now`` is timezone-aware UTC. Names in the result are lower-case.
        """
        ...
