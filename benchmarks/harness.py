"""The benchmark harness: runs scenarios, checks every run, writes results and docs.

    python -m benchmarks [--quick] [--scenario NAME ...] [--runs N] [--warmup N] [--contenders A,B]
    python -m benchmarks ...            (the same options)

For each scenario: the dataset is generated or reused, then the lanes run interleaved, round
after round (the order reverses every round, A B C C B A ..., so slow drift on a shared machine
hits every lane alike); the first ``--warmup`` rounds are not counted. Every run gets a fresh,
empty server and is verified by listing the bucket afterwards; a run that fails or does not
verify is shown as failed, never as a number. Results go to ``benchmarks/results/NAME.json``;
``docs/benchmarks.md`` and ``docs/img/`` are rebuilt from every results file present.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks import limit_trace, report
from benchmarks.contenders import CONTENDERS, RunContext
from benchmarks.datasets import DATASETS, DEFAULT_SEED, Dataset, ensure_dataset
from benchmarks.measure import ProcessMeasurement, run_measured
from benchmarks.scenarios import SCENARIOS, Lane, Scenario
from benchmarks.servers import (
    DaskCluster,
    RunningServer,
    bulkput_serve_available,
    start_dask_cluster,
    start_server,
)
from benchmarks.tools import find_tool, module_available
from benchmarks.verify import verify_directory, verify_listing

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository this harness is part of
# Datasets (gigabytes) and scratch files live one folder up, shared by the checkouts side by
# side there; the results and the docs they make belong to this checkout.
SHARED_ROOT = CHECKOUT.parent
DEFAULT_DATA_DIR = SHARED_ROOT / "benchmarks" / ".data"
DEFAULT_WORK_DIR = SHARED_ROOT / "benchmarks" / ".work"
DEFAULT_RESULTS_DIR = CHECKOUT / "benchmarks" / "results"
DEFAULT_DOCS = CHECKOUT / "docs" / "benchmarks.md"
DEFAULT_IMG_DIR = CHECKOUT / "docs" / "img"
QUICK_DIR = DEFAULT_WORK_DIR / "quick"
RESYNC_PAUSE_S = 1.1  # so LastModified of the first sync is strictly before the re-sync


@dataclass(frozen=True)
class Options:
    runs: int = 3
    warmup: int = 1
    quick: bool = False
    contenders: tuple[str, ...] = ()  # empty: every lane
    data_dir: Path = DEFAULT_DATA_DIR
    work_dir: Path = DEFAULT_WORK_DIR
    results_dir: Path = DEFAULT_RESULTS_DIR
    docs: Path | None = DEFAULT_DOCS
    img_dir: Path = DEFAULT_IMG_DIR
    seed: int = DEFAULT_SEED
    preliminary: bool = False
    note: str = ""
    command: str = ""
    log: bool = True


def _say(options: Options, message: str) -> None:
    if options.log:
        print(message, file=sys.stderr, flush=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "lane"


def lane_unavailable(lane: Lane, scenario: Scenario) -> str | None:
    contender = CONTENDERS.get(lane.contender)
    if contender is None:
        return f"unknown contender {lane.contender!r}"
    if scenario.action not in contender.actions:
        return f"{contender.name} has no {scenario.action} mode"
    if lane.server.dialect not in contender.dialects:
        return f"{contender.name} does not speak the {lane.server.dialect} dialect"
    reason = contender.unavailable(scenario.action)
    if reason is None and lane.server.kind == "bulkput":
        reason = bulkput_serve_available()
    if reason is None and lane.cluster_workers:
        reason = _dask_unavailable()
    return reason


@functools.cache
def _dask_unavailable() -> str | None:
    if find_tool("dask") is None or not module_available("distributed"):
        return "dask.distributed is not installed (pip install 'bulkput[dask]')"
    shown = subprocess.run([sys.executable, "-m", "bulkput", "put", "--help"],
                           capture_output=True, text=True, check=False).stdout
    if "--dask" not in shown:
        return "bulkput put has no --dask option yet in this checkout"
    return None


def _put_count(stats: dict[str, Any] | None) -> int | None:
    """Object and part PUTs counted by ``bulkput serve`` (``GET /_bulkput/stats``)."""
    if not stats or not isinstance(stats.get("operations"), dict):
        return None
    operations = stats["operations"]
    return sum(int(operations.get(name, 0)) for name in ("PutObject", "UploadPart"))


def _one_run(scenario: Scenario, lane: Lane, dataset: Dataset, round_index: int,
             warmup: bool, options: Options) -> dict[str, Any]:
    """Start a fresh server, run the lane (twice for a re-sync), verify, stop the server."""
    contender = CONTENDERS[lane.contender]
    workdir = options.work_dir / "runs" / scenario.name / f"{_slug(lane.name)}-{round_index}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    record: dict[str, Any] = {"lane": lane.name, "round": round_index, "warmup": warmup}
    server: RunningServer | None = None
    cluster: DaskCluster | None = None
    try:
        server = start_server(lane.server, workdir / "server")
        ctx = RunContext(dataset, server, workdir, scenario.action, lane.extra_args)
        invocation = contender.build(ctx)
        if lane.cluster_workers:
            cluster = start_dask_cluster(lane.cluster_workers, workdir / "dask", invocation.env)
            ctx = RunContext(dataset, server, workdir, scenario.action,
                             tuple(a.replace("{dask}", cluster.address) for a in lane.extra_args))
            invocation = contender.build(ctx)
        helper_cpu = cluster.cpu_seconds if cluster is not None else None
        since: dt.datetime | None = None
        if scenario.resync:
            initial = run_measured(invocation.argv, env=invocation.env, cwd=workdir,
                                   log_path=workdir / "initial.log",
                                   timeout_s=scenario.timeout_s, server_cpu=server.cpu_seconds,
                                   helper_cpu=helper_cpu)
            record["initial"] = _measurement_record(initial)
            if initial.exit_code != 0:
                record.update(ok=False, failure=_exit_failure(initial.exit_code, initial.timed_out,
                                                              initial.output_tail, "initial"))
                return record
            time.sleep(RESYNC_PAUSE_S)
            since = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        puts_before = _put_count(server.stats())
        measured = run_measured(invocation.argv, env=invocation.env, cwd=workdir,
                                log_path=workdir / "run.log", timeout_s=scenario.timeout_s,
                                server_cpu=server.cpu_seconds, helper_cpu=helper_cpu)
        puts_after = _put_count(server.stats())
        record.update(_measurement_record(measured))
        if puts_before is not None and puts_after is not None:
            record["puts"] = puts_after - puts_before
        if measured.exit_code != 0:
            record.update(ok=False, failure=_exit_failure(measured.exit_code, measured.timed_out,
                                                          measured.output_tail))
            return record
        check = verify_listing(server, dataset, since)
        if not check.ok and server.spec.kind == "rclone-dir" and server.workdir is not None:
            # The listing of rclone's directory backend can be wrong where its disk is right
            # (see verify_directory); the disk decides, and the listing's answer is kept.
            on_disk = verify_directory(server.workdir / "root" / server.bucket, dataset)
            record["listing_verification"] = check.message
            if on_disk.ok:
                on_disk = replace(on_disk, message=f"{on_disk.message} (rclone's listing "
                                                   f"said: {check.message})")
            check = replace(on_disk, written_after=check.written_after)
        record.update(objects=check.objects, bytes=check.bytes, verified=check.message)
        if check.written_after is not None:
            record["rewritten"] = check.written_after
        record["ok"] = check.ok
        if not check.ok:
            record["failure"] = f"verification: {check.message}"
        elif scenario.resync and check.written_after:
            record.update(ok=False,
                          failure=f"re-sync rewrote {check.written_after} unchanged objects")
        return record
    except Exception as exc:  # a harness-side failure fails this run, not the whole benchmark
        record.update(ok=False, failure=f"{exc.__class__.__name__}: {exc}")
        return record
    finally:
        if cluster is not None:
            cluster.stop()
        if server is not None:
            server.stop()
        if record.get("ok"):
            shutil.rmtree(workdir, ignore_errors=True)  # keep the logs of failed runs only


def _measurement_record(measured: ProcessMeasurement) -> dict[str, Any]:
    helper = measured.helper_cpu_s
    return {
        "exit_code": measured.exit_code,
        "wall_s": round(measured.wall_s, 4),
        "user_s": round(measured.user_s, 4),
        "sys_s": round(measured.sys_s, 4),
        # CPU spent for the client outside its own process tree (Dask workers) counts as its own
        "cpu_s": round(measured.cpu_s + (helper or 0.0), 4),
        "helper_cpu_s": round(helper, 4) if helper is not None else None,
        "max_rss_mb": round(measured.peak_rss_bytes / 1e6, 1)
        if measured.peak_rss_bytes else None,
        "tree_peak_rss_mb": round(measured.tree_peak_rss_bytes / 1e6, 1)
        if measured.tree_peak_rss_bytes else None,
        "ru_maxrss_mb": round(measured.ru_maxrss_bytes / 1e6, 1),
        "server_cpu_s": round(measured.server_cpu_s, 4)
        if measured.server_cpu_s is not None else None,
    }


def _exit_failure(code: int, timed_out: bool, tail: str, phase: str = "") -> str:
    what = f"{phase} run " if phase else ""
    head = f"{what}timed out" if timed_out else f"{what}exit code {code}"
    last = [line for line in tail.strip().splitlines() if line.strip()][-3:]
    return head + (": " + " | ".join(last) if last else "")


def run_scenario(scenario: Scenario, options: Options) -> dict[str, Any]:
    """Run one scenario and return its result document (also written to the results dir)."""
    started = dt.datetime.now(dt.timezone.utc)
    if scenario.kind == "signing":
        return _finish(scenario, options, started, report.signing_result(options.log))
    spec = DATASETS[scenario.dataset]
    if options.quick:
        spec = spec.scaled(scenario.quick_count)
    _say(options, f"[{scenario.name}] dataset {spec.name} ...")
    dataset = ensure_dataset(spec, options.data_dir, options.seed)
    # a lane may take a dataset of its own (a tiny job beside the full one: the fixed cost)
    lane_datasets = {
        name: ensure_dataset(DATASETS[name], options.data_dir, options.seed)
        for name in sorted({lane.dataset for lane in scenario.lanes if lane.dataset})
    }

    def dataset_of(lane: Lane) -> Dataset:
        return lane_datasets[lane.dataset] if lane.dataset else dataset
    runs = 1 if options.quick else (scenario.runs if scenario.runs is not None else options.runs)
    warmups = 0 if options.quick else (
        scenario.warmup if scenario.warmup is not None else options.warmup)

    lanes: list[dict[str, Any]] = []
    active: list[Lane] = []
    for lane in scenario.lanes:
        if options.quick and not lane.quick:
            continue
        if options.contenders and lane.contender not in options.contenders:
            continue
        reason = lane_unavailable(lane, scenario)
        contender = CONTENDERS.get(lane.contender)
        info: dict[str, Any] = {
            "name": lane.name, "contender": lane.contender, "server": lane.server.label,
            "subject": lane.is_subject, "available": reason is None, "reason": reason,
            "version": contender.version() if contender else None,
            "notes": contender.notes if contender else "",
        }
        if lane.dataset:
            info.update(dataset=lane.dataset, files=dataset_of(lane).files,
                        bytes=dataset_of(lane).bytes)
        if reason is None:
            active.append(lane)
        else:
            _say(options, f"[{scenario.name}] {lane.name}: skipped, {reason}")
        lanes.append(info)
    commands: dict[str, str] = {}
    for lane in active:
        commands.update(_display_commands(scenario, [lane], dataset_of(lane), options))
    for info in lanes:
        info["command"] = commands.get(info["name"])

    runs_out: list[dict[str, Any]] = []
    for round_index in range(warmups + runs):
        order = active if round_index % 2 == 0 else list(reversed(active))
        for lane in order:
            warm = round_index < warmups
            record = _one_run(scenario, lane, dataset_of(lane), round_index, warm, options)
            runs_out.append(record)
            shown = (f"{record['wall_s']:.2f} s" if "wall_s" in record else "-")
            status = "ok" if record.get("ok") else f"FAILED ({record.get('failure')})"
            _say(options, f"[{scenario.name}] round {round_index}{' (warm-up)' if warm else ''} "
                          f"{lane.name}: {shown} {status}")
    trace = None
    if scenario.trace and not options.quick:
        traced = next((lane for lane in active if lane.contender == "bulkput"
                       and lane.is_subject and not lane.extra_args), None)  # fmt: skip
        if traced is not None:
            trace = _trace_run(scenario, traced, dataset, options)
            _say(options, f"[{scenario.name}] traced run of {traced.name}: "
                          f"{trace.get('changes_total', '-')} changes of the limit")
    result = {
        "dataset": {"name": spec.name, "description": spec.description, "files": dataset.files,
                    "bytes": dataset.bytes, "seed": dataset.seed,
                    "md5_checked": dataset.md5_checked},
        "runs_per_lane": runs,
        "warmup_rounds": warmups,
        "lanes": lanes,
        "runs": runs_out,
    }
    if trace is not None:
        result["trace"] = trace
    return _finish(scenario, options, started, result)


def _trace_run(scenario: Scenario, lane: Lane, dataset: Dataset,
               options: Options) -> dict[str, Any]:  # fmt: skip
    """One more run of ``lane`` with ``-v`` on a fresh server: its limit changes over time."""
    workdir = options.work_dir / "runs" / scenario.name / f"{_slug(lane.name)}-trace"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    server = start_server(lane.server, workdir / "server")
    try:
        ctx = RunContext(dataset, server, workdir, scenario.action, (*lane.extra_args, "-v"))
        invocation = CONTENDERS[lane.contender].build(ctx)
        started_epoch = time.time()
        measured = run_measured(invocation.argv, env=invocation.env, cwd=workdir,
                                log_path=workdir / "trace.log", timeout_s=scenario.timeout_s,
                                server_cpu=server.cpu_seconds)  # fmt: skip
        if measured.exit_code != 0:
            return {"lane": lane.name, "failure": _exit_failure(
                measured.exit_code, measured.timed_out, measured.output_tail, "traced")}
        verbose = replace(lane, extra_args=(*lane.extra_args, "-v"))
        shown = _display_commands(scenario, [verbose], dataset, options)
        return limit_trace.trace_record((workdir / "trace.log").read_text(errors="replace"),
                                        started_epoch, measured.wall_s, lane.name,
                                        next(iter(shown.values()), ""))  # fmt: skip
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _display_commands(scenario: Scenario, lanes: list[Lane], dataset: Dataset,
                      options: Options) -> dict[str, str]:
    """Each lane's command as the docs show it (built against a placeholder server)."""
    shown: dict[str, str] = {}
    for lane in lanes:
        placeholder = RunningServer(lane.server, "127.0.0.1", 0, "AK", "SK", process=None)
        shown_args = tuple(a.replace("{dask}", "tcp://127.0.0.1:SCHEDULER_PORT")
                           for a in lane.extra_args)
        ctx = RunContext(dataset, placeholder, options.work_dir, scenario.action, shown_args)
        shown[lane.name] = CONTENDERS[lane.contender].build(ctx).display.replace(
            "http://127.0.0.1:0", "http://127.0.0.1:PORT")
    return shown


