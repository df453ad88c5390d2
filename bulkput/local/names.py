"""File names and keys as people read them: printable, and safe to send.

:func:`printable` escapes, repr-style, what a terminal or a log would act on instead of showing:
control characters (a newline in a name would otherwise forge a log line), other non-printable
characters (bidirectional overrides, separators) and the bytes of undecodable names (``\\xNN``).
Every human output (warnings, errors, plans) shows names through it.

:func:`unsafe_key_reason` is the rule for the keys bulkput makes from file names, manifests and
DEST, for ``put`` and ``sync`` alike, checked before anything is sent:

=========================================  ====================================================
key                                        verdict
=========================================  ====================================================
a ``.`` or ``..`` segment (``a/../b``,     refused unless ``--allow-dot-segments``: a proxy or
``./a``, ``a/.``)                          server that normalises paths would store another key,
                                           even outside DEST
a control character (U+0000-U+001F,        refused unless ``--allow-dot-segments``: most tools
U+007F-U+009F)                             and XML listings mangle it
anything else                              sent as it is
=========================================  ====================================================
"""

from __future__ import annotations

from bulkput.errors import ValidationError

_NAMED = {"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, *, backslashes: bool = True) -> str:
    """``text`` with every non-printable character escaped as ``repr`` does (``\\n``, ``\\x1b``,
    ``\\u202e``); an undecodable byte kept by the file system encoding (a lone surrogate) is
    shown as the byte, ``\\xff``. ``backslashes``: double a backslash, so an escape seen is
    always an escape made (off for text whose names were already escaped)."""
    if text.isprintable() and not (backslashes and "\\" in text):
        return text
    out: list[str] = []
    for char in text:
        if char == "\\":
            out.append("\\\\" if backslashes else char)
        elif char in _NAMED:
            out.append(_NAMED[char])
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
                out.append(f"\\x{code - 0xDC00:02x}")
            elif code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)


def _is_control(char: str) -> bool:
    code = ord(char)
    return code < 0x20 or 0x7F <= code <= 0x9F


def unsafe_key_reason(key: str) -> str | None:
    """Why ``key`` must not be sent as it is (see the table in the module doc), or None."""
    if "." in key:
        for segment in key.split("/"):
            if segment in (".", ".."):
                return f"has a {segment!r} segment, which a path-normalising server or proxy would resolve"
    if not key.isprintable():
        for char in key:
            if _is_control(char):
                return f"holds the control character {printable(char)}"
    return None


def refuse_unsafe_key(key: str, path: str | None) -> None:
    """Raise :class:`~bulkput.errors.ValidationError` (the object fails, exit 1) naming the
    file when :func:`unsafe_key_reason` refuses ``key``."""
    reason = unsafe_key_reason(key)
    if reason is None:
        return
    source = f" (file {printable(path)})" if path else ""
    raise ValidationError(
        f"refused before sending: the key {reason}{source}; change the name (or DEST), "
        "or pass --allow-dot-segments to send the key as it is", key=key, path=path)
