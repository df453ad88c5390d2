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
from bulkput.remote.retry import (
    AdaptiveLimiter,
    Retrier,
    attempts_of,
    backoff_delay,
    call_with_retry,
)


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


# ---------------------------------------------------------------- real HTTP answers
# aioresponses 0.7.9 cannot build responses for aiohttp 3.14 (ClientResponse gained a required
# argument), so a scripted aiohttp server on 127.0.0.1 plays the service instead.

import json as _json  # noqa: E402
import socket  # noqa: E402

from aiohttp import web  # noqa: E402

from bulkput.remote.client import open_store  # noqa: E402
from bulkput.remote.credentials import Credentials  # noqa: E402
from bulkput.remote.store import ObjectHeaders, PartInfo  # noqa: E402
from bulkput.remote.target import Target, resolve_endpoint  # noqa: E402

RESET = "reset"


def error_answer(scheme: str, status: int, code: str | None) -> tuple[int, str, dict[str, str]]:
    if code is None:
        return status, "", {}
    if scheme == "bos":
        body = _json.dumps({"code": code, "message": "m", "requestId": "rid"})
        return status, body, {"Content-Type": "application/json"}
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>'
        f"{code}</Code><Message>m</Message><RequestId>rid</RequestId></Error>"
    )
    return status, xml, {"Content-Type": "application/xml"}


class ScriptedService:
    """Answers each request with the next scripted answer (the last one repeats)."""

    def __init__(self, answers: list) -> None:
        self.answers = answers
        self.requests = 0
        self.bucket_heads = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if request.method == "HEAD" and "/" not in request.path.strip("/"):
            # "does the bucket exist?" (asked once after a 500): yes, outside the script
            self.bucket_heads += 1
            return web.Response(status=200)
        answer = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        if answer == RESET:
            assert request.transport is not None
            request.transport.abort()  # the connection dies mid-request
            return web.Response(status=500)
        status, body, headers = answer
        return web.Response(status=status, body=body.encode(), headers=headers)


async def start_service(answers: list) -> tuple[ScriptedService, web.AppRunner, str]:
    service = ScriptedService(answers)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", service.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return service, runner, f"http://127.0.0.1:{port}"


def http_store(scheme: str, endpoint: str):
    target = Target.parse(f"{scheme}://bkt/")
    return open_store(
        target,
        endpoint=resolve_endpoint(target, endpoint, "us-east-1", "path"),
        credentials=Credentials("ak", "sk"),
    )


async def put_through(scheme: str, answers: list, policy: RetryPolicy = DEFAULT_POLICY):
    service, runner, endpoint = await start_service(answers)
    store = http_store(scheme, endpoint)
    fake = FakeTime()
    try:
        return await call_with_retry(
            lambda: store.put_object("k", b"body", content_md5=None, headers=ObjectHeaders()),
            policy, clock=fake.clock, sleep=fake.sleep, rng=lambda: 0.5,
        ), service  # fmt: skip
    except BulkputError as error:
        error.service_requests = service.requests  # type: ignore[attr-defined]
        raise
    finally:
        await store.close()
        await runner.cleanup()


OK = (200, "", {"ETag": '"abc"'})
HTTP_RETRYABLE = [
    (503, "SlowDown"),
    (500, "InternalError"),
    (400, "RequestTimeout"),
    (429, "TooManyRequests"),
    (502, None),
    (504, None),
    (408, None),
]
HTTP_JOB_FATAL = [
    (403, "SignatureDoesNotMatch"),
    (403, "InvalidAccessKeyId"),
    (403, "AccessDenied"),
    (404, "NoSuchBucket"),
]
HTTP_OBJECT_FATAL = [(400, "InvalidObjectName"), (400, "InvalidArgument"), (400, "InvalidDigest")]


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
@pytest.mark.parametrize(("status", "code"), HTTP_RETRYABLE)
async def test_http_transient_answers_are_retried(scheme: str, status: int, code: str | None) -> None:
    failure = error_answer(scheme, status, code)
    (result, attempts), service = await put_through(scheme, [failure, failure, OK])
    assert attempts == 3 == service.requests and result.etag == "abc"
    assert service.bucket_heads == (1 if (scheme, status) == ("s3", 500) else 0)


