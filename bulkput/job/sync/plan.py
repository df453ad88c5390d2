"""One pair of the merge-join -> one :class:`PlanEntry`: upload, skip, delete, fail, ignore, or
"resolve" (the strategy wants a HEAD or the local MD5 first). Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bulkput.errors import BulkputError, SkippedPath, ValidationError
from bulkput.job.listing.join import Pair, guard_prefix
from bulkput.job.shard import Shard
from bulkput.job.sync.strategies import Action, Decision, LocalFile, Reason, RemoteFile, Strategy
from bulkput.local.filters import Filter
from bulkput.local.names import refuse_unsafe_key
from bulkput.local.walk import SkippedFolder, WalkEntry
from bulkput.remote.store import ObjectInfo


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
    warning: bool = False  # a skip that is a warning (symlink, special file)
    md5_hex: str | None = None  # the local MD5, when a strategy had it computed


@dataclass(frozen=True, slots=True)
class PlanRules:
    strategy: Strategy
    prefix: str  # destination prefix, "" or ending with "/"
    delete: bool = False
    filter: Filter | None = None
    shard: Shard | None = None
    allow_dot_segments: bool = False  # else keys with ./.. segments or control characters fail


def _remote_excluded(rules: PlanRules, info: ObjectInfo) -> bool:
    if rules.filter is None:
        return False
    return rules.filter.exclude_reason(info.key[len(rules.prefix):], info.size) is not None


def plan_pair(pair: Pair, rules: PlanRules) -> PlanEntry:
    """Decide what one pair needs; pure (no I/O). See the module doc."""
    key, local, remote = pair.key, pair.local, pair.remote
    if key is not None and rules.shard is not None and not rules.shard.owns(key):
        return PlanEntry(PlanAction.IGNORE, key, "other-shard", remote=remote)
    if isinstance(local, SkippedFolder):
        # a folder the walk did not enter (excluded, or a symbolic link): not part of this job
        return PlanEntry(PlanAction.IGNORE, key, local.reason, remote=remote)
    if isinstance(local, BulkputError):
        if isinstance(local, SkippedPath):
            return PlanEntry(PlanAction.SKIP, key, local.reason, remote=remote, error=local, warning=True)
        if remote is not None and guard_prefix(local) is not None:
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
    if not rules.allow_dot_segments and key is not None:
        try:
            refuse_unsafe_key(key, local.path)
        except ValidationError as error:
            return PlanEntry(PlanAction.FAIL, key, error.code, local=local, remote=remote, error=error)
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
