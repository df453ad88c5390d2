""""Did you mean" for a value that is not one of a known few (an option's value, a region)."""

from __future__ import annotations

from collections.abc import Iterable


def closest(value: str, known: Iterable[str], n: int = 3) -> list[str]:
    """The known values nearest ``value`` (case ignored), best first; none when nothing is
    close (difflib's ratio below 0.6)."""
    import difflib  # here: only a value that is wrong pays for importing it

    spelled = {name.lower(): name for name in known}
    found = difflib.get_close_matches(value.lower(), list(spelled), n=n, cutoff=0.6)
    return [spelled[name] for name in found]


def did_you_mean(value: str, known: Iterable[str]) -> str:
    """``"did you mean public-read?"``, or ``""`` when nothing known is close to ``value``."""
    close = closest(value, known)
    return f"did you mean {' or '.join(close)}?" if close else ""


def unknown_value(what: str, value: str, known: Iterable[str], where: str = "") -> str:
    """The one-line message for ``value`` that is not one of ``known``: ``unknown ACL
    'public-reed' for s3://; did you mean public-read? (known: private, public-read, ...)``."""
    known = tuple(known)
    place = f" for {where}" if where else ""
    hint = did_you_mean(value, known)
    listed = f"(known: {', '.join(known)})"
    return f"unknown {what} {value!r}{place}; {hint} {listed}" if hint else f"unknown {what} {value!r}{place} {listed}"
