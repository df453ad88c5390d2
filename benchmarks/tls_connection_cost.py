"""What a new TLS connection costs the client, with and without session resumption.

    python benchmarks/tls_connection_cost.py [--connections 128] [--rounds 6]

Against one ``rclone serve s3 :memory:`` over TLS on 127.0.0.1 (the harness's server and
self-signed certificate), each round takes a fresh :class:`bulkput.remote.transport.Transport`,
sends one HEAD (one connection, which gets the server's session ticket with the answer), then
``--connections`` HEADs at once (that many minus one new connections: handshakes), then as
many again (all on kept connections). The difference of the last two, per new connection, is
what a new connection costs, as when a job's limit of requests in flight rises. ``resumed`` is
bulkput's transport as it is (its context offers the first connection's session); ``full``
swaps in a plain ``ssl.SSLContext`` with the same settings (every connection a full
handshake). Both run on uvloop, as a job does. Prints one line per variant and writes
``benchmarks/results/standalone/tls-connection-cost.json``. docs/dev/tls.md quotes it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.servers import RCLONE_TLS, start_server  # noqa: E402
from bulkput import runtime  # noqa: E402
from bulkput.config import TransferConfig  # noqa: E402
from bulkput.remote.transport import Transport  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def full_handshakes_only(transport: Transport, ca_file: Path) -> None:
    """Give ``transport`` a plain context: what bulkput used before it resumed sessions."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.set_alpn_protocols(("http/1.1",))
    transport._tls = context  # the measuring stick only; the product builds its own


async def measure(url: str, ca_file: Path, connections: int, rounds: int,
                  resume: bool) -> dict[str, float]:
    config = TransferConfig(concurrency=connections, ca_bundle=str(ca_file))
    fresh = kept = 0.0
    for _ in range(rounds):
        transport = Transport(config)
        if not resume:
            full_handshakes_only(transport, ca_file)
        async with transport:
            await transport.send("HEAD", url, {})
            for phase in ("fresh", "kept"):
                start = cpu_seconds()
                answers = await asyncio.gather(
                    *(transport.send("HEAD", url, {}) for _ in range(connections))
                )
                spent = cpu_seconds() - start
                assert all(a.status < 500 for a in answers)
                if phase == "fresh":
                    fresh += spent
                else:
                    kept += spent
    new = rounds * (connections - 1)
    return {"new_connection_ms": 1000 * (fresh - kept) / new + 1000 * kept / (rounds * connections),
            "kept_connection_ms": 1000 * kept / (rounds * connections),
            "handshake_ms": 1000 * (fresh - kept) / new}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bulkput-tls-cost-") as work:
        server = start_server(RCLONE_TLS, Path(work))
        try:
            assert server.ca_file is not None
            url = f"{server.endpoint}/{server.bucket}/missing"
            for name, resume in (("full", False), ("resumed", True), ("full", False), ("resumed", True)):
                results[name] = runtime.run_async(
                    measure(url, server.ca_file, args.connections, args.rounds, resume)
                )
                figures = results[name]
                print(f"{name:8s} new connection + request {figures['new_connection_ms']:.3f} ms CPU, "
                      f"kept {figures['kept_connection_ms']:.3f} ms: a handshake costs "
                      f"{figures['handshake_ms']:.3f} ms")  # fmt: skip
        finally:
            server.stop()
    out = REPO / "benchmarks" / "results" / "standalone" / "tls-connection-cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"connections": args.connections, "rounds": args.rounds,
                               "results": results}, indent=2) + "\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
