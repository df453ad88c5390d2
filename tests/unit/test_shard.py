"""``Shard.parse``: K/N, and auto/N from Kubernetes' $JOB_COMPLETION_INDEX."""

from __future__ import annotations

import pytest

from bulkput.errors import UsageError
from bulkput.job.shard import Shard, ShardRun


def test_auto_takes_the_completion_index():
    assert Shard.parse("auto/4", env={"JOB_COMPLETION_INDEX": "3"}) == Shard(3, 4)


def test_auto_without_the_completion_index_is_a_usage_error():
    with pytest.raises(UsageError, match=r"\$JOB_COMPLETION_INDEX is not set"):
        Shard.parse("auto/4", env={})


def test_auto_with_an_index_past_n_is_a_usage_error():
    with pytest.raises(UsageError, match="need 0 <= K < N"):
        Shard.parse("auto/4", env={"JOB_COMPLETION_INDEX": "4"})


def test_auto_with_a_bad_index_is_a_usage_error():
    with pytest.raises(UsageError, match="is not a shard number"):
        Shard.parse("auto/4", env={"JOB_COMPLETION_INDEX": "x"})


def test_shard_run_round_trips_and_refuses_incomplete_records():
    run = ShardRun("j", Shard(1, 3), 2)
    assert ShardRun.from_json(run.to_json()) == run
    assert ShardRun.from_json({"job": "j", "shard": 1, "shards": 3}) is None
    assert ShardRun.from_json({"job": "j", "shard": 3, "shards": 3, "attempt": 0}) is None
