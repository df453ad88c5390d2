"""Figures from raw runs, and the documents made of them.

``summarize`` turns a scenario's runs into per-lane figures (median and range over the counted
runs) and pairwise ratios (run ``i`` of the subject with run ``i`` of the peer; the median of
the ratios, not the ratio of the medians), and checks the scenario's targets. ``write_docs``
rebuilds ``docs/benchmarks.md`` and the charts from every results file present, so running one
scenario updates its own section and leaves the others as they were.

Units: MB is 10^6 bytes, GB 10^9 bytes; CPU is user + system time of the client's process tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from benchmarks import limit_trace
from benchmarks.tools import tool_version

FIGURES = ("wall_s", "files_per_s", "mb_per_s", "cpu_s", "cpu_ms_per_file", "cpu_s_per_gb",
           "server_cpu_s", "peak_rss_mb", "initial_wall_s", "puts", "rewritten")
_TOOLS = ("bulkput", "s5cmd", "rclone", "aws", "boto3", "botocore", "obstore", "oss2", "bce",
          "aiohttp", "uvloop")


# --- machine --------------------------------------------------------------------------------

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) * 1024 / 1e9, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    import subprocess

    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None


def md5_seconds_per_gb(megabytes: int = 64, rounds: int = 3) -> float:
    """CPU seconds hashlib's MD5 (OpenSSL's, the one bulkput uses for Content-MD5) takes for
    1 GB of bytes already in memory on this machine: the fastest of ``rounds``, each timed in
    CPU time of this thread, so another process's load does not count."""
    block = bytes(range(256)) * 4096  # 1 MiB
    best = float("inf")
    for _ in range(rounds):
        digest = hashlib.md5()
        started = time.thread_time()
        for _ in range(megabytes):
            digest.update(block)
        best = min(best, time.thread_time() - started)
    return best / (megabytes * len(block) / 1e9)


