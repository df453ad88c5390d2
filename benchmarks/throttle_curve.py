"""The AIMD curve: bulkput's concurrency limit and request rate while a server throttles.

    python benchmarks/throttle_curve.py [--files 6000] [--throttle-rps 300] [--stop-after 2500]

An in-process ``bulkput serve`` answers SlowDown above ``--throttle-rps`` requests per second;
once ``--stop-after`` objects are stored it stops throttling. The engine (Python API, 64
senders) uploads ``--files`` small files. Every 0.25 s the script samples the engine's
concurrency limit, objects stored and SlowDowns answered. Writes
``docs/img/throttle-curve.png`` (with matplotlib), ``docs/benchmarks-throttling.md`` and
``benchmarks/results/standalone/throttle-curve.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BUCKET = "throttled"


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from bulkput.config import RetryPolicy, TransferConfig
    from bulkput.items import ObjectResult, UploadItem
    from bulkput.job.run import JobControl, run_job
    from bulkput.job.spec import JobSpec, StoreSettings
    from bulkput.job.subscriber import Subscriber
    from bulkput.server.faults import FaultConfig, FaultInjector
    from bulkput.server.testing import serve_in_thread

    rng = random.Random(5)
    items = []
    for i in range(args.files):
        path = workdir / f"f{i:06d}.bin"
        path.write_bytes(rng.randbytes(1024))
        items.append(UploadItem(path=str(path), key=f"t/f{i:06d}.bin"))
    config = TransferConfig(concurrency=64, retry=RetryPolicy(max_attempts=50, max_delay=2.0))
    samples: list[dict[str, float]] = []
    stored = 0
    switched_at: float | None = None

    class Counter(Subscriber):
        def on_result(self, result: ObjectResult) -> None:
            nonlocal stored
            stored += 1

    with serve_in_thread(buckets=[BUCKET], faults=FaultConfig(throttle_rps=args.throttle_rps)) as server:
        spec = JobSpec(
            f"s3://{BUCKET}/",
            store=StoreSettings(endpoint=server.endpoint_url, credentials=server.credentials[0]),
            transfer=config,
        )
        control = JobControl()
        started = time.monotonic()

        async def sample() -> None:
            nonlocal switched_at
            while True:
                limiter = control.limiter
                samples.append({
                    "t": round(time.monotonic() - started, 3),
                    "limit": limiter.limit if limiter is not None else 0,  # not started yet
                    "stored": stored, "slowdowns": server.stats.faults.get("slowdown", 0),
                })  # fmt: skip
                if switched_at is None and stored >= args.stop_after:
                    server._server.faults = FaultInjector(FaultConfig())  # type: ignore[union-attr]
                    switched_at = time.monotonic() - started
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        try:
            summary = await run_job(spec, items, [Counter()], control=control, env={})
        finally:
            sampler.cancel()
    limiter = control.limiter
    return {"summary": summary.to_dict(), "samples": samples, "switched_at": switched_at,
            "decreases": limiter.decreases if limiter is not None else 0}  # fmt: skip


def chart(args: argparse.Namespace, samples: list[dict[str, float]], switched: float | None) -> str:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "(matplotlib is not installed: no chart)"
    fig, left = plt.subplots(figsize=(9, 4.5))
    times = [s["t"] for s in samples]
    left.plot(times, [s["stored_per_s"] for s in samples], color="tab:blue", label="objects stored per s")
    left.axhline(args.throttle_rps, color="tab:blue", linestyle=":",
                 label=f"server limit ({args.throttle_rps:g} req/s)")  # fmt: skip
    left.set_xlabel("seconds")
    left.set_ylabel("objects stored per second")
    right = left.twinx()
    right.step(times, [s["limit"] for s in samples], where="post", color="tab:red",
               label="concurrency limit (AIMD)")  # fmt: skip
    right.set_ylabel("requests allowed in flight")
    if switched is not None:
        left.axvline(switched, color="grey", linestyle="--", label="server stops throttling")
    handles_l, labels_l = left.get_legend_handles_labels()
    handles_r, labels_r = right.get_legend_handles_labels()
    left.legend(handles_l + handles_r, labels_l + labels_r, loc="upper left", fontsize=8)
    left.set_title("bulkput under SlowDown: the limit halves, then climbs back")
    fig.tight_layout()
    Path(args.img).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.img, dpi=110)
    return f"![AIMD curve](img/{Path(args.img).name})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=6000)
    parser.add_argument("--throttle-rps", type=float, default=300)
    parser.add_argument("--stop-after", type=int, default=2500)
    parser.add_argument("--img", default=str(REPO / "docs" / "img" / "throttle-curve.png"))
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks-throttling.md"))
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "standalone" / "throttle-curve.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        result = asyncio.run(run(args, Path(work)))
    samples: list[dict[str, float]] = result["samples"]
    previous = None
    for sample in samples:
        rate = 0.0 if previous is None else (sample["stored"] - previous["stored"]) / max(1e-9, sample["t"] - previous["t"])
        sample["stored_per_s"] = round(rate, 1)
        previous = sample
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps({**result, "args": vars(args)}, indent=2) + "\n")
    summary = result["summary"]
    switched: float | None = result["switched_at"]
    picture = chart(args, samples, switched)
    limits = [int(s["limit"]) for s in samples]
    before = [int(s["limit"]) for s in samples if switched is None or s["t"] <= switched]
    after = [int(s["limit"]) for s in samples if switched is not None and s["t"] > switched]
    Path(args.docs).write_text(
        f"""# Throttling: the request-rate curve

Command: `python benchmarks/throttle_curve.py --files {args.files} --throttle-rps {args.throttle_rps:g} --stop-after {args.stop_after}`
on {os.cpu_count()} cores. `bulkput serve` answers `503 SlowDown` above {args.throttle_rps:g} requests per
second until {args.stop_after} objects are stored, then stops throttling. The engine starts with 64
requests allowed in flight; a SlowDown from a request sent since the last decrease halves the
limit, and the limit grows by one after as many successes in a row as the limit.

{picture}

- Objects: {summary['stored']} stored, {summary['failed']} failed (exit code {summary['exit_code']}); retries {summary['retries']};
  halvings of the limit: {result['decreases']}.
- Limit while throttled: min {min(before) if before else '-'}, max {max(before) if before else '-'};
  after the server stopped throttling: min {min(after) if after else '-'}, max {max(after) if after else '-'}
  (of 64); overall {min(limits)} to {max(limits)}.
- The server stopped throttling at {switched if switched is not None else float('nan'):.1f} s; the job ended at {samples[-1]['t']:.1f} s.
"""
    )
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=2))
    return 0 if summary["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
