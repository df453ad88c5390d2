"""Settings of `bulkput serve`, as one frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field

from bulkput.remote.credentials import Credentials
from bulkput.server.faults import FaultConfig

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9000
# The pair the store accepts when no --credentials are given: for local use only.
DEFAULT_ACCESS_KEY = "bulkput"
DEFAULT_SECRET_KEY = "bulkput-local-secret"


def default_credentials() -> tuple[Credentials, ...]:
    return (Credentials(DEFAULT_ACCESS_KEY, DEFAULT_SECRET_KEY, source="bulkput serve default"),)


def parse_credentials(text: str) -> Credentials:
    """``AK:SK`` or ``AK:SK:TOKEN`` (the token may itself contain ``:``)."""
    parts = text.split(":", 2)
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise ValueError("credentials must be AK:SK or AK:SK:TOKEN")
    token = parts[2] if len(parts) == 3 and parts[2] else None
    return Credentials(parts[0], parts[1], token, source="--credentials")


@dataclass(frozen=True)
class ServerConfig:
    """Everything `bulkput serve` needs to start.

    ``directory`` None means the memory backend. ``region`` None accepts any region in V4
    credential scopes (a local store serves every region); a value makes it strict.
    ``min_part_size`` None uses each service's real minimum (S3 and BOS 5 MiB, OSS 100 KiB).
    ``body_timeout`` is how long a request body may stall before 400 RequestTimeout.
    ``virtual_host_suffixes``: ``bucket.SUFFIX[:port]`` is virtual-hosted addressing.
    ``track_keys`` False stops the per-key PUT counters (for runs with millions of objects).
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    directory: str | None = None
    credentials: tuple[Credentials, ...] = field(default_factory=default_credentials)
    region: str | None = None
    buckets: tuple[str, ...] = ()
    faults: FaultConfig = field(default_factory=FaultConfig)
    body_timeout: float = 20.0
    min_part_size: int | None = None
    max_single_put: int = 5 * 1024**3
    virtual_host_suffixes: tuple[str, ...] = ("localhost",)
    track_keys: bool = True
