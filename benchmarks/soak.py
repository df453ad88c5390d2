"""The long reliability runs, too long for CI: a fault soak and a kill run.

::

    python -m benchmarks.soak faults --objects 50000 --rate 0.1
    python -m benchmarks.soak kill --objects 20000 --kills 5 --seed 8

``faults``: ``bulkput put`` of N small files against ``bulkput serve`` failing ``rate`` of the
PUTs with the whole mix (requesttimeout, slowdown, internal, reset, slow); checks exit 0, every
object in the report, and every listed ETag equal to the local MD5.

``kill``: the same job SIGKILLed at ``kills`` seeded random moments, restarted after each, then
run to the end. Each run writes its own report. Checked at the end: every object stored
byte-exact (listed ETag = local MD5), and no object *confirmed* in a run (a ``stored`` line in
that run's report) was PUT again by a later run (the server's per-key PUT counters, read once
the server has settled after each kill, are the witness).

Both print one JSON result line and exit non-zero when a check fails. The CI test
``tests/integration/test_reliability.py::test_kill_and_restart_never_resends_a_confirmed_object``
runs :func:`kill_run` at a small size.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bulkput.api import open_destination
from bulkput.server.faults import FaultConfig
from bulkput.server.stats import StatsSnapshot
from bulkput.server.testing import ServerHandle, serve_in_thread

FAULT_MIX = ("requesttimeout", "slowdown", "internal", "reset", "slow")
BUCKET = "soak"


def make_tree(root: Path, count: int, seed: int = 8) -> dict[str, str]:
    """``count`` small files of seeded random bytes in 100 folders; name -> MD5 hex."""
    rng = random.Random(seed)
    md5s: dict[str, str] = {}
    for n in range(count):
        name = f"d{n % 100:02d}/f{n:06d}.bin"
        path = root / name
        if n < 100:
            path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(1 + rng.randrange(1024))
        path.write_bytes(data)
        md5s[name] = hashlib.md5(data).hexdigest()
    return md5s


def put_command(
    server: ServerHandle, root: Path, prefix: str, state: Path, report: Path, *extra: str
) -> list[str]:
    return [
        sys.executable, "-m", "bulkput", "put", str(root), f"s3://{BUCKET}/{prefix}",
        "--endpoint", server.endpoint_url, "--progress", "none", "--state-dir", str(state),
        "--report", str(report), *extra,
    ]  # fmt: skip


def child_env(server: ServerHandle) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "OSS_", "BCE_"))}
    return {**base, **server.env("s3")}


async def _listed(server: ServerHandle, prefix: str) -> dict[str, str]:
    _t, store = await open_destination(
        f"s3://{BUCKET}/", endpoint=server.endpoint_url, env=server.env("s3")
    )
    try:
        return {info.key: (info.etag or "").lower() async for info in store.list_objects(prefix)}
    finally:
        await store.close()


def wrong_objects(server: ServerHandle, prefix: str, md5s: dict[str, str]) -> list[str]:
    """Keys missing, extra or stored with other bytes (the server's ETag is the MD5 it got)."""
    listed = asyncio.run(_listed(server, prefix))
    expected = {prefix + name: md5 for name, md5 in md5s.items()}
    return sorted(k for k in expected.keys() | listed.keys() if listed.get(k) != expected.get(k))


def settled(server: ServerHandle, quiet: float = 0.3) -> StatsSnapshot:
    """The counters once requests a killed client left behind have been answered."""
    previous = server.stats
    while True:
        time.sleep(quiet)
        current = server.stats
        if current.total == previous.total:
            return current
        previous = current


def stored_keys(report: Path) -> set[str]:
    """Keys with a ``stored`` line in one run's report (a killed run's last line may be cut)."""
    keys: set[str] = set()
    if not report.exists():
        return keys
    for raw in report.read_text().splitlines():
        try:
            line = json.loads(raw)
        except json.JSONDecodeError:
            continue
        if line.get("status") == "stored":
            keys.add(line["key"])
    return keys


@dataclass
class KillResult:
    objects: int
    kills_done: int = 0
    runs: list[dict[str, object]] = field(default_factory=list)
    final_exit: int | None = None
    wrong_objects: list[str] = field(default_factory=list)
    # key -> (run that confirmed it, PUTs when that run ended, PUTs at the end)
    resent_after_confirmation: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return (
            self.final_exit == 0 and not self.wrong_objects and not self.resent_after_confirmation
        )


def kill_run(
    server: ServerHandle, root: Path, md5s: dict[str, str], work: Path, *, kills: int, seed: int,
    prefix: str = "job/", min_fraction: float = 0.1, max_fraction: float = 0.4, extra: tuple[str, ...] = (),
) -> KillResult:  # fmt: skip
    """Run the job, SIGKILL it ``kills`` times at seeded random moments, then to the end.

    A run is killed once the server has taken a seeded random fraction (between
    ``min_fraction`` and ``max_fraction``) of the PUTs still to do, so the moment depends on
    progress, not on how fast the machine is: a fast machine cannot finish a run early.
    """
    rng = random.Random(seed)
    state = work / "state"
    result = KillResult(objects=len(md5s))
    started = time.monotonic()
    snapshots: list[StatsSnapshot] = []
    reports: list[Path] = []
    env = child_env(server)
    for run in range(kills + 1):
        report = work / f"report-{run}.jsonl"
        reports.append(report)
        command = put_command(server, root, prefix, state, report, *extra)
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        run_started = time.monotonic()
        killed_after: float | None = None
        try:
            if run < kills:
                puts_before = server.stats.count("PutObject")
                confirmed_before = len(set().union(*map(stored_keys, reports[:-1])))
                remaining = max(1, len(md5s) - confirmed_before)
                kill_at = puts_before + max(1, int(remaining * rng.uniform(min_fraction, max_fraction)))
                while process.poll() is None and server.stats.count("PutObject") < kill_at:
                    time.sleep(0.02)
                if process.poll() is None:
                    process.send_signal(signal.SIGKILL)
                    killed_after = time.monotonic() - run_started
            _out, err = process.communicate(timeout=1800)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        snapshots.append(settled(server))
        confirmed = stored_keys(report)
        killed = killed_after is not None
        result.runs.append({"run": run, "killed_after_s": round(killed_after, 2) if killed_after is not None else None,
                            "exit": process.returncode, "confirmed": len(confirmed),
                            "puts_so_far": sum(snapshots[-1].puts_by_key.values())})  # fmt: skip
        if killed:
            result.kills_done += 1
        else:
            result.final_exit = process.returncode
            if process.returncode != 0:
                result.runs[-1]["stderr"] = err.decode(errors="replace")[-1000:]
            break
    final = snapshots[-1]
    for run, report in enumerate(reports[:-1]):
        at_end_of_run = snapshots[run]
        for key in stored_keys(report):
            before, after = at_end_of_run.puts(key, BUCKET), final.puts(key, BUCKET)
            if after != before:
                result.resent_after_confirmation.setdefault(key, (run, before, after))
    result.wrong_objects = wrong_objects(server, prefix, md5s)
    result.elapsed = round(time.monotonic() - started, 1)
    return result


def faults_run(
    objects: int, rate: float, seed: int, timeout: float, work: Path
) -> dict[str, object]:
    root = work / "src"
    md5s = make_tree(root, objects, seed)
    faults = FaultConfig(rate=rate, mix=FAULT_MIX, slow_ms=int(timeout * 1000) + 1500, seed=seed)
    with serve_in_thread(buckets=[BUCKET], faults=faults) as server:
        report = work / "report.jsonl"
        started = time.monotonic()
        done = subprocess.run(
            put_command(server, root, "soak/", work / "state", report, "--timeout", str(timeout)),
            env=child_env(server), capture_output=True, timeout=7200,
        )  # fmt: skip
        elapsed = time.monotonic() - started
        lines = [json.loads(line) for line in report.read_text().splitlines()]
        summary = lines[-1]["summary"]
        wrong = wrong_objects(server, "soak/", md5s)
        reported_wrong = [
            line["key"]
            for line in lines[:-1]
            if line.get("md5") != md5s[line["key"].removeprefix("soak/")]
        ]
        return {
            "objects": objects, "fault_rate": rate, "timeout_s": timeout, "exit": done.returncode,
            "elapsed_s": round(elapsed, 1), "stored": summary["stored"], "failed": summary["failed"],
            "retries": summary["retries"], "retried_objects": sum(1 for x in lines[:-1] if x["attempts"] > 1),
            "max_attempts": max(x["attempts"] for x in lines[:-1]), "faults_injected": server.stats.faults,
            "wrong_objects": len(wrong), "report_md5_mismatches": len(reported_wrong),
            "ok": done.returncode == 0 and summary["stored"] == objects and not wrong and not reported_wrong,
        }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    sub = parser.add_subparsers(dest="mode", required=True)
    soak = sub.add_parser("faults", help="N objects at a fault rate")
    soak.add_argument("--objects", type=int, default=50_000)
    soak.add_argument("--rate", type=float, default=0.10)
    soak.add_argument(
        "--timeout", type=float, default=2.0, help="the client's --timeout (slow faults exceed it)"
    )
    soak.add_argument("--seed", type=int, default=8)
    kill = sub.add_parser("kill", help="SIGKILL a job at random moments, restart, check")
    kill.add_argument("--objects", type=int, default=20_000)
    kill.add_argument("--kills", type=int, default=5)
    kill.add_argument("--seed", type=int, default=8)
    kill.add_argument(
        "--latency-ms", type=int, default=0, help="server latency per PUT (slows the job)"
    )
    kill.add_argument(
        "--max-fraction", type=float, default=0.4,
        help="latest kill, as the fraction of the remaining PUTs a run has made",
    )  # fmt: skip
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bulkput-soak-") as tmp:
        work = Path(tmp)
        if args.mode == "faults":
            outcome = faults_run(args.objects, args.rate, args.seed, args.timeout, work)
            print(json.dumps(outcome))
            return 0 if outcome["ok"] else 1
        faults = (
            FaultConfig(rate=1.0, mix=("latency",), latency_ms=args.latency_ms)
            if args.latency_ms
            else None
        )
        md5s = make_tree(work / "src", args.objects, args.seed)
        with serve_in_thread(buckets=[BUCKET], faults=faults) as server:
            result = kill_run(server, work / "src", md5s, work, kills=args.kills, seed=args.seed,
                              max_fraction=args.max_fraction)  # fmt: skip
        record = asdict(result)
        record["resent_after_confirmation"] = {
            "count": len(result.resent_after_confirmation),
            "examples": dict(list(result.resent_after_confirmation.items())[:5]),
        }
        record["wrong_objects"] = {
            "count": len(result.wrong_objects),
            "examples": result.wrong_objects[:5],
        }
        record["ok"] = result.ok
        print(json.dumps(record))
        return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
