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


def test_a_one_character_secret_leaves_object_keys_alone() -> None:
    register("x")  # --secret-key x
    line = "photos/x.jpg failed: x-amz-meta-x too long (max 2 KiB); see photos/x and x.jpg"
    assert scrub(line) == line
    assert scrub_bytes(line.encode()) == line.encode()


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        ("secret=x", f"secret={MASK}"),
        ('{"secret_key": "x"}', f'{{"secret_key": "{MASK}"}}'),
        ("Credentials(secret_key='x')", f"Credentials(secret_key='{MASK}')"),
        ("<Token>x</Token>", f"<Token>{MASK}</Token>"),
        ("?X-Amz-Security-Token=x&X-Amz-Date=1", f"?X-Amz-Security-Token={MASK}&X-Amz-Date=1"),
        ("the secret is x.", f"the secret is {MASK}."),
        ("x", MASK),
        ("photos/x.jpg: secret x", f"photos/x.jpg: secret {MASK}"),
    ],
)
def test_a_one_character_secret_is_masked_as_a_whole_value(text: str, clean: str) -> None:
    register("x")
    assert scrub(text) == clean
    assert scrub_bytes(text.encode()) == clean.encode()


def test_a_long_secret_is_masked_anywhere_even_inside_a_key() -> None:
    register("SECRETKEY0123456789")
    text = "photos/SECRETKEY0123456789.jpg aSECRETKEY0123456789b"
    assert scrub(text) == f"photos/{MASK}.jpg a{MASK}b"


def test_error_lines_are_scrubbed() -> None:
    register(TOKEN)
    error = ServiceError(f"bad token {TOKEN}", code="InvalidArgument", status=400, key="k")
    assert TOKEN not in error.one_line() and MASK in error.one_line()


def test_the_command_lines_log_handler_scrubs_every_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bulkput.commands.verb import setup_logging

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
