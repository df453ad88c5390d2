"""`bulkput serve` tells the truth too (issue 15 point 10): keys with control characters are
stored, a held ``slow`` answer is counted, its counters cannot be cleared by a web page, it
will not expose the well-known secret, and its start-up errors are one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from urllib.parse import unquote

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from bulkput.server.faults import FaultConfig
from bulkput.server.testing import ServerHandle
from tests.integration.serve_clients import bos_client, oss_bucket, s3_client

CONTROL_KEYS = ["line\nbreak.txt", "tab\there.txt", "bell\x07.bin", "cr\rkey", "esc\x1b[0m"]


def test_keys_with_control_characters_are_stored_in_every_service(
    bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    s3 = s3_client(bulkput_server)
    oss = oss_bucket(bulkput_server, bulkput_bucket, "v4")
    bos = bos_client(bulkput_server)
    for number, key in enumerate(CONTROL_KEYS):
        s3.put_object(Bucket=bulkput_bucket, Key=f"s3/{key}", Body=b"s3-%d" % number)
        oss.put_object(f"oss/{key}", b"oss-%d" % number)
        bos.put_object_from_string(bulkput_bucket, f"bos/{key}", f"bos-{number}")
    for number, key in enumerate(CONTROL_KEYS):
        got = s3.get_object(Bucket=bulkput_bucket, Key=f"s3/{key}")["Body"].read()
        assert got == b"s3-%d" % number
        assert oss.get_object(f"oss/{key}").read() == b"oss-%d" % number
        data = bos.get_object_as_string(bulkput_bucket, f"bos/{key}")
        assert data == b"bos-%d" % number
    listed = s3.list_objects_v2(Bucket=bulkput_bucket, EncodingType="url")["Contents"]
    expected = {f"{where}/{key}" for where in ("s3", "oss", "bos") for key in CONTROL_KEYS}
    assert {unquote(item["Key"]) for item in listed} == expected
    stats = bulkput_server.stats
    assert all(stats.puts(key, bucket=bulkput_bucket) == 1 for key in expected)


def test_a_held_slow_answer_is_counted_when_the_client_gives_up(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(
        buckets=["slow"], faults=FaultConfig(rate=1.0, mix=("slow",), slow_ms=60_000)
    )
    impatient = boto3.client(
        "s3", endpoint_url=server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        config=Config(read_timeout=5, retries={"mode": "standard", "total_max_attempts": 1},
                      s3={"addressing_style": "path"}),
    )  # fmt: skip
    with pytest.raises(botocore.exceptions.ReadTimeoutError):
        impatient.put_object(Bucket="slow", Key="held", Body=b"stored anyway")
    stats = server.stats
    assert (stats.total, stats.operations, stats.statuses) == (1, {"PutObject": 1}, {"200": 1})
    assert stats.faults == {"slow": 1} and stats.puts("held") == 1
    got = s3_client(server).get_object(Bucket="slow", Key="held")["Body"].read()
    assert got == b"stored anyway"


def _post_reset(server: ServerHandle, headers: dict[str, str]) -> int:
    request = urllib.request.Request(
        f"{server.endpoint_url}/_bulkput/reset-stats", method="POST", headers=headers, data=b""
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert json.load(answer) == {"reset": True}
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def test_reset_stats_needs_the_admin_header_and_no_foreign_origin(
    bulkput_server_factory: Callable[..., ServerHandle],
) -> None:
    server = bulkput_server_factory(buckets=["counted"])
    s3_client(server).put_object(Bucket="counted", Key="k", Body=b"1")
    own = f"http://{server.host}:{server.port}"
    # what a web page can send: a plain form POST, or a header but its own Origin
    assert _post_reset(server, {"Content-Type": "application/x-www-form-urlencoded"}) == 403
    assert _post_reset(server, {"X-Bulkput-Admin": "1", "Origin": "http://evil.example"}) == 403
    assert _post_reset(server, {"X-Bulkput-Admin": "1", "Origin": "null"}) == 403
    assert server.stats.puts("k") == 1 and server.stats.total == 1
    assert _post_reset(server, {"X-Bulkput-Admin": "1", "Origin": own}) == 200
    assert server.stats.total == 0
    s3_client(server).put_object(Bucket="counted", Key="k", Body=b"2")
    assert _post_reset(server, {"X-Bulkput-Admin": "1"}) == 200
    assert server.stats.total == 0


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {k: v for k, v in os.environ.items() if k != "BULKPUT_SERVE_CREDENTIALS"}
    return subprocess.run(
        [sys.executable, "-m", "bulkput", "serve", "--memory", "--port", "0", *args],
        capture_output=True, text=True, timeout=60, env={**child_env, **(env or {})},
    )  # fmt: skip


def test_the_default_secret_is_refused_on_an_address_other_machines_reach() -> None:
    # 192.0.2.1 (TEST-NET-1) is on no interface here: nothing is ever bound to it
    refused = _serve("--host", "192.0.2.1")
    assert refused.returncode == 2, refused.stderr
    assert refused.stdout == "" and len(refused.stderr.splitlines()) == 1
    assert "default secret" in refused.stderr and "--credentials" in refused.stderr
    assert "bulkput-local-secret" not in refused.stderr
    own = _serve("--host", "192.0.2.1", "--credentials", "my-ak:my-own-secret")
    assert own.returncode == 3 and "cannot listen on 192.0.2.1" in own.stderr  # not refused
    assert "my-own-secret" not in own.stderr + own.stdout


def test_an_invalid_bucket_name_is_one_usage_line() -> None:
    done = _serve("--bucket", "Bad_Name")
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert "'Bad_Name'" in done.stderr and "Traceback" not in done.stderr


def test_fault_settings_are_printed_for_people() -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "bulkput", "serve", "--memory", "--port", "0", "--fault-rate",
         "0.1", "--seed", "3", "--fault-keys", "poison/*"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line)
            if "faults:" in line or len(lines) > 20:
                break
    finally:
        child.terminate()
        child.wait(30)
    assert lines[-1].strip() == (
        "faults: 10% of PutObject and UploadPart requests fail (requesttimeout, slowdown, "
        "internal, reset); PutObject and UploadPart requests for keys matching poison/* fail "
        "(internal); seed 3"
    ), lines
    assert not any("FaultConfig(" in line for line in lines)
