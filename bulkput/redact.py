"""The one scrubber: the job's secret keys and session tokens removed from every text bulkput
shows, logs or writes to a report, a server's error message included.

Secrets are registered where they enter the client: :class:`~bulkput.remote.client.HttpObjectStore`
registers its credentials when it is made and again when a chain renews them. Then:

* an error answer's body is scrubbed before the dialect reads its message (a server that echoes
  the session token in ``<Message>`` cannot pass it on), and so is every network error's text;
* the text sinks pass their lines through :func:`scrub`: the report writer, the lines printed
  on stderr, and the log handler of the command line (:class:`ScrubbingFilter`).

Each secret is removed as it is and percent-encoded (a server may echo a query string). A
secret shorter than 8 characters (only ever a test's: real keys and tokens are longer) is
removed only where it is a whole value, between two separators (:data:`SEPARATORS`, the start
or end of the text; a sentence's final ``.``, ``!`` or ``?`` too), so that ``sk`` does not eat
the middle of ``disk`` nor ``x`` that of ``photos/x.jpg``, while ``secret=x``, ``"x"``,
``<Token>x</Token>`` and ``token x.`` are masked. No secret registered: :func:`scrub` returns
its argument at the cost of one attribute test.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, urlsplit

MASK = "******"
SHORT = 8  # secrets shorter than this are matched as whole values only
# What ends a value in the texts bulkput shows: whitespace, quotes, key=value, lists, query
# strings, XML and JSON, brackets. Not / . - _ + (inside object keys, paths, file names).
SEPARATORS = r"""\s"'`=:,;&|<>()\[\]{}"""
_BEFORE = rf"(?<![^{SEPARATORS}])"  # the start of the text or a separator
_AFTER = rf"(?![^{SEPARATORS}])|(?=[.!?]+(?:[{SEPARATORS}]|$))"  # or a sentence's end


def _alternative(secret: str) -> str:
    if len(secret) >= SHORT:
        return re.escape(secret)
    return rf"{_BEFORE}{re.escape(secret)}(?:{_AFTER})"


class Redactor:
    """A set of secrets and the one pattern that finds any of them."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._bytes_pattern: re.Pattern[bytes] | None = None

    def register(self, secrets: Iterable[str | None]) -> None:
        """Remove these (and their percent-encoded forms) from every text from now on."""
        new = set()
        for secret in secrets:
            if secret:
                new.update({secret, quote(secret, safe=""), quote_plus(secret, safe="")})
        if new <= self._secrets:
            return
        self._secrets |= new
        # longest first, so that a token containing a shorter secret is removed whole
        ordered = sorted(self._secrets, key=len, reverse=True)
        alternatives = [_alternative(s) for s in ordered]
        self._pattern = re.compile("|".join(alternatives))
        self._bytes_pattern = re.compile("|".join(alternatives).encode("utf-8"))

    def scrub(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def scrub_bytes(self, data: bytes) -> bytes:
        pattern = self._bytes_pattern
        if pattern is None or not data:
            return data
        return pattern.sub(MASK.encode(), data)

    def forget(self) -> None:
        """Drop every secret (for tests that run several jobs in one process)."""
        self._secrets.clear()
        self._pattern = self._bytes_pattern = None


REDACTOR = Redactor()


def register(*secrets: str | None) -> None:
    REDACTOR.register(secrets)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``******``."""
    return REDACTOR.scrub(text)


def scrub_bytes(data: bytes) -> bytes:
    return REDACTOR.scrub_bytes(data)


def without_password(url: str) -> str:
    """``url`` with the password of its user part, if any, masked (a proxy's URL)."""
    netloc = urlsplit(url).netloc
    user, at, host = netloc.rpartition("@")
    if not at or ":" not in user:
        return url
    name = user.split(":", 1)[0]
    return url.replace(netloc, f"{name}:{MASK}@{host}", 1)


def url_password(url: str) -> str | None:
    """The password in ``url``'s user part, as written (percent-encoded) and decoded."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


class ScrubbingFilter(logging.Filter):
    """A handler filter: each record's message (and its traceback's text) scrubbed."""

    def filter(self, record: logging.LogRecord) -> bool:
        if REDACTOR._pattern is None:
            return True
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True
