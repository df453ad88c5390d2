"""``bulkput sync`` against a prefix that already holds 1,000,000 objects: peak RSS.

    python benchmarks/sync_big_listing.py [--objects 1000000] [--local 2000]

A ``bulkput serve`` (memory backend, in this process) is filled directly with ``--objects``
one-byte objects under ``big/``; a local folder of ``--local`` small files is then synced to
``s3://bench/big/`` by ``bulkput sync`` in a subprocess, three ways: a normal sync (the
merge-join walks the whole 1M-object listing, uploading the local files), a re-sync (nothing
to do), and ``--delete --dry-run`` (the plan names all 1M objects for deletion, written to
/dev/null). Peak RSS of the bulkput process comes from ``/usr/bin/time -f %M`` (its own
child, so the 1M objects held by this process never count). Results go to
``benchmarks/results/standalone/sync-big-listing.json`` and ``docs/benchmarks-sync-listing.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUCKET = "bench"


def populate(server: object, count: int) -> float:
    from bulkput.server.storage import ObjectMeta

    storage = server._server.storage  # type: ignore[attr-defined]  # in-process: fill it directly
    etag = hashlib.md5(b"x").hexdigest()
    now = time.time()
    started = time.perf_counter()
    for i in range(count):
        writer = storage.new_writer()
        writer.write(b"x")
        storage.commit_object(BUCKET, writer, ObjectMeta(key=f"big/obj-{i:07d}", size=1, etag=etag,
                                                         last_modified=now))  # fmt: skip
    return time.perf_counter() - started


def measured(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    with tempfile.NamedTemporaryFile("r", suffix=".time") as timing:
        started = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-o", timing.name, "-f", "%M %U %S", *argv],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        rss_kb, user, system = timing.read().split()[-3:]
    return {
        "exit_code": done.returncode, "wall_s": round(wall, 2), "cpu_s": round(float(user) + float(system), 2),
        "peak_rss_mb": round(int(rss_kb) / 1024, 1), "stderr_tail": done.stderr.strip().splitlines()[-3:],
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--local", type=int, default=2000)
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results" / "standalone" / "sync-big-listing.json"))
    parser.add_argument("--docs", default=str(REPO / "docs" / "benchmarks-sync-listing.md"))
    args = parser.parse_args()

    from bulkput.server.testing import serve_in_thread

    rows: list[dict[str, object]] = []
    with serve_in_thread(buckets=[BUCKET], track_keys=False) as server, \
            tempfile.TemporaryDirectory() as work:  # fmt: skip
        fill_s = populate(server, args.objects)
        local = Path(work) / "local"
        for i in range(args.local):
            path = local / f"d{i % 20:02d}" / f"local-{i:05d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"local {i}\n".encode())
        env = {**os.environ, **server.env("s3")}
        base = [sys.executable, "-m", "bulkput", "sync", str(local), f"s3://{BUCKET}/big/",
                "--endpoint", server.endpoint_url, "--quiet"]  # fmt: skip
        runs: list[tuple[str, list[str]]] = [
            ("sync (uploads the local files)", []), ("re-sync (nothing to do)", []),
            (f"--delete --dry-run (plans {args.objects:,} deletes)", ["--delete", "--dry-run"]),
        ]
        for name, extra in runs:
            row = {"run": name, **measured(base + extra, env)}
            rows.append(row)
            print(json.dumps(row), flush=True)
        assert server._server is not None
        listed = sum(1 for _ in server._server.storage.iter_objects(BUCKET, "big/", ""))

    ok = all(r["exit_code"] == 0 for r in rows) and listed == args.objects + args.local
    result = {"objects": args.objects, "local_files": args.local, "fill_s": round(fill_s, 1),
              "objects_after": listed, "ok": ok, "runs": rows,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}  # fmt: skip
    Path(args.results).parent.mkdir(parents=True, exist_ok=True)
    Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
    table = "\n".join(
        f"| {r['run']} | {r['exit_code']} | {r['wall_s']} | {r['cpu_s']} | {r['peak_rss_mb']} |" for r in rows
    )
    worst = max(float(r["peak_rss_mb"]) for r in rows)  # type: ignore[arg-type]
    Path(args.docs).write_text(
        f"""# Sync against a prefix with {args.objects:,} objects

Command: `python benchmarks/sync_big_listing.py --objects {args.objects} --local {args.local}` on
{os.cpu_count()} cores, Python {platform.python_version()}. `bulkput serve` (memory backend) holds
{args.objects:,} objects under `big/`; `bulkput sync` of a folder of {args.local:,} files to
`s3://{BUCKET}/big/` merge-joins the walk with the streaming listing (1,000 keys a page).

| run | exit | wall s | client CPU s | peak RSS MB |
|---|---|---|---|---|
{table}

Objects under the prefix afterwards: {listed:,} (expected {args.objects + args.local:,}).
**Peak RSS {worst:.0f} MB** against the target of 150 MB: {"met" if worst < 150 else "MISSED"}.
"""
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
