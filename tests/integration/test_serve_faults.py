"""Fault injection, counters and the subprocess API of `bulkput serve`, seen by real clients."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

import botocore.exceptions
import oss2
import pytest

from bulkput.server.admin import ADMIN_HEADER
from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle, serve_in_subprocess
from tests.integration.serve_clients import oss_bucket, s3_client


def _code(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        call()
    response = refused.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_fault_keys_fail_one_object_only(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(buckets=["faults"], faults=FaultConfig(keys=("bad/*",)))
    s3 = s3_client(server)
    for _ in range(3):
        assert _code(lambda: s3.put_object(Bucket="faults", Key="bad/x", Body=b"x")) == (
            500, "InternalError",
        )  # fmt: skip
    s3.put_object(Bucket="faults", Key="good/x", Body=b"x")
    assert s3.get_object(Bucket="faults", Key="good/x")["Body"].read() == b"x"
    stats = server.stats
    assert stats.faults == {"internal": 3}
    assert (stats.puts("bad/x"), stats.puts("good/x")) == (0, 1)
    assert stats.count("PutObject", "PUT") == 4


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("slowdown", (503, "SlowDown")), ("internal", (500, "InternalError")),
     ("requesttimeout", (400, "RequestTimeout"))],
)  # fmt: skip
def test_every_request_faulted_by_kind(
    bulkput_server_factory: Callable[..., ServerHandle], kind: str, expected: tuple[int, str]
) -> None:
    server = bulkput_server_factory(buckets=["faults"], faults=FaultConfig(rate=1.0, mix=(kind,)))
    s3 = s3_client(server)
    assert _code(lambda: s3.put_object(Bucket="faults", Key="k", Body=b"x" * 1000)) == expected
    assert s3.list_objects_v2(Bucket="faults")["KeyCount"] == 0  # reads are not faulted
    oss = oss_bucket(server, "faults", "v1")
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        oss.put_object("k", b"x")
    assert (refused.value.status, refused.value.code) == expected


def test_reset_cuts_the_connection_and_stores_nothing(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(
        buckets=["faults"], faults=FaultConfig(rate=1.0, mix=("reset",))
    )
    s3 = s3_client(server)
    with pytest.raises((botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError)):
        s3.put_object(Bucket="faults", Key="k", Body=b"x" * 100_000)
    assert server.stats.faults == {"reset": 1}
    assert s3.list_objects_v2(Bucket="faults")["KeyCount"] == 0


def test_seeded_rate_is_repeatable(bulkput_server_factory: Callable[..., ServerHandle]) -> None:
    outcomes = []
    for _ in range(2):
        server = bulkput_server_factory(
            buckets=["faults"], faults=FaultConfig(rate=0.5, mix=("internal",), seed=7)
        )
        s3 = s3_client(server)
        run = []
        for i in range(20):
            try:
                s3.put_object(Bucket="faults", Key=f"k{i}", Body=b"x")
                run.append(True)
            except botocore.exceptions.ClientError:
                run.append(False)
        outcomes.append(run)
        assert server.stats.faults["internal"] == run.count(False)
    assert outcomes[0] == outcomes[1]
    assert 0 < outcomes[0].count(False) < 20


def test_stats_over_http_and_reset(bulkput_server_factory: Callable[..., ServerHandle]) -> None:
    server = bulkput_server_factory(buckets=["stats"])
    s3 = s3_client(server)
    s3.put_object(Bucket="stats", Key="a", Body=b"1")
    s3.put_object(Bucket="stats", Key="a", Body=b"2")
    with urllib.request.urlopen(f"{server.endpoint_url}/_bulkput/stats") as reply:
        data = json.load(reply)
    assert data["puts_by_key"] == {"stats/a": 2}
    assert data["requests"]["PUT PutObject"] == 2
    request = urllib.request.Request(
        f"{server.endpoint_url}/_bulkput/reset-stats", method="POST", headers={ADMIN_HEADER: "1"}
    )
    urllib.request.urlopen(request).close()
    assert server.stats.total == 0 and server.stats.puts("a") == 0


def test_subprocess_server_prints_port_not_secret() -> None:
    secret = "subprocess-secret-value"
    server = serve_in_subprocess(
        credentials=[f"sub-ak:{secret}"], buckets=["sub-bucket"], faults=FaultConfig(keys=("no/*",))
    )
    try:
        assert server.port > 0 and server.process is not None
        s3 = s3_client(server)
        s3.put_object(Bucket="sub-bucket", Key="yes", Body=b"data")
        assert _code(lambda: s3.put_object(Bucket="sub-bucket", Key="no/1", Body=b"x"))[0] == 500
        assert s3.get_object(Bucket="sub-bucket", Key="yes")["Body"].read() == b"data"
        stats = server.stats  # read over HTTP from the child
        assert stats.puts("yes") == 1 and stats.faults == {"internal": 1}
        server.reset_stats()
        assert server.stats.total == 0
    finally:
        server.stop()
    assert server.process.returncode is not None


def test_serve_binds_loopback_by_default(bulkput_server: ServerHandle) -> None:
    from bulkput.cli import build_parser

    args = build_parser().parse_args(["serve"])
    assert (args.host, args.port) == ("127.0.0.1", 9000)
    assert bulkput_server.endpoint_url.startswith("http://127.0.0.1:")


def test_a_client_gone_mid_body_stores_nothing_and_logs_no_traceback(
    bulkput_server: ServerHandle, bulkput_bucket: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client killed in the middle of a PUT body: nothing stored, no "Error handling request"
    traceback in the server's log (the kill soak used to fill it with them)."""
    import socket
    import time

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    url = f"{bulkput_server.endpoint_url}/{bulkput_bucket}/cut"
    request = AWSRequest(method="PUT", url=url, headers={
        "Content-Length": "100000", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"})  # fmt: skip
    S3SigV4Auth(Credentials(bulkput_server.access_key, bulkput_server.secret_key), "s3",
                "us-east-1").add_auth(request)  # fmt: skip
    head = f"PUT /{bulkput_bucket}/cut HTTP/1.1\r\nHost: {bulkput_server.host}:{bulkput_server.port}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in request.headers.items()) + "\r\n"
    with caplog.at_level("DEBUG"):
        with socket.create_connection((bulkput_server.host, bulkput_server.port)) as sock:
            sock.sendall(head.encode() + b"x" * 1000)
            time.sleep(0.3)  # the server is now waiting for the rest of the body
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        time.sleep(0.5)  # let the server see the reset
    s3 = s3_client(bulkput_server)
    assert s3.list_objects_v2(Bucket=bulkput_bucket)["KeyCount"] == 0
    tracebacks = [r for r in caplog.records if r.exc_info or "Error handling request" in r.getMessage()]
    assert tracebacks == []
