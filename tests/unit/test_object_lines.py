"""bulkput/commands/object_lines.py: one test per row of its table."""

from __future__ import annotations

import io

import pytest

from bulkput.commands.object_lines import ObjectLines, object_line
from bulkput.items import ObjectResult, Status
from bulkput.remote.target import Target

T = Target.parse("s3://photos/p/")


@pytest.mark.parametrize(
    ("result", "verbose", "line"),
    [
        (ObjectResult("p/a", "/d/a", Status.PLANNED, size=3, reason="put"), False,
         "(dry run) upload /d/a -> s3://photos/p/a (3 B)"),
        (ObjectResult("p/a", "/d/a", Status.PLANNED, size=1536, reason="upload: size"), False,
         "(dry run) upload /d/a -> s3://photos/p/a (1.5 KiB, size)"),
        (ObjectResult("p/o", None, Status.PLANNED, size=5, reason="delete: no-local-file"), False,
         "(dry run) delete s3://photos/p/o (no-local-file)"),
        (ObjectResult("p/a", "/d/a", Status.STORED, size=3), True, "upload: /d/a -> s3://photos/p/a"),
        (ObjectResult("p/o", None, Status.DELETED), True, "delete: s3://photos/p/o"),
        (ObjectResult("p/a", "/d/a", Status.STORED, size=3), False, None),
        (ObjectResult("p/a", "/d/a", Status.FAILED), True, None),
        (ObjectResult("p/a", "/d/a", Status.SKIPPED), True, None),
    ],
)
def test_object_line_table(result, verbose, line):
    assert object_line(result, T, verbose) == line


def test_a_control_character_in_a_name_is_printed_escaped_on_one_line():
    out = io.StringIO()
    ObjectLines(T, verbose=True, out=out).on_result(
        ObjectResult("p/b\nc\x1b", "/d/b\nc\x1b", Status.STORED, size=1))
    assert out.getvalue() == "upload: /d/b\\nc\\x1b -> s3://photos/p/b\\nc\\x1b\n"
