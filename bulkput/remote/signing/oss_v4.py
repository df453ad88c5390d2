"""Aliyun OSS signature V4: ``OSS4-HMAC-SHA256``.

Canonical request: ``VERB\\nenc/(/bucket/key)\\nQUERY\\nHEADERS\\nADDITIONAL\\nHASH`` where the
URI always includes the bucket; HEADERS are ``x-oss-*``, ``content-type``, ``content-md5`` and
the additional headers, lower-case, sorted, ``name:value\\n``, values as sent. The signing key
``HMAC(HMAC(HMAC(HMAC("aliyun_v4"+sk, yyyymmdd), region), "oss"), "aliyun_v4_request")`` is cached
per (credentials, date, region).

``request.signed_headers`` names the *additional* headers (``AdditionalHeaders=``); the
``x-oss-*``, ``content-type`` and ``content-md5`` headers are always signed.
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

ALGORITHM = "OSS4-HMAC-SHA256"
PRODUCT = "oss"
TERMINATOR = "aliyun_v4_request"
DATE_HEADER = "x-oss-date"
CONTENT_SHA256_HEADER = "x-oss-content-sha256"
TOKEN_HEADER = "x-oss-security-token"
_ALWAYS_SIGNED = frozenset({"content-type", "content-md5"})


def additional_header_names(names: Iterable[str] | None) -> list[str]:
    """The additional headers as they appear in the Authorization: lower-case, sorted, without
    the ones V4 signs anyway."""
    if not names:
        return []
    lowered = {name.lower() for name in names}
    return sorted(n for n in lowered if not (n.startswith("x-oss-") or n in _ALWAYS_SIGNED))


class OssV4Signer:
    """OSS V4. ``sign`` adds ``x-oss-date``, ``x-oss-content-sha256`` (and the STS token)."""

    name = "oss-v4"

    def __init__(self, region: str) -> None:
        self.region = region
        self._keys: SmallCache[tuple[Credentials, str, str], PreparedHmac] = SmallCache()

    def __repr__(self) -> str:
        return f"OssV4Signer(region={self.region!r})"

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
        if "host" not in headers:  # signed only when named in AdditionalHeaders
            headers["host"] = request.host
        added["authorization"] = self.authorization(request, credentials, headers, amz_date)
        return added

    def authorization(
        self,
        request: SignableRequest,
        credentials: Credentials,
        headers: Mapping[str, str],
        oss_date: str,
        region: str | None = None,
    ) -> str:
        """Authorization over ``headers`` exactly as sent (lower-case names, with x-oss-date)."""
        region = region or self.region
        additional = additional_header_names(request.signed_headers)
        date = oss_date[:8]
        scope = f"{date}/{region}/{PRODUCT}/{TERMINATOR}"
        canonical_request = self.canonical_request(request, headers, additional)
        string_to_sign = (
            f"{ALGORITHM}\n{oss_date}\n{scope}\n"
            f"{hashlib.sha256(utf8(canonical_request, 'the request')).hexdigest()}"
        )
        signature = (
            self._signing_key(credentials, date, region).digest(string_to_sign.encode()).hex()
        )
        authorization = (
            f"{ALGORITHM} Credential={credentials.access_key}/{scope}, Signature={signature}"
        )
        if additional:
            authorization += f", AdditionalHeaders={';'.join(additional)}"
        return authorization

    @staticmethod
    def canonical_request(
        request: SignableRequest, headers: Mapping[str, str], additional: list[str]
    ) -> str:
        if request.bucket:
            uri = uri_encode(f"/{request.bucket}/{request.key or ''}", keep_slash=True)
        else:
            uri = "/"
        extra = frozenset(additional)
        signed = sorted(
            (name, value)
            for name, value in headers.items()
            if name.startswith("x-oss-") or name in _ALWAYS_SIGNED or name in extra
        )
        canonical_headers = "".join(f"{name}:{value}\n" for name, value in signed)
        payload_hash = headers.get(CONTENT_SHA256_HEADER, UNSIGNED_PAYLOAD)
        return (
            f"{request.method}\n{uri}\n{canonical_query(request.query)}\n"
            f"{canonical_headers}\n{';'.join(additional)}\n{payload_hash}"
        )

    def _signing_key(self, credentials: Credentials, date: str, region: str) -> PreparedHmac:
        cache_key = (credentials, date, region)
        prepared = self._keys.get(cache_key)
        if prepared is None:
            secret = utf8("aliyun_v4" + credentials.secret_key, "the secret key")
            prepared = derive_v4_key(secret, date, (region, PRODUCT, TERMINATOR))
            self._keys.put(cache_key, prepared)
        return prepared


def canonical_query(query: Iterable[tuple[str, str | None]]) -> str:
    """``enc(k)=enc(v)`` or ``enc(k)`` when the value is empty, sorted by name (one per name)."""
    encoded: dict[str, str] = {}
    for name, value in query:
        encoded[uri_encode(name)] = uri_encode(value) if value else ""
    return "&".join(f"{name}={value}" if value else name for name, value in sorted(encoded.items()))