@pytest.mark.parametrize("scheme", ["s3", "oss", "bos"])
@pytest.mark.parametrize(("status", "code"), HTTP_JOB_FATAL + HTTP_OBJECT_FATAL)
async def test_http_fatal_answers_are_not_retried(scheme: str, status: int, code: str) -> None:
    with pytest.raises(BulkputError) as caught:
        await put_through(scheme, [error_answer(scheme, status, code), OK])
    assert caught.value.service_requests == 1  # type: ignore[attr-defined]
    assert caught.value.code == code and caught.value.request_id == "rid"
    assert caught.value.fatal_for_job == ((status, code) in HTTP_JOB_FATAL)


async def test_http_connection_reset_is_retried() -> None:
    (result, attempts), service = await put_through("s3", [RESET, RESET, OK])
    # aiohttp itself resends an idempotent PUT once when a kept-alive connection drops, so
    # two resets may cost our loop one or two attempts; either way the object gets through.
    assert result.etag == "abc" and attempts >= 2 and service.requests == 3


async def test_http_refused_connection_ends_as_endpoint_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store = http_store("oss", closed)
    attempts = 0

    def attempt():
        nonlocal attempts
        attempts += 1
        return store.put_object("k", b"x", content_md5=None, headers=ObjectHeaders())

    fake = FakeTime()
    try:
        with pytest.raises(EndpointUnreachable):
            await call_with_retry(attempt, RetryPolicy(connect_attempts=3), clock=fake.clock, sleep=fake.sleep)
    finally:
        await store.close()
    assert attempts == 3


async def test_http_200_whose_body_is_an_error_is_retried() -> None:
    _, error, headers = error_answer("s3", 200, "InternalError")
    ok = (
        '<?xml version="1.0"?><CompleteMultipartUploadResult><Bucket>bkt</Bucket><Key>k</Key>'
        "<ETag>&quot;x-2&quot;</ETag></CompleteMultipartUploadResult>"
    )
    service, runner, endpoint = await start_service([(200, error, headers), (200, ok, headers)])
    store = http_store("s3", endpoint)
    fake = FakeTime()
    try:
        result, attempts = await call_with_retry(
            lambda: store.complete_multipart_upload("k", "u1", [PartInfo(1, "a"), PartInfo(2, "b")]),
            DEFAULT_POLICY, clock=fake.clock, sleep=fake.sleep, rng=lambda: 0.0,
        )  # fmt: skip
    finally:
        await store.close()
        await runner.cleanup()
    assert attempts == 2 == service.requests and result.etag == "x-2"


# ---------------------------------------------------------------- Retrier


async def test_retrier_runs_the_one_loop_and_tells_each_retry_with_its_key() -> None:
    fake = FakeTime()
    told: list[tuple[str, str]] = []
    failures = [error_from_response(500, "InternalError"), error_from_response(503, "SlowDown")]

    async def op() -> str:
        if failures:
            raise failures.pop(0)
        return "done"

    retrier = Retrier(
        RetryPolicy(max_attempts=5), fake.clock, fake.sleep, lambda: 0.5,
        lambda key, error: told.append((key, error.code)),
    )
    assert await retrier.call("a/key", op) == ("done", 3)
    assert told == [("a/key", "InternalError"), ("a/key", "SlowDown")]
    assert len(fake.sleeps) == 2


async def test_try_acquire_takes_a_free_slot_without_waiting() -> None:
    limiter = AdaptiveLimiter(1)
    assert limiter.try_acquire() == 0
    assert limiter.try_acquire() is None
    limiter.release()
    assert limiter.in_flight == 0
