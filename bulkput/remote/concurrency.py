"""How many requests to keep in flight: a pure decision rule fed by completions and throttles.

On a link with a round-trip time, throughput is ``in flight / latency`` (Little's law) until
the client's CPU, the link or the store is the limit: 64 requests at 40 ms can never pass
1,600 objects/s. Nobody knows the right number for their link, so the controller finds it, as
TCP's slow start finds a window: it starts at a modest limit and multiplies it once per
*round* (about a round trip) while throughput keeps rising and requests wait on the link
rather than on each other (by ``fast_growth`` while they barely wait on each other, by
``growth`` while they wait a little), goes back to the last limit that paid when it stops rising, halves on
throttling, and now and then probes below (a limit above the start may be more than the link
needs) and above (or when latency rises at a steady limit) in case the link changed.

A round is judged without the biases of a window of answers:

- only answers to requests *sent since the round began* count, and only those sent while the
  limit was nearly full (``full``): a request sent while 128 were in flight tells how 128 fare,
  the answers of the round's first latency belong to the old limit;
- a round begun by *raising* the limit (the first round, from 0 at the start; a growth; a
  probe above) also counts its burst, the requests sent at once to fill the new limit (the
  requests in flight at their sending rise from the old limit to the new one), and closes only
  once one of its requests was sent with the limit full: so its decision comes about one round
  trip (and the burst's sending) after the raise, not two. Its burst was all in flight at once
  soon after, so its number in flight is the limit;
- its throughput is ``in flight / mean latency`` (Little's law; in flight: the mean at
  sending, or the limit for a raised round), not answers counted per window: answers come in
  waves on a long link (a round trip's requests sent together, answered together), and a
  window catches more or fewer waves;
- its *queueing* is the share of the mean latency beyond the fastest answer's. On a long link
  every request waits the round trip and the fastest is near the mean; when the client's CPU
  (loopback) or the store is what limits, requests wait on each other, the fastest is far
  below the mean, and more requests in flight would only queue: the limit holds.

Inputs (all with the caller's clock, so tests run on synthetic traces without sleeping):
``completed(now, nbytes, started, in_flight)`` per successful request (``in_flight``: the
requests in flight when it was sent, itself included), ``throttled(now)`` per throttle signal
(503 SlowDown, 429, refused connections) that the limiter counts as new. Output: ``limit`` and
``reason`` (why it last changed or held); ``changes`` keeps the last ``history`` changes as
``(time, limit, reason)``.

The client's CPU: with a ``cpu`` clock (the CPU seconds of the thread that runs the event loop,
``time.thread_time`` there; read once at each round's start and close), a round also knows
the loop's CPU seconds per answer, ``c`` (all answers in the round's time, the old limit's
too, and half of a raised round's burst: sent, not yet answered), and its busy share, CPU over wall. One thread serves at most ``1 / c`` answers a
second, so by Little's law more than ``fastest / c`` in flight cannot raise throughput: a
growth goes at most to ``ceil(cpu_margin x fastest / c)`` (and at least the limit + 1), and a
round whose loop was busy ``cpu_busy`` of its time or more does not grow at all. Over TLS the
opening wave's handshakes are in ``c``: the first leap stops well below the maximum.

A round (growing or probing) closes when ``round_seconds`` have passed and at least
``round_completions`` and half the limit of its requests have been answered; a hold window
when ``hold_seconds`` and ``hold_latencies`` latencies have passed with ``round_completions``
such answers. The first round is the opening wave, the requests sent at the start: when it
shows queueing (connections opened one after another, the client's start-up), it does not
count and a first round on open connections follows (connecting is not the link's
throughput), so a fast link holds at the start as before.

Truth table (one decision per closed round or hold window; "rose" means the throughput, in
objects/s or bytes/s, at least ``gain`` above the round before's; "queueing" means above
``queueing``; "barely queueing" means under ``low_queueing``):

| state | condition | new limit | next state | reason |
|---|---|---|---|---|
| any | round or window not closed yet | same | same | - |
| any | answers to requests sent before the round, or (a round not begun by a raise) while under ``full`` x limit | same | same | (not counted) |
| any | a raised round none of whose answered requests was sent with the limit full (its burst is still being answered) | same | same | (not closed) |
| any | a throttle signal (not per round) | limit / 2 (>= minimum) | hold, cooldown windows | throttled |
| any | below the limit before the last throttle (per completion) | +1 per ``limit`` completions | same | recovering |
| grow | the opening wave (the first round), queueing | same | grow (a first round on open connections) | (not counted) |
| grow | the first round, barely queueing | limit x ``fast_growth`` (<= maximum) | grow | first round |
| grow | the first round, queueing a little (not above ``queueing``) | limit x ``growth`` (<= maximum) | grow | first round |
| grow | rose, barely queueing, limit < maximum | limit x ``fast_growth`` (<= maximum) | grow | throughput rose |
| grow | rose, queueing a little, limit < maximum | limit x ``growth`` (<= maximum) | grow | throughput rose |
| grow | first round on open connections or rose, queueing | what the throughput needs in flight: rate x fastest latency (>= the limit before the growth, <= the limit) | hold | requests queue |
| grow | first round or rose, the loop thread busy >= ``cpu_busy`` of the round (a ``cpu`` clock) | same | hold | client CPU busy |
| grow | first round or rose, growth above ``cpu_margin`` x fastest / CPU per answer | that ceiling (>= limit + 1) | grow | as the growth, capped |
| grow | rose, limit == maximum | same | hold | at the maximum |
| grow | did not rise (latency grew with the requests in flight) | the previous limit | hold | no gain above it |
| hold | still recovering, or in cooldown (after a throttle) | same | hold | - |
| hold | the probe interval held, limit above the start, last probe was above | limit x 3/4 (>= the start) | probe below | probing below |
| hold | limit == maximum, or queueing | same | hold | - |
| hold | latency ``latency_rise`` above the hold's best (the link or the store got slower) | limit x 5/4 | probe | latency rose: probing |
| hold | the probe interval held (1 window after a growth or probe that paid, doubling after each that did not, up to ``probe_every``) | limit x 5/4 | probe | probing |
| probe | as grow (rose / queueing / maximum / did not rise) | as grow | as grow | as grow |
| probe below | throughput at most ``gain`` below the hold's | same | hold | no loss |
| probe below | lost more | the limit before the probe | hold | back |
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True)
class ConcurrencySettings:
    """What the user asked for. ``adaptive=False`` (``--concurrency N``) keeps ``initial``
    (= ``maximum``) except for throttling."""

    initial: int = 64
    maximum: int = 512
    minimum: int = 1
    round_seconds: float = 0.03
    round_completions: int = 32
    hold_seconds: float = 0.5
    hold_latencies: float = 4.0
    gain: float = 0.10
    growth: float = 2.0
    # while requests barely queue (under ``low_queueing``): on a 150 ms link, 64 -> 512 one
    # round trip after the start instead of three rounds of doubling (see docs/dev/design.md)
    fast_growth: float = 8.0
    low_queueing: float = 0.25
    latency_rise: float = 0.5
    full: float = 0.9
    queueing: float = 0.5
    # the client-CPU ceiling on growth (with a ``cpu`` clock): in flight at most
    # cpu_margin x fastest latency / the loop's CPU per answer; no growth at cpu_busy
    cpu_margin: float = 1.5
    cpu_busy: float = 0.9
    probe_every: int = 8
    throttle_cooldown: int = 4
    history: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.minimum <= self.initial <= self.maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")


class Phase(Enum):
    GROW = "grow"
    HOLD = "hold"
    PROBE = "probe"
    PROBE_BELOW = "probe below"


@dataclass(frozen=True, slots=True)
class RoundStats:
    """The answers to requests sent since a round began."""

    limit: int
    answers: int
    mean_in_flight: float  # requests in flight when each was sent
    latency: float  # mean seconds per request
    mean_bytes: float
    fastest: float = 0.0  # the shortest latency: the link's part, without queueing
    cpu_per_answer: float = 0.0  # the loop thread's CPU seconds per answer (0: not known)
    cpu_busy: float = 0.0  # the loop thread's CPU seconds over the round's wall seconds

    @property
    def rate(self) -> float:
        """Requests per second by Little's law."""
        return self.mean_in_flight / self.latency if self.latency > 0 else math.inf

    @property
    def queueing(self) -> float:
        """The share of the mean latency that requests spent waiting on each other (for the
        client's CPU or the store), beyond what the fastest took."""
        return 1 - self.fastest / self.latency if self.latency > 0 else 0.0

    @property
    def bytes_per_s(self) -> float:
        return self.rate * self.mean_bytes


