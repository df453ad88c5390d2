"""How many requests to keep in flight: a pure decision rule fed by completions and throttles.

On a link with a round-trip time, throughput is ``in flight / latency`` (Little's law) until
the client's CPU, the link or the store is the limit: 64 requests at 40 ms can never pass
1,600 objects/s. Nobody knows the right number for their link, so the controller finds it: it
starts at a modest limit, doubles while throughput keeps rising, settles where it stops rising
(back at the lower limit when more requests only queued: latency climbed without throughput),
halves on throttling, and probes a little higher when latency rises at a steady limit or
every ``probe_every`` windows, in case the link changed.

Inputs (all with the caller's clock, so tests run on synthetic traces without sleeping):
``completed(now, nbytes, in_flight, latency)`` per successful request, ``throttled(now)`` per throttle
signal (503 SlowDown, 429, refused connections) that the limiter counts as new. Output:
``limit`` and ``reason`` (why it last changed). Decisions are taken once per *window*: at least
``window_seconds`` (and at least ``window_latencies`` times the last window's latency, so a
change of the limit has shown in the completions before it is judged) and
``window_completions`` completions since the last decision.

Truth table (one decision per closed window; "rose" means objects/s or bytes/s at least
``gain`` above the previous window's):

| state | condition | new limit | next state | reason |
|---|---|---|---|---|
| any | window not closed yet | same | same | - |
| any | a throttle signal (not per window) | limit / 2 (>= minimum) | hold, cooldown windows | throttled |
| any | below the limit before the last throttle (per completion) | +1 per ``limit`` completions | same | recovering |
| any | requests in flight averaged under ``saturation`` of the limit | same | same | not using the limit |
| grow | rose, limit < maximum | limit x ``growth`` (<= maximum) | grow | throughput rose |
| grow | rose, limit == maximum | same | hold | at the maximum |
| grow | did not rise | the previous limit | hold | no gain above it |
| hold | still recovering, or in cooldown (after a throttle) | same | hold | - |
| hold | limit == maximum | same | hold | - |
| hold | latency ``latency_rise`` above the hold's best (the link or the store got slower) | limit x 5/4 | probe | latency rose: probing |
| hold | ``probe_every`` windows held | limit x 5/4 | probe | probing |
| probe | rose | limit x ``growth`` (<= maximum) | grow | throughput rose |
| probe | did not rise | the limit before the probe | hold | no gain above it |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class ConcurrencySettings:
    """What the user asked for. ``adaptive=False`` (``--concurrency N``) keeps ``initial``
    (= ``maximum``) except for throttling."""

    initial: int = 64
    maximum: int = 512
    minimum: int = 1
    window_seconds: float = 0.1
    window_latencies: float = 2.0
    window_completions: int = 32
    gain: float = 0.10
    growth: float = 2.0
    latency_rise: float = 0.5
    saturation: float = 0.7
    probe_every: int = 12
    throttle_cooldown: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")


class Phase(Enum):
    GROW = "grow"
    HOLD = "hold"
    PROBE = "probe"


@dataclass(frozen=True, slots=True)
class WindowStats:
    limit: int
    objects_per_s: float
    bytes_per_s: float
    mean_in_flight: float
    measured_latency: float | None = None  # mean seconds per request, when timed

    @property
    def latency(self) -> float:
        """Seconds per request: as timed, else by Little's law (in flight / throughput)."""
        if self.measured_latency is not None:
            return self.measured_latency
        return self.mean_in_flight / self.objects_per_s if self.objects_per_s else math.inf

    @property
    def rate(self) -> float:
        """Requests per second. With timed requests, in flight / latency (Little's law):
        counting answers per window is noisy when they come in waves (all requests of a
        round trip sent together, answered together), a mean latency is not."""
        if self.measured_latency:
            return self.mean_in_flight / self.measured_latency
        return self.objects_per_s


