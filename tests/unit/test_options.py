"""bulkput.commands.options: the shared options and the settings they turn into."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bulkput.cli import build_parser, main
from bulkput.commands.options import (
    add_filter_arguments,
    add_journal_arguments,
    config_from_args,
    filter_from_args,
)
from bulkput.errors import UsageError
from bulkput.local.filters import Filter


def included(flt: Filter, key: str, size: int | None = None) -> bool:
    return flt.exclude_reason(key, size) is None


def test_every_size_option_reads_units_the_same_way() -> None:
    # Before one parser, --part-size 8MB was 8 MiB while --min-size 8MB was 8,000,000.
    put = build_parser("put").parse_args(
        ["put", "a", "s3://b/p", "--part-size", "8MB", "--multipart-threshold", "8M"]
    )
    config = config_from_args(put)
    assert config.part_size == 8_000_000
    assert config.multipart_threshold == 8 * 1024 * 1024
    sync = build_parser("sync").parse_args(
        ["sync", "d", "s3://b/p", "--min-size", "8MB", "--max-size", "8MiB", "--part-size", "8MiB"]
    )
    flt = filter_from_args(sync)
    assert (flt.min_size, flt.max_size) == (8_000_000, 8 * 1024 * 1024)
    assert config_from_args(sync).part_size == 8 * 1024 * 1024


@pytest.mark.parametrize("verb", ["put", "sync"])
def test_help_says_what_the_size_units_mean(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([verb, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "K, M, G, T (x1024: also KiB, MiB...) or KB, MB, GB, TB (x1000)" in text


@pytest.mark.parametrize("option", ["--part-size", "--multipart-threshold"])
def test_a_bad_size_is_a_usage_error_before_any_work(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["put", "a", "s3://b/p", option, "8XB"])
    assert stopped.value.code == 2
    assert f"{option}: '8XB' is not a size" in capsys.readouterr().err


def test_a_bad_min_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["sync", "d", "s3://b/p", "--min-size", "-1"])
    assert stopped.value.code == 2
    assert "--min-size: '-1' is not a size" in capsys.readouterr().err


def test_journal_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_journal_arguments(parser)
    args = parser.parse_args([])
    assert (args.state_dir, args.restart, args.journal, args.verify_resume) == (
        None, False, True, True
    )
    args = parser.parse_args(
        ["--state-dir", "/s", "--restart", "--no-journal", "--no-verify-resume"]
    )
    assert (args.state_dir, args.restart, args.journal, args.verify_resume) == (
        "/s", True, False, False
    )


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_filter_arguments(parser)
    return parser.parse_args(argv)


def test_command_line_keeps_the_order_across_options(tmp_path) -> None:
    patterns = tmp_path / "excludes.txt"
    patterns.write_text("# comment\n\n*.log\n  \ncache/\n", encoding="utf-8")
    first = tmp_path / "first.txt"
    first.write_text("+ keep.log\n", encoding="utf-8")
    texts = tmp_path / "texts.txt"
    texts.write_text("*.txt\n", encoding="utf-8")
    args = parse(["--filter-from", str(first), "--exclude-from", str(patterns),
                  "--include-from", str(texts), "--max-size", "1M", "--exclude-hidden"])
    flt = filter_from_args(args)
    assert [(rule.include, rule.pattern) for rule in flt.path_rules] == [
        (True, "keep.log"), (False, "*.log"), (False, "cache/"), (True, "*.txt")]
    assert included(flt, "keep.log")
    assert not included(flt, "other.log")
    assert not included(flt, "cache/a.txt")
    assert included(flt, "a.txt", 1024)
    assert not included(flt, "a.txt", 2 * 1024 * 1024)
    assert not included(flt, ".a.txt")


def test_aws_rules_keep_their_order_and_cannot_mix_with_rclone_files(tmp_path) -> None:
    args = parse(["--exclude", "*", "--include", "*.jpg", "--exclude", "raw/*"])
    flt = filter_from_args(args)
    assert [(rule.include, rule.pattern) for rule in flt.rules] == [
        (False, "*"), (True, "*.jpg"), (False, "raw/*")]
    texts = tmp_path / "texts.txt"
    texts.write_text("*.txt\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not both"):
        filter_from_args(parse(["--exclude", "*", "--include-from", str(texts)]))


def test_missing_pattern_file_is_a_usage_error(tmp_path) -> None:
    args = parse(["--exclude-from", str(tmp_path / "missing")])
    with pytest.raises(UsageError, match="missing"):
        filter_from_args(args)


def test_hidden_default_and_explicit_include_hidden() -> None:
    assert parse([]).exclude_hidden is False
    assert parse(["--include-hidden"]).exclude_hidden is False
    assert parse(["--exclude-hidden"]).exclude_hidden is True


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], False),
        (["--shard", "1/4"], True),
        (["--shard", "1/4", "--no-resume-from-store"], False),
        (["--resume-from-store"], True),
    ],
)
def test_resume_from_store_is_on_with_shard_unless_turned_off(argv, expected, tmp_path) -> None:
    from bulkput.commands.put import spec_from_args

    args = build_parser("put").parse_args(["put", *argv, str(tmp_path), "s3://photos/p/"])
    spec, _source = spec_from_args(args)
    assert spec.resume_from_store is expected


@pytest.mark.parametrize(
    ("flags", "strategy"),
    [
        ([], "size+mtime"),
        (["--size-only"], "size-only"),
        (["--checksum"], "checksum"),
        (["--update"], "update"),
        (["--ignore-existing"], "ignore-existing"),
    ],
)
def test_each_sync_comparison_flag_picks_its_strategy(flags: list[str], strategy: str) -> None:
    from bulkput.job.sync.strategies import STRATEGIES

    args = build_parser("sync").parse_args(["sync", "dir", "s3://b/p", *flags])
    assert args.strategy == strategy
    assert STRATEGIES[args.strategy]().name == strategy


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "x"])
def test_journal_prune_refuses_an_age_that_is_no_number_of_days(
    value: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["journal", "prune", "--older-than", value, "--state-dir", str(tmp_path / "state")])
    assert stopped.value.code == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"bulkput journal prune: argument --older-than: '{value}'")
    assert "days" in line
    assert not (tmp_path / "state").exists()  # nothing was looked at
