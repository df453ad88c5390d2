"""verify() and identify() on requests signed by the official SDKs, and on bad ones."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.bce_client_configuration import BceClientConfiguration
from baidubce.services.bos.bos_client import BosClient

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing import BceV1Signer, OssV4Signer, SignableRequest, SigV4Signer
from bulkput.remote.signing._encoding import uri_encode
from bulkput.remote.signing.verify import VerifyResult, identify, split_bucket_key, verify
from tests.conformance import sdk_oracles as sdk

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SECRET = "server-side-secret/+="
TOKEN = "sts-token+/=123"
PLAIN = Credentials("AKPLAIN", SECRET)
STS = Credentials("AKSTS", SECRET, TOKEN)
KEY = "dir a/中 文+~%#?&=.txt"
BUCKET = "bucket"
HOST = "127.0.0.1:9000"
PATH = f"/{BUCKET}/{uri_encode(KEY, keep_slash=True)}"
QUERY: tuple[tuple[str, str | None], ...] = (("partNumber", "2"), ("uploadId", "id+/= x"))
RAW_QUERY = "&".join(f"{uri_encode(k)}={uri_encode(v or '')}" for k, v in QUERY)
MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="

ALGORITHMS = ["bce-v1", "oss-v1", "oss-v4", "s3-v4"]


def lookup_of(*known: Credentials) -> Callable[[str], Credentials | None]:
    table = {creds.access_key: creds for creds in known}
    return table.get


def sdk_signed(algorithm: str, creds: Credentials, now: datetime = NOW) -> dict[str, str]:
    """All headers the official SDK sends for a PUT of KEY (path-style, port 9000)."""
    if algorithm == "bce-v1":
        headers = {
            "host": HOST, "content-type": "text/plain", "content-md5": MD5,
            "content-length": "5", "x-bce-meta-note": "hello world",
            "x-bce-date": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }  # fmt: skip
        if creds.session_token:
            headers["x-bce-security-token"] = creds.session_token
        headers["authorization"] = sdk.bce_sign(creds, "PUT", PATH, headers, QUERY, now)
        headers["user-agent"] = "bce-sdk-python"  # not signed
        return headers
    headers = {"content-type": "text/plain", "content-md5": MD5, "content-length": "5"}
    if algorithm == "oss-v1":
        headers["x-oss-meta-note"] = "hello world"
        return {"host": HOST, **sdk.oss_v1_sign(creds, "PUT", BUCKET, KEY, headers, QUERY, now)}
    if algorithm == "oss-v4":
        headers["x-oss-meta-note"] = "hello world"
        signed = sdk.oss_v4_sign(
            creds, "PUT", BUCKET, KEY, {**headers, "host": HOST}, QUERY, now, "cn-hangzhou",
            ["content-length", "host"],
        )  # fmt: skip
        return signed
    headers["x-amz-meta-note"] = "hello world"
    signed = sdk.s3_sign(
        creds, "PUT", f"http://{HOST}{PATH}", headers, QUERY, now, "us-east-1", b"hello"
    )
    return {"host": HOST, **signed}


def check(
    headers: Mapping[str, str],
    lookup: Callable[[str], Credentials | None],
    now: datetime = NOW,
    **kwargs: str,
) -> VerifyResult:
    return verify("PUT", HOST, f"{PATH}?{RAW_QUERY}", None, headers, lookup, now, **kwargs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["plain", "sts"])
def test_sdk_signed_request_is_accepted(algorithm: str, creds: Credentials) -> None:
    headers = sdk_signed(algorithm, creds)
    assert identify(headers) == algorithm
    result = check(headers, lookup_of(creds))
    assert result == VerifyResult(True, creds.access_key, None, "", 200, algorithm)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_headers_in_any_case_and_decoded_query_are_accepted(algorithm: str) -> None:
    headers = {name.title(): value for name, value in sdk_signed(algorithm, PLAIN).items()}
    result = verify("PUT", HOST, PATH, QUERY, headers, lookup_of(PLAIN), NOW)
    assert result.ok, result


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_wrong_secret_is_refused(algorithm: str) -> None:
    # Verify the right one first, so a cache keyed by access key alone would let the wrong one in.
    assert check(sdk_signed(algorithm, PLAIN), lookup_of(PLAIN)).ok
    wrong = Credentials(PLAIN.access_key, "not-the-secret")
    result = check(sdk_signed(algorithm, wrong), lookup_of(PLAIN))
    assert (result.ok, result.code, result.status) == (False, "SignatureDoesNotMatch", 403)
    assert SECRET not in result.message


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unknown_access_key(algorithm: str) -> None:
    result = check(sdk_signed(algorithm, PLAIN), lookup_of(STS))
    assert (result.code, result.access_key) == ("InvalidAccessKeyId", PLAIN.access_key)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_tampered_signed_header_is_refused_but_unsigned_header_is_not(algorithm: str) -> None:
    headers = sdk_signed(algorithm, PLAIN)
    meta = next(name for name in headers if name.endswith("meta-note"))
    assert check({**headers, "user-agent": "changed", "x-forwarded-for": "1"}, lookup_of(PLAIN)).ok
    assert check({**headers, meta: "tampered"}, lookup_of(PLAIN)).code == "SignatureDoesNotMatch"
    moved = verify("PUT", HOST, f"{PATH}x", RAW_QUERY, headers, lookup_of(PLAIN), NOW)
    assert moved.code == "SignatureDoesNotMatch"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_clock_skew_beyond_15_minutes(algorithm: str) -> None:
    headers = sdk_signed(algorithm, PLAIN)
    assert check(headers, lookup_of(PLAIN), NOW + timedelta(minutes=14)).ok
    for offset in (timedelta(minutes=16), -timedelta(minutes=16)):
        result = check(headers, lookup_of(PLAIN), NOW + offset)
        assert (result.code, result.status) == ("RequestTimeTooSkewed", 403)


@pytest.mark.parametrize(
    ("algorithm", "code"),
    [
        ("bce-v1", "AccessDenied"),
        ("oss-v1", "InvalidSecurityToken"),
        ("oss-v4", "InvalidSecurityToken"),
        ("s3-v4", "InvalidToken"),
    ],
)
def test_missing_or_wrong_security_token(algorithm: str, code: str) -> None:
    signed_without = sdk_signed(algorithm, Credentials(STS.access_key, SECRET))
    assert check(signed_without, lookup_of(STS)).code == code
    signed_other = sdk_signed(algorithm, Credentials(STS.access_key, SECRET, "other-token"))
    result = check(signed_other, lookup_of(STS))
    assert result.code == code
    assert TOKEN not in result.message and "other-token" not in result.message


def test_region_is_checked_when_given() -> None:
    headers = sdk_signed("s3-v4", PLAIN)
    assert check(headers, lookup_of(PLAIN), region="us-east-1").ok
    assert check(headers, lookup_of(PLAIN), region="eu-west-1").code == (
        "AuthorizationHeaderMalformed"
    )
    assert check(sdk_signed("oss-v4", PLAIN), lookup_of(PLAIN), region="cn-beijing").code == (
        "AuthorizationHeaderMalformed"
    )


def test_bce_header_auth_past_its_expiration() -> None:
    signer = BceV1Signer(expiration_seconds=60)
    request = SignableRequest("PUT", HOST, PATH, QUERY, {"content-length": "5"})
    headers = {"content-length": "5", **signer.sign(request, PLAIN, NOW)}
    assert check(headers, lookup_of(PLAIN), NOW + timedelta(seconds=59)).ok
    expired = check(headers, lookup_of(PLAIN), NOW + timedelta(seconds=120))
    assert (expired.code, expired.status) == ("RequestExpired", 400)


# --- BOS query-string auth, URLs made by the SDK's own generate_pre_signed_url --------------


def bos_presigned(creds: Credentials, method: bytes, expiration: int, secret: str = SECRET) -> str:
    client = BosClient(
        BceClientConfiguration(
            credentials=BceCredentials(creds.access_key, secret),
            endpoint=HOST,
            security_token=creds.session_token,
        )
    )
    url = client.generate_pre_signed_url(
        BUCKET, KEY, timestamp=int(NOW.timestamp()), expiration_in_seconds=expiration,
        httpmethod=method,
    )  # fmt: skip
    parts = urlsplit(url.decode())
    return f"{parts.path}?{parts.query}"


@pytest.mark.parametrize("creds", [PLAIN, STS], ids=["plain", "sts"])
@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_bos_presigned_url_from_sdk(creds: Credentials, method: str) -> None:
    target = bos_presigned(creds, method.encode(), 600)
    headers = {"host": HOST, "user-agent": "curl"}
    if method == "PUT":  # the SDK signs only host for PUT URLs, so the body's length is free
        headers["content-length"] = "5"
    assert identify(headers, target.partition("?")[2]) == "bce-v1"
    ok = verify(method, HOST, target, None, headers, lookup_of(creds), NOW + timedelta(hours=-1))
    assert ok.ok is False and ok.code == "RequestTimeTooSkewed"  # signed in the future
    result = verify(
        method, HOST, target, None, headers, lookup_of(creds), NOW + timedelta(seconds=599)
    )
    assert result.ok, result
    expired = verify(
        method, HOST, target, None, headers, lookup_of(creds), NOW + timedelta(seconds=601)
    )
    assert (expired.code, expired.status) == ("AccessDenied", 403)


def test_bos_presigned_url_with_wrong_secret() -> None:
    target = bos_presigned(PLAIN, b"PUT", 600, secret="wrong")
    result = verify("PUT", HOST, target, None, {"host": HOST}, lookup_of(PLAIN), NOW)
    assert result.code == "SignatureDoesNotMatch"


# --- the rest ---------------------------------------------------------------------------------


def test_unsigned_and_unknown_requests() -> None:
    assert identify({"host": HOST}) is None
    assert identify({"Authorization": "Bearer x"}) is None
    anonymous = verify("GET", HOST, "/b/k", None, {"host": HOST}, lookup_of(PLAIN), NOW)
    assert (anonymous.code, anonymous.status) == ("AccessDenied", 403)
    bearer = verify("GET", HOST, "/b/k", None, {"authorization": "Bearer x"}, lookup_of(PLAIN), NOW)
    assert bearer.code == "AccessDenied"


@pytest.mark.parametrize(
    "authorization",
    [
        "bce-auth-v1/AKPLAIN/2024-01-02T03:04:05Z",
        "bce-auth-v1/AKPLAIN/not-a-time/1800//abc",
        "OSS AKPLAIN",
        "OSS4-HMAC-SHA256 Signature=abc",
        "AWS4-HMAC-SHA256 Credential=AKPLAIN/20240102/us-east-1/s3/aws4_request, Signature=x",
    ],
)
def test_malformed_authorization_is_refused(authorization: str) -> None:
    result = verify(
        "GET", HOST, "/b/k", None, {"authorization": authorization}, lookup_of(PLAIN), NOW
    )
    assert not result.ok and result.code in ("AccessDenied", "AuthorizationHeaderMalformed")


def test_virtual_hosted_oss_and_s3_requests() -> None:
    host = f"{BUCKET}.localhost:9000"
    path = "/" + uri_encode(KEY, keep_slash=True)
    oss = OssV4Signer("cn-hangzhou").sign(
        SignableRequest("PUT", host, path, bucket=BUCKET, key=KEY), STS, NOW
    )
    assert verify("PUT", host, path, None, oss, lookup_of(STS), NOW).ok
    body_hash = hashlib.sha256(b"x").hexdigest()
    s3 = SigV4Signer("us-east-1").sign(
        SignableRequest("PUT", host, path, payload_hash=body_hash), STS, NOW
    )
    assert verify("PUT", host, path, None, {"host": host, **s3}, lookup_of(STS), NOW).ok


@pytest.mark.parametrize(
    ("host", "path", "expected"),
    [
        ("127.0.0.1:9000", "/bucket/a%20b/c", ("bucket", "a b/c")),
        ("localhost", "/bucket", ("bucket", "")),
        ("127.0.0.1", "/", (None, None)),
        ("bucket.localhost:9000", "/a%2Bb", ("bucket", "a+b")),
        ("bucket.localhost", "/", ("bucket", "")),
        ("[::1]:9000", "/b//k", ("b", "/k")),
    ],
)
def test_split_bucket_key(host: str, path: str, expected: tuple[str | None, str | None]) -> None:
    assert split_bucket_key(host, path) == expected


def test_oss_v4_authorization_in_the_v2_sdk_layout_is_accepted() -> None:
    """alibabacloud-oss-v2 joins with ',' and puts AdditionalHeaders before Signature."""
    headers = sdk_signed("oss-v4", PLAIN)
    credential, signature, additional = headers["authorization"].split(", ")
    headers["authorization"] = f"{credential},{additional},{signature}"
    assert check(headers, lookup_of(PLAIN)).ok


def test_aiohttp_style_multidict_headers() -> None:
    from multidict import CIMultiDict

    headers = CIMultiDict((name.title(), value) for name, value in sdk_signed("s3-v4", STS).items())
    assert identify(headers) == "s3-v4"
    assert check(headers, lookup_of(STS)).ok
