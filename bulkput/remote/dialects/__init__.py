"""Per-provider dialects: URLs, header names, validation rules, error/list/multipart bodies."""

from __future__ import annotations

from bulkput.remote.dialects.base import Dialect, Page, Request
from bulkput.remote.dialects.bos import BosDialect
from bulkput.remote.dialects.oss import OssDialect
from bulkput.remote.dialects.s3 import S3Dialect

_DIALECTS: dict[str, Dialect] = {"bos": BosDialect(), "oss": OssDialect(), "s3": S3Dialect()}

__all__ = ["BosDialect", "Dialect", "OssDialect", "Page", "Request", "S3Dialect", "dialect_for"]


def dialect_for(scheme: str) -> Dialect:
    """The (stateless, shared) dialect of ``bos``, ``oss`` or ``s3``."""
    try:
        return _DIALECTS[scheme]
    except KeyError:
        raise ValueError(f"unknown dialect {scheme!r}; expected bos, oss or s3") from None
