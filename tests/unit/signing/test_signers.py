"""Signer behaviour beyond byte-compatibility (which tests/conformance proves)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing import (
    SIGNER_NAMES,
    BceV1Signer,
    OssV1Signer,
    OssV4Signer,
    SignableRequest,
    SigV4Signer,
    signer_for,
)

NOW = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
SECRET = "very-secret-key-do-not-print"
TOKEN = "session-token-do-not-print"
CREDS = Credentials("AKID", SECRET, TOKEN)
REQUEST = SignableRequest(
    "PUT", "bucket.example.com", "/a%20b", headers={"content-length": "3"}, bucket="bucket",
    key="a b",
)  # fmt: skip
SIGNERS = [BceV1Signer(), OssV1Signer(), OssV4Signer("cn-hangzhou"), SigV4Signer("us-east-1")]


@pytest.mark.parametrize("signer", SIGNERS, ids=lambda s: s.name)
def test_secret_is_never_in_repr_or_result_names(signer: object) -> None:
    headers = signer.sign(REQUEST, CREDS, NOW)  # type: ignore[attr-defined]
    assert SECRET not in repr(signer)
    assert SECRET not in repr(headers)
    assert SECRET not in repr(signer.__dict__)  # the key caches print only their size
    assert all(name == name.lower() for name in headers)


@pytest.mark.parametrize("signer", SIGNERS, ids=lambda s: s.name)
def test_same_access_key_with_another_secret_gets_another_signature(signer: object) -> None:
    """The derived-key cache is keyed by the whole credentials, not the access key."""
    right = signer.sign(REQUEST, Credentials("AKID", "right"), NOW)  # type: ignore[attr-defined]
    wrong = signer.sign(REQUEST, Credentials("AKID", "wrong"), NOW)  # type: ignore[attr-defined]
    again = signer.sign(REQUEST, Credentials("AKID", "right"), NOW)  # type: ignore[attr-defined]
    assert right["authorization"] != wrong["authorization"]
    assert right == again


@pytest.mark.parametrize(
    "signer",
    [BceV1Signer(), OssV1Signer(), OssV4Signer("r"), SigV4Signer("r")],
    ids=lambda s: s.name,
)
def test_signing_key_cache_stays_small(
    signer: BceV1Signer | OssV1Signer | OssV4Signer | SigV4Signer,
) -> None:
    for number in range(200):  # 200 distinct credentials, 200 distinct seconds
        creds = Credentials(f"AK{number}", f"secret{number}")
        signer.sign(REQUEST, creds, NOW.replace(second=number % 60, minute=number // 60))
    assert 0 < len(signer._keys) <= 64


def test_tokens_are_sent_in_each_dialect() -> None:
    assert BceV1Signer().sign(REQUEST, CREDS, NOW)["x-bce-security-token"] == TOKEN
    assert OssV1Signer().sign(REQUEST, CREDS, NOW)["x-oss-security-token"] == TOKEN
    assert OssV4Signer("r").sign(REQUEST, CREDS, NOW)["x-oss-security-token"] == TOKEN
    assert SigV4Signer("r").sign(REQUEST, CREDS, NOW)["x-amz-security-token"] == TOKEN


def test_sigv4_payload_hash_or_unsigned() -> None:
    digest = "a" * 64
    signed = SigV4Signer("r").sign(
        SignableRequest("PUT", "h", "/k", payload_hash=digest), CREDS, NOW
    )
    unsigned = SigV4Signer("r").sign(SignableRequest("PUT", "h", "/k"), CREDS, NOW)
    assert signed["x-amz-content-sha256"] == digest
    assert unsigned["x-amz-content-sha256"] == "UNSIGNED-PAYLOAD"


def test_bce_presign_needs_the_token_in_the_request() -> None:
    with pytest.raises(ValueError, match="x-bce-security-token") as error:
        BceV1Signer().presign(REQUEST, CREDS, NOW, 600)
    assert TOKEN not in str(error.value) and SECRET not in str(error.value)
    with_token = SignableRequest("GET", "h", "/b/k", query=(("x-bce-security-token", TOKEN),))
    value = BceV1Signer().presign(with_token, CREDS, NOW, 600)
    assert value.startswith("bce-auth-v1/AKID/2024-01-02T03:04:05Z/600//")


def test_bce_explicit_signed_headers_are_listed() -> None:
    request = SignableRequest("PUT", "h", "/k", signed_headers=("host", "x-bce-date"))
    value = BceV1Signer().sign(request, Credentials("AKID", "sk"), NOW)["authorization"]
    assert value.split("/")[4] == "host;x-bce-date"


def test_signer_for() -> None:
    for name in SIGNER_NAMES:
        assert signer_for(name, "cn-hangzhou").name == name
    assert signer_for("s3-v4", "eu-west-1").region == "eu-west-1"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown signing algorithm"):
        signer_for("v2", "r")


@pytest.mark.parametrize("signer", SIGNERS, ids=lambda s: s.name)
def test_unencodable_secret_or_token_does_not_leak_through_the_error(signer: object) -> None:
    for creds in (
        Credentials("AKID", SECRET + "\udc80"),
        Credentials("AKID", "sk", TOKEN + "\udc80"),
    ):
        with pytest.raises(ValueError) as error:
            signer.sign(REQUEST, creds, NOW)  # type: ignore[attr-defined]
        shown = repr(error.value) + str(error.value) + repr(error.value.args)
        assert SECRET not in shown and TOKEN not in shown
