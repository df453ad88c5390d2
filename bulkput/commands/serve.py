"""``bulkput serve``: a local object store that speaks BOS, OSS and S3."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from bulkput.commands.options import count, positive, positive_seconds
from bulkput.remote.credentials import Credentials
from bulkput.server.app import BulkputServer, listen, tls_context
from bulkput.server.config import (
    DEFAULT_ACCESS_KEY,
    DEFAULT_HOST,
    DEFAULT_PORT,
    ServerConfig,
    default_credentials,
    is_loopback,
    parse_credentials,
)
from bulkput.server.faults import (
    DEFAULT_MIX,
    DEFAULT_OPERATIONS,
    EVERY_OPERATION,
    FAULT_KINDS,
    FaultConfig,
)
from bulkput.server.routing import ROUTES
from bulkput.suggest import unknown_value

CREDENTIALS_ENV = "BULKPUT_SERVE_CREDENTIALS"

EPILOG = f"""\
Credentials: with no --credentials (and no {CREDENTIALS_ENV}, one AK:SK[:TOKEN] a line), the
store accepts the local pair access key {DEFAULT_ACCESS_KEY!r}, secret 'bulkput-local-secret'.
Every request must be signed (bce-auth-v1, OSS V1/V4, AWS SigV4).

The store refuses to listen on an address other than loopback with that default secret.

Admin endpoints (no signature; the store binds to 127.0.0.1 by default):
  GET  /_bulkput/stats        request counters as JSON (per operation, status, fault, key)
  POST /_bulkput/reset-stats  clear them (needs the header 'X-Bulkput-Admin: 1')

Fault kinds for --fault-mix: {", ".join(FAULT_KINDS)}.

Examples:
  # a store in memory with one bucket, for trying bulkput put
  bulkput serve --memory --port 9000 --bucket photos

  # on disk, over HTTPS, with your own key pair
  bulkput serve --dir /tmp/store --cert cert.pem --key key.pem --credentials AK:SK

  # one PutObject or UploadPart in ten fails (repeatable with --seed)
  bulkput serve --fault-rate 0.1 --seed 1 --bucket photos
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a local object store (BOS, OSS and S3 dialects) for tests and demos",
        description="A local object store that speaks BOS, OSS and S3, checks every signature "
        "and can inject faults.",
        epilog=EPILOG,
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--dir", metavar="PATH", help="keep objects in this directory")
    where.add_argument("--memory", action="store_true", help="keep objects in memory (default)")
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=port,
        default=DEFAULT_PORT,
        help="port (default %(default)s; 0 picks a free one and prints it)",
    )
    parser.add_argument(
        "--credentials",
        action="append",
        default=[],
        metavar="AK:SK[:TOKEN]",
        help="accepted credentials (repeatable)",
    )
    parser.add_argument("--region", help="require this region in V4 signatures (default: any)")
    parser.add_argument(
        "--cert", metavar="FILE", help="serve HTTPS with this PEM certificate chain (with --key)"
    )
    parser.add_argument("--key", metavar="FILE", help="the PEM private key of --cert")
    parser.add_argument(
        "--bucket",
        action="append",
        default=[],
        metavar="NAME",
        help="create this bucket at start (repeatable)",
    )
    parser.add_argument(
        "--min-part-size",
        type=positive,
        metavar="BYTES",
        help="smallest multipart part but the last (default: each service's own)",
    )
    parser.add_argument(
        "--body-timeout",
        type=positive_seconds,
        default=20.0,
        metavar="SECONDS",
        help="a stalled request body gets 400 RequestTimeout after this long",
    )
    parser.add_argument(
        "--no-key-stats",
        action="store_true",
        help="do not count PUTs per key (for runs with millions of objects)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--fault-rate",
        type=fraction,
        default=0.0,
        metavar="P",
        help="fraction of eligible requests that fail (0..1)",
    )
    faults.add_argument(
        "--fault-mix",
        default=",".join(DEFAULT_MIX),
        help="fault kinds drawn from (default %(default)s)",
    )
    faults.add_argument("--latency-ms", type=count, default=50, metavar="MS",
                        help="delay of a 'latency' fault")
    faults.add_argument(
        "--slow-ms",
        type=count,
        metavar="MS",
        default=30_000,
        help="delay of a 'slow' fault's answer (default %(default)s)",
    )
    faults.add_argument("--seed", type=int, help="random seed, for repeatable faults")
    faults.add_argument(
        "--fault-keys",
        action="append",
        default=[],
        metavar="GLOB",
        help="every eligible request for a key matching GLOB fails (repeatable)",
    )
    faults.add_argument(
        "--fault-keys-kind",
        default="internal",
        help="how --fault-keys requests fail (default %(default)s)",
    )
    faults.add_argument(
        "--throttle-rps",
        type=rate,
        metavar="N",
        help="answer 503 SlowDown above N eligible requests per second",
    )
    faults.add_argument(
        "--fault-ops",
        default=",".join(sorted(DEFAULT_OPERATIONS)),
        help="operations faults apply to, comma-separated, or 'all' (default %(default)s)",
    )
    parser.set_defaults(run=run)


