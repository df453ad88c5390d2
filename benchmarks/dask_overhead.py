"""The Dask path's overhead against a plain single-process run of the same job, in one run.

    python benchmarks/dask_overhead.py [--files 5000] [--size 4096] [--runs 3] [--shards 2]

Both contenders upload the same manifest of small files to the same ``bulkput serve``
(a subprocess, memory backend) on 127.0.0.1, interleaved (plain, dask, plain, dask, ...) after
one warm-up each:

* plain: ``bulkput put --manifest M s3://bench/plain-i/``
* dask:  ``bulkput put --manifest M s3://bench/dask-i/ --dask ADDRESS`` against a
  ``LocalCluster`` (N worker processes, one thread each) started before the timed runs; its
  start-up time is reported apart.

Every run is checked: the server's listing under its prefix must hold every key with its size.
Writes ``benchmarks/results/standalone/dask-overhead.json`` and ``docs/benchmarks-dask.md``. The machine has two
cores: the cluster's workers, the client and the server share them, so this measures overhead,
not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUCKET = "bench"


def make_dataset(root: Path, files: int, size: int, seed: int = 1) -> Path:
    manifest = root / f"manifest-{files}x{size}.jsonl"
    if manifest.exists():
        return manifest
    rng = random.Random(seed)
    lines = []
    for i in range(files):
        rel = f"d{i % 50:02d}/f{i:06d}.bin"
        path = root / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        lines.append(json.dumps({"path": str(path), "key": rel}))
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def listing(endpoint: str, env: dict[str, str], prefix: str) -> dict[str, int]:
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for obj in page.get("Contents", []):
            found[obj["Key"][len(prefix):]] = obj["Size"]
    return found


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall seconds, user+sys CPU seconds of the process tree we waited for, exit code."""
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-2000:])
    return wall, cpu, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--data-dir", default=str(REPO / "benchmarks" / ".data" / "dask"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "standalone" / "dask-overhead.json"))
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks-dask.md"))
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from bulkput.server.testing import serve_in_subprocess

    data = Path(args.data_dir)
    data.mkdir(parents=True, exist_ok=True)
    manifest = make_dataset(data, args.files, args.size)
    expected = {json.loads(line)["key"]: args.size for line in manifest.read_text().splitlines()}

    server = serve_in_subprocess(buckets=[BUCKET], extra_args=["--no-key-stats"])
    env = {**os.environ, **server.env("s3")}
    cluster_started = time.perf_counter()
    cluster = LocalCluster(n_workers=args.shards, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None, silence_logs=40)
    client = Client(cluster)
    cluster_start_s = time.perf_counter() - cluster_started
    runs: list[dict[str, object]] = []
    try:
        for index in range(args.runs + 1):  # run 0 is the warm-up
            for lane in ("plain", "dask"):
                prefix = f"{lane}-{index}/"
                argv = [sys.executable, "-m", "bulkput", "put", "--manifest", str(manifest),
                        f"s3://{BUCKET}/{prefix}", "--endpoint", server.endpoint_url,
                        "--no-journal", "--quiet"]  # fmt: skip
                if lane == "dask":
                    argv += ["--dask", cluster.scheduler_address]
                wall, cpu, code = timed(argv, env)
                ok = code == 0 and listing(server.endpoint_url, env, prefix) == expected
                runs.append({"lane": lane, "run": index, "warmup": index == 0, "wall_s": round(wall, 3),
                             "client_cpu_s": round(cpu, 3), "exit_code": code, "verified": ok})  # fmt: skip
                print(json.dumps(runs[-1]), flush=True)
    finally:
        client.close()
        cluster.close()
        server.stop()

    counted = [r for r in runs if not r["warmup"]]
    pairs = [
        (p, d) for p in counted for d in counted
        if p["lane"] == "plain" and d["lane"] == "dask" and p["run"] == d["run"]
    ]  # fmt: skip
    ok = all(r["verified"] for r in counted)
    ratios = [float(d["wall_s"]) / float(p["wall_s"]) for p, d in pairs]  # type: ignore[arg-type]
    median = {lane: statistics.median(float(r["wall_s"]) for r in counted if r["lane"] == lane)  # type: ignore[arg-type]
              for lane in ("plain", "dask")}  # fmt: skip
    result = {
        "files": args.files, "size": args.size, "shards": args.shards, "runs": runs,
        "cluster_start_s": round(cluster_start_s, 2), "all_verified": ok,
        "median_wall_s": median, "dask_over_plain_wall_ratio_median": round(statistics.median(ratios), 3),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }  # fmt: skip
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    rows = "\n".join(
        f"| {r['run']} | {r['lane']} | {r['wall_s']} | {r['client_cpu_s']} | {'yes' if r['verified'] else 'NO'} |"
        for r in counted
    )
    Path(args.docs).write_text(
        f"""# The Dask path's overhead

Command: `python benchmarks/dask_overhead.py --files {args.files} --size {args.size} --runs {args.runs} --shards {args.shards}`
on {os.cpu_count()} cores, Python {platform.python_version()}: the same manifest of {args.files} files of
{args.size} bytes to `bulkput serve` (subprocess, memory backend) on 127.0.0.1, plain
`bulkput put --manifest` against `--dask` with a `LocalCluster` of {args.shards} worker processes,
interleaved after one warm-up each. Every run verified against the server's listing: {"yes" if ok else "NO"}.

| run | lane | wall s | client CPU s (the put process; Dask workers not included) | verified |
|---|---|---|---|---|
{rows}

Median wall: plain {median['plain']:.2f} s, dask {median['dask']:.2f} s; **dask / plain = {result['dask_over_plain_wall_ratio_median']}**
(median of run-by-run ratios). Cluster start-up, not in the runs: {cluster_start_s:.1f} s.
On two cores the workers, the server and the client share the CPU, so this is the price of
the Dask path (task submission, a process per shard, progress polling, report merging), not a
speed-up; the speed-up comes from more machines.
"""
    )
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
