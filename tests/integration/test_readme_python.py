"""The README's Python example runs as written against the README's own ``bulkput serve``
command and exported keys (only the port is an ephemeral one), and the API's abort is typed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bulkput.api import JobSpec, StoreSettings, Uploader
from bulkput.errors import JobAbortedError, NotFoundError
from bulkput.job.spec import explicit_credentials

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_parts() -> tuple[list[str], dict[str, str], str]:
    text = README.read_text()
    serve = re.search(r"^bulkput serve (.*?) &$", text, re.M)
    exported = re.search(r"^export (AWS_ACCESS_KEY_ID=\S+ AWS_SECRET_ACCESS_KEY=\S+)$", text, re.M)
    section = text[text.index("## Python API"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert serve and exported and code, "the README's serve command, keys or Python example moved"
    env = dict(pair.split("=", 1) for pair in exported.group(1).split())
    return shlex.split(serve.group(1)), env, code.group(1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written(tmp_path: Path) -> None:
    serve_args, keys, code = _readme_parts()
    assert serve_args[serve_args.index("--port") + 1] == "9000" and "http://127.0.0.1:9000" in code
    port = _free_port()
    serve_args[serve_args.index("--port") + 1] = str(port)
    # this checkout's bulkput, whatever is installed
    env = {**os.environ, **keys, "PYTHONPATH": str(README.parent)}
    server = subprocess.Popen([sys.executable, "-m", "bulkput", "serve", *serve_args], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            env.pop(name, None)
        env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
        env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
        script = code.replace("http://127.0.0.1:9000", f"http://127.0.0.1:{port}")
        done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert sorted(line.split()[:2] for line in lines[:2]) == [["api/a.txt", "stored"], ["api/b.bin", "stored"]]
    summary = json.loads(lines[2])
    assert summary["stored"] == 2 and summary["failed"] == 0 and summary["exit_code"] == 0


def test_an_aborted_job_raises_job_aborted_error(bulkput_server, tmp_path: Path) -> None:
    """A missing bucket aborts the job (exit 3 on the command line): the API raises, typed,
    with the cause and the summary, instead of returning quietly."""
    (tmp_path / "a.txt").write_text("a")
    access, secret = bulkput_server.access_key, bulkput_server.secret_key
    spec = JobSpec("s3://no-such-bucket/p/", store=StoreSettings(
        endpoint=bulkput_server.endpoint_url,
        credentials=explicit_credentials(access, secret),
    ))  # fmt: skip

    async def run() -> list[str]:
        seen: list[str] = []
        async with Uploader(spec) as up:
            async for result in up.upload([str(tmp_path / "a.txt")]):
                seen.append(result.status.value)
        return seen

    with pytest.raises(JobAbortedError) as raised:
        asyncio.run(run())
    assert isinstance(raised.value.cause, NotFoundError)
    assert raised.value.summary.stored == 0  # type: ignore[attr-defined]
