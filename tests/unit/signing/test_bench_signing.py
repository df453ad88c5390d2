"""The signing benchmark runs and reports every algorithm beside its SDK (no timing asserted)."""

from __future__ import annotations

import pytest

from benchmarks.signing import markdown_table, measure_signing


def test_measure_signing_reports_each_algorithm_beside_its_sdk() -> None:
    rows = measure_signing(seconds_per_case=0.03)
    assert [row["algorithm"] for row in rows] == ["bce-v1", "oss-v1", "oss-v4", "s3-v4"]
    for row in rows:
        assert row["ours_per_s"] > 0 and row["sdk_per_s"] > 0
        # the ratio is of the unrounded rates: within what rounding each rate can move it
        assert row["ratio"] == pytest.approx(row["ours_per_s"] / row["sdk_per_s"], abs=0.01, rel=0.01)
    table = markdown_table(rows)
    assert table.count("\n") == len(rows) + 1
    assert "botocore S3SigV4Auth" in table
