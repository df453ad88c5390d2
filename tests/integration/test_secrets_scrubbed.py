"""A server that echoes the session token (and, misconfigured, the secret) in its error
messages: neither reaches stdout, stderr, the log lines or the report."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.fixtures.misbehaving import Request, ScriptedServer, error_answer

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEJr//////////wEaDH+sessiontoken/8x="


def echoing(status: int, code: str):
    async def behave(n: int, request: Request, writer: asyncio.StreamWriter) -> bool:
        token = request.headers.get("x-amz-security-token", "")
        message = (
            f"token {token} (as a query: {quote(token, safe='')}) is not valid here; "
            f"our configuration says the secret is {SECRET}"
        )
        return await error_answer(writer, status, code, message)

    return behave


@pytest.mark.parametrize(
    ("status", "code", "exit_code"),
    [(400, "InvalidArgument", 1), (403, "AccessDenied", 3)],
    ids=["object-error", "job-abort"],
)
def test_server_echoing_the_token_leaks_nothing(
    tmp_path: Path, status: int, code: str, exit_code: int
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("a.txt", "b.txt"):
        (source / name).write_bytes(name.encode())
    report = tmp_path / "report.jsonl"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_"))
    } | {
        "HOME": str(tmp_path), "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
    }  # fmt: skip
    with ScriptedServer(echoing(status, code)) as server:
        done = subprocess.run(
            [sys.executable, "-m", "bulkput", "put", str(source), "s3://bkt/p/",
             "--endpoint", server.url, "--addressing", "path", "--retries", "0", "--debug",
             "--progress", "none", "--report", str(report), "--state-dir", str(tmp_path / "st")],
            capture_output=True, text=True, env=env, timeout=120,
        )  # fmt: skip
        echoed = [r.headers.get("x-amz-security-token") for r in server.requests]
    assert echoed and set(echoed) == {TOKEN}  # the server did see the token, and echoed it
    assert done.returncode == exit_code, done.stderr
    assert code in done.stderr and "is not valid here" in done.stderr + report.read_text()
    outputs = {"stdout": done.stdout, "stderr": done.stderr, "report": report.read_text()}
    for where, text in outputs.items():
        for secret in (TOKEN, quote(TOKEN, safe=""), SECRET, quote(SECRET, safe="")):
            assert secret not in text, f"{secret[:8]}... in {where}"
    assert "******" in done.stderr


def test_a_rejected_secret_names_its_profile_never_the_secret(
    bulkput_server, bulkput_bucket: str, tmp_path: Path
) -> None:
    # a wrong secret (and a token) in a profile of ~/.aws/credentials, HOME in tmp_path
    wrong = "not-the-secret-" + SECRET[:20]
    aws = tmp_path / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(
        f"[dev]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = {wrong}\n"
        f"aws_session_token = {TOKEN}\n"
    )
    (aws / "credentials").chmod(0o600)
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_bytes(b"a")
    report = tmp_path / "report.jsonl"
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_"))
    } | {"HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "bulkput", "put", str(source), f"s3://{bulkput_bucket}/p/",
         "--profile", "dev", "--endpoint", bulkput_server.endpoint_url, "--debug",
         "--progress", "none", "--report", str(report), "--state-dir", str(tmp_path / "st")],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    [aborted] = [line for line in done.stderr.splitlines() if line.startswith("aborted:")]
    assert "InvalidAccessKeyId" in aborted or "SignatureDoesNotMatch" in aborted
    assert (
        "credentials from profile 'dev' in ~/.aws/credentials (key id AKIA...PLE) were rejected"
        in aborted
    ), aborted
    outputs = {"stdout": done.stdout, "stderr": done.stderr, "report": report.read_text()}
    for where, text in outputs.items():
        for secret in (wrong, TOKEN, quote(TOKEN, safe="")):
            assert secret not in text, f"{secret[:8]}... in {where}"
