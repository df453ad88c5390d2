"""Where objects go: the ``scheme://bucket/prefix`` target, the endpoint that serves it, and the
rules bucket names and keys must follow before anything is sent.

A :class:`Target` says *what* (provider, bucket, key prefix); an :class:`Endpoint` says *where*
(scheme, host, port, region, addressing style). :func:`resolve_endpoint` joins the two: an
explicit ``--endpoint URL`` wins, otherwise the provider's public endpoint for the region.
Path-style addressing (``http://host/bucket/key``) is the default for IP addresses and
``localhost``, virtual-hosted (``http://bucket.host/key``) for everything else.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from bulkput.errors import UsageError, ValidationError

SCHEMES = ("bos", "oss", "s3")
Addressing = Literal["auto", "path", "virtual"]

# Region used when the user names none, per provider (the providers' own SDK defaults).
DEFAULT_REGION = {"bos": "bj", "oss": "cn-hangzhou", "s3": "us-east-1"}

# Public endpoints per provider; ``{region}`` is filled in. The bucket goes in front of the
# host for virtual-hosted addressing.
PUBLIC_ENDPOINT_HOST = {
    "bos": "{region}.bcebos.com",
    "oss": "oss-{region}.aliyuncs.com",
    "s3": "s3.{region}.amazonaws.com",
}

# Regions recognisable in a provider host name, so ``--endpoint`` alone implies the region.
_REGION_IN_HOST = {
    "bos": re.compile(r"^(?:[^.]+\.)?([a-z0-9-]+)\.bcebos\.com$"),
    "oss": re.compile(r"^(?:[^.]+\.)?oss-([a-z0-9-]+?)(?:-internal)?\.aliyuncs\.com$"),
    "s3": re.compile(r"^(?:[^.]+\.)?s3[.-]([a-z0-9-]+)\.amazonaws\.com$"),
}

# Every service here limits keys to 1023 bytes of UTF-8 (OSS and BOS document 1023; S3 allows
# 1024, but one limit for all keeps a job's behaviour the same whatever the target).
MAX_KEY_BYTES = 1023


@dataclass(frozen=True, slots=True)
class Target:
    """``scheme://bucket/prefix``: the provider, the bucket and the key prefix (may be empty)."""

    scheme: str
    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> Target:
        """Parse ``bos://bucket/prefix``, ``oss://...`` or ``s3://...``; raise UsageError otherwise."""
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise UsageError(
                f"target {url!r} is not a URL: expected bos://BUCKET/PREFIX, oss://... or s3://..."
            )
        scheme = scheme.lower()
        if scheme not in SCHEMES:
            raise UsageError(
                f"target {url!r}: unknown scheme {scheme!r}; expected one of bos://, oss://, s3://"
            )
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise UsageError(f"target {url!r} names no bucket: expected {scheme}://BUCKET/PREFIX")
        validate_bucket_name(scheme, bucket)
        return cls(scheme=scheme, bucket=bucket, prefix=prefix)

    def key_for(self, relative: str) -> str:
        """The full key of ``relative`` under this target's prefix (``/`` added when missing)."""
        if not self.prefix:
            return relative
        if self.prefix.endswith("/"):
            return self.prefix + relative
        return f"{self.prefix}/{relative}"

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The HTTP side of a target: ``scheme`` is ``http`` or ``https``."""

    scheme: str
    host: str
    port: int
    region: str
    path_style: bool
    verify_tls: bool = True

    @property
    def default_port(self) -> bool:
        return self.port == (443 if self.scheme == "https" else 80)

    @property
    def netloc(self) -> str:
        """``host`` or ``host:port`` (port only when not the scheme's default), IPv6 bracketed."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.default_port else f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``scheme://host[:port]`` of the service endpoint, without any bucket."""
        return f"{self.scheme}://{self.netloc}"

    def bucket_host(self, bucket: str) -> str:
        """The Host header for requests to ``bucket`` (port included when not default)."""
        return self.netloc if self.path_style else f"{bucket}.{self.netloc}"


@functools.lru_cache(maxsize=64)
def is_ip_or_localhost(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def region_from_host(scheme: str, host: str) -> str | None:
    """The region a provider's public host name encodes, e.g. ``oss-cn-beijing.aliyuncs.com``."""
    match = _REGION_IN_HOST[scheme].match(host)
    return match.group(1) if match else None


def resolve_endpoint(
    target: Target,
    endpoint_url: str | None = None,
    region: str | None = None,
    addressing: Addressing = "auto",
    *,
    verify_tls: bool = True,
) -> Endpoint:
    """The endpoint serving ``target``.

    ``endpoint_url`` is ``http(s)://host[:port]`` (no path); without it the provider's public
    HTTPS endpoint for ``region`` is used. ``addressing`` is ``auto`` (path-style for IP
    addresses and localhost, virtual-hosted otherwise), ``path`` or ``virtual``.
    """
    if addressing not in ("auto", "path", "virtual"):
        raise UsageError(f"addressing style {addressing!r}: expected auto, path or virtual")
    if endpoint_url:
        scheme, host, port = _parse_endpoint_url(endpoint_url)
        bucket_prefix = f"{target.bucket}."
        if host.startswith(bucket_prefix) and region_from_host(
            target.scheme, host[len(bucket_prefix) :]
        ):
            # the console's "bucket domain" (bkt.oss-cn-beijing.aliyuncs.com): keep the service host
            host = host[len(bucket_prefix) :]
        region = region or region_from_host(target.scheme, host) or DEFAULT_REGION[target.scheme]
    else:
        region = region or DEFAULT_REGION[target.scheme]
        scheme, host, port = "https", PUBLIC_ENDPOINT_HOST[target.scheme].format(region=region), 443
    path_style = is_ip_or_localhost(host) if addressing == "auto" else addressing == "path"
    if not path_style and "." in target.bucket and scheme == "https":
        # A dotted bucket breaks the wildcard certificate of virtual-hosted TLS names.
        path_style = addressing != "virtual"
    return Endpoint(
        scheme=scheme,
        host=host,
        port=port,
        region=region,
        path_style=path_style,
        verify_tls=verify_tls,
    )


def _parse_endpoint_url(url: str) -> tuple[str, str, int]:
    if "://" not in url:
        raise UsageError(
            f"endpoint {url!r} has no scheme: write http://HOST[:PORT] or https://HOST[:PORT]"
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"endpoint {url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UsageError(f"endpoint {url!r}: scheme must be http or https, not {scheme!r}")
    host = (parts.hostname or "").lower()
    if not host:
        raise UsageError(f"endpoint {url!r} names no host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise UsageError(f"endpoint {url!r} must be scheme://host[:port] with no path or query")
    if parts.username or parts.password:
        raise UsageError("endpoint URL must not contain credentials; use the credential options")
    return scheme, host, port if port is not None else (443 if scheme == "https" else 80)


_BUCKET_RULES = {
    # lower-case letters, digits, hyphens; S3 also allows dots; 3 to 63 characters;
    # starting and ending with a letter or digit.
    "bos": (
        re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
        "lower-case letters, digits and hyphens",
    ),
    "oss": (
        re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$"),
        "lower-case letters, digits and hyphens",
    ),
    "s3": (
        re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"),
        "lower-case letters, digits, dots and hyphens",
    ),
}


def validate_bucket_name(scheme: str, bucket: str) -> None:
    """Raise UsageError when ``bucket`` is not a valid bucket name for ``scheme``."""
    pattern, allowed = _BUCKET_RULES[scheme]
    if not pattern.match(bucket):
        raise UsageError(
            f"bucket name {bucket!r} is not valid for {scheme}: 3 to 63 characters, {allowed}, "
            "starting and ending with a letter or digit"
        )
    if scheme == "s3" and (".." in bucket or ".-" in bucket or "-." in bucket):
        raise UsageError(f"bucket name {bucket!r} is not valid for s3: no '..', '.-' or '-.'")
    if scheme == "s3" and re.fullmatch(r"\d+\.\d+\.\d+\.\d+", bucket):
        raise UsageError(f"bucket name {bucket!r} is not valid for s3: it looks like an IP address")


def validate_key(key: str, scheme: str = "s3") -> bytes:
    """Check ``key`` against the service's key rules; return its UTF-8 bytes.

    Empty keys, keys that are not valid Unicode (lone surrogates from undecodable file names),
    keys over 1023 bytes and, on OSS and BOS, keys starting with ``/`` or ``\\`` are refused.
    """
    if not key:
        raise ValidationError("empty object key", key=key)
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "object key is not valid UTF-8 (an undecodable file name?)", key=repr(key)
        ) from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ValidationError(
            f"object key is {len(encoded)} bytes of UTF-8; the limit is {MAX_KEY_BYTES}",
            key=key[:80] + "...",
        )
    if "\x00" in key:
        raise ValidationError("object key contains a NUL character", key=repr(key))
    if scheme in ("oss", "bos") and key[0] in "/\\":
        raise ValidationError(f"{scheme} object keys must not start with '/' or '\\'", key=key)
    return encoded
