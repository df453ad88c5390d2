"""plan_pair and decide_entry (bulkput/job/sync/plan.py): one pair -> one plan entry."""

from __future__ import annotations

from bulkput.errors import BulkputError, LocalInputError, SkippedPath, SymlinkLoopError
from bulkput.job.listing.formats import format_mtime
from bulkput.job.listing.join import Pair
from bulkput.job.shard import Shard
from bulkput.job.sync.plan import PlanAction, PlanRules, decide_entry, plan_pair
from bulkput.job.sync.strategies import Reason, SizeAndMtime, SizeOnly
from bulkput.local.filters import Filter
from bulkput.local.walk import SkippedFolder, WalkEntry
from bulkput.remote.store import ObjectInfo

S = 1_000_000_000


def entry(key: str, size: int = 1, mtime_ns: int = 100 * S, excluded: str | None = None) -> WalkEntry:
    return WalkEntry(key, f"/src/{key}", size, mtime_ns, excluded=excluded)


def obj(key: str, size: int = 1, last_modified: str | None = None) -> ObjectInfo:
    return ObjectInfo(key, size, etag=None, last_modified=last_modified)


RULES = PlanRules(strategy=SizeAndMtime(), prefix="p/")
DELETE_RULES = PlanRules(strategy=SizeAndMtime(), prefix="p/", delete=True)


def test_plan_new_local_file_uploads() -> None:
    planned = plan_pair(Pair("p/a", entry("a"), None), RULES)
    assert (planned.action, planned.reason) == (PlanAction.UPLOAD, Reason.NEW)


def test_plan_remote_only_deletes_only_with_delete() -> None:
    pair = Pair("p/gone", None, obj("p/gone"))
    assert plan_pair(pair, RULES).action is PlanAction.IGNORE
    planned = plan_pair(pair, DELETE_RULES)
    assert (planned.action, planned.reason) == (PlanAction.DELETE, Reason.NO_LOCAL)


def test_plan_excluded_remote_is_never_deleted() -> None:
    rules = PlanRules(SizeOnly(), "p/", delete=True, filter=Filter.from_patterns([("exclude", "*.log")]))
    assert plan_pair(Pair("p/x.log", None, obj("p/x.log")), rules).action is PlanAction.IGNORE
    assert plan_pair(Pair("p/x.txt", None, obj("p/x.txt")), rules).action is PlanAction.DELETE
    # a local file excluded (reported by the walk) keeps its object too
    excluded = entry("big", excluded="excluded: larger than --max-size 1")
    assert plan_pair(Pair("p/big", excluded, obj("p/big")), rules).action is PlanAction.IGNORE


def test_plan_shard_owns_only_its_keys() -> None:
    shard_keys = {k: [Shard(i, 3).owns(k) for i in range(3)] for k in (f"p/k{i}" for i in range(30))}
    for key, owners in shard_keys.items():
        assert sum(owners) == 1
        for index in range(3):
            rules = PlanRules(SizeOnly(), "p/", delete=True, shard=Shard(index, 3))
            uploaded = plan_pair(Pair(key, entry(key[2:]), None), rules).action
            deleted = plan_pair(Pair(key, None, obj(key)), rules).action
            expected_upload = PlanAction.UPLOAD if owners[index] else PlanAction.IGNORE
            expected_delete = PlanAction.DELETE if owners[index] else PlanAction.IGNORE
            assert (uploaded, deleted) == (expected_upload, expected_delete)


def test_plan_skipped_symlink_is_a_warning_and_protects_its_object() -> None:
    link = SkippedPath("skipped symbolic link", key="ln", path="/src/ln", reason="symlink")
    planned = plan_pair(Pair("p/ln", link, obj("p/ln")), DELETE_RULES)
    assert (planned.action, planned.reason, planned.warning) == (PlanAction.SKIP, "symlink", True)


def test_plan_walk_errors_fail_and_guard() -> None:
    loop = SymlinkLoopError("loop", key="d/loop/", path="/src/d/loop")
    assert plan_pair(Pair("p/d/loop/x", loop, obj("p/d/loop/x")), DELETE_RULES).action is PlanAction.IGNORE
    failed = plan_pair(Pair("p/d/loop/", loop, None), DELETE_RULES)
    assert failed.action is PlanAction.FAIL and failed.error is loop
    bad: BulkputError = LocalInputError("cannot stat", key="f", path="/src/f")
    assert plan_pair(Pair("p/f", bad, obj("p/f")), DELETE_RULES).action is PlanAction.FAIL


def test_plan_existing_object_goes_to_the_strategy_and_resolves_with_head() -> None:
    local = entry("a", size=5, mtime_ns=100 * S)
    same_size_old_upload = obj("p/a", size=5, last_modified="1970-01-01T00:00:50Z")
    planned = plan_pair(Pair("p/a", local, same_size_old_upload), RULES)
    assert (planned.action, planned.reason) == (PlanAction.RESOLVE, Reason.NEED_HEAD)
    head = ObjectInfo("p/a", 5, last_modified="Thu, 01 Jan 1970 00:00:50 GMT",
                      metadata={"mtime": format_mtime(100 * S)})
    resolved = decide_entry(planned, RULES.strategy, headed=head)
    assert (resolved.action, resolved.reason) == (PlanAction.SKIP, Reason.UNCHANGED)

    grown = plan_pair(Pair("p/a", entry("a", size=6), same_size_old_upload), RULES)
    assert (grown.action, grown.reason) == (PlanAction.UPLOAD, Reason.SIZE)
    later = obj("p/a", size=5, last_modified="1970-01-01T00:03:00Z")
    assert plan_pair(Pair("p/a", local, later), RULES).action is PlanAction.SKIP


def test_plan_folder_not_entered_leaves_its_objects_alone() -> None:
    folder = SkippedFolder("ln/", "/src/ln", "symlink")
    for pair in (Pair("p/ln/a", folder, obj("p/ln/a")), Pair("p/ln/", folder, None)):
        planned = plan_pair(pair, DELETE_RULES)
        assert (planned.action, planned.reason, planned.warning) == (PlanAction.IGNORE, "symlink", False)


def test_plan_unsafe_key_fails_unless_allowed() -> None:
    for key in ("p/a/../b", "p/new\nline"):
        planned = plan_pair(Pair(key, entry(key[2:]), None), RULES)
        assert planned.action is PlanAction.FAIL and planned.reason == "ValidationError"
        assert planned.error is not None and "--allow-dot-segments" in planned.error.message
        allowed = PlanRules(strategy=SizeAndMtime(), prefix="p/", allow_dot_segments=True)
        assert plan_pair(Pair(key, entry(key[2:]), None), allowed).action is PlanAction.UPLOAD
