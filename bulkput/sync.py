"""``sync`` decisions: which local files to upload, which objects to skip or delete, and why.

Three pieces, each usable alone:

* **Strategies** (:class:`SizeAndMtime`, :class:`SizeOnly`, :class:`Checksum`, :class:`Update`,
  :class:`IgnoreExisting`): small pure objects; ``decide(local, remote)`` compares one local file
  with the object of the same key and answers upload / skip (with a reason), or asks for more
  facts first: ``HEAD`` (user metadata the listing does not carry) or ``HASH`` (the local MD5).
  Each docstring is its truth table; tests check every row.
* :func:`merge_join`: walks the local tree and the remote listing side by side in key order
  (both sorted by UTF-8 bytes), holding only the current pair, and pairs up equal keys.
* :func:`plan_pair`: one pair -> one :class:`PlanEntry` (upload, skip, delete, fail, or
  "resolve": a strategy wants a HEAD or an MD5 first).

The local mtime is stored on upload as user metadata ``mtime`` in rclone's format, decimal
seconds since the epoch with nine decimals (``1700000000.123456789``), so bulkput and rclone
read each other's modification times. Multipart uploads also store the file's MD5 (hex) as
``md5`` (see :mod:`bulkput.multipart`), which ``Checksum`` compares when the ETag is not an MD5.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Protocol

from bulkput.errors import BulkputError
from bulkput.filters import Filter
from bulkput.shard import Shard
from bulkput.store import ObjectInfo
from bulkput.walk import SkippedPath, UnreadableDirectoryError, WalkEntry

MTIME_METADATA = "mtime"
MD5_METADATA = "md5"

_NS = 1_000_000_000


# --- time and checksum formats ----------------------------------------------------------------


def format_mtime(mtime_ns: int) -> str:
    """``1700000000123456789`` -> ``"1700000000.123456789"`` (rclone's ``mtime`` metadata)."""
    seconds, fraction = divmod(mtime_ns, _NS)
    return f"{seconds}.{fraction:09d}"


_MTIME_RE = re.compile(r"^\s*(\d+)(?:\.(\d{1,9})\d*)?\s*$")


def parse_mtime(text: str | None) -> tuple[int, int] | None:
    """``"1700000000.5"`` -> ``(1700000000500000000, 100000000)``: nanoseconds and the
    precision the writer kept (another tool may store fewer decimals). None when unreadable."""
    if not text:
        return None
    match = _MTIME_RE.match(text)
    if match is None:
        return None
    seconds = int(match.group(1))
    digits = match.group(2) or ""
    precision = 10 ** (9 - len(digits))
    fraction = int(digits.ljust(9, "0")) if digits else 0
    return seconds * _NS + fraction, precision


def same_mtime(local_ns: int, stored: tuple[int, int]) -> bool:
    """Equal at the precision the stored value was written with (truncated, as writers do)."""
    value, precision = stored
    return local_ns - local_ns % precision == value


def parse_last_modified(text: str | None) -> int | None:
    """A listing's ISO 8601 or a HEAD's RFC 1123 ``Last-Modified``, as ns since the epoch."""
    if not text:
        return None
    text = text.strip()
    try:
        if text[:4].isdigit():
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        else:
            moment = parsedate_to_datetime(text)
    except (ValueError, TypeError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    delta = moment - datetime(1970, 1, 1, tzinfo=timezone.utc)
    return (delta.days * 86_400 + delta.seconds) * _NS + delta.microseconds * 1000


_MD5_HEX = re.compile(r"^[0-9a-fA-F]{32}$")


def etag_md5(etag: str | None) -> str | None:
    """The MD5 an ETag states (single PUT objects), lower-case hex; None for multipart ETags."""
    if etag is None:
        return None
    etag = etag.strip().strip('"')
    return etag.lower() if _MD5_HEX.match(etag) else None


def metadata_md5(metadata: Mapping[str, str]) -> str | None:
    """The ``md5`` user metadata as lower-case hex (hex or base64 accepted)."""
    value = {k.lower(): v for k, v in metadata.items()}.get(MD5_METADATA)
    if not value:
        return None
    value = value.strip()
    if _MD5_HEX.match(value):
        return value.lower()
    try:
        import base64

        raw = base64.b64decode(value, validate=True)
    except ValueError:
        return None
    return raw.hex() if len(raw) == 16 else None


# --- what the strategies compare --------------------------------------------------------------


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

    @classmethod
    def from_info(cls, info: ObjectInfo, *, headed: bool = False) -> RemoteFile:
        return cls(
            size=info.size,
            etag=info.etag,
            last_modified_ns=parse_last_modified(info.last_modified),
            metadata={k.lower(): v for k, v in info.metadata.items()} if headed else None,
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
    name: str

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
    equal         not fetched yet             LM < local mtime + margin, or none   HEAD
    equal         absent from the object      LM >= local mtime + margin           skip unchanged
    equal         absent from the object      LM < local mtime + margin, or none   upload mtime
    ============  ==========================  ===================================  ===========

    "Equal" mtimes compare at the precision the stored value was written with. The known
    limit (shared with s5cmd and aws s3 sync): a file replaced by different content of the
    same size with an *older* mtime than the upload is skipped; use ``Checksum`` for that.
    """

    margin_ns: int = _NS  # tolerance for clock skew and LastModified's one-second truncation
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
    ``md5`` user metadata bulkput stores with multipart uploads (needs a HEAD).

    =======  ==========================  ========================  ==========  ===============
    sizes    ETag                        md5 metadata              local MD5   decision
    =======  ==========================  ========================  ==========  ===============
    differ   -                           -                         -           upload size
    equal    an MD5                      -                         unknown     HASH
    equal    an MD5, equal to local      -                         known       skip same-checksum
    equal    an MD5, differs             -                         known       upload checksum
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
        remote_md5 = etag_md5(remote.etag)
        if remote_md5 is None:
            if remote.metadata is None:
                return _HEAD
            remote_md5 = metadata_md5(remote.metadata)
            if remote_md5 is None:
                return _upload(Reason.NO_CHECKSUM)
        if local.md5_hex is None:
            return _HASH
        return _skip(Reason.SAME_CHECKSUM) if local.md5_hex.lower() == remote_md5 else _upload(Reason.CHECKSUM)


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

    margin_ns: int = _NS
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


# --- the merge-join ---------------------------------------------------------------------------


class ListingOrderError(BulkputError):
    """One side is not in key order: a merge-join would be wrong, so the job stops."""

    fatal_for_job = True
    exit_code = 3


LocalItem = WalkEntry | BulkputError


@dataclass(slots=True)
class Pair:
    """One key seen on either side. ``local`` is a WalkEntry, or the error the walk reported
    for that key (or for a whole directory holding it); ``remote`` the listed object."""

    key: str | None  # full object key; None for a local error with no key (undecodable name)
    local: LocalItem | None
    remote: ObjectInfo | None


def _guard_prefix(item: BulkputError) -> str | None:
    """The key prefix (relative) a directory-level error covers, or None for a one-key error."""
    key = item.key
    if key is None:
        return None
    if isinstance(item, UnreadableDirectoryError) or key == "" or key.endswith("/"):
        return key
    return None


async def merge_join(
    local: AsyncIterator[LocalItem], remote: AsyncIterator[ObjectInfo], prefix: str
) -> AsyncIterator[Pair]:
    """Pair local items (relative keys) with listed objects (full keys, all under ``prefix``)
    by key, both sides in UTF-8 byte order (for valid Unicode, Python's ``str`` order).

    A local error for a directory (its key ends with ``/``) is paired with every object under
    that directory, so nothing there is mistaken for "no local file". Objects whose key ends
    with ``/`` (folder markers) are passed over. Out-of-order input raises ListingOrderError.
    """
    local_item: LocalItem | None = None
    remote_item: ObjectInfo | None = None
    local_key = ""  # full key of local_item
    last_local: str | None = None
    last_remote: str | None = None
    local_done = remote_done = False

    async def next_local() -> None:
        nonlocal local_item, local_key, last_local, local_done
        while True:
            try:
                item = await local.__anext__()
            except StopAsyncIteration:
                local_item, local_done = None, True
                return
            key = item.key if isinstance(item, (WalkEntry, BulkputError)) else None
            if key is None:
                pending_keyless.append(item)
                continue
            full = prefix + key
            if last_local is not None and full <= last_local:
                raise ListingOrderError(f"local walk out of order: {full!r} after {last_local!r}")
            last_local = full
            local_item, local_key = item, full
            return

    async def next_remote() -> None:
        nonlocal remote_item, last_remote, remote_done
        while True:
            try:
                info = await remote.__anext__()
            except StopAsyncIteration:
                remote_item, remote_done = None, True
                return
            if info.key.endswith("/"):
                continue  # a folder marker, not a file
            if last_remote is not None and info.key <= last_remote:
                raise ListingOrderError(
                    f"listing out of key order: {info.key!r} after {last_remote!r}; "
                    "this store does not list in UTF-8 byte order, so sync cannot compare safely")
            last_remote = info.key
            remote_item = info
            return

    pending_keyless: list[LocalItem] = []
    await next_local()
    await next_remote()
    while not (local_done and remote_done):
        while pending_keyless:
            yield Pair(None, pending_keyless.pop(0), None)
        if local_item is not None and isinstance(local_item, BulkputError):
            guard = _guard_prefix(local_item)
            if guard is not None:
                full_guard = prefix + guard
                while remote_item is not None and remote_item.key.startswith(full_guard):
                    yield Pair(remote_item.key, local_item, remote_item)
                    await next_remote()
                if remote_item is None or remote_item.key > full_guard:
                    yield Pair(full_guard, local_item, None)
                    await next_local()
                    continue
        if remote_item is None or (local_item is not None and local_key < remote_item.key):
            assert local_item is not None
            yield Pair(local_key, local_item, None)
            await next_local()
        elif local_item is None or remote_item.key < local_key:
            yield Pair(remote_item.key, None, remote_item)
            await next_remote()
        else:
            yield Pair(local_key, local_item, remote_item)
            await next_local()
            await next_remote()
    while pending_keyless:
        yield Pair(None, pending_keyless.pop(0), None)


# --- one pair -> one plan entry ---------------------------------------------------------------


class PlanAction(str, Enum):
    UPLOAD = "upload"
    SKIP = "skip"
    DELETE = "delete"
    FAIL = "fail"  # the walk could not read it; reported, never uploaded
    RESOLVE = "resolve"  # the strategy wants a HEAD or the local MD5 first
    IGNORE = "ignore"  # excluded by a filter or owned by another shard: not part of this job


@dataclass(slots=True)
class PlanEntry:
    action: PlanAction
    key: str | None
    reason: str
    local: WalkEntry | None = None
    remote: ObjectInfo | None = None
    error: BulkputError | None = None
    decision: Decision | None = None  # for RESOLVE: what the strategy asked for
    warning: bool = field(default=False)  # a skip that is a warning (symlink, special file)


@dataclass(frozen=True, slots=True)
class PlanRules:
    strategy: Strategy
    prefix: str  # destination prefix, "" or ending with "/"
    delete: bool = False
    filter: Filter | None = None
    shard: Shard | None = None


def _remote_excluded(rules: PlanRules, info: ObjectInfo) -> bool:
    if rules.filter is None:
        return False
    return rules.filter.exclude_reason(info.key[len(rules.prefix):], info.size) is not None


def plan_pair(pair: Pair, rules: PlanRules) -> PlanEntry:
    """Decide what one pair needs; pure (no I/O). See the module doc."""
    key, local, remote = pair.key, pair.local, pair.remote
    if key is not None and rules.shard is not None and not rules.shard.owns(key):
        return PlanEntry(PlanAction.IGNORE, key, "other-shard", remote=remote)
    if isinstance(local, BulkputError):
        if isinstance(local, SkippedPath):
            return PlanEntry(PlanAction.SKIP, key, local.reason, remote=remote, error=local, warning=True)
        if remote is not None and _guard_prefix(local) is not None:
            # an object under a directory the walk could not read: leave it alone
            return PlanEntry(PlanAction.IGNORE, key, "local-directory-unreadable", remote=remote, error=local)
        return PlanEntry(PlanAction.FAIL, key, local.code, remote=remote, error=local)
    if local is None:
        assert remote is not None
        if not rules.delete or _remote_excluded(rules, remote):
            return PlanEntry(PlanAction.IGNORE, key, Reason.NO_LOCAL, remote=remote)
        return PlanEntry(PlanAction.DELETE, key, Reason.NO_LOCAL, remote=remote)
    if local.excluded is not None:
        return PlanEntry(PlanAction.IGNORE, key, local.excluded, local=local, remote=remote)
    if remote is None:
        return PlanEntry(PlanAction.UPLOAD, key, Reason.NEW, local=local)
    return decide_entry(PlanEntry(PlanAction.RESOLVE, key, "", local=local, remote=remote), rules.strategy)


def decide_entry(
    entry: PlanEntry,
    strategy: Strategy,
    *,
    headed: ObjectInfo | None = None,
    md5_hex: str | None = None,
) -> PlanEntry:
    """Apply the strategy to an entry with both sides, with what a HEAD or a hash found."""
    assert entry.local is not None and entry.remote is not None
    if headed is not None:
        entry.remote = headed
    remote = RemoteFile.from_info(entry.remote, headed=headed is not None)
    local = LocalFile(entry.local.size, entry.local.mtime_ns, md5_hex)
    decision = strategy.decide(local, remote)
    entry.decision = decision
    entry.reason = decision.reason
    if decision.action is Action.UPLOAD:
        entry.action = PlanAction.UPLOAD
    elif decision.action is Action.SKIP:
        entry.action = PlanAction.SKIP
    else:
        entry.action = PlanAction.RESOLVE
    return entry

