"""The adaptive concurrency rule: one test per row of its truth table, then synthetic traces of
whole links (fast, 40 ms, 200 ms, a latency jump, a store that throttles)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bulkput.remote.concurrency import ConcurrencyController, ConcurrencySettings, Phase

FAST = ConcurrencySettings(initial=8, maximum=64, window_seconds=0.9, window_completions=4,
                           probe_every=3, throttle_cooldown=2)  # fmt: skip


def window(ctl: ConcurrencyController, start: float, rate: float, *, in_flight: int | None = None,
           nbytes: int = 0) -> float:  # fmt: skip
    """Feed one whole window (1 s) at ``rate`` completions/s; returns its end time."""
    count = max(FAST.window_completions, round(rate))
    for n in range(1, count + 1):
        ctl.completed(start + n / count, nbytes, ctl.limit if in_flight is None else in_flight)
    return start + 1.0


# --- one test per row ------------------------------------------------------------------------


def test_row_window_not_closed_changes_nothing() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    for n in range(50):
        ctl.completed(0.5 * n / 50, 0, 8)  # many completions, but under a second
    assert ctl.limit == 8 and len(ctl.changes) == 1


def test_row_throttle_halves_and_holds_with_a_cooldown() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    ctl.throttled(0.1)
    assert (ctl.limit, ctl.phase, ctl.reason) == (4, Phase.HOLD, "throttled by the store")
    ctl.throttled(0.2)
    ctl.throttled(0.3)
    ctl.throttled(0.4)
    assert ctl.limit == 1  # never below the minimum
    ctl.throttled(0.5)
    assert ctl.limit == 1


def test_row_unsaturated_limit_is_left_alone() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    window(ctl, 0.0, 100, in_flight=3)  # 3 of 8 in use: the job, not the limit, is slow
    assert ctl.limit == 8 and ctl.phase is Phase.GROW


def test_row_grow_while_throughput_rises() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)
    assert ctl.limit == 16
    window(ctl, t, 200)
    assert ctl.limit == 32 and "throughput rose" in ctl.reason


def test_row_at_the_maximum_hold() -> None:
    ctl = ConcurrencyController(ConcurrencySettings(initial=64, maximum=64, window_seconds=0.9,
                                                    window_completions=4), now=0.0)  # fmt: skip
    window(ctl, 0.0, 100)
    assert (ctl.limit, ctl.phase) == (64, Phase.HOLD) and "maximum" in ctl.reason


def test_row_no_gain_returns_to_the_previous_limit() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)  # 8 -> 16
    window(ctl, t, 105)  # 16 gave 5% more: not worth it
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD) and "no gain" in ctl.reason


def test_row_cooldown_after_a_throttle_blocks_probing() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    ctl.throttled(0.0)  # 8 -> 4, recovers to 8 at most, then a cooldown of 2 windows
    t = 0.0
    for _ in range(FAST.throttle_cooldown):
        t = window(ctl, t, 100)
        assert ctl.limit <= 8 and ctl.phase is Phase.HOLD
    for _ in range(FAST.probe_every):
        t = window(ctl, t, 100)
    assert ctl.limit == 10 and ctl.phase is Phase.PROBE  # probing only after the cooldown


def test_row_hold_at_the_maximum_never_probes() -> None:
    ctl = ConcurrencyController(ConcurrencySettings(initial=4, maximum=4, window_seconds=0.9,
                                                    window_completions=4, probe_every=1),
                                now=0.0)  # fmt: skip
    t = 0.0
    for rate in (100, 100, 30, 100):
        t = window(ctl, t, rate)
    assert ctl.limit == 4 and len(ctl.changes) == 1


def test_row_latency_rise_at_a_steady_limit_probes() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)  # 8 -> 16
    t = window(ctl, t, 105)  # no gain: back to 8, hold
    t = window(ctl, t, 100)  # the hold's latency: 8 / 100 = 80 ms
    t = window(ctl, t, 40)  # 200 ms at the same limit: the link got slower
    assert (ctl.limit, ctl.phase) == (10, Phase.PROBE) and "latency rose" in ctl.reason


def test_row_hold_probes_every_probe_every_windows() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)
    t = window(ctl, t, 100)  # back to 8, hold
    for _ in range(FAST.probe_every):
        assert ctl.phase is Phase.HOLD
        t = window(ctl, t, 100)
    assert (ctl.limit, ctl.phase) == (10, Phase.PROBE)


def test_row_probe_that_pays_grows_again() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)
    t = window(ctl, t, 100)  # hold at 8
    for _ in range(FAST.probe_every):
        t = window(ctl, t, 100)
    window(ctl, t, 130)  # the probe at 10 gave 30% more
    assert (ctl.limit, ctl.phase) == (20, Phase.GROW)


def test_row_probe_that_does_not_pay_goes_back() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100)
    t = window(ctl, t, 100)
    for _ in range(FAST.probe_every):
        t = window(ctl, t, 100)
    window(ctl, t, 101)
    assert (ctl.limit, ctl.phase) == (8, Phase.HOLD)


def test_bytes_per_second_counts_as_throughput_too() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    t = window(ctl, 0.0, 100, nbytes=1000)
    window(ctl, t, 100, nbytes=2000)  # same objects/s, twice the bytes: larger objects flow
    assert ctl.limit == 32


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        ConcurrencySettings(initial=600, maximum=512)


# --- synthetic links -------------------------------------------------------------------------

Link = Callable[[int, float], float]  # (requests in flight, time) -> seconds per request


def link(rtt: float, capacity: float) -> Link:
    """Round-trip time plus queueing at a client/store that serves ``capacity`` requests/s."""
    return lambda limit, _t: rtt + limit / capacity


def run(model: Link, seconds: float, *, throttle_above: float | None = None,
        settings: ConcurrencySettings | None = None) -> tuple[ConcurrencyController, float]:  # fmt: skip
    """Drive the controller through ``seconds`` of a link; returns it and the mean rate of the
    last quarter."""
    ctl = ConcurrencyController(settings or ConcurrencySettings(), now=0.0)
    t, step, done_late, last_throttle = 0.0, 0.01, 0.0, -1.0
    owed = 0.0
    while t < seconds:
        rate = ctl.limit / model(ctl.limit, t)
        if throttle_above is not None and rate > throttle_above and t - last_throttle > 0.1:
            ctl.throttled(t)
            last_throttle = t
            rate = throttle_above
        owed += rate * step
        while owed >= 1:
            owed -= 1
            ctl.completed(t, 4096, ctl.limit, model(ctl.limit, t))
        if t >= seconds * 0.75:
            done_late += rate * step
        t += step
    return ctl, done_late / (seconds * 0.25)


def test_trace_fast_link_stays_modest() -> None:
    # loopback: 0.5 ms and a client that does 3,000 PUTs/s whatever the limit
    ctl, rate = run(link(0.0005, 3000), 20)
    assert ctl.limit <= 64 and rate > 2700


def test_trace_40ms_link_grows_to_the_hundreds() -> None:
    ctl, rate = run(link(0.040, 10_000), 20)
    assert 256 <= ctl.limit <= 512
    assert rate > 3 * 64 / 0.040  # far past what 64 in flight can do (1,600/s)


def test_trace_200ms_link_uses_the_maximum() -> None:
    ctl, rate = run(link(0.200, 10_000), 30)
    assert ctl.limit == 512 and rate > 2000


def test_trace_latency_jump_raises_the_limit() -> None:
    before: dict[str, int] = {}

    def jumping(limit: int, t: float) -> float:
        if t < 15:
            before["limit"] = limit
            return 0.010 + limit / 3000
        return 0.100 + limit / 3000

    ctl, _ = run(jumping, 30)
    assert before["limit"] <= 256
    assert ctl.limit > before["limit"]


def test_trace_throttling_store_keeps_the_limit_near_what_it_allows() -> None:
    # 20 ms and a store that throttles above 2,000 requests/s: about 40 in flight
    ctl, rate = run(link(0.020, 50_000), 30, throttle_above=2000)
    assert ctl.limit < 128
    assert rate > 1000
    assert any("throttled" in reason for _, _, reason in ctl.changes)


def test_row_recovery_after_a_throttle_is_additive_up_to_the_limit_before() -> None:
    ctl = ConcurrencyController(FAST, now=0.0)
    ctl.throttled(0.0)  # 8 -> 4; may climb back to 8
    for n in range(4):
        ctl.completed(0.01 * n, 0, 4)
    assert ctl.limit == 5 and ctl.reason == "recovering after throttling"
    for n in range(5 + 6 + 7 + 20):
        ctl.completed(0.1 + 0.001 * n, 0, ctl.limit)
    assert ctl.limit == 8  # and no further by recovery alone


def test_trace_answers_in_waves_still_show_the_gain() -> None:
    """Every request of a round trip is sent together and answered together (a 200 ms link
    at job start): counting answers per window swings with how many waves it caught; the
    timed latency does not, so doubling the limit is seen to pay."""
    ctl = ConcurrencyController(ConcurrencySettings(), now=0.0)
    t, rtt = 0.0, 0.200
    for _ in range(40):  # 40 round trips
        t += rtt
        for n in range(ctl.limit):
            ctl.completed(t + n * 1e-5, 4096, ctl.limit, rtt)
    assert ctl.limit == 512
