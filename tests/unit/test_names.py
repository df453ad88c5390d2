"""bulkput/local/names.py: printable names, and the rule for keys that must not be sent."""

from __future__ import annotations

import pytest

from bulkput.errors import ValidationError
from bulkput.local.names import printable, refuse_unsafe_key, unsafe_key_reason


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert printable("plain/été 日本.txt") == "plain/été 日本.txt"
    assert printable("a\nb\rc\td") == "a\\nb\\rc\\td"
    assert printable("esc\x1b[31m") == "esc\\x1b[31m"
    assert printable("bidi\u202eevil") == "bidi\\u202eevil"
    assert printable("undecodable-\udcff") == "undecodable-\\xff"  # os.fsdecode's stand-in
    assert printable("back\\slash") == "back\\\\slash"
    assert printable("back\\slash\n", backslashes=False) == "back\\slash\\n"


# One test per row of the table in the module doc.


@pytest.mark.parametrize("key", ["a/../b", "../up", "a/..", "./a", "a/./b", "a/.", ".", ".."])
def test_a_dot_segment_is_refused(key: str) -> None:
    assert "segment" in (unsafe_key_reason(key) or "")


@pytest.mark.parametrize("key", ["new\nline", "nul\x00", "tab\there", "del\x7f", "c1\x85"])
def test_a_control_character_is_refused(key: str) -> None:
    assert "control character" in (unsafe_key_reason(key) or "")


@pytest.mark.parametrize("key", ["a..b/c", ".hidden/x", "a/b.", "...", "a/.../b", "été/日本 x.txt", "a//b"])
def test_anything_else_is_sent_as_it_is(key: str) -> None:
    assert unsafe_key_reason(key) is None


def test_the_refusal_names_the_file_and_the_way_out() -> None:
    with pytest.raises(ValidationError) as caught:
        refuse_unsafe_key("p/x\ny", "/src/x\ny")
    error = caught.value
    assert error.key == "p/x\ny" and error.path == "/src/x\ny"
    assert "(file /src/x\\ny)" in error.message and "--allow-dot-segments" in error.message
    assert "\n" not in error.message
