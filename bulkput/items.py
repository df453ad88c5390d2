"""What flows through the engine: one upload item in, one result out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredCopy:
    """What the store already holds under an item's key, found by a job that resumes from the
    store (:mod:`bulkput.job.store_resume`): the engine skips the item when the file has this
    size and this MD5 (lower-case hex), and otherwise sends it with the MD5 it computed."""

    size: int
    md5_hex: str


@dataclass(slots=True)
class UploadItem:
    """One object to store, as a manifest line or a walked file describes it."""

    path: str
    key: str  # the full object key (destination prefix already applied)
    content_type: str | None = None
    cache_control: str | None = None
    content_disposition: str | None = None
    content_encoding: str | None = None
    expires: str | None = None
    acl: str | None = None
    storage_class: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    md5: str | None = None  # trusted precomputed Content-MD5, base64
    size: int | None = None  # known size (from a walk), else stat'ed by the engine
    mtime_ns: int | None = None
    line: int | None = None  # manifest line number, for errors
    stored: StoredCopy | None = None  # resume from the store: the object already there


class Status(str, Enum):
    STORED = "stored"
    SKIPPED = "skipped"
    FAILED = "failed"
    DELETED = "deleted"
    PLANNED = "planned"  # --dry-run
    # SIGINT/SIGTERM: never sent (no request made); the next run of the same command sends it
    NOT_STARTED = "not_started"
    # SIGINT/SIGTERM: sent, but the store did not confirm it (and a HEAD after the stop found
    # it absent or could not tell); not journaled, so the next run sends it again
    INTERRUPTED = "interrupted"


@dataclass(slots=True)
class ObjectResult:
    """One report line: what happened to one object. ``stored`` only after the server confirmed."""

    key: str
    path: str | None
    status: Status
    size: int | None = None
    md5: str | None = None  # hex
    etag: str | None = None
    attempts: int = 0
    error_code: str | None = None
    message: str | None = None
    request_id: str | None = None
    reason: str | None = None  # why skipped / planned (sync)

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        return {k: v for k, v in record.items() if v is not None}
