"""bulkput.commands.verb: how put and sync end when their run raises, one test per table row."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from bulkput.commands.verb import run_verb
from bulkput.errors import BulkputError, JournalError, UsageError

ARGS = argparse.Namespace(verbose=0, debug=False)


def raising(error: BaseException) -> Callable[[argparse.Namespace], int]:
    def body(args: argparse.Namespace) -> int:
        raise error

    return body


def test_a_return_is_the_exit_status() -> None:
    assert run_verb("put", ARGS, lambda args: 1) == 1


def test_usage_error_is_its_line_and_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_verb("put", ARGS, raising(UsageError("--part-size 1: too small"))) == 2
    assert capsys.readouterr().err == "bulkput put: --part-size 1: too small\n"


def test_another_bulkput_error_aborts_with_its_own_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_verb("sync", ARGS, raising(JournalError("cannot write the journal"))) == 3
    assert capsys.readouterr().err == "bulkput sync: aborted: cannot write the journal\n"


def test_a_bulkput_error_whose_status_is_1_aborts_with_3(capsys: pytest.CaptureFixture[str]) -> None:
    error = BulkputError("the endpoint is unreachable")
    assert error.exit_code == 1
    assert run_verb("put", ARGS, raising(error)) == 3
    assert capsys.readouterr().err == "bulkput put: aborted: the endpoint is unreachable\n"


def test_an_interrupt_is_130(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_verb("sync", ARGS, raising(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "bulkput sync: interrupted\n"


def test_a_bug_is_one_line_and_3_never_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_verb("put", ARGS, raising(TypeError("NoneType is not iterable"))) == 3
    err = capsys.readouterr().err
    assert err.startswith("bulkput put: aborted: unexpected TypeError in bulkput put (at ")
    assert err.count("\n") == 1 and "Traceback" not in err
