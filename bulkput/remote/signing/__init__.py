"""Request signing: one module per algorithm behind :class:`bulkput.remote.signing.base.Signer`."""

from __future__ import annotations

from bulkput.remote.signing.base import UNSIGNED_PAYLOAD, SignableRequest, Signer
from bulkput.remote.signing.bce import BceV1Signer
from bulkput.remote.signing.oss_v1 import OssV1Signer
from bulkput.remote.signing.oss_v4 import OssV4Signer
from bulkput.remote.signing.sigv4 import SigV4Signer

SIGNER_NAMES = ("bce-v1", "oss-v1", "oss-v4", "s3-v4")

__all__ = [
    "SIGNER_NAMES",
    "UNSIGNED_PAYLOAD",
    "BceV1Signer",
    "OssV1Signer",
    "OssV4Signer",
    "SigV4Signer",
    "SignableRequest",
    "Signer",
    "signer_for",
]


def signer_for(name: str, region: str) -> Signer:
    """The signer called ``name`` (one of :data:`SIGNER_NAMES`); ``region`` is used by the V4
    algorithms and ignored by the others."""
    if name == "bce-v1":
        return BceV1Signer()
    if name == "oss-v1":
        return OssV1Signer()
    if name == "oss-v4":
        return OssV4Signer(region)
    if name == "s3-v4":
        return SigV4Signer(region)
    raise ValueError(
        f"unknown signing algorithm {name!r}; expected one of {', '.join(SIGNER_NAMES)}"
    )
