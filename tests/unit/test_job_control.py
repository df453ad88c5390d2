"""JobControl.concurrency(): the limit on requests in flight and why, as the progress shows it."""

from __future__ import annotations

from bulkput.config import TransferConfig
from bulkput.job.run import ConcurrencyState, JobControl, build_engine
from tests.unit.test_engine import FakeStore


def test_no_state_before_the_job_starts() -> None:
    assert JobControl().concurrency() is None


def test_the_adaptive_limit_and_the_controllers_reason() -> None:
    control = JobControl()
    config = TransferConfig()
    engine = build_engine(FakeStore(), config, control=control)
    state = control.concurrency()
    assert state is not None and engine.limiter.controller is not None
    assert state.limit == config.initial_concurrency and state.in_flight == 0
    assert state.reason == engine.limiter.controller.reason
    engine.limiter.record_throttle()  # the store throttled: the limit halves, the reason says so
    lowered = control.concurrency()
    assert lowered is not None and lowered.limit == config.initial_concurrency // 2
    assert lowered.reason == engine.limiter.controller.reason != state.reason


def test_a_pinned_limit_says_so() -> None:
    control = JobControl()
    build_engine(FakeStore(), TransferConfig(concurrency=8), control=control)
    assert control.concurrency() == ConcurrencyState(8, "fixed (--concurrency)", 0)