class ConcurrencyController:
    """The rule of the module docstring. Not thread-safe; one per job."""

    def __init__(self, settings: ConcurrencySettings, now: float) -> None:
        self.settings = settings
        self.limit = settings.initial
        self.phase = Phase.GROW
        self.reason = f"start at {settings.initial}"
        self.changes: list[tuple[float, int, str]] = [(now, self.limit, self.reason)]
        self._before: WindowStats | None = None  # the last window at a lower limit
        self._fallback = self.limit  # where a failed growth or probe returns to
        self._held = 0
        self._cooldown = 0
        self._hold_latency = math.inf
        self._window_length = settings.window_seconds
        self._waiting_for_first = True
        self._recover_to = 0
        self._successes = 0
        self._start_window(now)

    # --- inputs -----------------------------------------------------------------------------

    def completed(self, now: float, nbytes: int, in_flight: int,
                  latency: float | None = None) -> None:  # fmt: skip
        if self._recover_to > self.limit:  # after a throttle: AIMD's +1 per limit successes
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self._set(now, self.limit + 1, "recovering after throttling")
        if self._waiting_for_first:  # the first window starts with the first answer, not the
            self._waiting_for_first = False  # job: connecting is not the link's throughput
            self._window_start = now
        self._count += 1
        self._bytes += nbytes
        self._in_flight_sum += in_flight
        if latency is not None:
            self._latency_sum += latency
            self._timed += 1
        if now - self._window_start >= self._window_length and (
            self._count >= self.settings.window_completions
        ):
            self._close_window(now)

    def throttled(self, now: float) -> None:
        # where recovery may climb back to by itself: the highest limit since the last probe
        self._recover_to = max(self._recover_to, self.limit)
        self._successes = 0
        lowered = max(self.settings.minimum, self.limit // 2)
        self._fallback = lowered
        self._enter_hold()
        self._cooldown = self.settings.throttle_cooldown
        self._set(now, lowered, "throttled by the store")
        self._before = None
        self._start_window(now)

    # --- the rule ---------------------------------------------------------------------------

    def _close_window(self, now: float) -> None:
        elapsed = now - self._window_start
        stats = WindowStats(
            self.limit, self._count / elapsed, self._bytes / elapsed,
            self._in_flight_sum / self._count,
            self._latency_sum / self._timed if self._timed else None,
        )  # fmt: skip
        self._window_length = max(self.settings.window_seconds,
                                  min(0.5, self.settings.window_latencies * stats.latency))
        self._start_window(now)
        if stats.mean_in_flight < self.settings.saturation * self.limit:
            return  # the limit is not what holds the job back: more would change nothing
        if self.phase is Phase.HOLD:
            self._decide_hold(now, stats)
        else:
            self._decide_growth(now, stats)

    def _decide_growth(self, now: float, stats: WindowStats) -> None:
        before = self._before
        if before is not None and before.limit < stats.limit and not self._rose(stats, before):
            self._enter_hold()
            self._set(now, self._fallback,
                      f"no gain from {stats.limit} over {before.limit}: holding")  # fmt: skip
            return
        if stats.limit >= self.settings.maximum:
            self._enter_hold()
            self.reason = f"at the maximum ({self.settings.maximum})"
            return
        self._before = stats
        self._fallback = stats.limit
        self.phase = Phase.GROW
        grown = min(self.settings.maximum, max(stats.limit + 1,
                                               round(stats.limit * self.settings.growth)))
        what = "throughput rose" if before is not None else "first window"
        self._set(now, grown, f"{what} at {stats.limit} ({stats.objects_per_s:.0f}/s): trying {grown}")

    def _decide_hold(self, now: float, stats: WindowStats) -> None:
        if self._recover_to > self.limit:
            return  # still climbing back after a throttle
        latency_up = stats.latency > self._hold_latency * (1 + self.settings.latency_rise)
        self._hold_latency = min(self._hold_latency, stats.latency)
        if self._cooldown:
            self._cooldown -= 1
            return
        self._held += 1
        if self.limit >= self.settings.maximum:
            return
        if latency_up or self._held >= self.settings.probe_every:
            why = (f"latency rose to {stats.latency * 1000:.0f} ms" if latency_up
                   else f"{self._held} windows at {self.limit}")  # fmt: skip
            self._before = stats
            self._fallback = self.limit
            self.phase = Phase.PROBE
            probe = min(self.settings.maximum, max(self.limit + 1, self.limit * 5 // 4))
            self._set(now, probe, f"{why}: probing {probe}")

    def _rose(self, stats: WindowStats, before: WindowStats) -> bool:
        factor = 1 + self.settings.gain
        return (
            stats.rate >= before.rate * factor
            or (before.bytes_per_s > 0 and stats.bytes_per_s >= before.bytes_per_s * factor)
        )

    # --- bookkeeping ------------------------------------------------------------------------

    def _enter_hold(self) -> None:
        self.phase = Phase.HOLD
        self._held = 0
        self._hold_latency = math.inf

    def _start_window(self, now: float) -> None:
        self._window_start = now
        self._count = 0
        self._bytes = 0
        self._in_flight_sum = 0
        self._latency_sum = 0.0
        self._timed = 0

    def _set(self, now: float, limit: int, reason: str) -> None:
        self.reason = reason
        if limit != self.limit:
            self.limit = limit
            self.changes.append((now, limit, reason))


def open_file_ceiling(reserve: int = 64) -> int:
    """How many requests the process can keep in flight on its open-file budget: each may hold
    a socket and a file. The soft ``RLIMIT_NOFILE`` is raised to the hard one first (up to
    65,536), as Go programs such as s5cmd get by default."""
    try:
        import resource
    except ImportError:  # not on this platform
        return 512
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65_536 if hard == resource.RLIM_INFINITY else min(hard, 65_536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return 65_536
    return max(1, (soft - reserve) // 2)


def controller_for(concurrency: int | None, maximum: int, initial: int, now: float
                   ) -> tuple[int, ConcurrencyController | None]:  # fmt: skip
    """The ceiling of requests in flight and the controller (None when ``concurrency`` pins
    the number) for a job's settings, within the open-file budget."""
    ceiling = min(concurrency if concurrency is not None else maximum, open_file_ceiling())
    ceiling = max(1, ceiling)
    if concurrency is not None:
        return ceiling, None
    settings = ConcurrencySettings(initial=max(1, min(initial, ceiling)), maximum=ceiling)
    return ceiling, ConcurrencyController(settings, now)
