"""Interleaved runs of bulkput variants on one dataset: wall, client CPU and server CPU.

    python benchmarks/variant_pairs.py [--server tls|plain] [--dataset large] [--runs 5]
        NAME=CHECKOUT[::ARGS] NAME=CHECKOUT[::ARGS] ...

Each variant is a checkout of bulkput (put on ``PYTHONPATH`` for the run, so a throwaway copy of
the package with one change in it is a variant) and extra ``bulkput put`` arguments after
``::`` (``main=. mp64=.::--multipart-threshold=64M``). Every run gets a fresh, empty
``rclone serve s3 :memory:`` (over TLS with the harness's self-signed certificate, or plain
HTTP), as the harness's lanes do; the variants take turns, their order reversed every round, so
the load of a shared machine falls on all alike. Prints one line per run and the medians of the
counted runs (``--warmup`` rounds first, not counted), and writes them with every run to
``benchmarks/results/standalone/variant-pairs.json`` (``--json``). docs/dev/tls.md quotes it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.contenders import base_env  # noqa: E402
from benchmarks.datasets import DATASETS, DEFAULT_SEED, ensure_dataset  # noqa: E402
from benchmarks.harness import DEFAULT_DATA_DIR  # noqa: E402
from benchmarks.measure import run_measured  # noqa: E402
from benchmarks.servers import RCLONE_MEMORY, RCLONE_TLS, ServerSpec, start_server  # noqa: E402


@dataclass(frozen=True)
class Variant:
    name: str
    checkout: Path
    args: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> Variant:
        name, sep, rest = text.partition("=")
        if not sep or not name or not rest:
            raise SystemExit(f"variant {text!r}: expected NAME=CHECKOUT[::ARGS]")
        checkout, _, args = rest.partition("::")
        path = Path(checkout).resolve()
        if not (path / "bulkput" / "__init__.py").is_file():
            raise SystemExit(f"variant {name}: {path} holds no bulkput package")
        return cls(name, path, tuple(shlex.split(args)))


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    server_cpu_s: float


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", metavar="NAME=CHECKOUT[::ARGS]")
    parser.add_argument("--server", choices=("tls", "plain"), default="tls")
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="large")
    parser.add_argument("--runs", type=int, default=5, help="counted runs per variant")
    parser.add_argument("--warmup", type=int, default=1, help="rounds run first, not counted")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", type=Path, default=REPO / "benchmarks" / ".work" / "pairs")
    parser.add_argument("--json", type=Path,
                        default=REPO / "benchmarks" / "results" / "standalone" / "variant-pairs.json")
    options = parser.parse_args()
    variants = [Variant.parse(text) for text in options.variants]
    if len({v.name for v in variants}) != len(variants):
        raise SystemExit("variant names must differ")
    dataset = ensure_dataset(DATASETS[options.dataset], options.data_dir, DEFAULT_SEED)
    spec = RCLONE_TLS if options.server == "tls" else RCLONE_MEMORY
    work: Path = options.work_dir
    work.mkdir(parents=True, exist_ok=True)
    gigabytes = dataset.bytes / 1e9
    counted: dict[str, list[Run]] = {v.name: [] for v in variants}
    for round_number in range(options.warmup + options.runs):
        order = variants if round_number % 2 == 0 else variants[::-1]
        for variant in order:
            run = _run_once(variant, spec, dataset.source_dir, work)
            print(f"round {round_number} {variant.name}: wall {run.wall_s:.2f} s, client CPU "
                  f"{run.cpu_s:.2f} s ({run.cpu_s / gigabytes:.2f} s/GB), server CPU "
                  f"{run.server_cpu_s:.2f} s", flush=True)
            if round_number >= options.warmup:
                counted[variant.name].append(run)
    print(f"medians of {options.runs} runs, {dataset.files} files, {dataset.bytes / 1e6:.0f} MB, "
          f"{spec.label}:")
    medians: dict[str, dict[str, float]] = {}
    for name, runs in counted.items():
        wall = statistics.median(r.wall_s for r in runs)
        cpu = statistics.median(r.cpu_s for r in runs)
        server = statistics.median(r.server_cpu_s for r in runs)
        medians[name] = {"wall_s": wall, "cpu_s": cpu, "server_cpu_s": server}
        print(f"  {name}: wall {wall:.2f} s ({dataset.bytes / 1e6 / wall:.0f} MB/s), client CPU "
              f"{cpu:.2f} s ({cpu / gigabytes:.2f} s/GB), server CPU {server:.2f} s")
    options.json.parent.mkdir(parents=True, exist_ok=True)
    options.json.write_text(json.dumps({
        "server": spec.label,
        "dataset": {"name": options.dataset, "files": dataset.files, "bytes": dataset.bytes},
        "variants": {v.name: {"checkout": str(v.checkout), "args": list(v.args)} for v in variants},
        "runs": {name: [vars(r) for r in runs] for name, runs in counted.items()},
        "medians": medians,
    }, indent=1) + "\n")
    return 0


def _run_once(variant: Variant, spec: ServerSpec, source: Path, work: Path) -> Run:
    server = start_server(spec, work / "server")
    try:
        env = base_env(work / f"run-{variant.name}", server)
        env.update(
            AWS_ACCESS_KEY_ID=server.access_key,
            AWS_SECRET_ACCESS_KEY=server.secret_key,
            AWS_REGION=server.region,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            PYTHONPATH=str(variant.checkout),
        )
        argv = [sys.executable, "-m", "bulkput", "put", f"{source}/", f"s3://{server.bucket}/",
                "--endpoint", server.endpoint, "--region", server.region, "--quiet",
                *variant.args]
        log = work / f"{variant.name}.log"
        measured = run_measured(argv, env=env, cwd=work, log_path=log, timeout_s=600,
                                server_cpu=server.cpu_seconds)
    finally:
        server.stop()
    if measured.exit_code != 0:
        raise SystemExit(f"variant {variant.name} exited {measured.exit_code}; see {log}")
    assert measured.server_cpu_s is not None
    return Run(measured.wall_s, measured.cpu_s, measured.server_cpu_s)


if __name__ == "__main__":
    sys.exit(main())
