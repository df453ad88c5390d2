"""Sync strategies: small pure objects that compare one local file with the object of the same key.

``decide(local, remote)`` answers upload / skip (with a reason), or asks for more facts first:
``HEAD`` (user metadata the listing does not carry) or ``HASH`` (the local MD5). Each class's
docstring is its truth table; tests/unit/test_sync_strategies.py checks every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from bulkput.job.listing.formats import (
    MTIME_METADATA,
    NS_PER_MS,
    NS_PER_SECOND,
    etag_md5,
    metadata_md5,
    parse_last_modified,
    parse_mtime,
    same_mtime,
)
from bulkput.remote.store import ObjectInfo


@dataclass(frozen=True, slots=True)
class LocalFile:
    size: int
    mtime_ns: int
    md5_hex: str | None = None  # filled when a strategy asked for HASH


@dataclass(frozen=True, slots=True)
class RemoteFile:
    size: int
    etag: str | None = None
    last_modified_ns: int | None = None
    # User metadata: None until a HEAD fetched it (listings do not carry it).
    metadata: Mapping[str, str] | None = None
    # After a HEAD: False when the object is encrypted (SSE-KMS, SSE-C) and its ETag is not
    # its MD5 even when it looks like one; None until then.
    etag_is_md5: bool | None = None

    @classmethod
    def from_info(cls, info: ObjectInfo, *, headed: bool = False) -> RemoteFile:
        return cls(
            size=info.size,
            etag=info.etag,
            last_modified_ns=parse_last_modified(info.last_modified),
            metadata={k.lower(): v for k, v in info.metadata.items()} if headed else None,
            etag_is_md5=info.etag_is_md5 if headed else None,
        )

    @property
    def stored_mtime(self) -> tuple[int, int] | None:
        return parse_mtime(self.metadata.get(MTIME_METADATA)) if self.metadata is not None else None


class Action(str, Enum):
    UPLOAD = "upload"
    SKIP = "skip"
    HEAD = "head"  # fetch the object's metadata, then decide again
    HASH = "hash"  # compute the local MD5, then decide again


class Reason:
    """Reasons as they appear in plans, reports and the summary."""

    NEW = "new"
    SIZE = "size"
    MTIME = "mtime"
    CHECKSUM = "checksum"
    NO_CHECKSUM = "no-stored-checksum"
    NEWER = "newer"
    UNCHANGED = "unchanged"
    SAME_SIZE = "same-size"
    SAME_CHECKSUM = "same-checksum"
    NOT_NEWER = "not-newer"
    EXISTS = "exists"
    NEED_HEAD = "need-metadata"
    NEED_HASH = "need-md5"
    NO_LOCAL = "no-local-file"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    reason: str


def _upload(reason: str) -> Decision:
    return Decision(Action.UPLOAD, reason)


def _skip(reason: str) -> Decision:
    return Decision(Action.SKIP, reason)


_HEAD = Decision(Action.HEAD, Reason.NEED_HEAD)
_HASH = Decision(Action.HASH, Reason.NEED_HASH)


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        """Upload or skip ``local`` given the existing ``remote``; or ask for HEAD / HASH."""
        ...


@dataclass(frozen=True, slots=True)
class SizeAndMtime:
    """The default: same size and same modification time means unchanged.

    The mtime stored at upload (``mtime`` metadata) is the authority, but listings do not carry
    user metadata and a HEAD per object costs a request. The listing's LastModified (the upload
    time) settles the common case: an object stored at least ``margin_ns`` after the local file
    last changed holds that version. Only when the file changed after (or too close to) the
    upload is a HEAD made, to read the stored mtime.

    ============  ==========================  ===================================  ===========
    sizes         stored mtime (after HEAD)   listing LastModified (LM)            decision
    ============  ==========================  ===================================  ===========
    differ        -                           -                                    upload size
    equal         equal to local mtime        -                                    skip unchanged
    equal         differs from local mtime    -                                    upload mtime
    equal         not fetched yet             LM >= local mtime + margin           skip unchanged
    equal         not fetched yet             LM = local mtime, to the millisecond  skip unchanged
    equal         not fetched yet             otherwise, or LM unknown             HEAD
    equal         absent from the object      LM >= local mtime + margin           skip unchanged
    equal         absent from the object      LM < local mtime + margin, or none   upload mtime
    ============  ==========================  ===================================  ===========

    The "LM = local mtime" row is for servers that report the stored ``mtime`` as LastModified
    (``rclone serve s3`` does): an upload time that falls on the file's mtime to the millisecond
    is not a coincidence worth a HEAD per object.

    "Equal" mtimes compare at the precision the stored value was written with. The known
    limit (shared with s5cmd and aws s3 sync): a file replaced by different content of the
    same size with an *older* mtime than the upload is skipped; use ``Checksum`` for that.
    """

    margin_ns: int = NS_PER_SECOND  # tolerance for clock skew and LastModified's one-second truncation
    name: str = "size+mtime"

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        if local.size != remote.size:
            return _upload(Reason.SIZE)
        stored = remote.stored_mtime
        if stored is not None:
            return _skip(Reason.UNCHANGED) if same_mtime(local.mtime_ns, stored) else _upload(Reason.MTIME)
        lm = remote.last_modified_ns
        if lm is not None and lm >= local.mtime_ns + self.margin_ns:
            return _skip(Reason.UNCHANGED)
        if remote.metadata is None:
            if lm is not None and lm == local.mtime_ns - local.mtime_ns % NS_PER_MS:
                return _skip(Reason.UNCHANGED)
            return _HEAD
        return _upload(Reason.MTIME)


@dataclass(frozen=True, slots=True)
class SizeOnly:
    """``--size-only``: the size alone decides.

    =======  ===========
    sizes    decision
    =======  ===========
    differ   upload size
    equal    skip same-size
    =======  ===========
    """

    name: str = "size-only"

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        return _upload(Reason.SIZE) if local.size != remote.size else _skip(Reason.SAME_SIZE)


@dataclass(frozen=True, slots=True)
class Checksum:
    """``--checksum``: the MD5 of the content decides (sizes first, as they are free).

    The remote MD5 is the ETag for single-PUT objects (an ETag that is 32 hex digits), else the
    ``md5`` user metadata bulkput stores with multipart uploads and encrypted objects (needs a
    HEAD). An ETag that looks like an MD5 but differs is checked with a HEAD before the upload:
    an SSE-KMS or SSE-C object's ETag is not its MD5, and its metadata decides.

    =======  ==========================  ========================  ==========  ===============
    sizes    ETag                        md5 metadata              local MD5   decision
    =======  ==========================  ========================  ==========  ===============
    differ   -                           -                         -           upload size
    equal    an MD5                      -                         unknown     HASH
    equal    an MD5, equal to local      -                         known       skip same-checksum
    equal    an MD5, differs             not fetched yet           known       HEAD
    equal    an MD5, differs (plain)     fetched                   known       upload checksum
    equal    MD5-like, object encrypted  as "not an MD5" below     -           (rows below)
    equal    not an MD5 (multipart)      not fetched yet           -           HEAD
    equal    not an MD5                  absent after HEAD         -           upload no-stored-checksum
    equal    not an MD5                  present                   unknown     HASH
    equal    not an MD5                  equal to local            known       skip same-checksum
    equal    not an MD5                  differs                   known       upload checksum
    =======  ==========================  ========================  ==========  ===============
    """

    name: str = "checksum"

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        if local.size != remote.size:
            return _upload(Reason.SIZE)
        remote_md5 = etag_md5(remote.etag) if remote.etag_is_md5 is not False else None
        if remote_md5 is None:
            if remote.metadata is None:
                return _HEAD
            remote_md5 = metadata_md5(remote.metadata)
            if remote_md5 is None:
                return _upload(Reason.NO_CHECKSUM)
        if local.md5_hex is None:
            return _HASH
        if local.md5_hex.lower() == remote_md5:
            return _skip(Reason.SAME_CHECKSUM)
        if remote.metadata is None:
            return _HEAD  # the ETag may be an encrypted object's, not its MD5
        return _upload(Reason.CHECKSUM)


@dataclass(frozen=True, slots=True)
class Update:
    """``--update``: upload only when the local file is newer than the object.

    The object's time is its stored ``mtime`` metadata when it has one, else its LastModified.
    As in ``SizeAndMtime``, a LastModified at least ``margin_ns`` after the local mtime settles
    it without a HEAD.

    ==========================  ===================================  =======  ==============
    stored mtime (after HEAD)   listing LastModified (LM)            sizes    decision
    ==========================  ===================================  =======  ==============
    not fetched yet             LM >= local mtime + margin           -        skip not-newer
    not fetched yet             LM < local mtime + margin, or none   -        HEAD
    older than local mtime      -                                    -        upload newer
    equal to local mtime        -                                    differ   upload size
    equal to local mtime        -                                    equal    skip not-newer
    newer than local mtime      -                                    -        skip not-newer
    absent from the object      LM < local mtime                     -        upload newer
    absent from the object      LM >= local mtime, or none           -        skip not-newer
    ==========================  ===================================  =======  ==============
    """

    margin_ns: int = NS_PER_SECOND
    name: str = "update"

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        lm = remote.last_modified_ns
        if remote.metadata is None:
            if lm is not None and lm >= local.mtime_ns + self.margin_ns:
                return _skip(Reason.NOT_NEWER)
            return _HEAD
        stored = remote.stored_mtime
        if stored is not None:
            if same_mtime(local.mtime_ns, stored):
                return _upload(Reason.SIZE) if local.size != remote.size else _skip(Reason.NOT_NEWER)
            return _upload(Reason.NEWER) if local.mtime_ns > stored[0] else _skip(Reason.NOT_NEWER)
        if lm is not None and local.mtime_ns > lm:
            return _upload(Reason.NEWER)
        return _skip(Reason.NOT_NEWER)


@dataclass(frozen=True, slots=True)
class IgnoreExisting:
    """``--ignore-existing``: never touch an object that exists.

    ===============  ===========
    object exists    decision
    ===============  ===========
    yes              skip exists
    ===============  ===========

    (A local file with no object is uploaded as ``new`` by the plan, whatever the strategy.)
    """

    name: str = "ignore-existing"

    def decide(self, local: LocalFile, remote: RemoteFile) -> Decision:
        return _skip(Reason.EXISTS)


STRATEGIES: dict[str, type[SizeAndMtime | SizeOnly | Checksum | Update | IgnoreExisting]] = {
    "size+mtime": SizeAndMtime,
    "size-only": SizeOnly,
    "checksum": Checksum,
    "update": Update,
    "ignore-existing": IgnoreExisting,
}