def port(text: str) -> int:
    """An argparse ``type=``: a TCP port, 0 (any free one) to 65535."""
    value = count(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: a port is 0 to 65535")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def fraction(text: str) -> float:
    """An argparse ``type=``: a fraction, 0 to 1."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a fraction is 0 to 1 (0.1: one in ten)")
    return value


def rate(text: str) -> float:
    """An argparse ``type=``: requests a second, above 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be more than 0 requests a second")
    return value


def _accepted_credentials(args: argparse.Namespace) -> tuple[Credentials, ...]:
    texts = list(args.credentials)
    from_env = os.environ.get(CREDENTIALS_ENV, "")
    texts += [line.strip() for line in from_env.splitlines() if line.strip()]
    if not texts:
        return default_credentials()
    return tuple(parse_credentials(text) for text in texts)


def _fault_operations(text: str) -> frozenset[str]:
    """``--fault-ops``: operation names of the routing table, or ``all``."""
    names = frozenset(name.strip() for name in text.split(",") if name.strip())
    if names & {"all", EVERY_OPERATION}:
        return frozenset({EVERY_OPERATION})
    known = {route.operation for route in ROUTES}
    unknown = sorted(names - known)
    if unknown:
        raise ValueError("--fault-ops: " + unknown_value("operation", unknown[0], [*sorted(known), "all"]))
    return names or DEFAULT_OPERATIONS


def build_config(args: argparse.Namespace) -> ServerConfig:
    fault_config = FaultConfig(
        rate=args.fault_rate,
        mix=FaultConfig.parse_mix(args.fault_mix),
        latency_ms=args.latency_ms,
        slow_ms=args.slow_ms,
        seed=args.seed,
        keys=tuple(args.fault_keys),
        keys_kind=args.fault_keys_kind,
        throttle_rps=args.throttle_rps,
        operations=_fault_operations(args.fault_ops),
    )
    return ServerConfig(
        host=args.host,
        port=args.port,
        directory=args.dir,
        credentials=_accepted_credentials(args),
        region=args.region,
        buckets=tuple(args.bucket),
        faults=fault_config,
        body_timeout=args.body_timeout,
        min_part_size=args.min_part_size,
        track_keys=not args.no_key_stats,
        tls_cert=args.cert,
        tls_key=args.key,
    )


async def _serve(config: ServerConfig) -> None:
    listening = await listen(BulkputServer(config))
    url = f"{config.scheme}://{config.host}:{listening.port}"
    where = config.directory or "memory"
    # the first line is machine-read by serve_in_subprocess: keep its form
    print(f"bulkput serve listening on {url}", flush=True)
    print(f"  storage: {where}; buckets: {', '.join(config.buckets) or '(none yet)'}")
    print(f"  access key: {config.credentials[0].access_key}"
          + (" (the default local pair; secret 'bulkput-local-secret')"
             if config.credentials == default_credentials() else ""))  # fmt: skip
    print("  for clients: export AWS_ACCESS_KEY_ID / OSS_ACCESS_KEY_ID / BCE_ACCESS_KEY_ID and the "
          f"matching secret variables, and use --endpoint {url}")  # fmt: skip
    if config.faults.active:
        print(f"  faults: {config.faults.describe()}")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await listening.runner.cleanup()


def run(args: argparse.Namespace) -> int:
    try:
        config = build_config(args)
        tls_context(config)  # a certificate that cannot be loaded is a usage error, now
    except ValueError as error:
        print(f"bulkput serve: {error}; see `bulkput serve --help`", file=sys.stderr)
        return 2
    if not is_loopback(config.host):
        print(f"bulkput serve: warning: listening on {config.host}, reachable from other "
              "machines; the admin endpoints have no authentication", file=sys.stderr)  # fmt: skip
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # platforms without uvloop
        runner = asyncio.run  # type: ignore[assignment]
    try:
        runner(_serve(config))
    except OSError as error:
        print(
            f"bulkput serve: cannot listen on {config.host}:{config.port}: {error}", file=sys.stderr
        )
        return 3
    except KeyboardInterrupt:
        return 130
    return 0
