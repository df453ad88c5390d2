"""Fault decisions (seeded, per key, throttled) and the pure request checks."""

from __future__ import annotations

import pytest

from bulkput.server.dialects import DIALECTS, ServeError, detect_dialect
from bulkput.server.faults import FaultConfig, FaultInjector
from bulkput.server.validation import parse_content_md5, parse_metadata, parse_range, validate_key


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


def test_dialect_detection_by_authorization() -> None:
    assert detect_dialect("bce-auth-v1/ak/...", {}, {}).name == "bos"
    assert detect_dialect(None, {"authorization": "bce-auth-v1/..."}, {}).name == "bos"
    assert detect_dialect("OSS ak:sig", {}, {}).name == "oss"
    assert detect_dialect("OSS4-HMAC-SHA256 Credential=...", {}, {}).name == "oss"
    assert detect_dialect("AWS4-HMAC-SHA256 Credential=...", {}, {}).name == "s3"


def test_codes_per_dialect() -> None:
    assert DIALECTS["oss"].error_spec("EntityTooLarge").code == "InvalidArgument"
    assert DIALECTS["s3"].error_spec("EntityTooLarge").code == "EntityTooLarge"
    assert DIALECTS["oss"].error_spec("KeyTooLongError").code == "InvalidObjectName"
    assert DIALECTS["s3"].error_spec("MissingContentLength").status == 411


def test_request_checks() -> None:
    with pytest.raises(ServeError, match="too long"):
        validate_key("k" * 1024)
    validate_key("é" * 511)
    with pytest.raises(ServeError) as bad_md5:
        parse_content_md5("bm90IDE2IGJ5dGVz")  # valid base64, wrong length
    assert bad_md5.value.name == "InvalidDigest"
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=-10", 100) == (90, 100)
    assert parse_range("bytes=95-", 100) == (95, 100)
    assert parse_range("bytes=5-200", 100) == (5, 100)
    assert parse_range("items=1-2", 100) is None
    with pytest.raises(ServeError):
        parse_range("bytes=100-", 100)
    oss = DIALECTS["oss"]
    assert parse_metadata(oss, {"x-oss-meta-A-b": "v 1", "content-type": "x"}) == {"a-b": "v 1"}
    with pytest.raises(ServeError):
        parse_metadata(oss, {"x-oss-meta-x": "caf\u00e9"})
