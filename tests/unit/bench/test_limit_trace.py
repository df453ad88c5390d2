"""The limit trace the harness draws: bulkput's -v log lines parsed, a long trace bounded, the
chart written."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from benchmarks.limit_trace import bounded, parse_changes, trace_record, write_limit_chart

START = dt.datetime(2026, 12, 4, 18, 43, 19, 0)


def line(seconds: float, before: int, after: int, why: str) -> str:
    stamp = (START + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    return f"{stamp} bulkput.remote.retry INFO requests in flight {before} -> {after}: {why}"


def test_changes_are_parsed_relative_to_the_start_and_other_lines_ignored() -> None:
    log = "\n".join([
        "upload: a.bin -> s3://b/a.bin",
        line(0.120, 64, 128, "first round at 64 (1584/s, 40 ms): trying 128"),
        "2026-12-04 18:43:19,300 bulkput.remote.transport INFO proxies: none",
        line(0.250, 128, 512, "throughput rose at 128 (2714/s, 46 ms): trying 512"),
    ])
    first, points = parse_changes(log, START.timestamp())
    assert first == 64
    assert points == [[0.12, 128, "first round at 64 (1584/s, 40 ms): trying 128"],
                      [0.25, 512, "throughput rose at 128 (2714/s, 46 ms): trying 512"]]


def test_a_long_trace_is_thinned_keeping_the_first_and_the_last() -> None:
    points = [[float(n), n, "x"] for n in range(10_000)]
    kept = bounded(points, 400)
    assert len(kept) == 400 and kept[0] == points[0] and kept[-1] == points[-1]
    assert bounded(points[:5], 400) == points[:5]


def test_the_chart_is_drawn(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    log = line(0.1, 64, 128, "first round") + "\n" + line(0.2, 128, 64, "no gain")
    trace = trace_record(log, START.timestamp(), 1.5, "bulkput", "python -m bulkput put ...")
    assert trace["changes_total"] == 2 and trace["initial"] == 64
    chart = tmp_path / "limit.png"
    assert write_limit_chart(trace, "title", chart)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
