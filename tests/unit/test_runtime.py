"""bulkput.runtime: the collector's young-generation threshold while a job's loop runs."""

from __future__ import annotations

import gc

from bulkput import runtime


async def _threshold_inside() -> tuple[int, int, int]:
    return gc.get_threshold()


def test_the_young_generation_waits_longer_while_a_job_runs_and_is_restored_after() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        inside = runtime.run_async(_threshold_inside())
        assert inside == (runtime.GC_YOUNG_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_a_higher_threshold_set_by_the_caller_is_kept() -> None:
    before = gc.get_threshold()
    try:
        gc.set_threshold(10 * runtime.GC_YOUNG_THRESHOLD, 10, 10)
        assert runtime.run_async(_threshold_inside())[0] == 10 * runtime.GC_YOUNG_THRESHOLD
    finally:
        gc.set_threshold(*before)
