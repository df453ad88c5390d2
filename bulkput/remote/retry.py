"""Retrying one request, and sharing the request budget fairly when the service pushes back.

``call_with_retry`` runs one operation (a zero-argument coroutine factory, so every attempt is
built and signed afresh) until it succeeds, fails for good, or uses up its budget:

- only errors whose ``retryable`` is true are tried again (see the table in
  :mod:`bulkput.errors`); anything else propagates at once, job-fatal errors included;
- the delay before attempt ``n + 1`` is "full jitter": ``uniform(0, min(max_delay,
  base * 2**(n-1)))``, with ``throttle_base_delay`` as the base for throttling answers;
- an object gives up after ``policy.max_attempts`` attempts, or when the next delay would take it
  past ``policy.max_elapsed`` seconds since its first attempt;
- a connection that was never made (:class:`~bulkput.errors.ConnectError`) gets
  ``policy.connect_attempts`` tries; if none of the object's attempts ever reached the server,
  the loop raises :class:`~bulkput.errors.EndpointUnreachable`, which stops the job;
- unless the endpoint had answered earlier in the job (``ConnectError.outage``): then it is
  retried, whatever ``max_attempts`` says, until ``policy.outage_wait`` seconds have passed
  since the object's first such failure, and only then is the job stopped.

Clock, sleep and random source are parameters, so tests run the whole policy without sleeping.
The settings are frozen data (:class:`~bulkput.config.RetryPolicy`); :class:`Retrier` binds them
to the running job's clock, sleep, random source and retry hook, and is what the engine, the
multipart uploader and sync call for every request kind.

``AdaptiveLimiter`` is the job's AIMD concurrency limit: halved when the service throttles
(once per round of requests, not once per throttled answer), raised by one after a window of
successes as large as the current limit, always within ``[minimum, maximum]``. It keeps the
(time, limit) history the benchmark docs draw as the request-rate curve.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from bulkput.config import RetryPolicy
from bulkput.errors import (
    BulkputError,
    ConnectError,
    EndpointUnreachable,
    RemoteError,
    ThrottledError,
)
from bulkput.remote.concurrency import ConcurrencyController

T = TypeVar("T")
_log = logging.getLogger(__name__)

# on_retry(error, attempt_that_failed, delay_before_next_attempt)
RetryHook = Callable[[BulkputError, int, float], object]


# A certificate that was refused will be refused again: no point retrying.
_HOPELESS_CONNECT_CODES = frozenset({"ClientConnectorCertificateError"})


def _unreachable(error: BulkputError, failures: int, attempt: int) -> EndpointUnreachable:
    unreachable = EndpointUnreachable(
        f"endpoint unreachable after {failures} attempt{'s' if failures != 1 else ''}: "
        f"{error.message}",
        code="EndpointUnreachable",
        status=None,
        bucket=error.bucket if isinstance(error, RemoteError) else None,
        key=None,
    )
    unreachable.attempts = attempt
    return unreachable


def backoff_delay(policy: RetryPolicy, attempt: int, throttled: bool, rng: Callable[[], float]) -> float:
    """The full-jitter delay to wait after failed attempt number ``attempt`` (1-based)."""
    base = policy.throttle_base_delay if throttled else policy.base_delay
    ceiling = min(policy.max_delay, base * (2.0 ** min(attempt - 1, 62)))
    return rng() * ceiling


def attempts_of(error: BaseException, default: int = 1) -> int:
    """How many attempts were made before ``error`` was raised by :func:`call_with_retry`."""
    if isinstance(error, BulkputError) and error.attempts > 0:
        return error.attempts
    return default


async def call_with_retry(
    op: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: RetryHook | None = None,
) -> tuple[T, int]:
    """Run ``op`` under ``policy``; return ``(result, attempts)``.

    The error that ends the loop is raised with an ``attempts`` attribute (read it with
    :func:`attempts_of`). ``rng`` returns floats in ``[0, 1)`` (e.g. ``random.Random(7).random``).
    """
    attempt = 0
    started: float | None = None
    connect_failures = 0
    reached_server = False
    outage_started: float | None = None
    while True:
        attempt += 1
        try:
            return await op(), attempt
        except BulkputError as error:
            if started is None:
                started = clock()
            error.attempts = attempt
            connect_failed = isinstance(error, ConnectError)
            if connect_failed:
                connect_failures += 1
            else:
                reached_server = True
            throttled = isinstance(error, ThrottledError)
            delay = backoff_delay(policy, attempt, throttled, rng) if error.retryable else 0.0
            out_of_budget = (
                not error.retryable
                or attempt >= policy.max_attempts
                or clock() - started + delay > policy.max_elapsed
            )
            if isinstance(error, ConnectError) and error.outage:
                # The store answered this job before: wait for it to come back, then give up
                # on the job (not just this object: the others cannot reach it either).
                if outage_started is None:
                    outage_started = clock()
                if clock() - outage_started + delay <= policy.outage_wait:
                    out_of_budget = False
                else:
                    raise _unreachable(error, connect_failures, attempt) from error
            elif connect_failed and not reached_server and (
                out_of_budget
                or connect_failures >= policy.connect_attempts
                or (isinstance(error, RemoteError) and error.service_code in _HOPELESS_CONNECT_CODES)
            ):
                # Never reached the server: no other object will either; abort the job.
                raise _unreachable(error, connect_failures, attempt) from error
            if out_of_budget:
                raise
            if on_retry is not None:
                on_retry(error, attempt, delay)
            await sleep(delay)


@dataclass(frozen=True, slots=True)
class Retrier:
    """The retry loop bound to one job: its policy (frozen settings) and its running
    environment (clock, sleep, random source, and ``on_retry(key, error)``, told before each
    retry). ``await retrier.call(key, op)`` is :func:`call_with_retry` for one request of
    ``key``; every request kind (PUT, parts, HEAD, LIST, DELETE) goes through it."""

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
    rng: Callable[[], float] = random.random
    on_retry: Callable[[str, BulkputError], object] | None = None

    def call(self, key: str, op: Callable[[], Awaitable[T]]) -> Awaitable[tuple[T, int]]:
        """Run ``op`` until it succeeds or fails for good: ``(result, attempts)``; the error
        that ends it carries ``attempts``. (Not a coroutine of its own: one frame less per
        request on the small-file path.)"""
        hook = self.on_retry
        return call_with_retry(
            op,
            self.policy,
            clock=self.clock,
            sleep=self.sleep,
            rng=self.rng,
            on_retry=None if hook is None else (lambda error, _attempt, _delay: hook(key, error)),
        )


class AdaptiveLimiter:
    """A limit on requests in flight, lowered on throttling.

    ``epoch = await acquire()`` takes a slot (waiting while ``in_flight >= limit``) and returns
    the current epoch; ``release()`` gives it back. ``record_throttle(epoch)`` lowers the limit
    unless a request started in an older epoch than the last decrease reports it (that burst was
    already answered). Without a ``controller`` (a pinned ``--concurrency``) the limit is AIMD:
    halved on throttling, ``record_success()`` adds one after ``limit`` successes in a row, up
    to ``maximum``. With one, the controller decides (:mod:`bulkput.remote.concurrency`): it is
    told each success with its bytes, its start and the requests in flight at its start, and
    each counted throttle.
    """

    def __init__(
        self,
        maximum: int,
        *,
        minimum: int = 1,
        initial: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        history_size: int = 100_000,
        controller: ConcurrencyController | None = None,
    ) -> None:
        if maximum < 1:
            raise ValueError("maximum must be at least 1")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        if controller is not None:
            initial = controller.limit
        self._limit = min(maximum, max(self.minimum, initial if initial is not None else maximum))
        self._clock = clock
        self.controller = controller
        self._in_flight = 0
        self._epoch = 0
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self.decreases = 0
        self.history: deque[tuple[float, int]] = deque(maxlen=history_size)
        self.history.append((clock(), self._limit))

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def try_acquire(self) -> int | None:
        """Take a slot without waiting: the epoch, or None when none is free."""
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return self._epoch
        return None

    async def acquire(self) -> int:
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return self._epoch
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # granted just as we were cancelled: hand the slot on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise
        return self._epoch

    def release(self) -> None:
        self._in_flight -= 1
        self._wake()

    @property
    def reason(self) -> str:
        """Why the limit is what it is (the controller's last decision, or AIMD)."""
        return self.controller.reason if self.controller is not None else "fixed (--concurrency)"

    def now(self) -> float:
        """The limiter's clock (a request's start, for :meth:`record_success`)."""
        return self._clock()

    def record_success(self, nbytes: int = 0, started: float | None = None,
                       in_flight: int = 0) -> None:  # fmt: skip
        """A request answered: its bytes, when it was sent (:meth:`now`) and the requests in
        flight then, itself included (:attr:`in_flight` after :meth:`acquire`)."""
        controller = self.controller
        if controller is not None:
            controller.completed(self._clock(), nbytes, started, in_flight)
            if controller.limit != self._limit:
                self._set_limit(controller.limit)
                self._wake()
            return
        self._successes += 1
        if self._successes >= self._limit and self._limit < self.maximum:
            self._successes = 0
            self._set_limit(self._limit + 1)
            self._wake()

    def record_throttle(self, epoch: int | None = None) -> None:
        if epoch is not None and epoch < self._epoch:
            return
        self._epoch += 1
        self._successes = 0
        self.decreases += 1
        if self.controller is not None:
            self.controller.throttled(self._clock())
            self._set_limit(max(self.minimum, self.controller.limit))
            return
        self._set_limit(max(self.minimum, self._limit // 2))

    def _set_limit(self, value: int) -> None:
        if value != self._limit:
            _log.info("requests in flight %d -> %d: %s", self._limit, value, self.reason)
            self._limit = value
            self.history.append((self._clock(), value))

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters and self._in_flight < self._limit:
            waiter = waiters.popleft()
            if waiter.done():
                continue
            self._in_flight += 1
            waiter.set_result(None)
