"""AWS Signature Version 4 for S3 (``AWS4-HMAC-SHA256``), as botocore's ``S3SigV4Auth`` does it.

Canonical request: ``VERB\\nPATH\\nQUERY\\nHEADERS\\n\\nSIGNED\\nHASH``: the path as sent (S3 does
not normalise it), ``enc(k)=enc(v)`` sorted, every header that is sent (but hop-by-hop ones and
``user-agent``) lower-case and sorted with its value trimmed and inner whitespace collapsed.
The signing key ``HMAC(HMAC(HMAC(HMAC("AWS4"+sk, yyyymmdd), region), service), "aws4_request")``
is cached per (credentials, date, region, service).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import datetime

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing._encoding import (
    PreparedHmac,
    SmallCache,
    derive_v4_key,
    iso8601_basic,
    uri_encode,
    utf8,
)
from bulkput.remote.signing.base import UNSIGNED_PAYLOAD, SignableRequest

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
DATE_HEADER = "x-amz-date"
CONTENT_SHA256_HEADER = "x-amz-content-sha256"
TOKEN_HEADER = "x-amz-security-token"

# Never signed (botocore SIGNED_HEADERS_BLACKLIST): proxies may change them.
UNSIGNED_HEADERS = frozenset(
    {
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
        "authorization",
    }
)  # fmt: skip


class SigV4Signer:
    """S3 SigV4. ``sign`` adds ``x-amz-date``, ``x-amz-content-sha256`` (and the token)."""

    name = "s3-v4"

    def __init__(self, region: str, service: str = "s3") -> None:
        self.region = region
        self.service = service
        self._keys: SmallCache[tuple[Credentials, str, str, str], PreparedHmac] = SmallCache()

    def __repr__(self) -> str:
        return f"SigV4Signer(region={self.region!r}, service={self.service!r})"

    def sign(
        self, request: SignableRequest, credentials: Credentials, now: datetime
    ) -> dict[str, str]:
        amz_date = iso8601_basic(now)
        added = {
            DATE_HEADER: amz_date,
            CONTENT_SHA256_HEADER: request.payload_hash or UNSIGNED_PAYLOAD,
        }
        if credentials.session_token:
            added[TOKEN_HEADER] = credentials.session_token
        headers = {**request.headers, **added}
        if "host" not in headers:
            headers["host"] = request.host
        added["authorization"] = self.authorization(request, credentials, headers, amz_date)
        return added

    def authorization(
        self,
        request: SignableRequest,
        credentials: Credentials,
        headers: Mapping[str, str],
        amz_date: str,
        region: str | None = None,
        service: str | None = None,
    ) -> str:
        """Authorization over ``headers`` exactly as sent (lower-case names, host included)."""
        region = region or self.region
        service = service or self.service
        if request.signed_headers is not None:
            names = sorted({name.lower() for name in request.signed_headers})
        else:
            names = sorted(name for name in headers if name not in UNSIGNED_HEADERS)
        canonical_headers = "".join(
            f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in names
        )
        signed_headers = ";".join(names)
        canonical_request = (
            f"{request.method}\n{request.path}\n{canonical_query(request.query)}\n"
            f"{canonical_headers}\n{signed_headers}\n"
            f"{headers.get(CONTENT_SHA256_HEADER, UNSIGNED_PAYLOAD)}"
        )
        date = amz_date[:8]
        scope = f"{date}/{region}/{service}/{TERMINATOR}"
        string_to_sign = (
            f"{ALGORITHM}\n{amz_date}\n{scope}\n"
            f"{hashlib.sha256(utf8(canonical_request, 'the request')).hexdigest()}"
        )
        signature = (
            self._signing_key(credentials, date, region, service)
            .digest(string_to_sign.encode())
            .hex()
        )
        return (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )

    def _signing_key(
        self, credentials: Credentials, date: str, region: str, service: str
    ) -> PreparedHmac:
        cache_key = (credentials, date, region, service)
        prepared = self._keys.get(cache_key)
        if prepared is None:
            secret = utf8("AWS4" + credentials.secret_key, "the secret key")
            prepared = derive_v4_key(secret, date, (region, service, TERMINATOR))
            self._keys.put(cache_key, prepared)
        return prepared


def canonical_query(query: Iterable[tuple[str, str | None]]) -> str:
    """``enc(k)=enc(v)`` always with ``=``, sorted by name then value."""
    pairs = sorted((uri_encode(name), uri_encode(value) if value else "") for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)
