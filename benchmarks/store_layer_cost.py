"""What bulkput's own layers cost per small PUT, with the network taken away.

    python benchmarks/store_layer_cost.py [--requests 5000] [--rounds 7]

One :class:`~bulkput.job.limited_store.LimitedStore` over the
:class:`~bulkput.remote.client.HttpObjectStore` of an ``s3://`` bucket (SigV4 signer, the S3
dialect, the limiter a job builds), whose transport answers every request at once with a
canned 200: what is measured is the limiter, the dialect's request and headers, the signature
and the answer's reading, not aiohttp, TLS or the kernel. ``--requests`` PUTs of a 4 KiB body
with a Content-MD5 and a Content-Type, keys as in the benchmark's dataset, one after another
on uvloop; prints the CPU per PUT of the best and the median round. docs/dev/tls.md quotes it
beside aiohttp's own cost per request (``benchmarks/http_request_cost.py``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import statistics
import sys
import time
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bulkput import runtime  # noqa: E402
from bulkput.config import TransferConfig  # noqa: E402
from bulkput.job.limited_store import LimitedStore  # noqa: E402
from bulkput.remote.client import open_store  # noqa: E402
from bulkput.remote.credentials import Credentials  # noqa: E402
from bulkput.remote.store import Body, ObjectHeaders  # noqa: E402
from bulkput.remote.target import Endpoint, Target  # noqa: E402
from bulkput.remote.transport import Response, Transport, response  # noqa: E402

ANSWER = response(
    200,
    {"ETag": '"0123456789abcdef0123456789abcdef"', "x-amz-request-id": "0A1B2C", "Content-Length": "0"},
)


class AnsweringTransport(Transport):
    """Answers every request at once with :data:`ANSWER`; sends nothing."""

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: Body | None = None,
        *,
        answer_limit: int = 0,
        answer_size: int = 0,
    ) -> Response:
        return ANSWER


async def measure(requests: int, rounds: int) -> list[float]:
    config = TransferConfig()
    store = open_store(
        Target.parse("s3://bench/"),
        endpoint=Endpoint("https", "127.0.0.1", 8443, "us-east-1", True),
        credentials=Credentials("BENCHACCESSKEY000001", "bench-secret-key-for-signing-only"),
        config=config,
        transport=AnsweringTransport(config),
    )
    limited = LimitedStore.for_config(store, config)
    body = os.urandom(4096)
    md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
    headers = ObjectHeaders(content_type="application/octet-stream")
    keys = [f"d{i % 200:03d}/s{i % 8:02d}/file-{i:06d}.bin" for i in range(requests)]
    per_put = []
    for _ in range(rounds):
        start = time.process_time()
        for key in keys:
            await limited.put_object(key, body, content_md5=md5, headers=headers)
        per_put.append((time.process_time() - start) / requests)
    return per_put


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    per_put = runtime.run_async(measure(args.requests, args.rounds))
    print(f"bulkput's layers per PUT (limiter, dialect, SigV4, answer): "
          f"best {min(per_put) * 1e6:.1f} us, median {statistics.median(per_put) * 1e6:.1f} us "
          f"of CPU ({args.rounds} rounds of {args.requests})")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
