"""The SDK-based peers, each run by the harness as its own process.

    python -m benchmarks.peers {boto3,obstore,oss2,bce} --endpoint URL --bucket NAME
        (--source DIR | --manifest CSV) [--workers N] [--region R]

Credentials come from ``BENCH_ACCESS_KEY`` / ``BENCH_SECRET_KEY`` in the environment. Each
peer is written the way the SDK's own documentation suggests for many files: boto3, oss2 and
bce-python-sdk with a thread pool (big files through the SDK's own multipart helper), obstore
with asyncio tasks under a semaphore. Work is fed lazily, so a million-line manifest is never
held in memory. Exit code 0 only when every object was stored.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MULTIPART_THRESHOLD = 8 * 1024 * 1024  # the SDK helpers' usual default


def walk_files(source: Path) -> Iterator[tuple[str, str]]:
    """(path, key) for every regular file below ``source``; keys relative, ``/`` separated."""
    for folder, dirs, files in os.walk(source):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(folder, name)
            yield path, os.path.relpath(path, source).replace(os.sep, "/")


def read_manifest(manifest: Path) -> Iterator[tuple[str, str]]:
    with open(manifest, newline="") as lines:
        for row in csv.DictReader(lines):
            yield row["path"], row["key"]


class _Failures:
    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def record(self, key: str, exc: BaseException) -> None:
        with self._lock:
            self.count += 1
            if self.count <= 10:
                print(f"FAILED {key}: {exc.__class__.__name__}: {exc}", file=sys.stderr)


def run_thread_pool(items: Iterator[tuple[str, str]], upload: Callable[[str, str], None],
                    workers: int) -> int:
    """Upload with ``workers`` threads, at most ``2 * workers`` items queued; failures count."""
    failures = _Failures()
    slots = threading.BoundedSemaphore(2 * workers)

    def upload_one(path: str, key: str) -> None:
        try:
            upload(path, key)
        except Exception as exc:
            failures.record(key, exc)
        finally:
            slots.release()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for path, key in items:
            slots.acquire()
            pool.submit(upload_one, path, key)
    return failures.count


def boto3_uploader(args: argparse.Namespace) -> Callable[[str, str], None]:
    import boto3
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    client = boto3.client(
        "s3", endpoint_url=args.endpoint, region_name=args.region,
        aws_access_key_id=os.environ["BENCH_ACCESS_KEY"],
        aws_secret_access_key=os.environ["BENCH_SECRET_KEY"],
        config=Config(max_pool_connections=args.workers, s3={"addressing_style": "path"}),
    )
    transfer = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD)

    def upload(path: str, key: str) -> None:
        if os.path.getsize(path) >= MULTIPART_THRESHOLD:
            client.upload_file(path, args.bucket, key, Config=transfer)
            return
        with open(path, "rb") as body:
            client.put_object(Bucket=args.bucket, Key=key, Body=body)

    return upload


def oss2_uploader(args: argparse.Namespace) -> Callable[[str, str], None]:
    import oss2

    auth = oss2.Auth(os.environ["BENCH_ACCESS_KEY"], os.environ["BENCH_SECRET_KEY"])
    session = oss2.Session()  # one connection pool shared by the threads
    bucket = oss2.Bucket(auth, args.endpoint, args.bucket, session=session)
    store = oss2.ResumableStore(root=args.state_dir or os.getcwd())

    def upload(path: str, key: str) -> None:
        if os.path.getsize(path) >= MULTIPART_THRESHOLD:
            oss2.resumable_upload(bucket, key, path, store=store,
                                  multipart_threshold=MULTIPART_THRESHOLD, num_threads=4)
            return
        bucket.put_object_from_file(key, path)

    return upload


def bce_uploader(args: argparse.Namespace) -> Callable[[str, str], None]:
    from baidubce.auth.bce_credentials import BceCredentials
    from baidubce.bce_client_configuration import BceClientConfiguration
    from baidubce.services.bos.bos_client import BosClient

    endpoint = args.endpoint.removeprefix("http://")
    client = BosClient(BceClientConfiguration(
        credentials=BceCredentials(os.environ["BENCH_ACCESS_KEY"], os.environ["BENCH_SECRET_KEY"]),
        endpoint=endpoint))

    def upload(path: str, key: str) -> None:
        if os.path.getsize(path) >= MULTIPART_THRESHOLD:
            # the SDK's own multipart helper (chunk_size in MB)
            client.put_super_object_from_file(args.bucket, key, path, chunk_size=8,
                                              thread_num=4)
            return
        client.put_object_from_file(args.bucket, key, path)

    return upload


def _obstore_options(args: argparse.Namespace) -> Any:
    options: dict[str, str | bool] = {"allow_http": True,
                                      "pool_max_idle_per_host": str(args.workers)}  # fmt: skip
    if args.endpoint.startswith("https://") and os.environ.get("SSL_CERT_FILE"):
        # obstore's TLS trusts only its built-in roots, and has no option for a CA file:
        # against the harness's self-signed certificate it checks none (a little less work)
        options["allow_invalid_certificates"] = True
    return options


async def run_obstore(items: Iterator[tuple[str, str]], args: argparse.Namespace) -> int:
    import obstore
    from obstore.store import S3Store

    store = S3Store(args.bucket, endpoint=args.endpoint, region=args.region,
                    access_key_id=os.environ["BENCH_ACCESS_KEY"],
                    secret_access_key=os.environ["BENCH_SECRET_KEY"],
                    client_options=_obstore_options(args))
    failures = _Failures()
    slots = asyncio.Semaphore(args.workers)
    tasks: set[asyncio.Task[None]] = set()

    async def upload(path: str, key: str) -> None:
        try:
            if os.path.getsize(path) >= MULTIPART_THRESHOLD:
                await obstore.put_async(store, key, Path(path))  # streamed, multipart
            else:
                with open(path, "rb") as body:
                    await obstore.put_async(store, key, body.read())
        except Exception as exc:
            failures.record(key, exc)
        finally:
            slots.release()

    for path, key in items:
        await slots.acquire()
        task = asyncio.create_task(upload(path, key))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))
    return failures.count


UPLOADERS: dict[str, Callable[[argparse.Namespace], Callable[[str, str], None]]] = {
    "boto3": boto3_uploader,
    "oss2": oss2_uploader,
    "bce": bce_uploader,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers")
    parser.add_argument("tool", choices=[*UPLOADERS, "obstore"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--workers", type=int, default=32)
    parser.add_argument("--state-dir", default=None, help="oss2's resumable-upload records")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", type=Path)
    source.add_argument("--manifest", type=Path)
    args = parser.parse_args(argv)
    items = walk_files(args.source) if args.source else read_manifest(args.manifest)
    if args.tool == "obstore":
        failed = asyncio.run(run_obstore(items, args))
    else:
        failed = run_thread_pool(items, UPLOADERS[args.tool](args), args.workers)
    if failed:
        print(f"{failed} objects failed", file=sys.stderr)
    code = 1 if failed else 0
    if args.tool == "obstore":
        # obstore's Rust runtime can abort (SIGABRT) while the interpreter finalizes, after the
        # work is done; skip finalization (the harness verifies the bucket by listing anyway)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
