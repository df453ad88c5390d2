"""Server-side checking of signed requests, for ``bulkput serve``.

:func:`identify` says which algorithm a request uses; :func:`verify` parses its Authorization,
checks the access key, the clock, the STS token, and recomputes the signature with the very
signer the client side uses, over exactly the headers the client listed, comparing in
constant time. The result carries the service error code and HTTP status to answer with.
Messages never contain a secret, a token or a signature we computed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing import bce, oss_v1, oss_v4, sigv4
from bulkput.remote.signing._encoding import iso8601_basic
from bulkput.remote.signing.base import SignableRequest

MAX_SKEW = timedelta(minutes=15)

Query = str | Mapping[str, str] | Iterable[tuple[str, str | None]] | None
Lookup = Callable[[str], Credentials | None]

_STATUS = {
    "SignatureDoesNotMatch": 403,
    "InvalidAccessKeyId": 403,
    "RequestTimeTooSkewed": 403,
    "AccessDenied": 403,
    "InvalidSecurityToken": 403,
    "InvalidToken": 400,
    "RequestExpired": 400,
    "AuthorizationHeaderMalformed": 400,
}

# One instance each: region and service come from the request's credential scope, and the
# key caches are keyed by (credentials, date, region), so sharing them is safe.
_BCE = bce.BceV1Signer()
_OSS_V1 = oss_v1.OssV1Signer()
_OSS_V4 = oss_v4.OssV4Signer("")
_SIGV4 = sigv4.SigV4Signer("")


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    access_key: str | None
    code: str | None
    message: str
    status: int = 200  # HTTP status to answer with when not ok
    algorithm: str | None = None  # "bce-v1", "oss-v1", "oss-v4", "s3-v4"


def _fail(
    code: str, message: str, algorithm: str | None, access_key: str | None = None
) -> VerifyResult:
    return VerifyResult(False, access_key, code, message, _STATUS.get(code, 403), algorithm)


def identify(headers: Mapping[str, str], query: Query = None) -> str | None:
    """Which algorithm signed the request (a :data:`bulkput.remote.signing.SIGNER_NAMES` entry), or
    ``None`` when it carries no signature we know."""
    authorization = _header(headers, "authorization")
    if authorization is not None:
        return _algorithm_of(authorization)
    value = _query_value(_query_pairs(query), bce.QUERY_AUTHORIZATION)
    if value is not None and value.startswith(bce.ALGORITHM_PREFIX + "/"):
        return "bce-v1"
    return None


def verify(
    method: str,
    host: str,
    raw_path: str,
    query: Query,
    headers: Mapping[str, str],
    lookup: Lookup,
    now: datetime,
    *,
    bucket: str | None = None,
    key: str | None = None,
    region: str | None = None,
) -> VerifyResult:
    """Check one request's signature.

    ``raw_path`` is the request target as received (percent-encoded; a ``?query`` part is
    used when ``query`` is ``None``). ``query`` may also be the raw query string, or decoded
    ``(name, value)`` pairs; ``headers`` any mapping (names in any case). ``bucket``/``key``
    default to what the host and path say (virtual-hosted only for ``*.localhost``).
    ``region``, when given, must be the one in a V4 credential scope.
    """
    path, _, raw_query = raw_path.partition("?")
    pairs = _query_pairs(raw_query if query is None else query)
    lowered = {name.lower(): value for name, value in headers.items()}
    lowered.setdefault("host", host)
    authorization = lowered.get("authorization")
    from_query = False
    if authorization is None:
        authorization = _query_value(pairs, bce.QUERY_AUTHORIZATION)
        from_query = authorization is not None
    if authorization is None:
        return _fail("AccessDenied", "Anonymous access is not allowed: sign the request.", None)
    algorithm = _algorithm_of(authorization)
    if algorithm is None:
        return _fail("AccessDenied", "Unsupported Authorization type.", None)
    if algorithm in ("oss-v1", "oss-v4") and bucket is None and key is None:
        bucket, key = split_bucket_key(host, path)
    request = SignableRequest(
        method=method.upper(), host=host, path=path, query=tuple(pairs), headers=lowered,
        bucket=bucket, key=key,
    )  # fmt: skip
    now = now.astimezone(timezone.utc)
    if algorithm == "bce-v1":
        return _verify_bce(request, authorization, from_query, lookup, now)
    if algorithm == "oss-v1":
        return _verify_oss_v1(request, authorization, lookup, now)
    if algorithm == "oss-v4":
        return _verify_oss_v4(request, authorization, lookup, now, region)
    return _verify_sigv4(request, authorization, lookup, now, region)


def split_bucket_key(host: str, path: str) -> tuple[str | None, str | None]:
    """``(bucket, key)`` from a request: ``bucket.localhost[:port]`` is virtual-hosted, any
    other host path-style (``/bucket/key``). The key is percent-decoded; ``""`` for a bucket."""
    hostname = host.lower()
    if hostname.startswith("["):
        hostname = hostname[: hostname.find("]") + 1]
    else:
        hostname = hostname.partition(":")[0]
    relative = path[1:] if path.startswith("/") else path
    if hostname.endswith(".localhost"):
        return hostname[: -len(".localhost")], unquote(relative)
    bucket, _, rest = relative.partition("/")
    if not bucket:
        return None, None
    return unquote(bucket), unquote(rest)


# --- per algorithm -------------------------------------------------------------------------


def _verify_bce(
    request: SignableRequest, authorization: str, from_query: bool, lookup: Lookup, now: datetime
) -> VerifyResult:
    algorithm = "bce-v1"
    parts = authorization.split("/")
    if len(parts) != 6 or not parts[3].lstrip("-").isdigit():
        return _fail("AccessDenied", "Malformed bce-auth-v1 authorization.", algorithm)
    _, access_key, timestamp, expiration_text, signed, signature = parts
    credentials = lookup(access_key)
    if credentials is None:
        return _fail("InvalidAccessKeyId", "The access key does not exist.", algorithm, access_key)
    try:
        signed_at = _parse_iso(timestamp)
    except ValueError:
        return _fail("AccessDenied", "Malformed timestamp in authorization.", algorithm, access_key)
    expiration = int(expiration_text)
    if signed_at - now > MAX_SKEW or (not from_query and now - signed_at > MAX_SKEW):
        return _fail(
            "RequestTimeTooSkewed",
            f"The request time {timestamp} differs from the server time by more than 15 minutes.",
            algorithm,
            access_key,
        )
    if expiration >= 0 and now > signed_at + timedelta(seconds=expiration):
        # a presigned URL cannot be re-signed: refused; header auth is re-signed on retry
        code = "AccessDenied" if from_query else "RequestExpired"
        return _fail(code, f"Request has expired. Timestamp date is {timestamp}.", algorithm,
                     access_key)  # fmt: skip
    if credentials.session_token:
        presented = request.headers.get(bce.TOKEN_HEADER) or _query_value(
            request.query, bce.TOKEN_HEADER
        )
        if not _same(presented, credentials.session_token):
            return _fail("AccessDenied", "Invalid or missing x-bce-security-token.", algorithm,
                         access_key)  # fmt: skip
    names = tuple(signed.split(";")) if signed else None
    signable = _with_signed_headers(request, names)
    expected = _BCE.authorization(signable, credentials, request.headers, timestamp, expiration)
    return _compare(expected.rpartition("/")[2], signature, algorithm, access_key)


def _verify_oss_v1(
    request: SignableRequest, authorization: str, lookup: Lookup, now: datetime
) -> VerifyResult:
    algorithm = "oss-v1"
    access_key, _, signature = authorization[len("OSS ") :].strip().rpartition(":")
    if not access_key or not signature:
        return _fail("AccessDenied", "Malformed OSS authorization.", algorithm)
    credentials = lookup(access_key)
    if credentials is None:
        return _fail("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.",
                     algorithm, access_key)  # fmt: skip
    date_text = request.headers.get("x-oss-date") or request.headers.get("date")
    signed_at = _parse_http_date(date_text)
    if signed_at is None:
        return _fail("AccessDenied", "OSS authentication requires a valid Date.", algorithm,
                     access_key)  # fmt: skip
    skewed = _skew(signed_at, now, date_text or "", algorithm, access_key)
    if skewed is not None:
        return skewed
    token = _check_token(request, credentials, oss_v1.TOKEN_HEADER, "InvalidSecurityToken",
                         algorithm)  # fmt: skip
    if token is not None:
        return token
    expected = _OSS_V1.authorization(request, credentials, request.headers)
    return _compare(expected.rpartition(":")[2], signature, algorithm, access_key)


def _verify_oss_v4(
    request: SignableRequest,
    authorization: str,
    lookup: Lookup,
    now: datetime,
    region: str | None,
) -> VerifyResult:
    algorithm = "oss-v4"
    fields = _fields(authorization[len(oss_v4.ALGORITHM) :])
    scope = fields.get("Credential", "").rsplit("/", 4)
    signature = fields.get("Signature", "")
    if len(scope) != 5 or scope[3] != oss_v4.PRODUCT or scope[4] != oss_v4.TERMINATOR:
        return _fail("AccessDenied", "Malformed OSS4-HMAC-SHA256 credential.", algorithm)
    access_key, _, scope_region = scope[0], scope[1], scope[2]
    credentials = lookup(access_key)
    if credentials is None:
        return _fail("InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist.",
                     algorithm, access_key)  # fmt: skip
    if region is not None and scope_region != region:
        return _fail("AuthorizationHeaderMalformed",
                     f"The region '{scope_region}' is wrong; expecting '{region}'.",
                     algorithm, access_key)  # fmt: skip
    oss_date = request.headers.get(oss_v4.DATE_HEADER, "")
    signed_at = _parse_basic(oss_date)
    if signed_at is None:
        return _fail("AccessDenied", "OSS V4 authentication requires a valid x-oss-date.",
                     algorithm, access_key)  # fmt: skip
    skewed = _skew(signed_at, now, oss_date, algorithm, access_key)
    if skewed is not None:
        return skewed
    token = _check_token(request, credentials, oss_v4.TOKEN_HEADER, "InvalidSecurityToken",
                         algorithm)  # fmt: skip
    if token is not None:
        return token
    additional = fields.get("AdditionalHeaders")
    signable = _with_signed_headers(request, tuple(additional.split(";")) if additional else None)
    expected = _OSS_V4.authorization(
        signable, credentials, request.headers, oss_date, region=scope_region
    )
    return _compare(_fields(expected[len(oss_v4.ALGORITHM) :])["Signature"], signature,
                    algorithm, access_key)  # fmt: skip


def _verify_sigv4(
    request: SignableRequest,
    authorization: str,
    lookup: Lookup,
    now: datetime,
    region: str | None,
) -> VerifyResult:
    algorithm = "s3-v4"
    fields = _fields(authorization[len(sigv4.ALGORITHM) :])
    scope = fields.get("Credential", "").rsplit("/", 4)
    signature = fields.get("Signature", "")
    signed = fields.get("SignedHeaders", "")
    if len(scope) != 5 or scope[4] != sigv4.TERMINATOR or not signed:
        return _fail("AuthorizationHeaderMalformed", "Malformed AWS4-HMAC-SHA256 authorization.",
                     algorithm)  # fmt: skip
    access_key, _, scope_region, service = scope[0], scope[1], scope[2], scope[3]
    credentials = lookup(access_key)
    if credentials is None:
        return _fail("InvalidAccessKeyId",
                     "The AWS Access Key Id you provided does not exist in our records.",
                     algorithm, access_key)  # fmt: skip
    if region is not None and scope_region != region:
        return _fail("AuthorizationHeaderMalformed",
                     f"The authorization header is malformed; the region '{scope_region}' is "
                     f"wrong; expecting '{region}'.", algorithm, access_key)  # fmt: skip
    amz_date = request.headers.get(sigv4.DATE_HEADER)
    if amz_date is not None:
        signed_at = _parse_basic(amz_date)
    else:  # a Date header may stand in for x-amz-date
        signed_at = _parse_http_date(request.headers.get("date"))
        amz_date = iso8601_basic(signed_at) if signed_at else ""
    if signed_at is None:
        return _fail("AccessDenied",
                     "AWS authentication requires a valid Date or x-amz-date header.",
                     algorithm, access_key)  # fmt: skip
    skewed = _skew(signed_at, now, amz_date, algorithm, access_key)
    if skewed is not None:
        return skewed
    token = _check_token(request, credentials, sigv4.TOKEN_HEADER, "InvalidToken", algorithm)
    if token is not None:
        return token
    signable = _with_signed_headers(request, tuple(signed.split(";")))
    expected = _SIGV4.authorization(
        signable, credentials, request.headers, amz_date, region=scope_region, service=service
    )
    return _compare(_fields(expected[len(sigv4.ALGORITHM) :])["Signature"], signature,
                    algorithm, access_key)  # fmt: skip


# --- helpers --------------------------------------------------------------------------------


def _algorithm_of(authorization: str) -> str | None:
    if authorization.startswith(bce.ALGORITHM_PREFIX + "/"):
        return "bce-v1"
    if authorization.startswith(oss_v4.ALGORITHM + " "):
        return "oss-v4"
    if authorization.startswith("OSS "):
        return "oss-v1"
    if authorization.startswith(sigv4.ALGORITHM + " "):
        return "s3-v4"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    for key, found in headers.items():
        if key.lower() == name:
            return found
    return None


def _query_pairs(query: Query) -> list[tuple[str, str | None]]:
    if query is None:
        return []
    if isinstance(query, str):
        pairs: list[tuple[str, str | None]] = []
        for piece in query.split("&"):
            if piece:
                name, sep, value = piece.partition("=")
                pairs.append((unquote(name), unquote(value) if sep else None))
        return pairs
    if isinstance(query, Mapping):
        return list(query.items())
    return list(query)


def _query_value(pairs: Iterable[tuple[str, str | None]], name: str) -> str | None:
    for key, value in pairs:
        if key == name:
            return value or ""
    return None


def _fields(text: str) -> dict[str, str]:
    """``Credential=a, SignedHeaders=b, Signature=c`` (separators ``,`` or ``, ``)."""
    fields = {}
    for part in text.split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value
    return fields


def _with_signed_headers(
    request: SignableRequest, names: tuple[str, ...] | None
) -> SignableRequest:
    return SignableRequest(
        request.method, request.host, request.path, request.query, request.headers,
        request.bucket, request.key, request.payload_hash, names,
    )  # fmt: skip


# strptime costs ~200 µs a call, most of the store's CPU per request: parse by slicing.
def _parse_basic(text: str) -> datetime | None:
    """``YYYYMMDDTHHMMSSZ`` (V4 dates), or None."""
    if len(text) != 16 or text[8] != "T" or text[15] != "Z":
        return None
    digits = text[:8] + text[9:15]
    if not (digits.isascii() and digits.isdigit()):
        return None
    try:
        return datetime(
            int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
            int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), tzinfo=timezone.utc,
        )  # fmt: skip
    except ValueError:
        return None


def _parse_iso(text: str) -> datetime:
    """``YYYY-MM-DDTHH:MM:SSZ`` (BOS timestamps); ValueError when malformed."""
    if len(text) != 20 or text[4] != "-" or text[7] != "-" or text[10] != "T" or text[19] != "Z":
        raise ValueError(text)
    if text[13] != ":" or text[16] != ":":
        raise ValueError(text)
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError(text)
    return datetime(
        int(digits[0:4]), int(digits[4:6]), int(digits[6:8]),
        int(digits[8:10]), int(digits[10:12]), int(digits[12:14]), tzinfo=timezone.utc,
    )  # fmt: skip


def _parse_http_date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed


def _skew(
    signed_at: datetime, now: datetime, shown: str, algorithm: str, access_key: str
) -> VerifyResult | None:
    if abs(now - signed_at) > MAX_SKEW:
        return _fail(
            "RequestTimeTooSkewed",
            f"The difference between the request time {shown} and the server's time is too "
            "large (more than 15 minutes).",
            algorithm,
            access_key,
        )
    return None


def _check_token(
    request: SignableRequest,
    credentials: Credentials,
    header: str,
    code: str,
    algorithm: str,
) -> VerifyResult | None:
    if credentials.session_token and not _same(
        request.headers.get(header), credentials.session_token
    ):
        return _fail(code, f"The security token ({header}) is missing or invalid.", algorithm,
                     credentials.access_key)  # fmt: skip
    return None


def _same(presented: str | None, expected: str) -> bool:
    if presented is None:
        return False
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _compare(expected: str, presented: str, algorithm: str, access_key: str) -> VerifyResult:
    if _same(presented, expected):
        return VerifyResult(True, access_key, None, "", 200, algorithm)
    return _fail(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        algorithm,
        access_key,
    )
