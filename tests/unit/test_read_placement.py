"""The read-placement rule, one test per row of its truth table (bulkput.local.read_placement)."""

from __future__ import annotations

from bulkput.local.read_placement import InlineBatch, ReadPlacement


def test_the_first_batch_is_read_inline() -> None:
    assert ReadPlacement().inline()


def test_after_a_whole_inline_batch_the_next_is_inline() -> None:
    placement = ReadPlacement()
    placement.record_inline(InlineBatch.WHOLE)
    assert placement.inline()


def test_a_large_body_sends_the_next_batches_to_threads() -> None:
    placement = ReadPlacement(threaded_after_stop=3)
    placement.record_inline(InlineBatch.LARGE_BODY)
    placements = []
    for _ in range(3):
        placements.append(placement.inline())
        placement.record_threaded()
    assert placements == [False, False, False]


def test_one_batch_out_of_time_keeps_the_loop_reading() -> None:
    placement = ReadPlacement()
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    assert placement.inline()
    # and a whole batch in between forgets it: out of time again is again the first in a row
    placement.record_inline(InlineBatch.WHOLE)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    assert placement.inline()


def test_two_batches_out_of_time_in_a_row_send_the_next_batches_to_threads() -> None:
    placement = ReadPlacement(threaded_after_stop=2)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    assert not placement.inline()
    placement.record_threaded()
    assert not placement.inline()


def test_after_the_threaded_batches_the_loop_tries_again() -> None:
    placement = ReadPlacement(threaded_after_stop=2)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    placement.record_threaded()
    placement.record_threaded()
    assert placement.inline()
    # the try starts a fresh count: one slow batch alone does not send it back
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    assert placement.inline()


def threaded_stretch(placement: ReadPlacement) -> int:
    """How many batches go to threads before the loop tries again."""
    count = 0
    while not placement.inline():
        placement.record_threaded()
        count += 1
    return count


def test_each_stop_without_a_whole_batch_between_doubles_the_threaded_stretch() -> None:
    placement = ReadPlacement(threaded_after_stop=2, most_threaded_after_stop=8)
    stretches = []
    for _ in range(5):
        placement.record_inline(InlineBatch.LARGE_BODY)
        stretches.append(threaded_stretch(placement))
    assert stretches == [2, 4, 8, 8, 8]
    # storage slow twice in a row counts the same way
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    placement.record_inline(InlineBatch.OUT_OF_TIME)
    assert threaded_stretch(placement) == 8


def test_a_whole_batch_brings_the_threaded_stretch_back_to_its_start() -> None:
    placement = ReadPlacement(threaded_after_stop=2, most_threaded_after_stop=8)
    for _ in range(3):
        placement.record_inline(InlineBatch.LARGE_BODY)
        threaded_stretch(placement)
    placement.record_inline(InlineBatch.WHOLE)
    placement.record_inline(InlineBatch.LARGE_BODY)
    assert threaded_stretch(placement) == 2


def test_switched_off_every_batch_goes_to_a_thread() -> None:
    placement = ReadPlacement(enabled=False)
    assert not placement.inline()
    placement.record_threaded()
    assert not placement.inline()
