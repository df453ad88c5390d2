"""The official SDKs' signers, driven with a frozen clock, as test oracles.

Each function takes plain strings (lower-case header names, decoded query pairs) and returns the
Authorization value the SDK computes, or (for the request-building oracles) the headers the SDK
sent. ``None`` query values mean a valueless sub-resource (``?uploads``).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from email.utils import formatdate
from types import SimpleNamespace
from typing import Any
from unittest import mock

import oss2
import oss2.auth
from baidubce.auth import bce_v1_signer
from baidubce.auth.bce_credentials import BceCredentials
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from oss2.credentials import StaticCredentialsProvider

from bulkput.remote.credentials import Credentials


def _naive_utc(now: datetime) -> datetime:
    return now.astimezone(timezone.utc).replace(tzinfo=None)


def bce_sign(
    credentials: Credentials,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str | None]],
    now: datetime,
    expiration_seconds: int = 1800,
    headers_to_sign: Iterable[str] | None = None,
) -> str:
    """``baidubce.auth.bce_v1_signer.sign`` over exactly these headers (host included)."""
    sdk_credentials = BceCredentials(credentials.access_key, credentials.secret_key)
    params = {name.encode(): None if value is None else value.encode() for name, value in query}
    to_sign = [name.encode() for name in headers_to_sign] if headers_to_sign else None
    result = bce_v1_signer.sign(
        sdk_credentials,
        method.encode(),
        path.encode(),
        {name.encode(): value.encode() for name, value in headers.items()},
        params,
        calendar.timegm(now.astimezone(timezone.utc).timetuple()),
        expiration_seconds,
        to_sign,
    )
    return result.decode()


def _oss_auth(credentials: Credentials, version: str) -> Any:
    if version == "v4":  # StsAuth hides the additional-headers argument of V4
        return oss2.ProviderAuthV4(
            StaticCredentialsProvider(
                credentials.access_key, credentials.secret_key, credentials.session_token
            )
        )
    if credentials.session_token:
        return oss2.StsAuth(
            credentials.access_key, credentials.secret_key, credentials.session_token, version
        )
    return oss2.Auth(credentials.access_key, credentials.secret_key)


def _oss_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str | None]],
    region: str | None = None,
) -> oss2.http.Request:
    params = {name: "" if value is None else value for name, value in query}
    return oss2.http.Request(
        method, url, params=params, headers=dict(headers), region=region, product="oss"
    )


def oss_v1_sign(
    credentials: Credentials,
    method: str,
    bucket: str | None,
    key: str | None,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str | None]],
    now: datetime,
) -> dict[str, str]:
    """oss2 ``Auth``/``StsAuth`` V1 ``_sign_request``; returns the signed request's headers."""
    request = _oss_request(method, "http://oss.example.com/", headers, query)
    with mock.patch("oss2.utils.http_date", return_value=_http_date(now)):
        _oss_auth(credentials, "v1")._sign_request(request, bucket, key or "")
    return {name.lower(): value for name, value in request.headers.items() if value is not None}


def oss_v4_sign(
    credentials: Credentials,
    method: str,
    bucket: str | None,
    key: str | None,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str | None]],
    now: datetime,
    region: str,
    additional_headers: list[str] | None = None,
) -> dict[str, str]:
    """oss2 ``ProviderAuthV4._sign_request``; returns the signed request's headers."""
    request = _oss_request(method, "http://oss.example.com/", headers, query, region)
    frozen = SimpleNamespace(utcnow=lambda: _naive_utc(now))
    with mock.patch.object(oss2.auth, "datetime", frozen):
        _oss_auth(credentials, "v4")._sign_request(request, bucket, key or "", additional_headers)
    return {name.lower(): value for name, value in request.headers.items() if value is not None}


class _S3Config:
    def __init__(self, payload_signing: bool) -> None:
        self.s3 = {"payload_signing_enabled": payload_signing}


def s3_sign(
    credentials: Credentials,
    method: str,
    url: str,
    headers: Mapping[str, str],
    query: Iterable[tuple[str, str | None]],
    now: datetime,
    region: str,
    body: bytes | None = None,
) -> dict[str, str]:
    """botocore ``S3SigV4Auth.add_auth``; ``body=None`` means UNSIGNED-PAYLOAD."""
    request = AWSRequest(
        method=method,
        url=url,
        headers=dict(headers),
        params=[(name, "" if value is None else value) for name, value in query],
        data=body or b"",
    )
    request.context["client_config"] = _S3Config(payload_signing=body is not None)
    boto_credentials = BotoCredentials(
        credentials.access_key, credentials.secret_key, credentials.session_token
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=_naive_utc(now)):
        S3SigV4Auth(boto_credentials, "s3", region).add_auth(request)
    return {name.lower(): value for name, value in request.headers.items()}


def _http_date(now: datetime) -> str:
    return formatdate(calendar.timegm(now.astimezone(timezone.utc).timetuple()), usegmt=True)
