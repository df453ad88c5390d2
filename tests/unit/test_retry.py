"""The retry loop and the AIMD limiter, with an injected clock, sleep and random source."""

from __future__ import annotations

import asyncio
import random

import pytest

from bulkput.config import RetryPolicy
from bulkput.errors import (
    AuthError,
    BulkputError,
    ConnectError,
    EndpointUnreachable,
    LocalInputError,
    NotFoundError,
    ServiceError,
    ThrottledError,
    TransportError,
    error_from_response,
)
from bulkput.retry import AdaptiveLimiter, attempts_of, backoff_delay, call_with_retry


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Script:
    """An operation that fails with the given errors in turn, then returns "ok"."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


DEFAULT_POLICY = RetryPolicy()


def run(op, policy=DEFAULT_POLICY, rng=lambda: 1.0 - 1e-12, on_retry=None):
    fake = FakeTime()
    coro = call_with_retry(op, policy, clock=fake.clock, sleep=fake.sleep, rng=rng, on_retry=on_retry)
    return fake, coro


RETRYABLE_ANSWERS = [
    (400, "RequestTimeout"),
    (408, None),
    (429, None),
    (429, "TooManyRequests"),
    (500, None),
    (500, "InternalError"),
    (502, None),
    (503, None),
    (503, "SlowDown"),
    (503, "ServiceUnavailable"),
    (504, None),
    (400, "Throttling"),
    (400, "ThrottlingException"),
    (400, "RequestLimitExceeded"),
    (503, "QpsLimitExceeded"),
    (400, "RequestTimeoutException"),
    (409, "PriorRequestNotComplete"),
    (403, "RequestTimeTooSkewed"),
    (400, "RequestExpired"),
    (400, "BadDigest"),
    (200, "InternalError"),  # a 200 whose body is an error (CompleteMultipartUpload)
]

FATAL_FOR_JOB = [
    (403, "InvalidAccessKeyId"),
    (403, "SignatureDoesNotMatch"),
    (403, "AccessDenied"),
    (403, "InvalidSecurityToken"),
    (400, "ExpiredToken"),
    (404, "NoSuchBucket"),
    (403, None),
    (401, None),
]

FATAL_FOR_OBJECT = [
    (400, "InvalidObjectName"),
    (400, "KeyTooLongError"),
    (400, "EntityTooLarge"),
    (400, "InvalidArgument"),
    (400, "InvalidDigest"),
    (400, "MetadataTooLarge"),
    (400, "InvalidStorageClass"),
    (411, "MissingContentLength"),
    (404, "NoSuchKey"),
    (400, None),
]


@pytest.mark.parametrize(("status", "code"), RETRYABLE_ANSWERS)
async def test_transient_answers_are_retried_then_succeed(status: int, code: str | None) -> None:
    op = Script(error_from_response(status, code, key="k"), error_from_response(status, code, key="k"))
    fake, coro = run(op)
    result, attempts = await coro
    assert (result, attempts, op.calls) == ("ok", 3, 3)
    assert len(fake.sleeps) == 2


@pytest.mark.parametrize(("status", "code"), FATAL_FOR_JOB)
async def test_job_fatal_answers_propagate_at_once(status: int, code: str | None) -> None:
    op = Script(error_from_response(status, code, bucket="b"))
    fake, coro = run(op)
    with pytest.raises(BulkputError) as caught:
        await coro
    assert caught.value.fatal_for_job
    assert (op.calls, fake.sleeps, attempts_of(caught.value)) == (1, [], 1)


@pytest.mark.parametrize(("status", "code"), FATAL_FOR_OBJECT)
async def test_object_fatal_answers_propagate_at_once(status: int, code: str | None) -> None:
    op = Script(error_from_response(status, code, key="k"))
    fake, coro = run(op)
    with pytest.raises(BulkputError) as caught:
        await coro
    assert not caught.value.fatal_for_job and not caught.value.retryable
    assert (op.calls, fake.sleeps) == (1, [])


async def test_connection_resets_and_timeouts_are_retried() -> None:
    op = Script(
        TransportError("connection reset by peer", code="ConnectionReset"),
        TransportError("no byte for 60 s", code="ReadTimeout"),
    )
    _, coro = run(op)
    assert await coro == ("ok", 3)


async def test_local_errors_are_not_retried() -> None:
    op = Script(LocalInputError("no such file", path="/x"))
    _, coro = run(op)
    with pytest.raises(LocalInputError):
        await coro
    assert op.calls == 1


async def test_attempt_cap_raises_the_last_error_with_its_attempt_count() -> None:
    policy = RetryPolicy(max_attempts=4)
    op = Script(*[error_from_response(500, "InternalError", key="k") for _ in range(10)])
    fake, coro = run(op, policy)
    with pytest.raises(ServiceError) as caught:
        await coro
    assert op.calls == 4
    assert attempts_of(caught.value) == 4
    assert len(fake.sleeps) == 3


async def test_time_cap_stops_before_a_sleep_that_would_pass_it() -> None:
    policy = RetryPolicy(max_attempts=100, base_delay=1.0, max_delay=8.0, max_elapsed=10.0)
    op = Script(*[error_from_response(503, None) for _ in range(100)])
    fake, coro = run(op, policy)  # rng at its top: delays 1, 2, 4, 8 ...
    with pytest.raises(ThrottledError):
        await coro
    # throttle base 0.5: 0.5 + 1 + 2 + 4 = 7.5; the next (8) would end past 10 s
    assert fake.sleeps == pytest.approx([0.5, 1.0, 2.0, 4.0])
    assert op.calls == 5


@pytest.mark.parametrize("seed", range(5))
def test_full_jitter_bounds(seed: int) -> None:
    policy = RetryPolicy(base_delay=0.1, throttle_base_delay=0.4, max_delay=3.0)
    rng = random.Random(seed).random
    for attempt in range(1, 30):
        ceiling = min(3.0, 0.1 * 2 ** (attempt - 1))
        delay = backoff_delay(policy, attempt, False, rng)
        assert 0.0 <= delay <= ceiling
        throttled = backoff_delay(policy, attempt, True, rng)
        assert 0.0 <= throttled <= min(3.0, 0.4 * 2 ** (attempt - 1))
    assert backoff_delay(policy, 3, False, lambda: 0.5) == pytest.approx(0.2)
    assert backoff_delay(policy, 1000, False, lambda: 0.5) == pytest.approx(1.5)


async def test_throttling_uses_the_throttle_base() -> None:
    policy = RetryPolicy(base_delay=0.01, throttle_base_delay=1.0, max_delay=100.0)
    op = Script(error_from_response(503, "SlowDown"), error_from_response(500, None))
    fake, coro = run(op, policy, rng=lambda: 0.5)
    await coro
    assert fake.sleeps == pytest.approx([0.5, 0.01])


async def test_on_retry_sees_each_failure() -> None:
    seen: list[tuple[str, int, float]] = []
    op = Script(error_from_response(500, None), error_from_response(429, None))
    _, coro = run(op, rng=lambda: 0.0, on_retry=lambda e, n, d: seen.append((e.code, n, d)))
    await coro
    assert seen == [("HTTP500", 1, 0.0), ("HTTP429", 2, 0.0)]


async def test_endpoint_never_reached_becomes_endpoint_unreachable() -> None:
    policy = RetryPolicy(connect_attempts=3, max_attempts=10)
    op = Script(*[ConnectError("connection refused", code="ConnectionRefused", bucket="b") for _ in range(10)])
    _, coro = run(op, policy)
    with pytest.raises(EndpointUnreachable) as caught:
        await coro
    assert op.calls == 3
    assert caught.value.fatal_for_job and caught.value.exit_code == 3
    assert "connection refused" in caught.value.one_line()


async def test_connect_failures_after_reaching_the_server_are_ordinary_retries() -> None:
    policy = RetryPolicy(connect_attempts=2, max_attempts=10)
    op = Script(
        error_from_response(500, None),
        ConnectError("refused", code="ConnectionRefused"),
        ConnectError("refused", code="ConnectionRefused"),
        ConnectError("refused", code="ConnectionRefused"),
    )
    _, coro = run(op, policy)
    assert await coro == ("ok", 5)


async def test_each_attempt_calls_the_factory_again() -> None:
    built: list[int] = []

    def factory():
        built.append(len(built))

        async def attempt() -> int:
            if len(built) < 3:
                raise error_from_response(500, None)
            return len(built)

        return attempt()

    _, coro = run(factory)
    assert await coro == (3, 3)


def test_error_classes_match_the_table() -> None:
    assert isinstance(error_from_response(403, "AccessDenied"), AuthError)
    assert isinstance(error_from_response(404, "NoSuchBucket"), NotFoundError)
    assert isinstance(error_from_response(503, "SlowDown"), ThrottledError)


# ---------------------------------------------------------------- AdaptiveLimiter


async def test_limiter_halves_once_per_burst_and_grows_back() -> None:
    ticks = iter(range(1000))
    limiter = AdaptiveLimiter(8, clock=lambda: float(next(ticks)))
    epochs = [await limiter.acquire() for _ in range(8)]
    assert limiter.in_flight == 8 and limiter.limit == 8
    for epoch in epochs:  # every request of the burst was throttled: one decrease
        limiter.record_throttle(epoch)
        limiter.release()
    assert limiter.limit == 4 and limiter.decreases == 1
    epoch = await limiter.acquire()
    limiter.record_throttle(epoch)
    limiter.release()
    assert limiter.limit == 2
    for _ in range(2):
        limiter.record_success()
    assert limiter.limit == 3
    for _ in range(3):
        limiter.record_success()
    assert limiter.limit == 4
    assert [limit for _, limit in limiter.history] == [8, 4, 2, 3, 4]


async def test_limiter_bounds() -> None:
    limiter = AdaptiveLimiter(3)
    for _ in range(10):
        limiter.record_throttle()
    assert limiter.limit == 1
    for _ in range(100):
        limiter.record_success()
    assert limiter.limit == 3


async def test_limiter_blocks_at_the_limit_and_wakes_in_order() -> None:
    limiter = AdaptiveLimiter(2)
    await limiter.acquire()
    await limiter.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await limiter.acquire()
        order.append(n)

    tasks = [asyncio.create_task(waiter(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert order == [] and limiter.in_flight == 2
    limiter.release()
    await asyncio.sleep(0)
    assert order == [0]
    limiter.release()
    limiter.release()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2] and limiter.in_flight == 2


async def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire()
    task = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    limiter.release()
    assert limiter.in_flight == 0
    await limiter.acquire()
    assert limiter.in_flight == 1
