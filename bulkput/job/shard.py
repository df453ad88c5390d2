"""Deterministic sharding of a job by key, so N processes split one job with no coordination.

A key belongs to shard ``K`` of ``N`` when a stable hash of its UTF-8 bytes is ``K`` modulo ``N``.
The hash depends on the key alone (not on line numbers or order), so a re-ordered manifest or a
changed tree keeps every key in the same shard.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bulkput.errors import UsageError

# Set by Kubernetes in each pod of an Indexed Job: the pod's completion index, 0..completions-1.
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"


@dataclass(frozen=True, slots=True)
class Shard:
    index: int  # K, 0-based
    count: int  # N

    @classmethod
    def parse(cls, text: str, env: Mapping[str, str] | None = None) -> Shard:
        """Parse ``K/N`` with 0 <= K < N; ``auto/N`` takes K from ``$JOB_COMPLETION_INDEX``
        (what Kubernetes sets in each pod of an Indexed Job)."""
        try:
            k_text, n_text = text.split("/")
            if k_text == "auto":
                k_text = _completion_index(text, os.environ if env is None else env)
            index, count = int(k_text), int(n_text)
        except ValueError:
            raise UsageError(f"--shard {text!r}: expected K/N, e.g. 0/4, or auto/N") from None
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


def _completion_index(text: str, env: Mapping[str, str]) -> str:
    value = env.get(COMPLETION_INDEX_ENV)
    if value is None or not value.strip():
        raise UsageError(
            f"--shard {text!r}: ${COMPLETION_INDEX_ENV} is not set (Kubernetes sets it in the pods "
            "of a Job with completionMode: Indexed); elsewhere give the shard number, e.g. --shard 0/4"
        )
    if not value.strip().isdigit():
        raise UsageError(f"--shard {text!r}: ${COMPLETION_INDEX_ENV}={value!r} is not a shard number")
    return value.strip()


def shard_job_id(destination: str, endpoint: str | None, source_description: str, count: int) -> str:
    """The id every shard of one job shares (the same destination, endpoint, source and N), so
    ``bulkput report merge`` can tell the reports of one job from another's."""
    payload = json.dumps(["shard-job-v1", destination, endpoint or "", source_description, count],
                         ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ShardRun:
    """Which run of which shard of which job wrote a report: its first line and its summary
    carry these, so merging can check that every shard of the job reported exactly once.
    ``attempt`` orders the runs of one shard (0 for the first; a higher number is a later run,
    e.g. Kubernetes' ``job-index-failure-count`` or Slurm's ``SLURM_RESTART_COUNT``)."""

    job: str
    shard: Shard
    attempt: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"job": self.job, "shard": self.shard.index, "shards": self.shard.count,
                "attempt": self.attempt}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> ShardRun | None:
        """The run named by ``record`` (a summary or the report's first line), or None when
        it does not name one (a job without ``--shard``, or an older bulkput)."""
        job, index, count, attempt = (record.get(name) for name in ("job", "shard", "shards", "attempt"))
        if not isinstance(job, str) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in (index, count, attempt)
        ):
            return None
        assert isinstance(index, int) and isinstance(count, int) and isinstance(attempt, int)
        if count < 1 or not 0 <= index < count:
            return None
        return cls(job, Shard(index, count), attempt)
