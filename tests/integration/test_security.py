"""Security (issue 8 item 5): no secret leaks, TLS verified by default, a loopback-only store,
and a warning for credentials files others can read.

Covered elsewhere (not repeated here): path traversal keys never write outside ``--dir``
(tests/integration/test_serve_storage.py ``test_hostile_keys_stay_inside_dir``,
``test_nul_and_invalid_utf8_keys_are_refused``); the serve parser's default host and an
in-process store on 127.0.0.1 (test_serve_faults.py ``test_serve_binds_loopback_by_default``);
masked ``repr`` of credentials resolved from every source (tests/unit/test_credentials.py
``test_secret_never_in_repr_or_errors``).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from bulkput.api import open_destination
from bulkput.errors import BulkputError
from bulkput.remote.credentials import Credentials
from bulkput.remote.store import ObjectHeaders
from bulkput.server.testing import LISTENING, ServerHandle

ACCESS_KEY = "H9ACCESSKEY"
SECRET = "h9-Secret-Key-0123456789-DO-NOT-LEAK"
TOKEN = "h9-Session-Token-FwoGZXIvYXdzEJr-DO-NOT-LEAK"


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_"))
    }
    return {**base, **extra}


def run_bulkput(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", *args],
        capture_output=True,
        timeout=120,
        env=clean_env(env),
    )


def leaks_in(blobs: dict[str, bytes]) -> list[str]:
    """Where the secret or the token (or their halves, in case of a split) appear."""
    needles = [SECRET, TOKEN, SECRET[: len(SECRET) // 2 + 4], TOKEN[4:]]
    return [
        f"{name}: {needle!r}"
        for name, blob in blobs.items()
        for needle in needles
        if needle.encode() in blob
    ]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_failing_jobs_at_debug_verbosity_never_write_the_secret_or_token(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    server = bulkput_server_factory(credentials=[f"{ACCESS_KEY}:{SECRET}:{TOKEN}"], buckets=["sec"])
    src = tmp_path / "src"
    src.mkdir()
    for n in range(20):
        (src / f"f{n}.txt").write_bytes(b"data %d" % n)
    manifest = tmp_path / "m.txt"
    manifest.write_text(
        "".join(f"{src / f'f{n}.txt'}\n" for n in range(20)) + f"{tmp_path / 'missing'}\n{src}\n"
    )
    state = tmp_path / "state"
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
           "HOME": str(tmp_path)}  # fmt: skip
    common = [
        "-vv",
        "--debug",
        "--progress",
        "json",
        "--endpoint",
        server.endpoint_url,
        "--state-dir",
        str(state),
    ]

    some_bad = run_bulkput("put", "--manifest", str(manifest), *common, "--report", str(tmp_path / "r1.jsonl"),
                           "s3://sec/a/", env=env)  # fmt: skip
    assert some_bad.returncode == 1, some_bad.stderr.decode()

    # The wrong secret given on the command line, the token too.
    wrong_secret = run_bulkput(
        "put", str(src), *common, "--report", str(tmp_path / "r2.jsonl"), "--access-key", ACCESS_KEY,
        "--secret-key", SECRET[::-1], "--session-token", TOKEN, "s3://sec/b/", env={"HOME": str(tmp_path)},
    )  # fmt: skip
    assert wrong_secret.returncode == 3, wrong_secret.stderr.decode()
    assert b"SignatureDoesNotMatch" in wrong_secret.stderr
    assert b" DEBUG " in wrong_secret.stderr, "debug logging was not on"

    written = {
        "stdout 1": some_bad.stdout, "stderr 1": some_bad.stderr,
        "stdout 2": wrong_secret.stdout, "stderr 2": wrong_secret.stderr,
        "reversed secret in stderr 2": wrong_secret.stderr.replace(SECRET[::-1].encode(), b""),
        **files_under(state), "report 1": (tmp_path / "r1.jsonl").read_bytes(),
        "report 2": (tmp_path / "r2.jsonl").read_bytes(),
    }  # fmt: skip
    assert list(state.rglob("*")), "the job wrote no state to search"
    assert not leaks_in(written)
    assert SECRET[::-1].encode() not in wrong_secret.stderr + wrong_secret.stdout


async def test_credentials_and_raised_errors_never_show_the_secret_or_token(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    creds = Credentials(ACCESS_KEY, SECRET, TOKEN, source="test")
    assert not leaks_in({"repr": repr(creds).encode(), "str": str(creds).encode()})
    server = bulkput_server_factory(credentials=[f"{ACCESS_KEY}:{SECRET}:{TOKEN}"], buckets=["sec"])
    texts: dict[str, bytes] = {}
    for name, wrong in {"wrong secret": Credentials(ACCESS_KEY, SECRET + "x", TOKEN),
                        "wrong token": Credentials(ACCESS_KEY, SECRET, TOKEN + "x")}.items():  # fmt: skip
        _t, store = await open_destination(
            "s3://sec/", endpoint=server.endpoint_url, credentials=wrong
        )
        try:
            with pytest.raises(BulkputError) as info:
                await store.put_object("k", b"body", content_md5=None, headers=ObjectHeaders())
        finally:
            await store.close()
        error: BaseException | None = info.value
        depth = 0
        while error is not None and depth < 5:  # the error and what it was raised from
            texts[f"{name} {depth}"] = f"{error!r} {error} {error.args!r}".encode()
            if isinstance(error, BulkputError):
                texts[f"{name} {depth} line"] = error.one_line().encode()
            error, depth = error.__cause__ or error.__context__, depth + 1
    assert not leaks_in(texts)


# --- TLS ---------------------------------------------------------------------------------------


class _Md5EtagHandler(http.server.BaseHTTPRequestHandler):
    """Answers every PUT with 200 and the body's MD5 as ETag (enough for one object upload)."""

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(200)
        self.send_header("ETag", f'"{hashlib.md5(body).hexdigest()}"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def self_signed_https(tls_server_context: ssl.SSLContext) -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Md5EtagHandler)
    httpd.socket = tls_server_context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_tls_certificates_are_verified_by_default_and_insecure_warns(
    self_signed_https: str, tmp_path: Path
) -> None:
    data = tmp_path / "one.txt"
    data.write_bytes(b"over TLS")
    env = {"AWS_ACCESS_KEY_ID": "ak", "AWS_SECRET_ACCESS_KEY": "sk-tls", "HOME": str(tmp_path)}
    args = ["--endpoint", self_signed_https, "--progress", "none", "--state-dir",
            str(tmp_path / "state")]  # fmt: skip

    verified = run_bulkput(
        "put", str(data), *args, "--report", str(tmp_path / "r1.jsonl"), "s3://tls/v/", env=env
    )
    stderr = verified.stderr.decode()
    assert verified.returncode == 3, stderr
    assert "certificate" in stderr.lower() and "warning" not in stderr.lower(), stderr
    summary = json.loads((tmp_path / "r1.jsonl").read_text().splitlines()[-1])["summary"]
    assert summary["stored"] == 0

    insecure = run_bulkput("put", "--insecure", str(data), *args, "--report", str(tmp_path / "r2.jsonl"),
                           "s3://tls/i/", env=env)  # fmt: skip
    stderr = insecure.stderr.decode()
    assert insecure.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1 and "--insecure" in warnings[0], stderr
    assert any("not verified" in line for line in warnings)
    lines = [json.loads(line) for line in (tmp_path / "r2.jsonl").read_text().splitlines()]
    assert (
        lines[0]["status"] == "stored" and lines[0]["etag"] == hashlib.md5(b"over TLS").hexdigest()
    )


# --- bulkput serve: loopback by default ----------------------------------------------------------


def test_serve_subprocess_without_host_listens_on_loopback_only() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkput", "serve", "--memory", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=clean_env({"BULKPUT_SERVE_CREDENTIALS": f"{ACCESS_KEY}:{SECRET}"}),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = LISTENING.search(first)
        assert match and match.group(1) == "http://127.0.0.1", first
        assert SECRET not in first
        port = int(match.group(2))
        listening = [
            c.laddr
            for c in psutil.Process(process.pid).net_connections("inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening), listening
        assert any(addr.port == port for addr in listening)
    finally:
        process.terminate()
        process.wait(10)


# --- credentials files -------------------------------------------------------------------------


def test_credentials_file_readable_by_others_warns_on_the_command_line(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    credentials = home / ".aws" / "credentials"
    credentials.write_text(
        f"[default]\naws_access_key_id = {bulkput_server.access_key}\n"
        f"aws_secret_access_key = {bulkput_server.secret_key}\n"
    )
    credentials.chmod(0o644)
    (tmp_path / "one.txt").write_bytes(b"one")
    args = [
        "--endpoint",
        bulkput_server.endpoint_url,
        "--progress",
        "none",
        "--state-dir",
        str(tmp_path / "s"),
    ]
    done = run_bulkput(
        "put",
        str(tmp_path / "one.txt"),
        *args,
        f"s3://{bulkput_bucket}/w/",
        env={"HOME": str(home)},
    )
    stderr = done.stderr.decode()
    assert done.returncode == 0, stderr
    warnings = [line for line in stderr.splitlines() if str(credentials) in line]
    assert len(warnings) == 1 and "others" in warnings[0], stderr
    assert bulkput_server.secret_key not in stderr

    credentials.chmod(0o600)
    private = run_bulkput(
        "put",
        str(tmp_path / "one.txt"),
        *args,
        f"s3://{bulkput_bucket}/p/",
        env={"HOME": str(home)},
    )
    assert private.returncode == 0 and str(credentials) not in private.stderr.decode()


def test_debug_log_of_a_successful_job_never_shows_authorization_values(
    bulkput_server_factory: Callable[..., ServerHandle], tmp_path: Path
) -> None:
    """Signatures are derived from the secret: a logged Authorization header or presigned
    ``authorization`` would let a reader replay requests."""
    server = bulkput_server_factory(credentials=[f"{ACCESS_KEY}:{SECRET}:{TOKEN}"], buckets=["sec"])
    (tmp_path / "a.txt").write_bytes(b"a")
    env = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN,
           "HOME": str(tmp_path)}  # fmt: skip
    done = run_bulkput("put", "-vv", "--debug", str(tmp_path / "a.txt"), "--endpoint", server.endpoint_url,
                       "--state-dir", str(tmp_path / "s"), "s3://sec/d/", env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    output = done.stdout + done.stderr
    assert b"Signature=" not in output and b"AWS4-HMAC-SHA256 Credential" not in output
    assert not leaks_in({"output": output})
