"""Start `bulkput serve` from Python: in a background thread, or as a subprocess.

For pytest fixtures, ``bulkput demo`` and benchmarks::

    with serve_in_thread(buckets=["demo"]) as server:
        server.endpoint_url        # "http://127.0.0.1:PORT"
        server.credentials[0]      # Credentials(access_key="bulkput", ...)
        server.stats.puts("a.txt") # stored PUTs of one key
        server.reset_stats()

``serve_in_subprocess`` runs ``python -m bulkput serve --port 0 ...`` and reads the chosen port
from its first line of output (``bulkput serve listening on http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import ssl
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from types import TracebackType

from bulkput.remote.credentials import Credentials
from bulkput.server.admin import ADMIN_HEADER
from bulkput.server.app import BulkputServer, listen
from bulkput.server.config import ServerConfig, default_credentials, parse_credentials
from bulkput.server.faults import FaultConfig
from bulkput.server.stats import StatsSnapshot

LISTENING = re.compile(r"listening on ((?:http|https)://[^\s]+):(\d+)")  # (URL, port)


def _as_credentials(value: Iterable[Credentials | str] | None) -> tuple[Credentials, ...]:
    if value is None:
        return default_credentials()
    creds = tuple(parse_credentials(c) if isinstance(c, str) else c for c in value)
    return creds or default_credentials()


@dataclass
class ServerHandle:
    """A running store: where it listens, what it accepts, what it has seen."""

    host: str
    port: int
    credentials: tuple[Credentials, ...]
    region: str | None
    process: subprocess.Popen[str] | None = field(default=None, repr=False)
    scheme: str = "http"
    cafile: str | None = None  # the certificate to trust for an HTTPS store (self-signed)
    _server: BulkputServer | None = field(default=None, repr=False)
    _stop: object = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def _admin_context(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.cafile) if self.scheme == "https" else None

    @property
    def access_key(self) -> str:
        return self.credentials[0].access_key

    @property
    def secret_key(self) -> str:
        return self.credentials[0].secret_key

    @property
    def stats(self) -> StatsSnapshot:
        if self._server is not None:
            return self._server.stats.snapshot()
        with urllib.request.urlopen(
            f"{self.endpoint_url}/_bulkput/stats", timeout=10, context=self._admin_context()
        ) as reply:
            data = json.load(reply)
        return StatsSnapshot(
            requests=data["requests"], operations=data["operations"], statuses=data["statuses"],
            faults=data["faults"], puts_by_key=data["puts_by_key"],
            parts_by_key={k: {int(n): c for n, c in v.items()} for k, v in data["parts_by_key"].items()},
            total=data["total"], connections=data["connections"],
        )  # fmt: skip

    def reset_stats(self) -> None:
        if self._server is not None:
            self._server.stats.reset()
            return
        request = urllib.request.Request(
            f"{self.endpoint_url}/_bulkput/reset-stats", method="POST", headers={ADMIN_HEADER: "1"}
        )
        with urllib.request.urlopen(request, timeout=10, context=self._admin_context()):
            pass

    def create_bucket(self, name: str) -> None:
        """Make a bucket directly (in-process servers only)."""
        if self._server is None:
            raise RuntimeError("create_bucket needs an in-process server; use buckets=...")
        self._server.storage.create_bucket(name)

    def env(self, scheme: str = "s3") -> dict[str, str]:
        """Environment variables a client of this store needs, for ``scheme`` (bos, oss, s3)."""
        creds = self.credentials[0]
        names = {
            "s3": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
            "oss": ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET", "OSS_SESSION_TOKEN"),
            "bos": ("BCE_ACCESS_KEY_ID", "BCE_SECRET_ACCESS_KEY", "BCE_SESSION_TOKEN"),
        }[scheme]
        env = {names[0]: creds.access_key, names[1]: creds.secret_key}
        if creds.session_token:
            env[names[2]] = creds.session_token
        return env

    def stop(self) -> None:
        stopper = self._stop
        self._stop = None
        if callable(stopper):
            stopper()

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.stop()


def _config(
    *, memory: bool, dir: str | os.PathLike[str] | None, credentials: Iterable[Credentials | str] | None,
    region: str | None, faults: FaultConfig | None, buckets: Sequence[str], host: str, port: int,
    **extra: object,
) -> ServerConfig:  # fmt: skip
    if dir is not None and memory and dir:
        memory = False
    return ServerConfig(
        host=host, port=port, directory=None if memory or dir is None else os.fspath(dir),
        credentials=_as_credentials(credentials), region=region, buckets=tuple(buckets),
        faults=faults or FaultConfig(), **extra,  # type: ignore[arg-type]
    )  # fmt: skip


def serve_in_thread(
    *,
    memory: bool = True,
    dir: str | os.PathLike[str] | None = None,
    credentials: Iterable[Credentials | str] | None = None,
    region: str | None = None,
    faults: FaultConfig | None = None,
    buckets: Sequence[str] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    **extra: object,
) -> ServerHandle:
    """Start the store on its own event loop in a daemon thread; returns once it listens.

    ``dir`` given means the directory backend. ``extra`` goes to :class:`ServerConfig`
    (``min_part_size``, ``body_timeout``, ``track_keys``, ``tls_cert`` and ``tls_key``...).
    """
    config = _config(memory=memory, dir=dir, credentials=credentials, region=region,
                     faults=faults, buckets=buckets, host=host, port=port, **extra)  # fmt: skip
    server = BulkputServer(config)
    ready = threading.Event()
    state: dict[str, object] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            listening = loop.run_until_complete(listen(server))
        except BaseException as error:  # report start-up failures to the caller
            state["error"] = error
            ready.set()
            loop.close()
            return
        state["port"] = listening.port
        state["loop"] = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(listening.runner.cleanup())
            loop.close()

    thread = threading.Thread(target=run, name="bulkput-serve", daemon=True)
    thread.start()
    ready.wait(30)
    error = state.get("error")
    if isinstance(error, BaseException):
        raise RuntimeError(f"bulkput serve failed to start: {error}") from error
    if "port" not in state:
        raise RuntimeError("bulkput serve did not start within 30 s")
    loop = state["loop"]
    assert isinstance(loop, asyncio.AbstractEventLoop)

    def stop() -> None:
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(loop.stop)
        thread.join(30)

    return ServerHandle(
        host=config.host, port=int(state["port"]),  # type: ignore[call-overload]
        credentials=config.credentials, region=region, _server=server, _stop=stop,
        scheme=config.scheme, cafile=config.tls_cert,
    )  # fmt: skip


def serve_in_subprocess(
    *,
    memory: bool = True,
    dir: str | os.PathLike[str] | None = None,
    credentials: Iterable[Credentials | str] | None = None,
    region: str | None = None,
    faults: FaultConfig | None = None,
    buckets: Sequence[str] = (),
    host: str = "127.0.0.1",
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> ServerHandle:
    """Run ``python -m bulkput serve --port 0 ...`` and wait for its listening line.

    Credentials go to the child through ``BULKPUT_SERVE_CREDENTIALS`` (never on its command
    line, where ``ps`` would show the secret). ``tls_cert`` and ``tls_key`` make it an HTTPS
    store; the handle then trusts ``tls_cert`` for its own admin requests.
    """
    creds = _as_credentials(credentials)
    args = [sys.executable, "-m", "bulkput", "serve", "--host", host, "--port", "0"]
    if dir is not None and not (memory and dir is None):
        args += ["--dir", os.fspath(dir)]
    else:
        args += ["--memory"]
    if region:
        args += ["--region", region]
    for bucket in buckets:
        args += ["--bucket", bucket]
    if faults is not None:
        args += fault_arguments(faults)
    if tls_cert is not None and tls_key is not None:
        args += ["--cert", tls_cert, "--key", tls_key]
    args += list(extra_args)
    child_env = dict(os.environ if env is None else env)
    child_env["BULKPUT_SERVE_CREDENTIALS"] = "\n".join(
        ":".join(p for p in (c.access_key, c.secret_key, c.session_token) if p) for c in creds
    )
    process = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=child_env
    )
    assert process.stdout is not None
    seen: list[str] = []
    scheme, port = "http", None
    for line in process.stdout:
        seen.append(line)
        match = LISTENING.search(line)
        if match:
            scheme, port = match.group(1).split("://", 1)[0], int(match.group(2))
            break
    if port is None:
        process.kill()
        process.wait()
        raise RuntimeError("bulkput serve did not start:\n" + "".join(seen))
    # keep draining the child's output so it never blocks on a full pipe
    threading.Thread(target=lambda: [None for _ in process.stdout or ()], daemon=True).start()

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    return ServerHandle(
        host=host, port=port, credentials=creds, region=region, process=process, _stop=stop,
        scheme=scheme, cafile=tls_cert,
    )  # fmt: skip


def fault_arguments(faults: FaultConfig) -> list[str]:
    """The command-line options that give a subprocess server these faults."""
    args = ["--fault-rate", str(faults.rate), "--fault-mix", ",".join(faults.mix),
            "--latency-ms", str(faults.latency_ms), "--slow-ms", str(faults.slow_ms),
            "--fault-keys-kind", faults.keys_kind,
            "--fault-ops", ",".join(sorted(faults.operations))]  # fmt: skip
    if faults.seed is not None:
        args += ["--seed", str(faults.seed)]
    for pattern in faults.keys:
        args += ["--fault-keys", pattern]
    if faults.throttle_rps is not None:
        args += ["--throttle-rps", str(faults.throttle_rps)]
    return args