def machine_description() -> dict[str, Any]:
    return {
        "commit": _git_commit(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gb": _memory_gb(),
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "tools": {name: tool_version(name) for name in _TOOLS},
        "md5_s_per_gb": round(md5_seconds_per_gb(), 4),
    }


# --- figures ----------------------------------------------------------------------------------

def _per_run_figures(run: dict[str, Any], files: int, total_bytes: int) -> dict[str, float]:
    wall, cpu = float(run["wall_s"]), float(run["cpu_s"])
    figures: dict[str, float] = {"wall_s": wall, "cpu_s": cpu}
    if wall > 0:
        figures["files_per_s"] = files / wall
        figures["mb_per_s"] = total_bytes / 1e6 / wall
    if files:
        figures["cpu_ms_per_file"] = cpu * 1000 / files
    if total_bytes:
        figures["cpu_s_per_gb"] = cpu / (total_bytes / 1e9)
    if run.get("server_cpu_s") is not None:
        figures["server_cpu_s"] = float(run["server_cpu_s"])
    figures["peak_rss_mb"] = max(float(run.get("max_rss_mb") or 0),
                                 float(run.get("tree_peak_rss_mb") or 0))
    if run.get("initial"):
        figures["initial_wall_s"] = float(run["initial"]["wall_s"])
    for count in ("puts", "rewritten"):
        if run.get(count) is not None:
            figures[count] = float(run[count])
    return figures


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(document: dict[str, Any]) -> dict[str, Any]:
    """Per-lane figures, pairwise ratios and target verdicts of one scenario's result."""
    if "lanes" not in document:
        return {"targets": [_check_signing_target(t, document.get("rows") or [])
                            for t in document.get("targets", [])]}
    files = int(document["dataset"]["files"])
    total_bytes = int(document["dataset"]["bytes"])
    lanes: dict[str, dict[str, Any]] = {}
    per_run: dict[str, list[dict[str, float]]] = {}
    for lane in document["lanes"]:
        name = lane["name"]
        if not lane["available"]:
            lanes[name] = {"status": "skipped", "reason": lane["reason"]}
            continue
        counted = [r for r in document["runs"] if r["lane"] == name and not r["warmup"]]
        failures = sorted({str(r.get("failure")) for r in counted if not r.get("ok")})
        all_failures = sorted({str(r.get("failure")) for r in document["runs"]
                               if r["lane"] == name and not r.get("ok")})
        if not counted or failures:
            lanes[name] = {"status": "failed", "failed_runs": sum(not r.get("ok") for r in counted),
                           "runs": len(counted), "failures": failures or ["no counted run"]}
            continue
        # a lane with a dataset of its own (a tiny job: the fixed cost) counts its own files
        lane_files, lane_bytes = int(lane.get("files", files)), int(lane.get("bytes", total_bytes))
        figures = [_per_run_figures(r, lane_files, lane_bytes) for r in counted]
        per_run[name] = figures
        summary: dict[str, Any] = {"status": "ok", "runs": len(counted)}
        if all_failures:
            summary["warmup_failures"] = all_failures
        for figure in FIGURES:
            values = [f[figure] for f in figures if figure in f]
            if len(values) == len(figures):
                summary[figure] = _spread(values)
        lanes[name] = summary
    ratios = _ratios(document, per_run)
    return {"lanes": lanes, "ratios": ratios,
            "targets": [_check_target(t, lanes, ratios, per_run,
                                      (document.get("machine") or {}).get("md5_s_per_gb"))
                        for t in document.get("targets", [])]}


def _pairs(document: dict[str, Any]) -> list[tuple[str, str]]:
    if document.get("pairs"):
        return [(a, b) for a, b in document["pairs"]]
    subjects = [lane["name"] for lane in document["lanes"] if lane["subject"]]
    peers = [lane["name"] for lane in document["lanes"] if not lane["subject"]]
    return [(s, p) for s in subjects for p in peers]


def _ratios(document: dict[str, Any],
            per_run: dict[str, list[dict[str, float]]]) -> list[dict[str, Any]]:
    """Run i of the subject against run i of the peer; medians of the per-pair ratios."""
    out = []
    for subject, peer in _pairs(document):
        if subject not in per_run or peer not in per_run:
            out.append({"subject": subject, "peer": peer, "status": "not measured"})
            continue
        pairs = list(zip(per_run[subject], per_run[peer], strict=False))
        time_ratios = [s["wall_s"] / p["wall_s"] for s, p in pairs if p["wall_s"] > 0]
        cpu_ratios = [s["cpu_s"] / p["cpu_s"] for s, p in pairs if p["cpu_s"] > 0]
        rss_ratios = [s["peak_rss_mb"] / p["peak_rss_mb"] for s, p in pairs if p["peak_rss_mb"] > 0]
        entry: dict[str, Any] = {"subject": subject, "peer": peer, "status": "ok",
                                 "pairs": len(pairs)}
        if time_ratios:
            entry["time_ratio"] = _spread(time_ratios)
            entry["speed_ratio"] = _spread([1 / r for r in time_ratios if r > 0])
        if cpu_ratios:
            entry["cpu_ratio"] = _spread(cpu_ratios)
        if rss_ratios:
            entry["rss_ratio"] = _spread(rss_ratios)
        out.append(entry)
    return out


def _check_signing_target(target: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    verdict: dict[str, Any] = {"text": target["text"], "verdict": "not measured", "measured": ""}
    if target["kind"] != "signing":
        verdict["verdict"] = "see table"
        return verdict
    ratios = {str(row.get("algorithm")): row.get("ratio") for row in rows}
    found: dict[str, float] = {}
    for name in target["peers"]:
        ratio = ratios.get(name)
        if isinstance(ratio, (int, float)):
            found[name] = float(ratio)
    if len(found) != len(target["peers"]):
        return verdict
    verdict["measured"] = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in found.items())
    verdict["verdict"] = "met" if min(found.values()) >= float(target["value"]) else "missed"
    return verdict


def per_object_overheads(subject: list[float], peer: list[float], subject_fixed: list[float],
                         peer_fixed: list[float]) -> list[float]:
    """Run by run, ``(subject - subject_fixed) / (peer - peer_fixed) - 1`` of wall times: what
    a job takes past its fixed cost against what the peer takes past its own (a run whose peer
    took no longer than its fixed cost says nothing and is left out)."""
    out = []
    for s, p, s0, p0 in zip(subject, peer, subject_fixed, peer_fixed, strict=False):
        if p - p0 > 0:
            out.append((s - s0) / (p - p0) - 1)
    return out


def _check_target(target: dict[str, Any], lanes: dict[str, dict[str, Any]],
                  ratios: list[dict[str, Any]],
                  per_run: dict[str, list[dict[str, float]]] | None = None,
                  md5_s_per_gb: float | None = None) -> dict[str, Any]:
    kind, value, subject = target["kind"], float(target["value"]), target["subject"]
    verdict: dict[str, Any] = {"text": target["text"], "verdict": "not measured", "measured": ""}
    if kind == "info":
        verdict["verdict"] = "see table"
        return verdict
    lane = lanes.get(subject, {})
    if kind == "cpu_beside":
        return _check_cpu_beside(verdict, target, lanes, md5_s_per_gb)
    if kind == "per_object":
        names = (subject, *target["peers"])
        if any(lanes.get(name, {}).get("status") == "failed" for name in names):
            verdict["verdict"] = "missed (runs failed)"
            return verdict
        walls = [[f["wall_s"] for f in (per_run or {}).get(name, [])] for name in names]
        overheads = per_object_overheads(*walls)
        if len(walls) != 4 or not overheads:
            return verdict
        overhead = statistics.median(overheads)
        verdict["measured"] = (f"{overhead * 100:+.1f}% per object (median of "
                               f"{len(overheads)} runs)")
        verdict["verdict"] = "met" if overhead <= value else "missed"
        return verdict
    if kind in ("max", "zero"):
        if lane.get("status") != "ok" or target["metric"] not in lane:
            if lane.get("status") == "failed":
                verdict["verdict"] = "missed (runs failed)"
            return verdict
        spread = lane[target["metric"]]
        if kind == "max":
            verdict["measured"] = f"{spread['median']:.3g} (median)"
            verdict["verdict"] = "met" if spread["median"] <= value else "missed"
        else:
            verdict["measured"] = f"{spread['max']:.0f} (most in any run)"
            verdict["verdict"] = "met" if spread["max"] == 0 else "missed"
        return verdict
    measured = [r for r in ratios if r["subject"] == subject and r["peer"] in target["peers"]
                and r.get("status") == "ok"]
    if lane.get("status") == "failed":
        verdict["verdict"] = "missed (runs failed)"
        return verdict
    if not measured:
        return verdict
    if kind == "speed":
        # against the fastest peer: the smallest speed ratio
        worst = min(measured, key=lambda r: r["speed_ratio"]["median"])
        ratio = worst["speed_ratio"]["median"]
        verdict["measured"] = f"{ratio:.2f}x {worst['peer']}"
        verdict["verdict"] = "met" if ratio >= value else "missed"
    elif kind == "time":
        worst = max(measured, key=lambda r: r["time_ratio"]["median"])
        ratio = worst["time_ratio"]["median"]
        verdict["measured"] = f"{ratio:.2f}x {worst['peer']}'s wall time"
        verdict["verdict"] = "met" if ratio <= value else "missed"
    elif kind == "overhead":
        overhead = measured[0]["time_ratio"]["median"] - 1
        verdict["measured"] = f"{overhead * 100:+.1f}% wall time"
        verdict["verdict"] = "met" if overhead <= value else "missed"
    return verdict


def _check_cpu_beside(verdict: dict[str, Any], target: dict[str, Any],
                      lanes: dict[str, dict[str, Any]],
                      md5_s_per_gb: float | None) -> dict[str, Any]:
    """The subject's median ``metric`` (CPU per GB) at most ``value`` x the peer's plus the
    MD5 of a GB on the machine of the run (results without that figure: not measured)."""
    metric = target["metric"]
    names = (target["subject"], target["peers"][0])
    if any(lanes.get(name, {}).get("status") == "failed" for name in names):
        verdict["verdict"] = "missed (runs failed)"
        return verdict
    subject_lane, peer_lane = (lanes.get(name, {}) for name in names)
    if md5_s_per_gb is None or metric not in subject_lane or metric not in peer_lane:
        return verdict
    measured = subject_lane[metric]["median"]
    peer = peer_lane[metric]["median"]
    limit = float(target["value"]) * peer + md5_s_per_gb
    verdict["measured"] = (f"{measured:.2f} against {target['value']:g} x {peer:.2f} "
                           f"({names[1]}) + {md5_s_per_gb:.2f} (MD5) = {limit:.2f}")
    verdict["verdict"] = "met" if measured <= limit else "missed"
    return verdict


# --- markdown -----------------------------------------------------------------------------------

def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _cell(summary: dict[str, Any], figure: str, with_range: bool = False) -> str:
    spread = summary.get(figure)
    if not spread:
        return "-"
    text = _fmt(spread["median"])
    if with_range and spread["min"] != spread["max"]:
        text += f" ({_fmt(spread['min'])}-{_fmt(spread['max'])})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def lane_table(document: dict[str, Any]) -> str:
    summary = document["summary"]
    resync = document.get("resync")
    head = ["contender", "runs", "wall s (range)", "files/s", "MB/s", "CPU ms/file", "CPU s/GB",
            "server CPU s", "peak RSS MB"]
    if resync:
        head[2] = "re-sync wall s (range)"
        head += ["initial sync s", "rewritten", "PUTs"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for lane in document["lanes"]:
        name = lane["name"]
        s = summary["lanes"].get(name, {})
        label = f"**{name}**" if lane["subject"] else name
        if s.get("status") == "skipped":
            cells = [label, "skipped: " + _escape(str(s["reason"]))] + [""] * (len(head) - 2)
        elif s.get("status") == "failed":
            cells = [label, f"FAILED ({s['failed_runs']} of {s['runs']} runs): "
                     + _escape("; ".join(s["failures"]))[:300]] + [""] * (len(head) - 2)
        else:
            cells = [label, str(s["runs"]), _cell(s, "wall_s", True), _cell(s, "files_per_s"),
                     _cell(s, "mb_per_s"), _cell(s, "cpu_ms_per_file"), _cell(s, "cpu_s_per_gb"),
                     _cell(s, "server_cpu_s"), _cell(s, "peak_rss_mb")]
            if resync:
                cells += [_cell(s, "initial_wall_s"), _cell(s, "rewritten"), _cell(s, "puts")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _ratio_cell(ratio: dict[str, Any], key: str) -> str:
    spread = ratio.get(key)
    if not spread:
        return "-"
    return f"{spread['median']:.2f}x ({spread['min']:.2f}-{spread['max']:.2f})"


def ratio_table(document: dict[str, Any]) -> str:
    ratios = document["summary"].get("ratios", [])
    if not ratios:
        return ""
    lines = ["| subject | peer | pairs | speed ratio (peer time / subject time) | "
             "client CPU ratio (subject / peer) | peak RSS ratio |", "|---|---|---|---|---|---|"]
    for r in ratios:
        if r.get("status") != "ok":
            lines.append(f"| {r['subject']} | {r['peer']} | - | {r['status']} | | |")
            continue
        lines.append(f"| {r['subject']} | {r['peer']} | {r['pairs']} | "
                     f"{_ratio_cell(r, 'speed_ratio')} | {_ratio_cell(r, 'cpu_ratio')} | "
                     f"{_ratio_cell(r, 'rss_ratio')} |")
    return "\n".join(lines)


def _commands_block(document: dict[str, Any]) -> str:
    lanes = [lane for lane in document["lanes"] if lane.get("command")]
    if not lanes:
        return ""
    rows = ["| contender | version | settings | command |", "|---|---|---|---|"]
    for lane in lanes:
        rows.append(f"| {lane['name']} | {_escape(str(lane.get('version') or '-'))} | "
                    f"{_escape(lane.get('notes') or '-')} | `{_escape(lane['command'])}` |")
    return "\n".join(rows)


def _signing_section(document: dict[str, Any]) -> list[str]:
    out: list[str] = []
    if document.get("error"):
        out.append(f"Not measured: {document['error']}")
        return out
    rows = document.get("rows") or []
    if rows:
        columns = list(rows[0])
        out.append("| " + " | ".join(columns) + " |")
        out.append("|" + "---|" * len(columns))
        for row in rows:
            out.append("| " + " | ".join(_escape(_signing_value(row.get(c))) for c in columns)
                       + " |")
    if document.get("text"):
        out.append(str(document["text"]))
    return out


def _signing_value(value: Any) -> str:
    if isinstance(value, float):
        return _fmt(value, 4)
    return str(value)


def scenario_section(document: dict[str, Any], img_dir: Path, docs_path: Path) -> str:
    out = [f"## {document['title']}", ""]
    flags = []
    if document.get("quick"):
        flags.append("**quick smoke run (1 run, reduced dataset): not a measurement**")
    if document.get("preliminary"):
        flags.append("**preliminary: measured while the machine was shared; numbers are noisy**")
    if flags:
        out += [" ".join(flags), ""]
    if document.get("description"):
        out += [document["description"], ""]
    meta = [f"Scenario `{document['scenario']}`", f"run {document['started']}"]
    if "dataset" in document:
        ds = document["dataset"]
        meta.append(f"dataset `{ds['name']}` ({ds['files']:,} objects, "
                    f"{ds['bytes'] / 1e6:,.1f} MB, seed {ds['seed']}; verified by listing: "
                    f"count, bytes, keys{', MD5' if ds['md5_checked'] else ''})")
        meta.append(f"{document['runs_per_lane']} counted runs per contender after "
                    f"{document['warmup_rounds']} warm-up round(s), interleaved")
    if document.get("note"):
        meta.append(document["note"].rstrip("."))
    out += ["; ".join(meta) + ".", ""]
    on_disk = [r for r in document.get("runs", ()) if r.get("listing_verification")]
    if on_disk:
        lanes = ", ".join(sorted({str(r["lane"]) for r in on_disk}))
        out += [f"{len(on_disk)} of {len(document['runs'])} runs (of {lanes}, warm-ups included) "
                "were verified on the server's disk instead: rclone's listing showed an object "
                "without an ETag whose GET broke off (a stale entry in its directory cache after "
                "its temporary-file renames raced; \"Dir.Rename error\" in its log), while the "
                "file on disk was complete. The disk decides; a run whose files differ there "
                "fails.", ""]
    if document.get("targets") and document["summary"].get("targets"):
        out += ["| target | measured | verdict |", "|---|---|---|"]
        for t in document["summary"]["targets"]:
            out.append(f"| {_escape(t['text'])} | {_escape(t['measured']) or '-'} | "
                       f"{t['verdict']} |")
        out.append("")
    if document.get("kind") == "signing" or "rows" in document or "error" in document:
        out += [*_signing_section(document), ""]
    else:
        out += [lane_table(document), ""]
        ratios = ratio_table(document)
        if ratios:
            out += [ratios, ""]
        chart = img_dir / f"bench-{document['scenario']}.png"
        if write_chart(document, chart):
            rel = os.path.relpath(chart, docs_path.parent)
            out += [f"![{document['scenario']}]({rel})", ""]
        out += _trace_block(document, img_dir, docs_path)
        block = _commands_block(document)
        if block:
            out += ["Commands (PORT: the server's port; DIR: the dataset's folder; credentials "
                    "in the environment):", "", block, ""]
    out.append(f"Reproduce: `{document.get('command') or 'python -m benchmarks'}`")
    out.append("")
    return "\n".join(out)


def _trace_block(document: dict[str, Any], img_dir: Path, docs_path: Path) -> list[str]:
    """The adaptive limit of the traced run: its chart and its first changes."""
    trace = document.get("trace")
    if not trace:
        return []
    if trace.get("failure"):
        return [f"The traced run ({trace['lane']}, -v) failed: {_escape(trace['failure'])}.", ""]
    out = [f"bulkput's adaptive limit in one more run with `-v` (not one of the counted runs; "
           f"{trace['wall_s']:.2f} s, {trace['changes_total']} changes of the limit, from the "
           f"\"requests in flight A -> B: why\" lines of its log): "
           f"`{trace['command']}`", ""]
    chart = img_dir / f"limit-{document['scenario']}.png"
    title = f"{document['scenario']}: bulkput's limit on requests in flight, one run"
    if limit_trace.write_limit_chart(trace, title, chart):
        rel = os.path.relpath(chart, docs_path.parent)
        out += [f"![limit over time, {document['scenario']}]({rel})", ""]
    shown = trace["changes"][:12]
    if shown:
        out += ["| s | limit | why |", "|---|---|---|"]
        out += [f"| {t:.3f} | {limit} | {_escape(why)} |" for t, limit, why in shown]
        if trace["changes_total"] > len(shown):
            out.append(f"| ... | | {trace['changes_total'] - len(shown)} more |")
        out.append("")
    return out


def write_chart(document: dict[str, Any], path: Path) -> bool:
    """A bar chart of files/s or MB/s (median, with the range); False without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure_key = "mb_per_s" if document.get("primary") == "bytes" else "files_per_s"
    if document.get("resync"):
        figure_key = "wall_s"
    names, medians, lows, highs, colors = [], [], [], [], []
    for lane in document["lanes"]:
        s = document["summary"]["lanes"].get(lane["name"], {})
        if s.get("status") != "ok" or figure_key not in s:
            continue
        spread = s[figure_key]
        names.append(lane["name"])
        medians.append(spread["median"])
        lows.append(spread["median"] - spread["min"])
        highs.append(spread["max"] - spread["median"])
        colors.append("#d95f02" if lane["subject"] else "#7570b3")
    if not names:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.4))
    ax.barh(names[::-1], medians[::-1], xerr=[lows[::-1], highs[::-1]], color=colors[::-1],
            capsize=3)
    label = {"mb_per_s": "MB/s (median, range)", "files_per_s": "files/s (median, range)",
             "wall_s": "re-sync wall time, s (median, range; lower is better)"}[figure_key]
    ax.set_xlabel(label)
    ax.set_title(document["title"], fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def _machine_section(machine: dict[str, Any]) -> str:
    tools = ", ".join(f"{k}: {v}" for k, v in machine.get("tools", {}).items())
    commit = f"; bulkput at commit {machine['commit']}" if machine.get("commit") else ""
    return (f"- CPU: {machine['cpu']}, {machine['cores']} cores; memory {machine['memory_gb']} GB; "
            f"{machine['os']}; Python {machine['python']}{commit}\n- Versions: {tools}\n")


INTRO = """# Benchmarks

Numbers made by the harness in `benchmarks/` (`python -m benchmarks`).
How they are made:

- Every contender runs as its own process, on the same generated dataset (deterministic from a
  seed), against a server started by the harness on 127.0.0.1 and restarted empty before every
  run. Client and server share this machine's cores.
- Runs are interleaved (the order reverses every round) after a warm-up round; each figure is
  the median of the counted runs, with the range in parentheses.
- After every run the bucket is listed and compared with the dataset: object count, bytes, keys,
  and MD5 through the ETag where every object is a single PUT. A run that fails or does not
  match is shown as FAILED, never as a number.
- Client CPU is user + system time of the contender's whole process tree (`wait4`); server CPU
  comes from `/proc/PID/stat`; peak RSS is polled every 0.1 s from `/proc/PID/status` of every
  process in the tree: the larger of the biggest `VmHWM` and the biggest sum of `VmRSS`
  (`ru_maxrss` is not used: Linux carries the parent's RSS at fork into it). MB = 10^6 bytes,
  GB = 10^9 bytes.
- Ratios pair run *i* of the subject with run *i* of the peer and give the median of those
  ratios. Speed ratio > 1: the subject was faster.
"""


VIEW_HEADINGS = {
    "link": """## Over a link: round trips and TLS

What users meet: a store some milliseconds away, behind HTTPS. On a link every request waits a
round trip, so how many are in flight decides; over TLS, the cost of encryption joins the cost
per request. Every tool at its defaults, with a tuned row where a peer has an obvious knob.
""",
    "cpu": """## The CPU view: loopback, plain HTTP

The store on the same machine over plain HTTP: no round trip, no TLS. What is left is each
tool's own cost per request and per byte, and how it shares two cores with the store.
""",
}


def _view(document: dict[str, Any]) -> str:
    view = document.get("view")
    if view in VIEW_HEADINGS:
        return str(view)
    return "link" if str(document.get("scenario", "")).startswith(("tls-", "wan-")) else "cpu"


def _load_results(results_dir: Path) -> list[dict[str, Any]]:
    documents = []
    for path in sorted(results_dir.glob("*.json")):
        try:
            document = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(document, dict) and "scenario" in document:  # not a standalone script's
            documents.append(document)
    return documents


def write_docs(results_dir: Path, docs_path: Path, img_dir: Path,
               order: Iterable[str], only_quick: bool = False) -> None:
    """Rebuild the markdown (and charts) from every results file in ``results_dir``."""
    documents = [d for d in _load_results(results_dir) if bool(d.get("quick")) == only_quick]
    rank = {name: i for i, name in enumerate(order)}
    documents.sort(key=lambda d: (_view(d) != "link", rank.get(d["scenario"], len(rank)),
                                  d["scenario"]))
    parts = [INTRO]
    if any(d.get("preliminary") for d in documents):
        parts.append("**Figures marked preliminary were measured while other work shared the "
                     "machine; the full run replaces them.**\n")
    latest = max(documents, key=lambda d: d.get("finished", ""), default=None)
    if latest is not None:
        parts += ["## Machine", "", _machine_section(latest["machine"])]
    verdicts = [(d["scenario"] + (" (preliminary)" if d.get("preliminary") else ""), t)
                for d in documents for t in d.get("summary", {}).get("targets", [])]
    if verdicts:
        parts += ["## Targets", "", "| scenario | target | measured | verdict |",
                  "|---|---|---|---|"]
        parts += [f"| {name} | {_escape(t['text'])} | {_escape(t['measured']) or '-'} | "
                  f"{t['verdict']} |" for name, t in verdicts]
        parts.append("")
    not_run = [lane for d in documents for lane in d.get("lanes", []) if not lane["available"]]
    if not_run:
        parts += ["## Contenders that did not run", ""]
        seen = set()
        for lane in not_run:
            line = f"- {lane['name']}: {lane['reason']}"
            if line not in seen:
                seen.add(line)
                parts.append(line)
        parts.append("")
    missing = [name for name in rank if name not in {d["scenario"] for d in documents}]
    if missing and not only_quick:
        parts += ["## Scenarios not run yet", "",
                  ", ".join(f"`{name}`" for name in missing)
                  + " (run them with `python -m benchmarks --scenario NAME`).", ""]
    view = ""
    for document in documents:
        if _view(document) != view:
            view = _view(document)
            parts.append(VIEW_HEADINGS[view])
        parts.append(scenario_section(document, img_dir, docs_path))
    docs_path.parent.mkdir(parents=True, exist_ok=True)
    docs_path.write_text("\n".join(parts))


# --- signing ------------------------------------------------------------------------------------

def signing_result(log: bool = True) -> dict[str, Any]:
    """Signed requests per second per algorithm beside the official SDKs' signers (H1's code)."""
    try:
        from benchmarks.signing import measure_signing  # type: ignore[attr-defined,unused-ignore]
    except ImportError as exc:
        return {"kind": "signing", "error": f"benchmarks.signing is not available yet ({exc})"}
    measured = measure_signing()
    return {"kind": "signing", **_signing_rows(measured)}


def _signing_rows(measured: Any) -> dict[str, Any]:
    """Accept what measure_signing returns: rows as dicts or dataclasses, or a markdown text."""
    import dataclasses

    if isinstance(measured, str):
        return {"text": measured}
    if isinstance(measured, dict) and "rows" in measured:
        return {"rows": [_as_row(r) for r in measured["rows"]],
                **{k: v for k, v in measured.items() if k != "rows"}}
    if isinstance(measured, dict):
        return {"rows": [{"name": k, **_as_row(v)} if isinstance(v, dict) or
                         dataclasses.is_dataclass(v) else {"name": k, "value": v}
                         for k, v in measured.items()]}
    return {"rows": [_as_row(r) for r in measured]}


def _as_row(row: Any) -> dict[str, Any]:
    import dataclasses

    if dataclasses.is_dataclass(row) and not isinstance(row, type):
        return dataclasses.asdict(row)
    if isinstance(row, dict):
        return dict(row)
    if hasattr(row, "_asdict"):
        return dict(row._asdict())
    return {"value": str(row)}
