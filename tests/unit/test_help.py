"""Every verb's --help: plain text, its usage line, its defaults, examples at the end; and
argparse's errors as one line."""

from __future__ import annotations

import pytest

from bulkput.cli import main

VERBS = [
    [], ["put"], ["sync"], ["serve"], ["demo"], ["abort-incomplete"], ["report"],
    ["report", "merge"], ["journal"], ["journal", "list"], ["journal", "prune"],
]  # fmt: skip


def help_of(words: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as stopped:
        main([*words, "--help"])
    assert stopped.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("words", VERBS, ids=lambda words: " ".join(words) or "bulkput")
def test_help_is_plain_text_and_ends_with_examples(
    words: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_of(words, capsys)
    assert "``" not in text and "::" not in text  # no reST markup
    assert "Examples:" in text
    examples = text[text.index("Examples:"):]
    assert "bulkput " in examples  # command lines...
    headings = [line for line in examples.splitlines()[1:] if line and not line[0].isspace()]
    assert headings == []  # ...after every group of options


def test_put_usage_names_its_two_forms(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_of(["put"], capsys)
    assert text.startswith(
        "usage: bulkput put [OPTIONS] SOURCE... DEST\n"
        "       bulkput put [OPTIONS] --manifest FILE DEST\n"
    )
    assert "[SOURCE... DEST ...]" not in text


@pytest.mark.parametrize("verb", ["put", "sync"])
@pytest.mark.parametrize(
    "default",
    [
        "adaptive, from 64 up to --max-concurrency",  # --concurrency
        "ceiling (default 512)",  # --max-concurrency
        "retries per request, with backoff (default: 9)",
        "retried (default: 60.0)",  # --timeout
        "(default: 8M, larger when a file needs more than 10,000 parts)",  # --part-size
        "(default 512M; above 5G always)",  # --multipart-threshold
        "--addressing {auto,path,virtual} bucket in the URL's path",
    ],
)
def test_help_shows_the_defaults(
    verb: str, default: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = " ".join(help_of([verb], capsys).split())
    assert default in text


def test_flags_show_no_default(capsys: pytest.CaptureFixture[str]) -> None:
    text = " ".join(help_of(["put"], capsys).split())
    assert "(default: True)" not in text and "(default: False)" not in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["put", "a", "s3://bkt/p", "--concurrency", "0"],
         "bulkput put: argument --concurrency: '0': must be at least 1; see `bulkput put --help`"),
        (["sync", "d", "s3://bkt/p", "--bogus"],
         "bulkput sync: unrecognized arguments: --bogus; see `bulkput sync --help`"),
        (["put", "a", "s3://bkt/p", "--progress", "jsn"],
         "bulkput put: argument --progress: invalid choice: 'jsn'; did you mean json?"),
        (["pt"], "bulkput: argument COMMAND: invalid choice: 'pt'; did you mean put?"),
    ],
)  # fmt: skip
def test_an_argparse_error_is_one_line_and_where_the_help_is(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()  # was a 24-line usage dump, then the error
    assert line.startswith(expected), line
    assert line.endswith("--help`")
