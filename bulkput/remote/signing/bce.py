"""Baidu BOS ``bce-auth-v1`` signing: header auth and query-string (presigned) auth.

Authorization = ``bce-auth-v1/{ak}/{timestamp}/{expiration}/{signed headers}/{signature}``
where the signing key is ``hex(HMAC-SHA256(sk, "bce-auth-v1/{ak}/{timestamp}/{expiration}"))``
and the signature is ``hex(HMAC-SHA256(key, METHOD\\nURI\\nQUERY\\nHEADERS))``. An empty signed
headers field means the default set: host, content-length, content-type, content-md5 and
every ``x-bce-*`` header.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing._encoding import (
    PreparedHmac,
    SmallCache,
    iso8601_extended,
    uri_encode,
    uri_encode_cached,
    utf8,
)
from bulkput.remote.signing.base import SignableRequest

ALGORITHM_PREFIX = "bce-auth-v1"
DATE_HEADER = "x-bce-date"
TOKEN_HEADER = "x-bce-security-token"
QUERY_AUTHORIZATION = "authorization"
_DEFAULT_SIGNED = frozenset({"host", "content-md5", "content-length", "content-type"})
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"  # what bytes.strip() removes, as the SDK does


class BceV1Signer:
    """BOS ``bce-auth-v1``. ``sign`` adds ``x-bce-date`` (and the STS token) and signs them."""

    name = "bce-v1"

    def __init__(self, expiration_seconds: int = 1800) -> None:
        self.expiration_seconds = expiration_seconds
        # (credentials, timestamp, expiration) -> (prefix, hex signing key as bytes)
        self._keys: SmallCache[tuple[Credentials, str, int], tuple[str, PreparedHmac]] = (
            SmallCache()
        )

    def __repr__(self) -> str:
        return f"BceV1Signer(expiration_seconds={self.expiration_seconds})"

    def sign(
        self, request: SignableRequest, credentials: Credentials, now: datetime
    ) -> dict[str, str]:
        timestamp = iso8601_extended(now)
        added = {DATE_HEADER: timestamp}
        if credentials.session_token:
            added[TOKEN_HEADER] = credentials.session_token
        headers = {**request.headers, **added}
        added["authorization"] = self.authorization(
            request, credentials, headers, timestamp, self.expiration_seconds
        )
        return added

    def presign(
        self,
        request: SignableRequest,
        credentials: Credentials,
        now: datetime,
        expiration_seconds: int,
    ) -> str:
        """The value of ``?authorization=`` for a presigned URL (the SDK's query-string auth).

        Signs ``request.headers`` as given (plus ``host``) and the query without
        ``authorization``. With an STS token, ``x-bce-security-token`` must already be in the
        query (as the SDK does it) or the headers, so that it is signed and sent.
        """
        if credentials.session_token and not (
            TOKEN_HEADER in request.headers
            or any(name == TOKEN_HEADER for name, _ in request.query)
        ):
            raise ValueError(
                f"presign with a session token: put {TOKEN_HEADER} in the query or the headers"
            )
        return self.authorization(
            request, credentials, request.headers, iso8601_extended(now), expiration_seconds
        )

    def authorization(
        self,
        request: SignableRequest,
        credentials: Credentials,
        headers: Mapping[str, str],
        timestamp: str,
        expiration_seconds: int,
    ) -> str:
        """Authorization over ``headers`` exactly as sent (lower-case names; host added if absent).

        ``timestamp`` is the ``YYYY-MM-DDTHH:MM:SSZ`` string that goes into the prefix.
        """
        prefix, signing_key = self._signing_key(credentials, timestamp, expiration_seconds)
        signed_names = request.signed_headers
        canonical_headers = _canonical_headers(headers, request.host, signed_names)
        string_to_sign = "\n".join(
            (request.method, request.path, canonical_query(request.query), canonical_headers)
        )
        signature = signing_key.digest(utf8(string_to_sign, "the request")).hex()
        listed = ";".join(name.lower() for name in signed_names) if signed_names else ""
        return f"{prefix}/{listed}/{signature}"

    def _signing_key(
        self, credentials: Credentials, timestamp: str, expiration_seconds: int
    ) -> tuple[str, PreparedHmac]:
        cache_key = (credentials, timestamp, expiration_seconds)
        cached = self._keys.get(cache_key)
        if cached is None:
            prefix = f"{ALGORITHM_PREFIX}/{credentials.access_key}/{timestamp}/{expiration_seconds}"
            key_hex = hmac.digest(
                utf8(credentials.secret_key, "the secret key"),
                utf8(prefix, "the access key"),
                "sha256",
            ).hex()
            cached = (prefix, PreparedHmac(key_hex.encode("ascii"), "sha256"))
            self._keys.put(cache_key, cached)
        return cached


def canonical_query(query: Iterable[tuple[str, str | None]]) -> str:
    """``enc(k)=enc(v)`` sorted, ``authorization`` left out (it carries the signature)."""
    parts = [
        f"{uri_encode(name)}={uri_encode(value) if value else ''}"
        for name, value in query
        if name.lower() != QUERY_AUTHORIZATION
    ]
    parts.sort()
    return "&".join(parts)


def _canonical_headers(
    headers: Mapping[str, str], host: str, signed_names: tuple[str, ...] | None
) -> str:
    wanted = frozenset(name.lower() for name in signed_names) if signed_names else None
    lines = []
    seen_host = False
    for raw_name, raw_value in headers.items():
        name = raw_name.strip().lower()
        if name == "host":
            seen_host = True
        if (
            name in wanted
            if wanted is not None
            else (name in _DEFAULT_SIGNED or name.startswith("x-bce-"))
        ):
            value = raw_value.strip(_ASCII_WHITESPACE)
            if value:  # empty values are not signed
                lines.append(f"{uri_encode_cached(name)}:{uri_encode_cached(value)}")
    if not seen_host and (wanted is None or "host" in wanted):
        value = host.strip(_ASCII_WHITESPACE)
        if value:
            lines.append(f"host:{uri_encode_cached(value)}")
    lines.sort()
    return "\n".join(lines)
