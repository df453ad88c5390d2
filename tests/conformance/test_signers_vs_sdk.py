"""Our Authorization values, byte for byte against the official SDKs' signers.

Each generated request the SDK signed is also handed to our server-side ``verify``, which
must accept it.

Oracles (tests/conformance/sdk_oracles.py): ``baidubce.auth.bce_v1_signer.sign``, oss2
``Auth``/``StsAuth`` (V1) and ``ProviderAuthV4`` (V4), botocore ``S3SigV4Auth``. Fixed vectors
first, then hypothesis-generated requests: awkward keys (reserved characters, NFC and NFD,
emoji, leading and repeated slashes), multipart query parameters with reserved characters,
user metadata, Content-MD5/Type, STS tokens, virtual-hosted and path-style addressing and
non-default ports.
"""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone

from baidubce.utils import normalize_string
from botocore.compat import quote as botocore_quote
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing import (
    BceV1Signer,
    OssV1Signer,
    OssV4Signer,
    SignableRequest,
    SigV4Signer,
)
from bulkput.remote.signing._encoding import uri_encode
from bulkput.remote.signing.verify import verify
from tests.conformance import sdk_oracles as sdk

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
PLAIN = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
STS = Credentials(
    "STS.NUgYrLnoC37mZZCNnAbez2", "3dZn/9Nk+2yt5o=Hr", "CAIS+token/with==base64+chars"
)
MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="
HYPOTHESIS = settings(
    max_examples=500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- generated requests ---------------------------------------------------------------------

# Characters chosen for the rules they exercise. Strategies draw whole strings and bit masks
# (few draws per example) so that 2,000 examples run in seconds on a busy machine.
KEY_ALPHABET = (
    "ab/ +~%=&#?*'()!$,;:@[].-_\t\\\"<>^`{|}"
    "\u00e9\u0301\u00c5\u212b\u4e2d\u6587\U0001f600\u200d\U0001f469\x7f\u00a0"
)
VALUE_ALPHABET = "va /+=&%~:,;-\t\u00a0\u00e9\u4e2d\U0001f600"

plain_keys = st.text(alphabet=KEY_ALPHABET, min_size=1, max_size=14)
keys = st.one_of(
    plain_keys,
    plain_keys.map(lambda key: unicodedata.normalize("NFD", key)),
    plain_keys.map(lambda key: unicodedata.normalize("NFC", key)),
    st.tuples(st.sampled_from(["/", "//", "a//", "%2F/"]), plain_keys).map("".join),
    st.text(min_size=1, max_size=8),  # anything at all
)
values = st.text(alphabet=VALUE_ALPHABET, max_size=10)
TOKENS = [None, None, "CAIS+token/with==base64", "FwoGZXIvYXdzEBYaD" * 20, "ZjkyZmQ2YmQx+/="]
SECRETS = [
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "s", "with space inside", "ünïcödé-sécret",
    "==+/==", "😀key", "a" * 100,
]  # fmt: skip
ACCESS_KEYS = ["AKIDEXAMPLE", "STS.NUgYrLnoC37mZZCNnAbez2", "8702e0c7f08211ec8168058160a92b86"]
credentials = st.builds(
    Credentials,
    access_key=st.sampled_from(ACCESS_KEYS),
    secret_key=st.sampled_from(SECRETS),
    session_token=st.sampled_from(TOKENS),
)
# Any second from 2000 to 2099, with microseconds (signers must truncate them).
times = st.builds(
    lambda seconds, micros: datetime.fromtimestamp(seconds + micros / 1e6, timezone.utc),
    st.integers(946684800, 4102444799),
    st.sampled_from([0, 1, 500000, 999999]),
)
bucket_names = st.sampled_from(["bucket", "my-bucket-01", "b12", "logs-2024-archive"])
methods = st.sampled_from(["PUT", "GET", "HEAD", "POST", "DELETE"])


def _query(
    mask: int, part_number: int, upload_id: str, prefix: str, free: tuple[str, str | None]
) -> tuple[tuple[str, str | None], ...]:
    """Multipart sub-resources, listing parameters, an OSS sub-resource and a free pair."""
    candidates: list[tuple[str, str | None]] = [
        ("uploads", None),
        ("partNumber", str(part_number)),
        ("uploadId", upload_id),
        ("prefix", prefix),
        ("delimiter", "/"),
        ("acl", None),
        ("response-content-type", "text/plain; charset=utf-8"),
        ("max-keys", ""),
        free,
    ]
    chosen = [pair for bit, pair in enumerate(candidates) if mask >> bit & 1]
    return tuple(dict(chosen).items())  # one value per name


queries = st.builds(
    _query,
    st.integers(0, 2**9 - 1),
    st.integers(1, 10000),
    plain_keys,
    values,
    st.tuples(keys, st.none() | values),
)


@dataclass(frozen=True)
class Addressing:
    scheme: str
    hostname: str  # without port
    port: int | None  # as written in the URL; may be the default one
    virtual: bool
    bucket: str
    key: str

    @property
    def host(self) -> str:
        """The Host header: the port only when it is not the scheme's default."""
        default = 443 if self.scheme == "https" else 80
        return self.hostname if self.port in (None, default) else f"{self.hostname}:{self.port}"

    @property
    def path(self) -> str:
        encoded = uri_encode(self.key, keep_slash=True)
        return f"/{encoded}" if self.virtual else f"/{self.bucket}/{encoded}"

    @property
    def url(self) -> str:
        netloc = self.hostname if self.port is None else f"{self.hostname}:{self.port}"
        return f"{self.scheme}://{netloc}{self.path}"


@st.composite
def addressings(draw: st.DrawFn, domain: str) -> Addressing:
    bucket = draw(bucket_names)
    virtual = draw(st.booleans())
    return Addressing(
        scheme=draw(st.sampled_from(["http", "https"])),
        hostname=f"{bucket}.{domain}" if virtual else draw(st.sampled_from([domain, "127.0.0.1"])),
        port=draw(st.sampled_from([None, 80, 443, 9000, 8443])),
        virtual=virtual,
        bucket=bucket,
        key=draw(keys),
    )


def content_headers(prefix: str) -> st.SearchStrategy[dict[str, str]]:
    """Content-MD5/Type/Length and user metadata in one dialect's header names."""

    def build(mask: int, length: int, author: str, note: str) -> dict[str, str]:
        candidates = {
            "content-md5": MD5,
            "content-type": "text/html; charset=utf-8" if mask & 1024 else "text/plain",
            "content-length": str(length),
            f"{prefix}meta-author": author,
            f"{prefix}meta-mtime": "1704164645",
            f"{prefix}meta-note-2": note,
            f"{prefix}storage-class": "IA",
            "cache-control": "max-age=60",
            "content-disposition": 'attachment; filename="a b.txt"',
        }
        return {
            name: value for bit, (name, value) in enumerate(candidates.items()) if mask >> bit & 1
        }

    return st.builds(build, st.integers(0, 2**11 - 1), st.integers(0, 10**12), values, values)


def _sdk_view(headers: dict[str, str], added: dict[str, str]) -> dict[str, str]:
    return {**headers, **{k: v for k, v in added.items() if k != "authorization"}}


def _raw_target(path: str, query: tuple[tuple[str, str | None], ...]) -> str:
    raw_query = "&".join(
        uri_encode(name) if value is None else f"{uri_encode(name)}={uri_encode(value)}"
        for name, value in query
    )
    return f"{path}?{raw_query}" if raw_query else path


def _assert_server_accepts(
    method: str,
    where: Addressing,
    query: tuple[tuple[str, str | None], ...],
    sent_headers: dict[str, str],
    creds: Credentials,
    now: datetime,
    bucket: str | None = None,
) -> None:
    """What the SDK sent passes our server-side verify (the same code, the other way round)."""
    result = verify(
        method, where.host, _raw_target(where.path, query), None, sent_headers,
        {creds.access_key: creds}.get, now, bucket=bucket, key=where.key,
    )  # fmt: skip
    assert result.ok, result


# --- the encoder against the three SDKs' encoders --------------------------------------------


@HYPOTHESIS
@given(text=keys)
def test_uri_encode_matches_every_sdk_encoder(text: str) -> None:
    assert uri_encode(text) == normalize_string(text.encode()).decode()
    assert uri_encode(text, keep_slash=True) == normalize_string(text.encode(), False).decode()
    assert uri_encode(text) == botocore_quote(text, safe="-_.~")
    assert uri_encode(text, keep_slash=True) == botocore_quote(text, safe="/-_.~")


# --- BOS bce-auth-v1 -------------------------------------------------------------------------


def test_bce_fixed_vector_matches_sdk() -> None:
    request = SignableRequest(
        "PUT",
        "bucket.bj.bcebos.com",
        "/dir%20a/%E4%B8%AD%2B~.txt",
        (("partNumber", "3"), ("uploadId", "a/b c"), ("uploads", None)),
        {"content-type": "text/plain", "content-md5": MD5, "content-length": "12",
         "x-bce-meta-a": " two  spaces ", "user-agent": "not signed"},
    )  # fmt: skip
    for creds in (PLAIN, STS):
        ours = BceV1Signer().sign(request, creds, NOW)
        headers = _sdk_view({**request.headers, "host": request.host}, ours)
        assert ours["authorization"] == sdk.bce_sign(
            creds, "PUT", request.path, headers, request.query, NOW
        )
    assert ours["x-bce-date"] == "2024-01-02T03:04:05Z"
    assert ours["x-bce-security-token"] == STS.session_token


@HYPOTHESIS
@given(
    creds=credentials,
    method=methods,
    where=addressings("bj.bcebos.com"),
    query=queries,
    headers=content_headers("x-bce-"),
    now=times,
    expiration=st.sampled_from([1800, 60, 3600, -1]),
    extra_signed=st.lists(st.sampled_from(["host", "content-type", "content-md5"]), unique=True),
    presigned=st.booleans(),
)
def test_bce_matches_sdk(
    creds: Credentials,
    method: str,
    where: Addressing,
    query: tuple[tuple[str, str | None], ...],
    headers: dict[str, str],
    now: datetime,
    expiration: int,
    extra_signed: list[str],
    presigned: bool,
) -> None:
    # An explicit list must name every x-bce-* header sent: the SDK signs those regardless.
    signed: list[str] | None = None
    if extra_signed:
        bce_names = [name for name in headers if name.startswith("x-bce-")]
        if not presigned:
            bce_names.append("x-bce-date")
            if creds.session_token:
                bce_names.append("x-bce-security-token")
        signed = extra_signed + bce_names
    if presigned and creds.session_token:
        query = (*query, ("x-bce-security-token", creds.session_token))
    request = SignableRequest(
        method, where.host, where.path, query, headers,
        signed_headers=tuple(signed) if signed else None,
    )  # fmt: skip
    signer = BceV1Signer(expiration_seconds=expiration)
    if presigned:
        ours = signer.presign(request, creds, now, expiration)
        sdk_headers = {**headers, "host": where.host}
    else:
        added = signer.sign(request, creds, now)
        ours = added["authorization"]
        sdk_headers = _sdk_view({**headers, "host": where.host}, added)
    expected = sdk.bce_sign(creds, method, where.path, sdk_headers, query, now, expiration, signed)
    assert ours == expected
    if presigned:
        _assert_server_accepts(method, where, (*query, ("authorization", expected)), sdk_headers,
                               creds, now)  # fmt: skip
    else:
        _assert_server_accepts(
            method, where, query, {**sdk_headers, "authorization": expected}, creds, now
        )


# --- OSS V1 ----------------------------------------------------------------------------------


def test_oss_v1_fixed_vector_matches_sdk() -> None:
    request = SignableRequest(
        "PUT",
        "bucket.oss-cn-hangzhou.aliyuncs.com",
        "/a%20b/%E4%B8%AD.txt",
        (("uploadId", "0004B9894A22E5B1888A1E29F823****"), ("partNumber", "1"), ("x", "y")),
        {"content-type": "text/plain", "content-md5": MD5, "x-oss-meta-author": "alice",
         "x-oss-storage-class": "IA"},
        bucket="bucket",
        key="a b/中.txt",
    )  # fmt: skip
    for creds in (PLAIN, STS):
        ours = OssV1Signer().sign(request, creds, NOW)
        theirs = sdk.oss_v1_sign(
            creds, "PUT", "bucket", request.key, request.headers, request.query, NOW
        )
        assert ours == {name: theirs[name] for name in ours}
    assert ours["date"] == "Tue, 02 Jan 2024 03:04:05 GMT"


@HYPOTHESIS
@given(
    creds=credentials,
    method=methods,
    where=addressings("oss-cn-hangzhou.aliyuncs.com"),
    query=queries,
    headers=content_headers("x-oss-"),
    now=times,
    service_level=st.booleans(),
)
def test_oss_v1_matches_sdk(
    creds: Credentials,
    method: str,
    where: Addressing,
    query: tuple[tuple[str, str | None], ...],
    headers: dict[str, str],
    now: datetime,
    service_level: bool,
) -> None:
    bucket = None if service_level else where.bucket
    request = SignableRequest(
        method, where.host, where.path, query, headers, bucket=bucket, key=where.key
    )
    ours = OssV1Signer().sign(request, creds, now)
    theirs = sdk.oss_v1_sign(creds, method, bucket, where.key, headers, query, now)
    assert ours == {name: theirs[name] for name in ours}
    _assert_server_accepts(method, where, query, theirs, creds, now, bucket)


# --- OSS V4 ----------------------------------------------------------------------------------


def test_oss_v4_fixed_vector_matches_sdk() -> None:
    request = SignableRequest(
        "PUT",
        "bucket.oss-cn-hangzhou.aliyuncs.com",
        "/a%20b/%E4%B8%AD.txt",
        (("uploads", None), ("prefix", "a/b c+")),
        {"content-type": "text/plain", "content-md5": MD5, "x-oss-meta-author": " alice ",
         "range": "bytes=0-9"},
        bucket="bucket",
        key="a b/中.txt",
        signed_headers=("host", "range"),
    )  # fmt: skip
    for creds in (PLAIN, STS):
        ours = OssV4Signer("cn-hangzhou").sign(request, creds, NOW)
        theirs = sdk.oss_v4_sign(
            creds, "PUT", "bucket", request.key, {**request.headers, "host": request.host},
            request.query, NOW, "cn-hangzhou", ["host", "range"],
        )  # fmt: skip
        assert ours == {name: theirs[name] for name in ours}
    assert ours["authorization"].endswith(", AdditionalHeaders=host;range")
    assert ours["x-oss-content-sha256"] == "UNSIGNED-PAYLOAD"


@HYPOTHESIS
@given(
    creds=credentials,
    method=methods,
    where=addressings("oss-cn-hangzhou.aliyuncs.com"),
    query=queries,
    headers=content_headers("x-oss-"),
    now=times,
    region=st.sampled_from(["cn-hangzhou", "cn-beijing", "ap-southeast-1", "us-west-1"]),
    additional=st.lists(
        st.sampled_from(["cache-control", "content-disposition", "content-length", "host"]),
        unique=True,
    ).map(sorted),
    service_level=st.booleans(),
)
def test_oss_v4_matches_sdk(
    creds: Credentials,
    method: str,
    where: Addressing,
    query: tuple[tuple[str, str | None], ...],
    headers: dict[str, str],
    now: datetime,
    region: str,
    additional: list[str],
    service_level: bool,
) -> None:
    bucket = None if service_level else where.bucket
    request = SignableRequest(
        method, where.host, where.path, query, headers, bucket=bucket, key=where.key,
        signed_headers=tuple(additional) or None,
    )  # fmt: skip
    ours = OssV4Signer(region).sign(request, creds, now)
    theirs = sdk.oss_v4_sign(
        creds, method, bucket, where.key, {**headers, "host": where.host}, query, now, region,
        additional or None,
    )  # fmt: skip
    assert ours == {name: theirs[name] for name in ours}
    _assert_server_accepts(method, where, query, theirs, creds, now, bucket)


# --- S3 SigV4 --------------------------------------------------------------------------------


def test_sigv4_aws_documented_example() -> None:
    """The GET Object example of the AWS SigV4 documentation (header-based auth)."""
    request = SignableRequest(
        "GET",
        "examplebucket.s3.amazonaws.com",
        "/test.txt",
        headers={"range": "bytes=0-9"},
        payload_hash=hashlib.sha256(b"").hexdigest(),
    )
    creds = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    ours = SigV4Signer("us-east-1").sign(request, creds, datetime(2013, 5, 24, tzinfo=timezone.utc))
    assert ours["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )


def test_sigv4_fixed_vector_matches_sdk() -> None:
    headers = {"content-type": "text/plain", "content-md5": MD5, "x-amz-meta-a": " v  x "}
    for creds in (PLAIN, STS):
        for body in (None, b"hello"):
            request = SignableRequest(
                "PUT", "bucket.s3.example.com:9000", "/a%20b/%E4%B8%AD.txt",
                (("partNumber", "2"), ("uploadId", "x/y+z=")), headers,
                payload_hash=hashlib.sha256(body).hexdigest() if body else None,
            )  # fmt: skip
            ours = SigV4Signer("eu-west-1").sign(request, creds, NOW)
            theirs = sdk.s3_sign(
                creds, "PUT", "http://bucket.s3.example.com:9000/a%20b/%E4%B8%AD.txt",
                headers, request.query, NOW, "eu-west-1", body,
            )  # fmt: skip
            assert ours == {name: theirs[name] for name in ours}


@HYPOTHESIS
@given(
    creds=credentials,
    method=methods,
    where=addressings("s3.us-west-2.amazonaws.com"),
    query=queries,
    headers=content_headers("x-amz-"),
    now=times,
    region=st.sampled_from(["us-east-1", "us-west-2", "eu-central-1", "auto"]),
    body=st.none() | st.binary(max_size=64),
)
def test_sigv4_matches_sdk(
    creds: Credentials,
    method: str,
    where: Addressing,
    query: tuple[tuple[str, str | None], ...],
    headers: dict[str, str],
    now: datetime,
    region: str,
    body: bytes | None,
) -> None:
    request = SignableRequest(
        method, where.host, where.path, query, headers,
        payload_hash=None if body is None else hashlib.sha256(body).hexdigest(),
    )  # fmt: skip
    ours = SigV4Signer(region).sign(request, creds, now)
    theirs = sdk.s3_sign(creds, method, where.url, headers, query, now, region, body)
    assert ours == {name: theirs[name] for name in ours}
    _assert_server_accepts(method, where, query, theirs, creds, now)
