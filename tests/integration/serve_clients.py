"""Official SDK clients (boto3, oss2 V1/V4, bce-python-sdk) and a raw signed sender, pointed
at a `bulkput serve` handle. Shared by the test_serve_* modules."""

from __future__ import annotations

import http.client
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

import boto3
import oss2
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.bce_client_configuration import BceClientConfiguration
from baidubce.retry.retry_policy import NoRetryPolicy
from baidubce.services.bos.bos_client import BosClient
from botocore.config import Config

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing.base import SignableRequest
from bulkput.remote.signing.sigv4 import SigV4Signer
from bulkput.server.testing import ServerHandle


def s3_client(server: ServerHandle, *, secret: str | None = None, access: str | None = None,
              addressing: str = "path") -> Any:  # fmt: skip
    return boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=access or server.access_key,
        aws_secret_access_key=secret or server.secret_key,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": addressing}, retries={"mode": "standard", "total_max_attempts": 1}),
    )


def oss_bucket(server: ServerHandle, bucket: str, version: str, *, secret: str | None = None,
               access: str | None = None) -> oss2.Bucket:  # fmt: skip
    ak, sk = access or server.access_key, secret or server.secret_key
    if version == "v4":
        provider = oss2.credentials.StaticCredentialsProvider(ak, sk)
        return oss2.Bucket(oss2.ProviderAuthV4(provider), server.endpoint_url, bucket,
                           region="cn-hangzhou")  # fmt: skip
    return oss2.Bucket(oss2.Auth(ak, sk), server.endpoint_url, bucket)


def bos_client(server: ServerHandle, *, secret: str | None = None,
               access: str | None = None) -> BosClient:  # fmt: skip
    config = BceClientConfiguration(
        credentials=BceCredentials(access or server.access_key, secret or server.secret_key),
        endpoint=f"{server.host}:{server.port}",
    )
    config.retry_policy = NoRetryPolicy()
    return BosClient(config)


def send_s3(
    server: ServerHandle,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    host: str | None = None,
    now: datetime | None = None,
    content_length: int | None = None,
    query: tuple[tuple[str, str | None], ...] = (),
    payload_hash: str | None = None,
    secret: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One SigV4-signed request written by hand (for what SDKs refuse to send)."""
    host = host or f"{server.host}:{server.port}"
    wire_path = quote(path, safe="/~")
    request_headers = {k.lower(): v for k, v in (headers or {}).items()}
    if content_length is not None:
        request_headers["content-length"] = str(content_length)
    request = SignableRequest(method=method, host=host, path=wire_path, query=query,
                              headers={"host": host, **request_headers},
                              payload_hash=payload_hash)  # fmt: skip
    creds = Credentials(server.access_key, secret or server.secret_key)
    signed = SigV4Signer("us-east-1").sign(request, creds, now or datetime.now(timezone.utc))
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        target = wire_path
        if query:
            target += "?" + "&".join(
                quote(k, safe="") + ("" if v is None else "=" + quote(v, safe="")) for k, v in query
            )
        connection.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host)
        for name, value in {**request_headers, **signed}.items():
            connection.putheader(name, value)
        if content_length is None and "transfer-encoding" not in request_headers:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders()
        if body:
            connection.send(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
