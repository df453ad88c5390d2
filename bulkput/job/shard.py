"""Deterministic sharding of a job by key, so N processes split one job with no coordination.

A key belongs to shard ``K`` of ``N`` when a stable hash of its UTF-8 bytes is ``K`` modulo ``N``.
The hash depends on the key alone (not on line numbers or order), so a re-ordered manifest or a
changed tree keeps every key in the same shard.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bulkput.errors import UsageError


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # K, 0-based
    count: int  # N

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Parse ``K/N`` with 0 <= K < N."""
        try:
            k_text, n_text = text.split("/")
            index, count = int(k_text), int(n_text)
        except ValueError:
            raise UsageError(f"--shard {text!r}: expected K/N, e.g. 0/4") from None
        if count < 1 or not 0 <= index < count:
            raise UsageError(f"--shard {text!r}: need 0 <= K < N")
        return cls(index, count)

    def owns(self, key: str) -> bool:
        return self.count == 1 or shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(key: str, count: int) -> int:
    digest = hashlib.blake2b(key.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % count
