"""Signing throughput: our signers beside the official SDKs' own, on the same request.

``python3 -m benchmarks.signing [--seconds 1.0]`` prints a markdown table. Each case is a
single-object PUT with Content-Type, Content-MD5, Content-Length and one user metadata header,
the way an upload sends it; both sides read the clock themselves on every call, and both reuse
one prepared request object, so what is measured is signing alone. Rounds alternate between
the two sides and the best round counts, which keeps the ratio fair on a busy machine.

The SDKs are imported only when measuring, so importing this module is cheap.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from bulkput.remote.credentials import Credentials
from bulkput.remote.signing import (
    BceV1Signer,
    OssV1Signer,
    OssV4Signer,
    SignableRequest,
    SigV4Signer,
)
from bulkput.remote.signing._encoding import uri_encode

ROUNDS = 3  # per side, alternating
_BATCH = 100  # calls between clock reads

_ACCESS_KEY = "AKIDBENCHMARK00000000"
_SECRET_KEY = "benchmark/secret+key=0123456789abcdefghij"  # a made-up key, not a credential
_BUCKET = "bench-bucket"
_KEY = "datasets/2024/01/part-000123 copy.bin"
_MD5 = "XrY7u+Ae7tCTyyK7j1rNww=="
_REGION_OSS = "cn-hangzhou"
_REGION_S3 = "us-east-1"


def _rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``call`` over about ``seconds``."""
    calls = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(_BATCH):
            call()
        calls += _BATCH
        now = time.perf_counter()
        if now >= deadline:
            return calls / (now - start)


def _headers(prefix: str) -> dict[str, str]:
    return {
        "content-type": "application/octet-stream",
        "content-md5": _MD5,
        "content-length": "4096",
        f"{prefix}meta-mtime": "1704164645",
    }


def _cases() -> list[tuple[str, str, Callable[[], object], Callable[[], Callable[[], object]]]]:
    """(algorithm, sdk signer name, our call, factory of the SDK call) per algorithm."""
    creds = Credentials(_ACCESS_KEY, _SECRET_KEY)
    path = f"/{uri_encode(_KEY, keep_slash=True)}"
    host_bos = f"{_BUCKET}.bj.bcebos.com"
    host_oss = f"{_BUCKET}.oss-{_REGION_OSS}.aliyuncs.com"
    host_s3 = f"{_BUCKET}.s3.amazonaws.com"

    def now() -> datetime:
        return datetime.now(timezone.utc)

    bce_request = SignableRequest("PUT", host_bos, path, headers=_headers("x-bce-"))
    bce = BceV1Signer()
    oss_request = SignableRequest(
        "PUT", host_oss, path, headers=_headers("x-oss-"), bucket=_BUCKET, key=_KEY
    )
    oss_v1, oss_v4 = OssV1Signer(), OssV4Signer(_REGION_OSS)
    s3_request = SignableRequest("PUT", host_s3, path, headers=_headers("x-amz-"))
    s3 = SigV4Signer(_REGION_S3)

    def sdk_bce() -> Callable[[], object]:
        from baidubce.auth import bce_v1_signer
        from baidubce.auth.bce_credentials import BceCredentials

        sdk_creds = BceCredentials(_ACCESS_KEY, _SECRET_KEY)
        headers = {k.encode(): v.encode() for k, v in _headers("x-bce-").items()}
        headers[b"host"] = host_bos.encode()
        path_bytes = path.encode()

        def call() -> object:  # the SDK's http client sets x-bce-date, then signs
            headers[b"x-bce-date"] = _bce_now()
            return bce_v1_signer.sign(sdk_creds, b"PUT", path_bytes, headers, {})

        return call

    def sdk_oss(version: str) -> Callable[[], object]:
        import oss2
        from oss2.credentials import StaticCredentialsProvider

        provider = StaticCredentialsProvider(_ACCESS_KEY, _SECRET_KEY)
        auth: Any = (
            oss2.ProviderAuthV4(provider) if version == "v4" else oss2.ProviderAuth(provider)
        )
        request = oss2.http.Request(
            "PUT", f"http://{host_oss}{path}", headers=_headers("x-oss-"), region=_REGION_OSS,
            product="oss",
        )  # fmt: skip
        return lambda: auth._sign_request(request, _BUCKET, _KEY)

    def sdk_s3() -> Callable[[], object]:
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials as BotoCredentials

        class _Config:  # UNSIGNED-PAYLOAD, as ours: no body hashing on either side
            s3 = {"payload_signing_enabled": False}

        signer = S3SigV4Auth(BotoCredentials(_ACCESS_KEY, _SECRET_KEY), "s3", _REGION_S3)
        request = AWSRequest(
            method="PUT", url=f"https://{host_s3}{path}", headers=_headers("x-amz-")
        )
        request.context["client_config"] = _Config()
        return lambda: signer.add_auth(request)

    return [
        ("bce-v1", "baidubce bce_v1_signer.sign", lambda: bce.sign(bce_request, creds, now()), sdk_bce),
        ("oss-v1", "oss2 ProviderAuth (V1)", lambda: oss_v1.sign(oss_request, creds, now()),
         lambda: sdk_oss("v1")),
        ("oss-v4", "oss2 ProviderAuthV4", lambda: oss_v4.sign(oss_request, creds, now()),
         lambda: sdk_oss("v4")),
        ("s3-v4", "botocore S3SigV4Auth", lambda: s3.sign(s3_request, creds, now()), sdk_s3),
    ]  # fmt: skip


def _bce_now() -> bytes:
    utc = time.gmtime()
    return b"%04d-%02d-%02dT%02d:%02d:%02dZ" % utc[:6]


def measure_signing(seconds_per_case: float = 1.0) -> list[dict[str, Any]]:
    """Signed requests per second for each algorithm, ours beside the official SDK's signer.

    Rows: ``algorithm``, ``sdk`` (which signer), ``ours_per_s``, ``sdk_per_s``, ``ratio``
    (ours / SDK). When an SDK is not installed its figures are ``None``. About
    ``2 * seconds_per_case`` seconds per algorithm.
    """
    rows: list[dict[str, Any]] = []
    round_seconds = seconds_per_case / ROUNDS
    for algorithm, sdk_name, ours, sdk_factory in _cases():
        try:
            sdk_call: Callable[[], object] | None = sdk_factory()
        except ImportError:
            sdk_call = None
        best_ours = best_sdk = 0.0
        for _ in range(ROUNDS):
            best_ours = max(best_ours, _rate(ours, round_seconds))
            if sdk_call is not None:
                best_sdk = max(best_sdk, _rate(sdk_call, round_seconds))
        rows.append(
            {
                "algorithm": algorithm,
                "sdk": sdk_name,
                "ours_per_s": round(best_ours),
                "sdk_per_s": round(best_sdk) if sdk_call is not None else None,
                "ratio": round(best_ours / best_sdk, 2) if best_sdk else None,
            }
        )
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| algorithm | official signer | ours (req/s) | SDK (req/s) | ours / SDK |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        sdk = "n/a" if row["sdk_per_s"] is None else f"{row['sdk_per_s']:,}"
        ratio = "n/a" if row["ratio"] is None else f"{row['ratio']:.2f}x"
        lines.append(
            f"| {row['algorithm']} | {row['sdk']} | {row['ours_per_s']:,} | {sdk} | {ratio} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python3 -m benchmarks.signing",
        description="Signed requests per second: bulkput's signers beside the official SDKs'.",
    )
    parser.add_argument("--seconds", type=float, default=1.0, help="seconds per side per case")
    args = parser.parse_args(argv)
    print(markdown_table(measure_signing(args.seconds)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
