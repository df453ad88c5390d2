"""Figures from raw runs: failed runs never become numbers, ratios are paired run by run."""

from __future__ import annotations

from typing import Any

from benchmarks.report import lane_table, summarize


def _run(lane: str, wall: float, cpu: float = 1.0, ok: bool = True, warmup: bool = False,
         **extra: Any) -> dict[str, Any]:
    run = {"lane": lane, "warmup": warmup, "ok": ok, "wall_s": wall, "cpu_s": cpu,
           "max_rss_mb": 50.0, "tree_peak_rss_mb": 40.0, "server_cpu_s": 0.5, **extra}
    if not ok:
        run["failure"] = "verification: 4999 objects, expected 5000"
    return run


def _document(runs: list[dict[str, Any]], targets: list[dict[str, Any]] | None = None,
              lanes: tuple[str, ...] = ("bulkput", "peer")) -> dict[str, Any]:
    return {
        "dataset": {"files": 1000, "bytes": 4_000_000},
        "lanes": [{"name": n, "subject": n == "bulkput", "available": True, "reason": None}
                  for n in lanes],
        "runs": runs,
        "targets": targets or [],
        "pairs": [],
    }


def test_a_failed_counted_run_fails_the_lane_and_shows_no_number() -> None:
    document = _document([_run("bulkput", 1.0), _run("bulkput", 1.1, ok=False),
                          _run("peer", 2.0), _run("peer", 2.0)])
    summary = summarize(document)
    assert summary["lanes"]["bulkput"]["status"] == "failed"
    assert "wall_s" not in summary["lanes"]["bulkput"]
    assert summary["ratios"][0]["status"] == "not measured"
    document["summary"] = summary
    row = next(line for line in lane_table(document).splitlines() if "bulkput" in line)
    assert "FAILED (1 of 2 runs)" in row and "4999 objects" in row
    assert "1.1" not in row and "1,000" not in row


def test_warmup_runs_are_not_counted() -> None:
    summary = summarize(_document([_run("bulkput", 9.0, ok=False, warmup=True),
                                   _run("bulkput", 1.0), _run("peer", 2.0)]))
    lane = summary["lanes"]["bulkput"]
    assert lane["status"] == "ok" and lane["runs"] == 1
    assert lane["wall_s"]["median"] == 1.0
    assert lane["files_per_s"]["median"] == 1000.0
    assert lane["cpu_ms_per_file"]["median"] == 1.0
    assert lane["cpu_s_per_gb"]["median"] == 250.0
    assert lane["peak_rss_mb"]["median"] == 50.0


def test_ratios_are_medians_of_pairwise_ratios() -> None:
    # pairwise time ratios 1/2, 4/4, 3/1 -> median 1.0; the ratio of medians would be 3/2
    runs = [_run("bulkput", w) for w in (1.0, 4.0, 3.0)] + [_run("peer", w) for w in (2.0, 4.0, 1.0)]
    ratio = summarize(_document(runs))["ratios"][0]
    assert ratio["pairs"] == 3
    assert ratio["time_ratio"] == {"median": 1.0, "min": 0.5, "max": 3.0}
    assert ratio["speed_ratio"]["median"] == 1.0


def test_targets_are_met_or_missed_from_the_figures() -> None:
    targets = [
        {"text": "faster than peer", "kind": "speed", "value": 1.0, "metric": "",
         "subject": "bulkput", "peers": ["peer"]},
        {"text": "cpu", "kind": "max", "value": 0.5, "metric": "cpu_ms_per_file",
         "subject": "bulkput", "peers": []},
        {"text": "no rewrite", "kind": "zero", "value": 0, "metric": "rewritten",
         "subject": "bulkput", "peers": []},
    ]
    runs = [_run("bulkput", 1.0, cpu=1.0, rewritten=0), _run("bulkput", 1.0, cpu=1.0, rewritten=2),
            _run("peer", 2.0), _run("peer", 2.0)]
    verdicts = {t["text"]: t["verdict"] for t in summarize(_document(runs, targets))["targets"]}
    assert verdicts == {"faster than peer": "met", "cpu": "missed", "no rewrite": "missed"}


def test_per_object_overhead_is_measured_past_each_lanes_fixed_cost() -> None:
    # dask 5.0 s with a 1.5 s fixed cost, one process 3.5 s with 0.4 s: 3.5 / 3.1 - 1 = +12.9%
    lanes = ("dask", "plain", "dask-10", "plain-10")
    runs = [_run("dask", 5.0), _run("plain", 3.5), _run("dask-10", 1.5), _run("plain-10", 0.4),
            _run("dask", 4.0), _run("plain", 3.5), _run("dask-10", 1.0), _run("plain-10", 0.4)]
    target = {"text": "per object", "kind": "per_object", "value": 0.10, "metric": "",
              "subject": "dask", "peers": ["plain", "dask-10", "plain-10"]}
    fixed = {"text": "fixed", "kind": "max", "value": 1.0, "metric": "wall_s",
             "subject": "dask-10", "peers": []}
    document = _document(runs, [target, fixed], lanes)
    document["lanes"][2].update(files=10, bytes=40_960)  # the tiny job counts its own files
    summary = summarize(document)
    per_object, fixed_cost = summary["targets"]
    # run by run: 3.5/3.1 - 1 = +12.9%, 3.0/3.1 - 1 = -3.2%; the median +4.8%
    assert (per_object["verdict"], per_object["measured"]) == ("met", "+4.8% per object (median of 2 runs)")
    assert (fixed_cost["verdict"], fixed_cost["measured"]) == ("missed", "1.25 (median)")
    assert summary["lanes"]["dask-10"]["files_per_s"]["median"] == (10 / 1.5 + 10 / 1.0) / 2
    document["runs"] = [r for r in runs if r["lane"] != "dask-10"]  # no fixed cost measured
    assert summarize(document)["targets"][0]["verdict"] == "missed (runs failed)"


def _cpu_beside_document(bulkput_cpu: float, peer_cpu: float,
                         machine: dict[str, Any] | None) -> dict[str, Any]:
    # 4 MB per run: 1 s of CPU is 250 s/GB
    target = {"text": "cpu beside peer", "kind": "cpu_beside", "value": 1.25,
              "metric": "cpu_s_per_gb", "subject": "bulkput", "peers": ["peer"]}
    runs = [_run("bulkput", 1.0, cpu=bulkput_cpu), _run("peer", 1.0, cpu=peer_cpu)]
    document = _document(runs, [target])
    if machine is not None:
        document["machine"] = machine
    return document


def test_cpu_beside_a_peer_allows_the_factor_times_the_peers_cpu_plus_the_md5_of_the_run() -> None:
    # peer 0.4 s = 100 s/GB; limit 1.25 x 100 + 50 (MD5) = 175 s/GB = 0.7 s
    met = summarize(_cpu_beside_document(0.7, 0.4, {"md5_s_per_gb": 50.0}))["targets"][0]
    assert met["verdict"] == "met"
    assert met["measured"] == "175.00 against 1.25 x 100.00 (peer) + 50.00 (MD5) = 175.00"
    missed = summarize(_cpu_beside_document(0.72, 0.4, {"md5_s_per_gb": 50.0}))["targets"][0]
    assert missed["verdict"] == "missed"


def test_cpu_beside_a_peer_is_not_measured_without_the_runs_md5_figure() -> None:
    old_results = summarize(_cpu_beside_document(0.1, 0.4, {"cores": 2}))["targets"][0]
    assert old_results["verdict"] == "not measured"

