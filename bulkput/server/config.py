"""Settings of `bulkput serve`, as one frozen value."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from bulkput.remote.credentials import Credentials
from bulkput.server.faults import FaultConfig
from bulkput.server.services import ServeError
from bulkput.server.validation import check_bucket_name

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


def is_loopback(host: str) -> bool:
    """True for an address only this machine reaches; a name other than ``localhost`` may
    resolve anywhere, so it is not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_refusal(host: str, credentials: tuple[Credentials, ...]) -> str | None:
    """Why the store must not listen on ``host`` with these credentials, or None.

    The default secret is printed in ``--help`` and the README: on an address other machines
    reach, anyone could read and write the store with it::

        host          a credential with the default secret   answer
        loopback      (any)                                  listen
        other         no                                     listen
        other         yes                                    refused
    """
    if is_loopback(host) or all(c.secret_key != DEFAULT_SECRET_KEY for c in credentials):
        return None
    return (
        f"refusing to listen on {host} with the well-known default secret: give --credentials "
        "AK:SK (or BULKPUT_SERVE_CREDENTIALS) with a secret of your own"
    )


@dataclass(frozen=True)
class ServerConfig:
    """Everything `bulkput serve` needs to start.

    ``directory`` None means the memory backend. ``region`` None accepts any region in V4
    credential scopes (a local store serves every region); a value makes it strict.
    ``min_part_size`` None uses each service's real minimum (S3 and BOS 5 MiB, OSS 100 KiB).
    ``body_timeout`` is how long a request body may stall before 400 RequestTimeout.
    ``virtual_host_suffixes``: ``bucket.SUFFIX[:port]`` is virtual-hosted addressing.
    ``track_keys`` False stops the per-key PUT counters (for runs with millions of objects).
    ``tls_cert`` and ``tls_key`` (both or neither) make it an HTTPS store.
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
    tls_cert: str | None = None  # PEM certificate chain: the store speaks HTTPS
    tls_key: str | None = None  # its private key (PEM)

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    def __post_init__(self) -> None:
        """ValueError, with one line to show, for settings the store cannot start with."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("--cert and --key go together: give both to serve HTTPS")
        for bucket in self.buckets:
            try:
                check_bucket_name(bucket)
            except ServeError:
                raise ValueError(
                    f"invalid bucket name {bucket!r}: use 3 to 63 characters of a-z, 0-9, '.' "
                    "and '-', starting and ending with a letter or digit"
                ) from None
        refusal = exposure_refusal(self.host, self.credentials)
        if refusal is not None:
            raise ValueError(refusal)