class ConcurrencyController:
    """The rule of the module docstring. Not thread-safe; one per job."""

    # the round being counted (see _start_round)
    _round_start: float
    _answers: int
    _bytes: int
    _in_flight_sum: int
    _latency_sum: float
    _fastest: float
    _full: int
    _needed: int
    _round_length: float
    _raised: bool  # begun by raising the limit: its burst counts (see completed)
    _most_in_flight: int
    _round_cpu: float
    _all_answers: int  # every answer in the round's time, for the CPU per answer
    _burst: int  # requests a raise sent at once: the new limit less the old

    def __init__(self, settings: ConcurrencySettings, now: float,
                 cpu: Callable[[], float] | None = None) -> None:  # fmt: skip
        self.settings = settings
        self._cpu = cpu
        self.limit = settings.initial
        self.phase = Phase.GROW
        self.reason = f"start at {settings.initial}"
        self.changes: deque[tuple[float, int, str]] = deque(
            [(now, self.limit, self.reason)], maxlen=max(2, settings.history))
        self._before: RoundStats | None = None  # the last round at a lower limit
        self._fallback = self.limit  # where a failed growth or probe returns to
        self._held = 0
        self._cooldown = 0
        self._hold_latency = math.inf
        self._latency = 0.0  # the last closed round's or window's mean latency
        self._opening = True  # the first round: the requests sent at the start
        self._recover_to = 0
        self._successes = 0
        self._below_next = True  # the next probe of a hold above the start goes below
        self._probe_after = 1  # hold windows before the next probe (see _missed)
        self._start_round(now, raised=True)
        self._burst = self.limit

    # --- inputs -----------------------------------------------------------------------------

    def completed(self, now: float, nbytes: int, started: float | None = None,
                  in_flight: int = 0) -> None:  # fmt: skip
        if self._recover_to > self.limit:  # after a throttle: AIMD's +1 per limit successes
            self._successes += 1
            if self._successes >= self.limit:
                self._successes = 0
                self._set(now, self.limit + 1, "recovering after throttling")
        self._all_answers += 1
        if started is None or started < self._round_start:
            return  # untimed, or sent before the change (under the old limit)
        if in_flight < self._full and not self._raised:
            return  # sent while the limit was not full: the job, not the limit, was slow
        self._answers += 1
        self._bytes += nbytes
        self._in_flight_sum += in_flight
        if in_flight > self._most_in_flight:
            self._most_in_flight = in_flight
        latency = now - started
        self._latency_sum += latency
        if latency < self._fastest:
            self._fastest = latency
        if (self._answers >= self._needed and now - self._round_start >= self._round_length
                and self._most_in_flight >= self._full):  # fmt: skip
            self._close_round(now)

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
        self._start_round(now)

    # --- the rule ---------------------------------------------------------------------------

    def _close_round(self, now: float) -> None:
        answers = self._answers
        # a raised round's burst was sent as fast as the job could, all of it in flight at
        # once soon after: the limit is its number in flight, not the count at each sending
        in_flight = self.limit if self._raised else self._in_flight_sum / answers
        cpu_per_answer = busy = 0.0
        if self._cpu is not None:
            spent = max(0.0, self._cpu() - self._round_cpu)
            # a raised round's burst was sent (half a request's work) but not all answered
            cpu_per_answer = spent / max(1, self._all_answers + self._burst / 2)
            wall = now - self._round_start
            busy = spent / wall if wall > 0 else 0.0
        stats = RoundStats(self.limit, answers, in_flight, self._latency_sum / answers,
                           self._bytes / answers, self._fastest, cpu_per_answer,
                           busy)  # fmt: skip
        self._latency = stats.latency
        opening, self._opening = self._opening, False
        self._start_round(now)
        if opening and stats.queueing > self.settings.queueing:
            # connecting, or the client's start-up: a first round on open connections judges
            self.reason = (f"the opening wave queued (mean {stats.latency * 1000:.0f} ms, "
                           f"fastest {stats.fastest * 1000:.0f} ms): a first round follows")
            return
        if self.phase is Phase.HOLD:
            self._decide_hold(now, stats)
        elif self.phase is Phase.PROBE_BELOW:
            self._decide_below(now, stats)
        else:
            self._decide_growth(now, stats)

    def _decide_growth(self, now: float, stats: RoundStats) -> None:
        before = self._before
        if before is not None and before.limit < stats.limit and not self._rose(stats, before):
            self._missed()
            self._enter_hold()
            self._change(now, self._fallback,
                         f"no gain from {stats.limit} over {before.limit} "
                         f"({stats.rate:.0f}/s, {stats.latency * 1000:.0f} ms): "
                         f"holding {self._fallback}")  # fmt: skip
            return
        if stats.queueing > self.settings.queueing:
            # what this throughput needs in flight on the link (Little's law with the link's
            # part of the latency, the fastest answer's): the rest of the limit only queues
            self._enter_hold()
            needed = min(stats.limit, max(self._fallback, math.ceil(stats.rate * stats.fastest)))
            what = (f"requests queue at {stats.limit} (mean {stats.latency * 1000:.0f} ms, "
                    f"fastest {stats.fastest * 1000:.0f} ms)")
            if needed < stats.limit:
                self._change(now, needed, f"{what}: {needed} keep the link busy, holding {needed}")
            else:
                self.reason = f"{what}: holding"
                self._start_round(now)
            return
        if stats.limit >= self.settings.maximum:
            self._enter_hold()
            self.reason = f"at the maximum ({self.settings.maximum})"
            self._start_round(now)
            return
        what = "throughput rose" if before is not None else "first round"
        if stats.cpu_busy >= self.settings.cpu_busy:
            # the loop thread had no time to spare: more in flight would only wait for it
            self._enter_hold()
            self.reason = (f"{what} at {stats.limit} ({stats.rate:.0f}/s), client CPU busy "
                           f"{stats.cpu_busy:.0%} of the round: holding")
            self._start_round(now)
            return
        self._before = stats
        self._fallback = stats.limit
        self.phase = Phase.GROW
        self._probe_after = 1
        fast = stats.queueing < self.settings.low_queueing
        factor = self.settings.fast_growth if fast else self.settings.growth
        grown = min(self.settings.maximum, max(stats.limit + 1, round(stats.limit * factor)))
        capped = ""
        if stats.cpu_per_answer > 0:
            # Little's law with the loop's rate, 1 / c: more in flight cannot answer faster
            ceiling = math.ceil(self.settings.cpu_margin * stats.fastest / stats.cpu_per_answer)
            if ceiling < grown:
                grown = max(stats.limit + 1, ceiling)
                capped = (f" (client CPU {stats.cpu_per_answer * 1000:.2f} ms an answer "
                          f"caps it)")
        self._change(now, grown, f"{what} at {stats.limit} ({stats.rate:.0f}/s, "
                                 f"{stats.latency * 1000:.0f} ms): trying {grown}{capped}")

    def _decide_hold(self, now: float, stats: RoundStats) -> None:
        if self._recover_to > self.limit:
            return  # still climbing back after a throttle
        latency_up = stats.latency > self._hold_latency * (1 + self.settings.latency_rise)
        self._hold_latency = min(self._hold_latency, stats.latency)
        if self._cooldown:
            self._cooldown -= 1
            return
        self._held += 1
        due = self._held >= self._probe_after
        self._before = stats
        self._fallback = self.limit
        if due and self._below_next and self.limit > self.settings.initial:
            self._below_next = False
            self.phase = Phase.PROBE_BELOW
            probe = max(self.settings.initial, self.limit * 3 // 4)
            self._change(now, probe, f"{self._held} windows at {self.limit}: probing {probe}")
            return
        if (self.limit >= self.settings.maximum or not (latency_up or due)
                or stats.queueing > self.settings.queueing):  # fmt: skip
            return
        self._below_next = True
        why = (f"latency rose to {stats.latency * 1000:.0f} ms" if latency_up
               else f"{self._held} windows at {self.limit}")  # fmt: skip
        self.phase = Phase.PROBE
        probe = min(self.settings.maximum, max(self.limit + 1, self.limit * 5 // 4))
        self._change(now, probe, f"{why}: probing {probe}")

    def _decide_below(self, now: float, stats: RoundStats) -> None:
        before = self._before
        assert before is not None
        self._enter_hold()
        if stats.rate >= before.rate * (1 - self.settings.gain):
            self.reason = (f"no loss at {stats.limit} ({stats.rate:.0f}/s) against "
                           f"{before.limit}: holding {stats.limit}")
            self._start_round(now)
        else:
            self._missed()
            self._change(now, before.limit,
                         f"{stats.limit} lost throughput ({stats.rate:.0f}/s): back to "
                         f"{before.limit}")  # fmt: skip

    def _missed(self) -> None:
        """A growth or probe that did not pay: wait twice as long before the next (a short job
        on a noisy machine still gets a second try within a second)."""
        self._probe_after = min(self.settings.probe_every, self._probe_after * 2)

    def _rose(self, stats: RoundStats, before: RoundStats) -> bool:
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

    def _start_round(self, now: float, raised: bool = False) -> None:
        """Count from here the answers to requests sent from here."""
        s = self.settings
        self._round_start = now
        self._raised = raised
        self._burst = 0
        self._most_in_flight = 0
        self._round_cpu = self._cpu() if self._cpu is not None else 0.0
        self._all_answers = 0
        self._answers = 0
        self._bytes = 0
        self._in_flight_sum = 0
        self._latency_sum = 0.0
        self._fastest = math.inf
        self._full = math.ceil(s.full * self.limit)
        if self.phase is Phase.HOLD:
            self._needed = max(s.round_completions, self.limit // 2)
            self._round_length = max(s.hold_seconds, s.hold_latencies * self._latency)
        else:
            self._needed = max(s.round_completions, self.limit // 2)
            self._round_length = s.round_seconds

    def _change(self, now: float, limit: int, reason: str) -> None:
        """A decision: the new limit, and a new round to judge it by."""
        raised = limit > self.limit
        before = self.limit
        self._set(now, limit, reason)
        self._start_round(now, raised)
        self._burst = max(0, limit - before)

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


def controller_for(concurrency: int | None, maximum: int, initial: int, now: float,
                   cpu: Callable[[], float] | None = None,
                   ) -> tuple[int, ConcurrencyController | None]:  # fmt: skip
    """The ceiling of requests in flight and the controller (None when ``concurrency`` pins
    the number) for a job's settings, within the open-file budget; ``cpu``: the event loop
    thread's CPU clock (see the module docstring)."""
    ceiling = min(concurrency if concurrency is not None else maximum, open_file_ceiling())
    ceiling = max(1, ceiling)
    if concurrency is not None:
        return ceiling, None
    settings = ConcurrencySettings(initial=max(1, min(initial, ceiling)), maximum=ceiling)
    return ceiling, ConcurrencyController(settings, now, cpu)