def _finish(scenario: Scenario, options: Options, started: dt.datetime,
            result: dict[str, Any]) -> dict[str, Any]:
    document = {
        "scenario": scenario.name,
        "title": scenario.title,
        "description": scenario.description,
        "targets": [asdict(target) for target in scenario.targets],
        "action": scenario.action,
        "resync": scenario.resync,
        "primary": scenario.primary,
        "view": scenario.view,
        "pairs": [list(p) for p in scenario.pairs],
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": options.quick,
        "preliminary": options.preliminary,
        "note": options.note,
        "command": options.command,
        "machine": report.machine_description(),
        **result,
    }
    document["summary"] = report.summarize(document)
    options.results_dir.mkdir(parents=True, exist_ok=True)
    path = options.results_dir / f"{scenario.name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(document, indent=1, default=str) + "\n")
    tmp.replace(path)
    return document


def run(scenario_names: Sequence[str], options: Options) -> list[dict[str, Any]]:
    """Run the named scenarios (all of them when empty; the quick ones with --quick)."""
    if scenario_names:
        unknown = [n for n in scenario_names if n not in SCENARIOS]
        if unknown:
            raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; "
                             f"known: {', '.join(SCENARIOS)}")
        chosen = [SCENARIOS[n] for n in scenario_names]
    elif options.quick:
        chosen = [s for s in SCENARIOS.values() if s.quick]
    else:
        chosen = list(SCENARIOS.values())
    documents = [run_scenario(scenario, options) for scenario in chosen]
    if options.docs is not None:
        report.write_docs(options.results_dir, options.docs, options.img_dir,
                          list(SCENARIOS), only_quick=options.quick)
        _say(options, f"wrote {options.docs} and charts in {options.img_dir}")
    return documents


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: small dataset cut to 500 files, 1 run, fast contenders; "
                             "writes under benchmarks/.work/quick unless told otherwise")
    parser.add_argument("--scenario", action="append", default=[], metavar="NAME",
                        help="run this scenario (repeatable); see --list")
    parser.add_argument("--runs", type=int, default=3, help="counted runs per lane (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds (default 1)")
    parser.add_argument("--contenders", default="",
                        help="comma-separated contender names to keep (default: all)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=None)
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--docs", type=Path, default=None, help="markdown file to (re)write")
    parser.add_argument("--img-dir", type=Path, default=None)
    parser.add_argument("--no-docs", action="store_true", help="write results JSON only")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--preliminary", action="store_true",
                        help="mark these results as preliminary in the docs")
    parser.add_argument("--note", default="", help="a line shown with these results")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")


