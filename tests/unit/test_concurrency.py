"""The adaptive concurrency rule: one test per row of its truth table, then synthetic traces of
whole links (fast, 40 ms, 200 ms, a latency jump, a store that throttles) played through a small
event simulation: a request waits its turn at a server of fixed capacity (the client's CPU or the
store), then the round trip."""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from bulkput.remote.concurrency import ConcurrencyController, ConcurrencySettings, Phase

FAST = ConcurrencySettings(initial=8, maximum=64, round_seconds=0.0, round_completions=4,
                           hold_seconds=1.0, probe_every=3, throttle_cooldown=2)  # fmt: skip


def started(settings: ConcurrencySettings = FAST) -> tuple[ConcurrencyController, float]:
    """A controller at the job's start (its first round: the requests sent from there); the
    time."""
    return ConcurrencyController(settings, now=0.0), 0.0


# a little queueing, as on a busy client: growth by ``growth``, not ``fast_growth``
SOME = 0.3


def feed(ctl: ConcurrencyController, t: float, rate: float, *, answers: int = 0,
         in_flight: int | None = None, nbytes: int = 0, spread: float = 0.0,
         queueing: float = SOME) -> float:  # fmt: skip
    """Answers to requests sent from ``t`` on, ``in_flight`` (default: the limit) in flight,
    at ``rate`` requests/s by Little's law (mean latency = in flight / rate); ``spread``
    seconds between sendings (default 1/rate); the fastest answer ``queueing`` below the mean
    (waiting on each other), the others alike. Returns the time after the last answer."""
    held = ctl.limit if in_flight is None else in_flight
    mean = held / rate
    step = spread or 1 / rate
    count = answers or max(FAST.round_completions, held)
    fastest = mean * (1 - queueing)
    others = (count * mean - fastest) / (count - 1)
    answered = []
    for k in range(count):
        sent = t + k * step
        answered.append((sent + (fastest if k == 0 else others), sent))
    for at, sent in sorted(answered):
        ctl.completed(at, nbytes, sent, held)
    return max(at for at, _ in answered) + 1e-6


def hold_window(ctl: ConcurrencyController, t: float, rate: float) -> float:
    """One whole hold window (a little over ``hold_seconds``) at ``rate``."""
    return feed(ctl, t, rate, answers=8, spread=FAST.hold_seconds / 7 + 1e-3)


def windows_until_a_probe(ctl: ConcurrencyController, t: float, rate: float,
                          most: int = 20) -> tuple[int, float]:  # fmt: skip
    """Hold windows at ``rate`` until the controller leaves the hold: how many, and the time."""
    for held in range(1, most + 1):
        t = hold_window(ctl, t, rate)
        if ctl.phase is not Phase.HOLD:
            return held, t
    return most + 1, t


def into_hold(ctl: ConcurrencyController, t: float) -> float:
    """First round at 8 (100/s), then 16 without gain: back at 8, holding."""
    t = feed(ctl, t, 100)
    t = feed(ctl, t, 100)
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)
    return t


# --- one test per row ------------------------------------------------------------------------


def test_row_round_not_closed_changes_nothing() -> None:
    ctl, t = started()
    feed(ctl, t, 100, answers=FAST.round_completions - 1)
    assert ctl.limit == 8 and len(ctl.changes) == 1


def test_row_round_not_closed_before_round_seconds() -> None:
    ctl, t = started(ConcurrencySettings(initial=8, maximum=64, round_seconds=5.0,
                                         round_completions=4))  # fmt: skip
    feed(ctl, t, 100, answers=50)  # many answers, but under 5 s
    assert ctl.limit == 8 and len(ctl.changes) == 1


def test_row_answers_to_requests_sent_before_a_change_do_not_count() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100)  # first round: 8 -> 16
    assert ctl.limit == 16
    feed(ctl, t - 1.0, 100, answers=40)  # all sent before the change, under the old limit
    assert ctl.limit == 16 and ctl.phase is Phase.GROW


