"""Fault decisions: seeded, per key, throttled, and the settings they come from."""

from __future__ import annotations

import pytest

from bulkput.server.faults import FaultConfig, FaultInjector


def test_seeded_faults_repeat_and_respect_operations() -> None:
    config = FaultConfig(rate=0.3, mix=("internal", "slowdown"), seed=42)
    first = [FaultInjector(config).choose("PutObject", f"k{i}") for i in range(1)]
    a, b = FaultInjector(config), FaultInjector(config)
    run_a = [a.choose("PutObject", f"k{i}") for i in range(200)]
    assert run_a == [b.choose("PutObject", f"k{i}") for i in range(200)]
    assert 20 < sum(kind is not None for kind in run_a) < 100
    assert first[0] == run_a[0]
    assert FaultInjector(config).choose("GetObject", "k") is None


def test_fault_keys_always_fail_matching_keys_only() -> None:
    injector = FaultInjector(FaultConfig(keys=("poison/*",), keys_kind="reset"))
    assert [injector.choose("PutObject", "poison/a") for _ in range(5)] == ["reset"] * 5
    assert injector.choose("UploadPart", "poison/b") == "reset"
    assert injector.choose("PutObject", "fine") is None


def test_throttle_answers_slowdown_above_the_rate() -> None:
    now = [100.0]
    injector = FaultInjector(FaultConfig(throttle_rps=3), clock=lambda: now[0])
    burst = [injector.choose("PutObject", "k") for _ in range(5)]
    assert burst == [None, None, None, "slowdown", "slowdown"]
    now[0] += 1.0  # a second later the bucket is full again
    assert [injector.choose("PutObject", "k") for _ in range(3)] == [None, None, None]


def test_fault_config_rejects_unknown_kinds() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        FaultConfig(rate=0.1, mix=("explode",))
    with pytest.raises(ValueError):
        FaultConfig(rate=1.5)


def test_fault_settings_in_one_line_for_people() -> None:
    assert FaultConfig().describe() == "none"
    assert FaultConfig(rate=0.005, mix=("internal", "slow"), seed=7).describe() == (
        "0.5% of PutObject and UploadPart requests fail (internal, slow: answer held 30000 ms); "
        "seed 7"
    )
    latency = FaultConfig(rate=1.0, mix=("latency",), latency_ms=40, operations=frozenset({"PutObject"}))
    assert latency.describe() == "100% of PutObject requests are delayed (latency 40 ms)"
    assert FaultConfig(throttle_rps=300).describe() == "503 SlowDown above 300 requests/s"
