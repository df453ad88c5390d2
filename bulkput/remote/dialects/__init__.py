"""Per-provider dialects: URLs, header names, validation rules, error/list/multipart bodies."""

from __future__ import annotations

from bulkput.remote.dialects.base import Dialect, Page, Request
from bulkput.remote.dialects.bos import BosDialect
from bulkput.remote.dialects.oss import OssDialect
from bulkput.remote.dialects.s3 import S3CompatibleDialect, S3Dialect
from bulkput.remote.target import Endpoint

_DIALECTS: dict[str, Dialect] = {"bos": BosDialect(), "oss": OssDialect(), "s3": S3Dialect()}

__all__ = [
    "BosDialect",
    "Dialect",
    "OssDialect",
    "Page",
    "Request",
    "S3CompatibleDialect",
    "S3Dialect",
    "dialect_for",
    "dialect_for_endpoint",
]


def dialect_for(scheme: str) -> Dialect:
    """The (stateless, shared) dialect of ``bos``, ``oss`` or ``s3``."""
    try:
        return _DIALECTS[scheme]
    except KeyError:
        raise ValueError(f"unknown dialect {scheme!r}; expected bos, oss or s3") from None


def dialect_for_endpoint(scheme: str, endpoint: Endpoint) -> Dialect:
    """The dialect of ``scheme`` as ``endpoint`` speaks it: ``s3://`` at a host that is not
    AWS's own gets a fresh :class:`S3CompatibleDialect` (storage classes passed through)."""
    if scheme == "s3" and endpoint.service is None:
        return S3CompatibleDialect()
    return dialect_for(scheme)