def options_from_args(args: argparse.Namespace, command: str) -> Options:
    base = QUICK_DIR if args.quick else None
    return Options(
        runs=max(1, args.runs),
        warmup=max(0, args.warmup),
        quick=args.quick,
        contenders=tuple(c.strip() for c in args.contenders.split(",") if c.strip()),
        data_dir=args.data_dir,
        work_dir=args.work_dir or (base / "work" if base else DEFAULT_WORK_DIR),
        results_dir=args.results_dir or (base / "results" if base else DEFAULT_RESULTS_DIR),
        docs=None if args.no_docs else (args.docs or (base / "benchmarks.md" if base
                                                      else DEFAULT_DOCS)),
        img_dir=args.img_dir or (base / "img" if base else DEFAULT_IMG_DIR),
        seed=args.seed,
        preliminary=args.preliminary,
        note=args.note,
        command=command,
    )


def list_scenarios() -> str:
    lines = []
    for scenario in SCENARIOS.values():
        lanes = ", ".join(lane.name for lane in scenario.lanes) or "-"
        quick = " [quick]" if scenario.quick else ""
        lines.append(f"{scenario.name:12} {scenario.title}{quick}\n{'':12} lanes: {lanes}")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace, command: str) -> int:
    if args.list:
        print(list_scenarios())
        return 0
    options = options_from_args(args, command)
    documents = run(args.scenario, options)
    failed = [
        f"{doc['scenario']}: {lane}"
        for doc in documents
        for lane, summary in doc["summary"].get("lanes", {}).items()
        if summary.get("status") == "failed"
    ]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    shown_argv = list(sys.argv[1:] if argv is None else argv)
    return run_from_args(args, " ".join([prog, *map(shlex.quote, shown_argv)]))