def opening_wave(ctl: ConcurrencyController, latencies: list[float]) -> float:
    """The requests sent at the start, one after another as fast as the job makes them (the
    requests in flight at each sending rise 1, 2, ... up to the limit), answered after
    ``latencies``; the time of the last answer."""
    answered = sorted((0.001 * k + latency, 0.001 * k, k + 1)
                      for k, latency in enumerate(latencies))  # fmt: skip
    for at, sent, in_flight in answered:
        ctl.completed(at, 0, sent, in_flight)
    return answered[-1][0] + 1e-6


def test_row_the_opening_wave_is_the_first_round() -> None:
    ctl, _ = started(ConcurrencySettings(initial=8, maximum=512, round_seconds=0.0,
                                         round_completions=4))  # fmt: skip
    # 8 sent at the start, all answered a round trip (500 ms) later: the link, no queueing
    t = opening_wave(ctl, [0.5 + 0.002 * k for k in range(8)])
    assert ctl.limit == 8 * 8 and "first round at 8" in ctl.reason
    assert ctl.changes[-1][0] == pytest.approx(t, abs=0.01)  # one round trip after the start


def test_row_an_opening_wave_that_queues_is_not_counted() -> None:
    ctl, _ = started()
    # opened connections one after another: the first answer 100 ms, the others 500 ms
    t = opening_wave(ctl, [0.1] + [0.5] * 7)
    assert (ctl.limit, ctl.phase, len(ctl.changes)) == (8, Phase.GROW, 1)
    feed(ctl, t, 100)  # the first round on open connections decides
    assert ctl.limit == 16 and "first round" in ctl.reason


def test_row_a_raised_round_counts_its_burst_once_the_limit_filled() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100)  # 8 -> 16: 8 more sent at once (9, 10, ... 16 in flight)
    assert ctl.limit == 16
    mean = 16 / 140  # 16 in flight at 140/s: 40% more than 8 gave
    fastest = mean * (1 - SOME)
    latencies = [fastest] + [(8 * mean - fastest) / 7] * 7
    for k in range(7):  # the burst but its last request: the limit not yet seen full
        ctl.completed(t + 0.001 * k + latencies[k], 0, t + 0.001 * k, 9 + k)
    assert ctl.limit == 16
    ctl.completed(t + 0.007 + latencies[7], 0, t + 0.007, 16)
    assert ctl.limit == 32 and "throughput rose at 16 (140/s" in ctl.reason


def test_row_throttle_halves_and_holds_with_a_cooldown() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    ctl.throttled(0.1)
    assert (ctl.limit, ctl.phase, ctl.reason) == (4, Phase.HOLD, "throttled by the store")
    for n in range(2, 6):
        ctl.throttled(0.1 * n)
    assert ctl.limit == 1  # never below the minimum


def test_row_recovery_after_a_throttle_is_additive_up_to_the_limit_before() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    ctl.throttled(0.0)  # 8 -> 4; may climb back to 8
    for n in range(4):
        ctl.completed(0.01 * n, 0, 0.0, 4)
    assert ctl.limit == 5 and ctl.reason == "recovering after throttling"
    for n in range(5 + 6 + 7 + 20):
        ctl.completed(0.1 + 0.001 * n, 0, 0.1, ctl.limit)
    assert ctl.limit == 8  # and no further by recovery alone


def test_row_answers_sent_while_the_limit_was_not_full_do_not_count() -> None:
    ctl, t = started()
    feed(ctl, t, 100, in_flight=3, answers=50)  # 3 of 8 in use: the job, not the limit, is slow
    assert ctl.limit == 8 and ctl.phase is Phase.GROW


def test_row_first_round_doubles() -> None:
    ctl, t = started()
    feed(ctl, t, 100)
    assert (ctl.limit, ctl.phase) == (16, Phase.GROW) and "first round" in ctl.reason


def test_row_grow_while_throughput_rises() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100)
    feed(ctl, t, 140)  # 16 in flight gave 40% more
    assert ctl.limit == 32 and "throughput rose" in ctl.reason


