"""Server-side encryption with a key the customer holds (SSE-C): the key, read once from a
file, and the three headers S3 wants with every request that writes or reads the object.

The key is a secret: its ``repr`` shows only the key's MD5, and nothing here logs it. SSE-KMS
needs no key on the client (``--sse aws:kms [--sse-kms-key-id ID]`` are object headers).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass, field

from bulkput.errors import UsageError

KEY_BYTES = 32  # AES-256, the only SSE-C algorithm S3 has


@dataclass(frozen=True, slots=True)
class CustomerKey:
    """An SSE-C key (32 bytes)."""

    key: bytes = field(repr=False)
    algorithm: str = "AES256"

    def __post_init__(self) -> None:
        if len(self.key) != KEY_BYTES:
            raise ValueError(f"an SSE-C key is {KEY_BYTES} bytes, not {len(self.key)}")

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> CustomerKey:
        """The key in ``path``: its 32 raw bytes, or those bytes in base64 (one line)."""
        try:
            with open(path, "rb") as handle:
                data = handle.read(4 * KEY_BYTES + 1)
        except OSError as exc:
            raise UsageError(f"--sse-c-key-file {os.fspath(path)}: {exc.strerror or exc}") from None
        if len(data) == KEY_BYTES:
            return cls(data)
        try:
            decoded = base64.b64decode(data.strip(), validate=True)
        except (binascii.Error, ValueError):
            decoded = b""
        if len(decoded) != KEY_BYTES:
            raise UsageError(
                f"--sse-c-key-file {os.fspath(path)}: expected a {KEY_BYTES}-byte key "
                f"({KEY_BYTES} raw bytes, or them in base64), found {len(data)} bytes"
            )
        return cls(decoded)

    @property
    def key_md5(self) -> str:
        """Base64 MD5 of the key (what S3 checks the key against, and safe to show)."""
        return base64.b64encode(hashlib.md5(self.key).digest()).decode("ascii")

    def headers(self) -> dict[str, str]:
        """The request headers naming this key (S3 spelling)."""
        return {
            "x-amz-server-side-encryption-customer-algorithm": self.algorithm,
            "x-amz-server-side-encryption-customer-key": base64.b64encode(self.key).decode("ascii"),
            "x-amz-server-side-encryption-customer-key-md5": self.key_md5,
        }

    def __repr__(self) -> str:
        return f"CustomerKey({self.algorithm}, key md5 {self.key_md5})"
