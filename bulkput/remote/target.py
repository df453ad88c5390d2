"""Where objects go: the ``scheme://bucket/prefix`` target, the endpoint that serves it, and the
rules bucket names and keys must follow before anything is sent.

A :class:`Target` says *what* (provider, bucket, key prefix); an :class:`Endpoint` says *where*
(scheme, host, port, region, addressing style). :func:`resolve_endpoint` joins the two: an
explicit ``--endpoint URL`` wins, otherwise the provider's public endpoint for the region
(the table of regions and host names is :mod:`bulkput.remote.regions`). Which addressing
style (``http://host/bucket/key`` or ``http://bucket.host/key``) is
:func:`path_style_addressing`'s rule.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from bulkput.errors import UsageError, ValidationError
from bulkput.remote.regions import (
    DEFAULT_REGION,
    ServiceHost,
    bucket_domain_service_host,
    check_region,
    normalize_region,
    parse_service_host,
)

SCHEMES = ("bos", "oss", "s3")
Addressing = Literal["auto", "path", "virtual"]

# Bytes of UTF-8 a key may have: OSS and BOS document 1023, S3 (and its compatibles) 1024.
MAX_KEY_BYTES = {"bos": 1023, "oss": 1023, "s3": 1024}


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
    # the provider's own host name read back; None for a custom endpoint (MinIO, a CNAME, ...)
    service: ServiceHost | None = None
    # False when nobody named the region (neither the user nor the host name): the
    # provider's default is then only a guess, which a region answer may correct
    region_known: bool = True

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

    def for_region(self, region: str) -> Endpoint:
        """This endpoint for a bucket in ``region``: a provider's host serving one region
        becomes that region's host of the same variant (dual-stack stays dual-stack); hosts
        serving every region (accelerate) and custom endpoints keep their host and only sign
        for ``region``."""
        service, host = self.service, self.host
        if service is not None and service.regional:
            host = service.host_for(region)
            service = ServiceHost(service.scheme, service.variant, region)
        return replace(self, host=host, region=region, service=service, region_known=True)

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


def path_style_addressing(
    scheme: str,
    host: str,
    service: ServiceHost | None,
    bucket: str,
    tls: bool,
    addressing: Addressing = "auto",
) -> bool:
    """Whether requests name the bucket in the path (``host/bucket/key``) rather than in the
    host (``bucket.host/key``). First matching row wins:

    ==========  ======================================================  ===========
    addressing  endpoint                                                path-style
    ==========  ======================================================  ===========
    path        any                                                     yes
    virtual     any                                                     no
    auto        an IP address or localhost                              yes
    auto        s3:// on a host that is not AWS's (MinIO, Ceph, ...)    yes
    auto        a dotted bucket over https (not accelerate)             yes
    auto        AWS's own hosts; every OSS and BOS host                 no
    ==========  ======================================================  ===========

    Custom S3 endpoints go path-style as boto3 and s5cmd do (``bucket.myhost`` rarely
    resolves); OSS and BOS require virtual-hosted names. A dotted bucket name would break the
    wildcard TLS certificate of a virtual-hosted name (accelerate refuses path-style).
    """
    if addressing == "path":
        return True
    if addressing == "virtual":
        return False
    if is_ip_or_localhost(host):
        return True
    if scheme == "s3" and service is None:
        return True
    accelerate = service is not None and service.variant.startswith("accelerate")
    return "." in bucket and tls and not accelerate


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
    HTTPS endpoint for ``region`` is used (see :mod:`bulkput.remote.regions`). A provider's own
    host name implies its region unless ``region`` is given; a region bulkput builds a public
    host for, or signs a provider host with, must be one the provider has (UsageError with
    "did you mean" otherwise). ``addressing``: see :func:`path_style_addressing`.
    """
    if addressing not in ("auto", "path", "virtual"):
        raise UsageError(f"addressing style {addressing!r}: expected auto, path or virtual")
    given = normalize_region(target.scheme, region) if region else None
    if endpoint_url:
        scheme, host, port = _parse_endpoint_url(endpoint_url)
        # the console's "bucket domain" (bkt.oss-cn-beijing.aliyuncs.com): keep the service host
        host = bucket_domain_service_host(target.scheme, host, target.bucket) or host
        service = parse_service_host(target.scheme, host)
        if service is not None and given is not None and given != service.region:
            check_region(target.scheme, given)
        resolved = given or (service.region if service is not None else None)
    else:
        if given is not None:
            check_region(target.scheme, given)
        resolved = given
        service = ServiceHost(target.scheme, "regional", given or DEFAULT_REGION[target.scheme])
        scheme, host, port = "https", service.host_for(service.region or ""), 443
    path_style = path_style_addressing(
        target.scheme, host, service, target.bucket, scheme == "https", addressing
    )
    return Endpoint(
        scheme=scheme,
        host=host,
        port=port,
        region=resolved or DEFAULT_REGION[target.scheme],
        path_style=path_style,
        verify_tls=verify_tls,
        service=service,
        region_known=resolved is not None,
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
    keys over :data:`MAX_KEY_BYTES` (1024 bytes on S3, 1023 on OSS and BOS) and, on OSS and
    BOS, keys starting with ``/`` or ``\\`` are refused.
    """
    if not key:
        raise ValidationError("empty object key", key=key)
    try:
        encoded = key.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            "object key is not valid UTF-8 (an undecodable file name?)", key=repr(key)
        ) from None
    limit = MAX_KEY_BYTES[scheme]
    if len(encoded) > limit:
        raise ValidationError(
            f"object key is {len(encoded)} bytes of UTF-8; the limit on {scheme} is {limit}",
            key=key[:80] + "...",
        )
    if "\x00" in key:
        raise ValidationError("object key contains a NUL character", key=repr(key))
    if scheme in ("oss", "bos") and key[0] in "/\\":
        raise ValidationError(f"{scheme} object keys must not start with '/' or '\\'", key=key)
    return encoded
