"""Credentials beyond static keys, end to end: `bulkput put` in a clean environment (no keys in
it) finds them through botocore's chain (credential_process, AssumeRole, web identity against
moto's STS) or alibabacloud-credentials' (a credentials URI), and the store accepts what it
signed. Each test failed before the chains existed ("no s3/oss credentials found")."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import boto3
import oss2
import pytest
from botocore.config import Config

from bulkput.server.testing import ServerHandle

TOKEN_CREDENTIALS = ["chainkey:chain-secret-0123456789:chain-token-abc"]


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The process environment without any credential or endpoint variable, HOME in ``home``,
    and no instance metadata (tests never leave loopback)."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "ALIBABA_CLOUD_", "BCE_"))
    }  # fmt: skip
    env.update(
        HOME=str(home), AWS_EC2_METADATA_DISABLED="true",
        ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", XDG_CACHE_HOME=str(home / "cache"),
    )  # fmt: skip
    env.update(extra)
    return env


def run_put(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "put", *args], env=env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


def make_files(root: Path, count: int = 3) -> dict[str, bytes]:
    root.mkdir(parents=True, exist_ok=True)
    files = {}
    for n in range(count):
        data = os.urandom(100 + n) + b"chain"
        (root / f"f{n}.bin").write_bytes(data)
        files[f"f{n}.bin"] = data
    return files


def s3_reader(endpoint: str, access_key: str, secret_key: str, token: str | None = None):
    return boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key,
        aws_secret_access_key=secret_key, aws_session_token=token, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    )  # fmt: skip


@pytest.fixture
def token_store(bulkput_server_factory) -> ServerHandle:
    """A store that accepts only a temporary key with its session token."""
    return bulkput_server_factory(credentials=TOKEN_CREDENTIALS, buckets=["chain"])


def test_credential_process_profile_signs_for_a_checking_store(tmp_path, token_store):
    ak, sk, token = TOKEN_CREDENTIALS[0].split(":")
    expires = (datetime.now(timezone.utc) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    helper = tmp_path / "creds.py"
    answer = {"Version": 1, "AccessKeyId": ak, "SecretAccessKey": sk, "SessionToken": token,
              "Expiration": expires}  # fmt: skip
    helper.write_text(f"print({json.dumps(json.dumps(answer))})\n")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text(
        f"[profile proc]\ncredential_process = {sys.executable} {helper}\n"
    )
    files = make_files(tmp_path / "src")
    done = run_put(
        clean_env(tmp_path), str(tmp_path / "src"), "s3://chain/p/", "--profile", "proc",
        "--endpoint", token_store.endpoint_url, "--addressing", "path", "--region", "us-east-1",
        "-v",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sk not in done.stdout + done.stderr and token not in done.stdout + done.stderr
    reader = s3_reader(token_store.endpoint_url, ak, sk, token)
    for name, data in files.items():
        assert reader.get_object(Bucket="chain", Key=f"p/{name}")["Body"].read() == data


def test_missing_profile_is_named(tmp_path, token_store):
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    make_files(tmp_path / "src", 1)
    done = run_put(
        clean_env(tmp_path), str(tmp_path / "src"), "s3://chain/p/", "--profile", "nope",
        "--endpoint", token_store.endpoint_url,
    )  # fmt: skip
    assert done.returncode == 2
    assert "profile nope not found in ~/.aws/credentials, ~/.aws/config" in done.stderr


# --- moto's STS: AssumeRole and AssumeRoleWithWebIdentity -------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint(moto_server) -> str:  # type: ignore[no-untyped-def]
    """moto's server (S3 and STS) from the shared fixture."""
    return str(moto_server.endpoint)


def _moto_bucket(endpoint: str, name: str) -> None:
    s3_reader(endpoint, "testing", "testing").create_bucket(Bucket=name)


def _moto_keys(endpoint: str, bucket: str) -> dict[str, bytes]:
    reader = s3_reader(endpoint, "testing", "testing")
    listed = reader.list_objects_v2(Bucket=bucket).get("Contents", [])
    return {o["Key"]: reader.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in listed}


def test_assume_role_profile_through_moto_sts(tmp_path, moto_endpoint):
    _moto_bucket(moto_endpoint, "assumed")
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text(
        "[base]\naws_access_key_id = AKIDBASE\naws_secret_access_key = base-secret\n"
    )
    (tmp_path / ".aws" / "credentials").chmod(0o600)
    (tmp_path / ".aws" / "config").write_text(
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/uploader\n"
        "source_profile = base\nregion = us-east-1\n"
    )
    files = make_files(tmp_path / "src")
    env = clean_env(tmp_path, AWS_ENDPOINT_URL_STS=moto_endpoint)
    done = run_put(
        env, str(tmp_path / "src"), "s3://assumed/r/", "--profile", "deploy",
        "--endpoint", moto_endpoint, "--addressing", "path", "-v",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _moto_keys(moto_endpoint, "assumed") == {f"r/{k}": v for k, v in files.items()}


def test_web_identity_token_file_through_moto_sts(tmp_path, moto_endpoint):
    _moto_bucket(moto_endpoint, "irsa")
    token_file = tmp_path / "token"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJwb2QifQ.c2ln")
    files = make_files(tmp_path / "src")
    env = clean_env(
        tmp_path, AWS_ENDPOINT_URL_STS=moto_endpoint, AWS_WEB_IDENTITY_TOKEN_FILE=str(token_file),
        AWS_ROLE_ARN="arn:aws:iam::123456789012:role/irsa", AWS_REGION="us-east-1",
    )  # fmt: skip
    done = run_put(
        env, str(tmp_path / "src"), "s3://irsa/w/", "--endpoint", moto_endpoint,
        "--addressing", "path",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _moto_keys(moto_endpoint, "irsa") == {f"w/{k}": v for k, v in files.items()}


# --- Aliyun: alibabacloud-credentials' credentials URI ----------------------------------------


@pytest.fixture
def credentials_uri() -> Iterator[tuple[str, list[str]]]:
    """A loopback credentials URI answering as an Aliyun sidecar does; records each call."""
    ak, sk, token = TOKEN_CREDENTIALS[0].split(":")
    calls: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            calls.append(self.path)
            expires = datetime.now(timezone.utc) + timedelta(hours=1)
            body = json.dumps({
                "Code": "Success", "AccessKeyId": ak, "AccessKeySecret": sk,
                "SecurityToken": token, "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }).encode()  # fmt: skip
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/creds", calls
    finally:
        httpd.shutdown()


def test_aliyun_credentials_uri_signs_for_a_checking_store(tmp_path, token_store, credentials_uri):
    pytest.importorskip("alibabacloud_credentials")
    uri, calls = credentials_uri
    ak, sk, token = TOKEN_CREDENTIALS[0].split(":")
    files = make_files(tmp_path / "src")
    env = clean_env(tmp_path, ALIBABA_CLOUD_CREDENTIALS_URI=uri)
    done = run_put(
        env, str(tmp_path / "src"), "oss://chain/o/", "--endpoint", token_store.endpoint_url,
        "--addressing", "path", "--region", "cn-hangzhou",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert calls, "the credentials URI was never asked"
    assert sk not in done.stdout + done.stderr and token not in done.stdout + done.stderr
    bucket = oss2.Bucket(
        oss2.StsAuth(ak, sk, token), token_store.endpoint_url, "chain", is_cname=True
    )
    for name, data in files.items():
        got = bucket.get_object(f"o/{name}").read()
        assert hashlib.md5(got).digest() == hashlib.md5(data).digest()
