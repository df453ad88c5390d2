"""bulkput demo: the quick start in one command, on any machine, with no account.

It starts bulkput serve in this process (memory backend, a free port on 127.0.0.1), generates
a demo folder (small files in nested folders, plus one larger file), uploads it with the
normal engine to s3://demo/ (and, with --dialects, to bos:// and oss:// as well), reads every
object back to check the stored bytes, and prints the job summary. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bulkput.commands.options import count
from bulkput.commands.parsing import examples
from bulkput.config import MiB, TransferConfig
from bulkput.items import ObjectResult, Status
from bulkput.job.subscriber import Subscriber
from bulkput.suggest import unknown_value

if TYPE_CHECKING:
    from bulkput.remote.store import ObjectStore

DIALECTS = ("s3", "bos", "oss")
_WORDS = ("alpha", "beta", "gamma", "delta", "photos", "logs", "data", "notes", "2024", "café")
_EXTENSIONS = (".txt", ".json", ".csv", ".log", ".html", ".bin")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo", help="upload a generated folder to an embedded local store", description=__doc__,
        epilog=examples(
            "bulkput demo",
            "bulkput demo --dialects s3,bos,oss --files 1000 --report demo.jsonl",
        ),
    )
    parser.add_argument("--files", type=count, default=200, metavar="N",
                        help="small files to generate (default 200)")
    parser.add_argument("--large-mib", type=count, default=3, metavar="MIB",
                        help="size of the one larger file, in MiB")
    parser.add_argument(
        "--dialects",
        default="s3",
        help="comma-separated: s3, bos, oss (each is uploaded once; default s3)",
    )
    parser.add_argument("--dir", help="generate the folder here instead of a temporary directory")
    parser.add_argument("--report", metavar="FILE", help="write the JSON-lines report of the last upload")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the generated folder")
    parser.set_defaults(run=run)
    return parser


def generate_folder(root: Path, files: int, large_bytes: int, seed: int) -> tuple[int, int]:
    """Small files of 100 B to 16 KiB in nested folders, one larger file; (count, bytes)."""
    rng = random.Random(seed)
    total = 0
    for n in range(files):
        depth = rng.randint(0, 3)
        parts = [rng.choice(_WORDS) for _ in range(depth)]
        name = f"file {n:04d}{rng.choice(_EXTENSIONS)}" if n % 10 == 0 else f"file-{n:04d}{rng.choice(_EXTENSIONS)}"
        path = root.joinpath(*parts, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(rng.randint(100, 16 * 1024))
        path.write_bytes(data)
        total += len(data)
    if large_bytes > 0:
        big = root / "large" / "video.bin"
        big.parent.mkdir(parents=True, exist_ok=True)
        with open(big, "wb") as handle:
            left = large_bytes
            while left:
                chunk = rng.randbytes(min(left, MiB))
                handle.write(chunk)
                left -= len(chunk)
        total += large_bytes
        files += 1
    return files, total


def run(args: argparse.Namespace) -> int:
    from bulkput import runtime

    dialects = [d.strip() for d in args.dialects.split(",") if d.strip()]
    unknown = [d for d in dialects if d not in DIALECTS]
    if unknown or not dialects:
        problem = unknown_value("dialect", unknown[0], DIALECTS) if unknown else "give s3, bos or oss"
        sys.stderr.write(f"bulkput demo: --dialects {args.dialects!r}: {problem}\n")
        return 2
    with tempfile.TemporaryDirectory(prefix="bulkput-demo-") as scratch:
        root = Path(args.dir) if args.dir else Path(scratch) / "demo-folder"
        root.mkdir(parents=True, exist_ok=True)
        count, size = generate_folder(root, args.files, args.large_mib * MiB, args.seed)
        print(f"generated {count} files ({size / MiB:.1f} MiB) in {root}")
        try:
            return runtime.run_async(_demo(root, dialects, args.report))
        except KeyboardInterrupt:
            return 130


async def _demo(root: Path, dialects: list[str], report: str | None) -> int:
    import asyncio

    from bulkput import runtime
    from bulkput.commands.progress import ProgressDisplay, print_summary, report_stdout
    from bulkput.job.counting import SourceCounter
    from bulkput.job.report import ReportWriter
    from bulkput.job.run import Job, JobControl
    from bulkput.job.spec import JobSpec, PutSource, StoreSettings
    from bulkput.server.testing import serve_in_thread

    loop = asyncio.get_running_loop()
    server = await loop.run_in_executor(None, lambda: serve_in_thread(memory=True, buckets=["demo"]))
    worst = 0
    try:
        print(f"bulkput serve (memory) listening on {server.endpoint_url}")
        settings = StoreSettings(
            endpoint=server.endpoint_url, addressing="path", credentials=server.credentials[0]
        )
        for dialect in dialects:
            dest = f"{dialect}://demo/demo-folder/"
            spec = JobSpec(dest, store=settings, transfer=TransferConfig(concurrency=32))
            source = PutSource(paths=(str(root),))
            counter = SourceCounter.for_put(spec, source).start()
            control = JobControl()
            display = ProgressDisplay(sys.stderr, interval=2.0, totals=counter.count,
                                      concurrency=control.concurrency)  # fmt: skip
            subscribers: list[Subscriber] = [display]
            writer = None
            if report and dialect == dialects[-1]:
                writer = ReportWriter(report, stdout=report_stdout(display) if report == "-" else None)
            if writer is not None:
                subscribers.append(writer)
            stored = _Stored()
            subscribers.append(stored)
            # The embedded server's endpoint and keys; nothing from the user's environment.
            async with Job(spec, env={}) as job:
                remove = runtime.on_stop(control.stop)
                try:
                    summary = await job.run(source.items(spec.target), subscribers, control)
                finally:
                    remove()
                    counter.stop()
                    display.close()  # the terminal put back, whatever happened
                print(f"\n{dest} at {server.endpoint_url}")
                print_summary(summary, sys.stdout)
                mismatches = await _verify(job.store, stored.objects)
            if mismatches:
                print(f"verify: {len(mismatches)} objects differ from their files: {mismatches[:5]}")
                worst = max(worst, 1)
            else:
                print(f"verify: read back {len(stored.objects)} objects: every byte equals its file")
            worst = max(worst, summary.exit_code)
        if report:
            print(f"report: {report}")
    finally:
        server.stop()
    return worst


class _Stored(Subscriber):
    """Remembers (key, path) of every stored object, to read them back."""

    def __init__(self) -> None:
        self.objects: list[tuple[str, str]] = []

    def on_result(self, result: ObjectResult) -> None:
        if result.status is Status.STORED and result.path:
            self.objects.append((result.key, result.path))


async def _verify(store: ObjectStore, stored: list[tuple[str, str]]) -> list[str]:
    """Keys whose stored bytes differ from the file (read back with bounded concurrency)."""
    import asyncio

    limit = asyncio.Semaphore(16)
    bad: list[str] = []

    async def check(key: str, path: str) -> None:
        async with limit:
            data = await store.get_object(key)
        with open(path, "rb") as handle:
            local = hashlib.md5(handle.read()).digest()
        if hashlib.md5(data).digest() != local:
            bad.append(key)

    await asyncio.gather(*(check(key, path) for key, path in stored))
    return bad