def test_row_requests_that_barely_queue_grow_by_fast_growth() -> None:
    ctl, t = started(ConcurrencySettings(initial=8, maximum=4096, round_seconds=0.0,
                                         round_completions=4))  # fmt: skip
    t = feed(ctl, t, 100, queueing=0.1)  # a long link: every request waits the round trip
    assert ctl.limit == 64 and "first round" in ctl.reason
    feed(ctl, t, 700, queueing=0.1)  # 64 gave 7x: still the link
    assert ctl.limit == 512 and "throughput rose" in ctl.reason


class CpuClock:
    """The event loop thread's CPU clock, set by the test: the controller reads it at a
    round's start and close."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def with_cpu(margin: float = 1.5) -> tuple[ConcurrencyController, CpuClock]:
    cpu = CpuClock()
    settings = ConcurrencySettings(initial=8, maximum=512, round_seconds=0.0,
                                   round_completions=4, cpu_margin=margin)  # fmt: skip
    return ConcurrencyController(settings, now=0.0, cpu=cpu), cpu


# feed(ctl, 0, 100, queueing=0.1) at 8: the opening round closes at its 4th answer, 0.111 s,
# the fastest 72 ms; a leap x8 to 64 without a CPU clock. Its CPU went to 4 answers and half
# of the 8 sent at the start (sent, not answered yet): 8 answers' worth


def test_row_a_growth_stops_at_what_the_client_cpu_can_answer() -> None:
    ctl, cpu = with_cpu()
    cpu.seconds = 0.04  # 5 ms of the loop's CPU an answer, busy 36% of the round
    feed(ctl, 0.0, 100, queueing=0.1)
    # 1.5 x 72 ms / 5 ms = 21.6: more in flight could not be answered faster
    assert ctl.limit == 22 and "client CPU 5.00 ms an answer caps it" in ctl.reason


def test_row_the_cpu_ceiling_still_grows_by_one() -> None:
    ctl, cpu = with_cpu(margin=0.5)
    cpu.seconds = 0.09  # 11.25 ms an answer (a ceiling of 4), busy 81%: not saturated
    feed(ctl, 0.0, 100, queueing=0.1)
    assert (ctl.limit, ctl.phase) == (9, Phase.GROW)


def test_row_a_busy_client_cpu_holds() -> None:
    ctl, cpu = with_cpu()
    cpu.seconds = 0.105  # busy 95% of the round
    feed(ctl, 0.0, 100, queueing=0.1)
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD) and "client CPU busy" in ctl.reason


def test_row_growth_is_one_doubling_a_round_even_when_it_paid_in_full() -> None:
    ctl, t = started(ConcurrencySettings(initial=8, maximum=512, round_seconds=0.0,
                                         round_completions=4))  # fmt: skip
    for rate in (100, 200, 400):  # each doubling doubled the throughput
        t = feed(ctl, t, rate)
    assert ctl.limit == 64  # 8 -> 16 -> 32 -> 64, no leap past the next step


def test_row_requests_queueing_on_each_other_hold_the_limit() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100, queueing=0.8)  # the opening wave queued: not counted
    assert (ctl.limit, ctl.phase) == (8, Phase.GROW)
    feed(ctl, t, 100, queueing=0.8)  # the fastest took a fifth of the mean: a CPU, not a link
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD) and "queue" in ctl.reason


def test_row_a_gain_with_requests_queueing_holds_what_the_link_needs() -> None:
    ctl, t = started(ConcurrencySettings(initial=8, maximum=512, round_seconds=0.0,
                                         round_completions=4))  # fmt: skip
    t = feed(ctl, t, 100, queueing=0.1)  # 8 -> 64
    # 64 paid (400/s), but the fastest took 0.3 of the mean (160 ms): 400/s x 48 ms = 19.2
    # requests keep the link busy, the other 45 only wait on the client
    feed(ctl, t, 400, queueing=0.7)
    assert (ctl.limit, ctl.phase) == (20, Phase.HOLD) and "20 keep the link busy" in ctl.reason


def test_row_a_gain_with_requests_queueing_holds_at_least_the_limit_before() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100)
    feed(ctl, t, 150, queueing=0.8)  # 16 paid, but requests now wait on each other: 16 x 0.2
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)  # is less than the 8 that paid before


def test_row_at_the_maximum_hold() -> None:
    ctl, t = started(ConcurrencySettings(initial=64, maximum=64, round_seconds=0.0,
                                         round_completions=4))  # fmt: skip
    feed(ctl, t, 100)
    assert (ctl.limit, ctl.phase) == (64, Phase.HOLD) and "maximum" in ctl.reason


def test_row_no_gain_returns_to_the_previous_limit() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100)  # 8 -> 16
    feed(ctl, t, 105)  # 16 gave 5% more: latency rose with the requests in flight
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD) and "no gain" in ctl.reason


def test_row_cooldown_after_a_throttle_blocks_probing() -> None:
    ctl, t = started()
    ctl.throttled(t)  # 8 -> 4, may recover to 8, then a cooldown of 2 windows
    for _ in range(4 + 5 + 6 + 7):
        ctl.completed(t + 0.08, 0, t, ctl.limit)  # 80 ms: 8 in flight at 100/s
    t += 0.08
    assert ctl.limit == 8
    held, t = windows_until_a_probe(ctl, t, 100)
    assert held == FAST.throttle_cooldown + 1  # probing only after the cooldown
    assert ctl.limit == 10 and ctl.phase is Phase.PROBE


def test_row_hold_at_the_maximum_never_probes() -> None:
    settings = ConcurrencySettings(initial=4, maximum=4, round_seconds=0.0, round_completions=4,
                                   hold_seconds=1.0, probe_every=1)  # fmt: skip
    ctl, t = started(settings)
    t = feed(ctl, t, 100)
    for rate in (100, 100, 30, 100):
        t = hold_window(ctl, t, rate)
    assert ctl.limit == 4 and len(ctl.changes) == 1


def test_row_latency_rise_at_a_steady_limit_probes() -> None:
    ctl, t = started()
    t = into_hold(ctl, t)
    t = hold_window(ctl, t, 100)  # the hold's latency: 8 / 100 = 80 ms
    t = hold_window(ctl, t, 40)  # 200 ms at the same limit: the link got slower
    t = hold_window(ctl, t, 40)  # (a window all at the new latency: no request was faster)
    assert (ctl.limit, ctl.phase) == (10, Phase.PROBE) and "latency rose" in ctl.reason


def test_row_hold_probes_after_an_interval_that_doubles_after_each_miss() -> None:
    ctl, t = started()
    t = into_hold(ctl, t)  # the growth to 16 missed: the next probe after 2 windows
    intervals = []
    for _ in range(3):
        held, t = windows_until_a_probe(ctl, t, 100)
        intervals.append(held)
        assert (ctl.limit, ctl.phase) == (10, Phase.PROBE) and "probing" in ctl.reason
        t = feed(ctl, t, 100)  # the probe did not pay: back to 8
        assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)
    assert intervals == [2, 3, 3]  # 2, then 4 and 8 capped at probe_every


def test_row_hold_with_requests_queueing_does_not_probe_higher() -> None:
    ctl, t = started()
    t = into_hold(ctl, t)
    for _ in range(FAST.probe_every + 1):
        t = feed(ctl, t, 100, answers=8, spread=FAST.hold_seconds / 7 + 1e-3, queueing=0.8)
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)


def above_the_start(ctl: ConcurrencyController, t: float) -> float:
    """Grown to 16 and holding there (32 gave nothing more)."""
    t = feed(ctl, t, 100)
    t = feed(ctl, t, 140)
    t = feed(ctl, t, 140)
    assert (ctl.limit, ctl.phase) == (16, Phase.HOLD)
    t = windows_until_a_probe(ctl, t, 140)[1]
    assert (ctl.limit, ctl.phase) == (12, Phase.PROBE_BELOW) and "probing 12" in ctl.reason
    return t


def test_row_a_hold_above_the_start_probes_below_and_stays_without_loss() -> None:
    ctl, t = started()
    t = above_the_start(ctl, t)
    feed(ctl, t, 135)  # 12 in flight pass as much: 16 were more than needed
    assert (ctl.limit, ctl.phase) == (12, Phase.HOLD) and "no loss" in ctl.reason


def test_row_a_probe_below_that_loses_goes_back() -> None:
    ctl, t = started()
    t = above_the_start(ctl, t)
    feed(ctl, t, 105)
    assert (ctl.limit, ctl.phase) == (16, Phase.HOLD) and "back to 16" in ctl.reason


def probing(ctl: ConcurrencyController, t: float) -> float:
    t = into_hold(ctl, t)
    t = windows_until_a_probe(ctl, t, 100)[1]
    assert (ctl.limit, ctl.phase) == (10, Phase.PROBE)
    return t


def test_row_probe_that_pays_grows_again() -> None:
    ctl, t = started()
    t = probing(ctl, t)
    feed(ctl, t, 125)  # the probe at 10 gave 25% more
    assert (ctl.limit, ctl.phase) == (20, Phase.GROW)


def test_row_probe_that_does_not_pay_goes_back() -> None:
    ctl, t = started()
    t = probing(ctl, t)
    feed(ctl, t, 101)
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)


def test_bytes_per_second_counts_as_throughput_too() -> None:
    ctl, t = started()
    t = feed(ctl, t, 100, nbytes=1000)
    feed(ctl, t, 100, nbytes=2000)  # same objects/s, twice the bytes: larger objects flow
    assert ctl.limit == 32


def test_changes_are_bounded() -> None:
    ctl = ConcurrencyController(ConcurrencySettings(history=10), now=0.0)
    for n in range(100):
        ctl.throttled(float(n))
        ctl.completed(float(n), 0, float(n), ctl.limit)
    assert len(ctl.changes) == 10


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        ConcurrencySettings(initial=600, maximum=512)


# --- synthetic links -------------------------------------------------------------------------

Latency = Callable[[float], float]  # time -> round trip


@dataclass
class Trace:
    controller: ConcurrencyController
    seconds: float  # until the last answer
    throttles: int = 0


def play(round_trip: float | Latency, capacity: float, files: int, *,
         settings: ConcurrencySettings | None = None,
         throttle_above: float | None = None, cpu: bool = False) -> Trace:  # fmt: skip
    """``files`` requests through the controller's limit: each waits for a server of
    ``capacity`` requests/s (the client's CPU or the store; the waiting ones served in random
    order, as tasks share an event loop), then ``round_trip``. With ``throttle_above``, the
    store refuses requests beyond that many a second (over 0.1 s); refused requests are sent
    again, and only a refusal of a request sent since the last one counts (as the limiter's
    epochs do). With ``cpu``, the controller reads the server's busy seconds as the client's
    CPU clock (the capacity is the loop thread's)."""
    busy_seconds = [0.0]
    rtt = round_trip if callable(round_trip) else (lambda _t, r=round_trip: r)
    rng = random.Random(7)
    ctl = ConcurrencyController(settings or ConcurrencySettings(), now=0.0,
                                cpu=(lambda: busy_seconds[0]) if cpu else None)  # fmt: skip
    t, in_flight, todo, busy = 0.0, 0, files, False
    waiting: list[tuple[float, int]] = []  # (sent, in flight at sending)
    events: list[tuple[float, int, float, int]] = []  # (when, 0 served / 1 answered, sent, n)
    accepted: list[float] = []
    last_throttle, throttles = -1.0, 0
    while True:
        while in_flight < ctl.limit and todo:
            todo -= 1
            in_flight += 1
            waiting.append((t, in_flight))
        if not busy and waiting:
            sent, held = waiting.pop(rng.randrange(len(waiting)))
            heapq.heappush(events, (t + 1 / capacity, 0, sent, held))
            busy_seconds[0] += 1 / capacity
            busy = True
        if not events:
            return Trace(ctl, t, throttles)
        t, kind, sent, held = heapq.heappop(events)
        if kind == 0:
            busy = False
            heapq.heappush(events, (t + rtt(t), 1, sent, held))
            continue
        in_flight -= 1
        if throttle_above is not None:
            accepted = [a for a in accepted if a > t - 0.1]
            if len(accepted) >= throttle_above * 0.1:
                todo += 1  # sent again
                if sent > last_throttle:
                    ctl.throttled(t)
                    last_throttle, throttles = t, throttles + 1
                continue
            accepted.append(t)
        ctl.completed(t, 4096, sent, held)


def pinned(round_trip: float, capacity: float, files: int, limit: int) -> float:
    return play(round_trip, capacity, files,
                settings=ConcurrencySettings(initial=limit, maximum=limit)).seconds  # fmt: skip


def test_trace_fast_link_stays_at_the_start() -> None:
    # loopback: 0.5 ms and a client that does 3,000 PUTs/s whatever the limit
    trace = play(0.0005, 3000, 20_000)
    assert trace.controller.limit == 64
    assert trace.seconds < pinned(0.0005, 3000, 20_000, 64) * 1.01


def test_trace_40ms_link_grows_to_the_maximum_within_a_short_job() -> None:
    # 2,000 files 40 ms away: the whole job is a third of a second of network time
    trace = play(0.040, 10_000, 2000)
    assert trace.controller.limit == 512
    # the first decision a round trip after the start, a leap while requests barely queue
    assert trace.seconds < pinned(0.040, 10_000, 2000, 512) + 1.5 * 0.040
    assert trace.seconds < pinned(0.040, 10_000, 2000, 64) / 3


def test_trace_40ms_link_stops_growing_at_what_the_client_cpu_answers() -> None:
    # 0.25 ms of the loop's CPU an answer: 4,000/s at most, which 160 in flight on a 40 ms
    # link already ask; the leap from 64 stops near 1.5 x 160, not at 512
    trace = play(0.040, 4000, 5000, cpu=True)
    assert max(limit for _, limit, _ in trace.controller.changes) <= 250
    assert "an answer caps it" in trace.controller.changes[1][2]
    assert trace.seconds < pinned(0.040, 4000, 5000, 512) * 1.05


def test_trace_40ms_link_with_a_slow_client_holds_below_the_maximum() -> None:
    # 2,500 requests/s at most: more than 100 in flight only queue
    trace = play(0.040, 2500, 20_000)
    assert 96 <= trace.controller.limit < 512
    assert trace.seconds < pinned(0.040, 2500, 20_000, 512) * 1.05


def test_trace_200ms_link_uses_the_maximum() -> None:
    trace = play(0.200, 10_000, 20_000)
    assert trace.controller.limit == 512
    assert trace.seconds < pinned(0.200, 10_000, 20_000, 512) + 1.5 * 0.200


def test_trace_latency_jump_raises_the_limit() -> None:
    before: list[int] = []

    def jumping(t: float) -> float:
        return 0.010 if t < 5 else 0.100

    ctl = ConcurrencyController(ConcurrencySettings(), now=0.0)
    trace = play(jumping, 3000, 60_000)
    before = [limit for when, limit, _ in trace.controller.changes if when < 5]
    assert before[-1] <= 128  # 10 ms at 3,000/s: 30 in flight are enough
    assert trace.controller.limit >= 256  # 100 ms: 300 needed
    assert any("latency rose" in reason for _, _, reason in trace.controller.changes)
    del ctl


def test_trace_throttling_store_keeps_the_limit_near_what_it_allows() -> None:
    # 20 ms and a store that throttles above 2,000 requests/s: about 40 in flight
    trace = play(0.020, 50_000, 30_000, throttle_above=2000)
    assert trace.controller.limit < 128
    assert trace.throttles > 0
    assert trace.seconds < 30_000 / 2000 * 1.3  # the store's rate, nearly
