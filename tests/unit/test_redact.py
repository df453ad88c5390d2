"""The scrubber: registered secrets removed from text, bytes, log records and error lines."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from bulkput.errors import ServiceError
from bulkput.redact import MASK, REDACTOR, ScrubbingFilter, register, scrub, scrub_bytes

TOKEN = "IQoJb3JpZ2luX2VjE+/token=="


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    REDACTOR.forget()
    yield
    REDACTOR.forget()


def test_nothing_registered_leaves_text_alone() -> None:
    text = f"token {TOKEN}"
    assert scrub(text) is text and scrub_bytes(text.encode()) == text.encode()


def test_secret_and_token_are_removed_as_they_are_and_percent_encoded() -> None:
    register("SECRETKEY0123456789", TOKEN, None)
    text = f"a SECRETKEY0123456789 b {TOKEN} c {quote(TOKEN, safe='')} d"
    assert scrub(text) == f"a {MASK} b {MASK} c {MASK} d"
    assert scrub_bytes(f"<Message>{TOKEN}</Message>".encode()) == f"<Message>{MASK}</Message>".encode()


def test_a_short_secret_is_removed_only_where_it_stands_alone() -> None:
    register("sk")
    assert scrub("disk sk task sk.") == f"disk {MASK} task {MASK}."


def test_error_lines_are_scrubbed() -> None:
    register(TOKEN)
    error = ServiceError(f"bad token {TOKEN}", code="InvalidArgument", status=400, key="k")
    assert TOKEN not in error.one_line() and MASK in error.one_line()


def test_the_command_lines_log_handler_scrubs_every_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bulkput.commands.put import setup_logging

    logger = logging.getLogger("bulkput")
    saved = list(logger.handlers)
    for handler in saved:
        logger.removeHandler(handler)
    try:
        setup_logging(argparse.Namespace(verbose=0, debug=False))
        register(TOKEN)
        logging.getLogger("bulkput.remote.somewhere").warning("sent %s", TOKEN)
        try:
            raise ValueError(TOKEN)
        except ValueError:
            logging.getLogger("bulkput.job").exception("failed")
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        for handler in saved:
            logger.addHandler(handler)
    err = capsys.readouterr().err
    assert TOKEN not in err and err.count(MASK) == 2 and "ValueError" in err


def test_scrubbing_filter_keeps_clean_records_as_they_are() -> None:
    register(TOKEN)
    record = logging.LogRecord("bulkput", logging.INFO, __file__, 1, "%d objects", (3,), None)
    assert ScrubbingFilter().filter(record) and record.args == (3,)
