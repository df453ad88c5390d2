"""Option values checked before any work: ``python -m bulkput ...`` as a user runs it.

Every bad value is exit 2 and exactly one line on stderr naming the value and, where a known
value is close, the suggestion; the store received not one request (its counters say so) and
no report file was created.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bulkput.server.testing import ServerHandle


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "OSS_", "BCE_", "ALIBABA_"))
    }
    return {**base, **extra}


def run_bulkput(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bulkput", *args],
        capture_output=True, text=True, timeout=60, env=clean_env(env),
    )  # fmt: skip


# (argv after the verb's source and destination, scheme, the value, the suggestion)
CASES = [
    (["--acl", "public-reed"], "s3", "public-reed", "did you mean public-read"),
    (["--acl", "pubic-read"], "oss", "pubic-read", "did you mean public-read"),
    (["--acl", "privte"], "bos", "privte", "did you mean private"),
    (["--storage-class", "Standrd"], "oss", "Standrd", "did you mean Standard"),
    (["--storage-class", "STANDARD_I"], "bos", "STANDARD_I", "did you mean STANDARD_IA"),
    (["--sse", "AES257"], "s3", "AES257", "did you mean AES256"),
    (["--sse", "SM3"], "bos", "SM3", "did you mean SM4"),
    (["--signature-version", "v1"], "s3", "v1", "SigV4"),
    (["--signature-version", "v1"], "bos", "v1", "bce-auth-v1"),
    (["--concurrency", "0"], "s3", "'0'", "see `bulkput VERB --help`"),
    (["--retries", "-1"], "s3", "'-1'", "0 or more"),
    (["--timeout", "0"], "s3", "'0'", "more than 0 seconds"),
    (["--part-size", "1K"], "s3", "1 KiB", "5 MiB to 5 GiB"),
    (["--part-size", "50K"], "oss", "50 KiB", "100 KiB to 5 GiB"),
    (["--part-size", "6G"], "bos", "6 GiB", "5 MiB to 5 GiB"),
    (["--content-type", "texthtml"], "s3", "texthtml", "TYPE/SUBTYPE"),
    (["--meta", "owner_name=x"], "oss", "owner_name", "only letters, digits and '-'"),
    (["--progress", "jsn"], "s3", "jsn", "did you mean json"),
]


# sync goes through the same checks: a few of the cases show it
SYNC_CASES = [CASES[0], CASES[7], CASES[12]]


@pytest.mark.parametrize(
    ("verb", "options", "scheme", "value", "hint"),
    [("put", *case) for case in CASES] + [("sync", *case) for case in SYNC_CASES],
)
def test_a_bad_option_value_is_one_usage_line_before_any_request(
    bulkput_server: ServerHandle,
    bulkput_bucket: str,
    tmp_path: Path,
    verb: str,
    options: list[str],
    scheme: str,
    value: str,
    hint: str,
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("hello")
    report = tmp_path / "report.jsonl"
    bulkput_server.reset_stats()
    done = run_bulkput(
        [verb, str(source), f"{scheme}://{bulkput_bucket}/x/", "--endpoint",
         bulkput_server.endpoint_url, "--report", str(report), *options],
        {**bulkput_server.env(scheme), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"bulkput {verb}: ")
    assert value in lines[0] and hint.replace("VERB", verb) in lines[0], lines[0]
    assert bulkput_server.stats.total == 0  # not one request
    assert not report.exists()


@pytest.mark.parametrize(
    ("options", "value", "hint"),
    [
        (["--region", "us-est-1"], "us-est-1", "did you mean"),
        (["--storage-class", "GLACIR"], "GLACIR", "did you mean GLACIER"),
        (["--acl", "bucket-owner-full"], "bucket-owner-full", "bucket-owner-full-control"),
    ],
)
def test_values_for_aws_itself_are_checked_before_credentials_or_network(
    tmp_path: Path, options: list[str], value: str, hint: str
) -> None:
    # no --endpoint: AWS's own, whose storage classes are the dialect's list (a store behind
    # --endpoint may have classes of its own: those pass with a warning); no credentials
    # either, so the check comes before looking them up
    (tmp_path / "a.txt").write_text("hello")
    done = run_bulkput(
        ["put", str(tmp_path / "a.txt"), "s3://some-bucket/x/", *options],
        {"HOME": str(tmp_path)},
    )
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert value in line and hint in line, line


def test_a_missing_manifest_is_a_usage_error(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    bulkput_server.reset_stats()
    done = run_bulkput(
        ["put", "--manifest", str(tmp_path / "files.txt"), f"s3://{bulkput_bucket}/m/",
         "--endpoint", bulkput_server.endpoint_url, "--state-dir", str(tmp_path / "state")],
        {**bulkput_server.env("s3"), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "files.txt: no such file" in line and "standard input" in line
    assert bulkput_server.stats.total == 0


def test_a_manifest_line_naming_a_missing_file_still_fails_alone(
    bulkput_server: ServerHandle, bulkput_bucket: str, tmp_path: Path
) -> None:
    (tmp_path / "here.txt").write_text("here")
    manifest = tmp_path / "files.txt"
    manifest.write_text(f"{tmp_path / 'here.txt'}\n{tmp_path / 'gone.txt'}\n")
    done = run_bulkput(
        ["put", "--manifest", str(manifest), f"s3://{bulkput_bucket}/m/", "--quiet",
         "--endpoint", bulkput_server.endpoint_url, "--state-dir", str(tmp_path / "state")],
        {**bulkput_server.env("s3"), "HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "gone.txt" in done.stderr
    assert bulkput_server.stats.puts("m/here.txt", bulkput_bucket) == 1


@pytest.mark.parametrize(
    ("options", "value", "hint"),
    [
        (["--port", "70000"], "70000", "0 to 65535"),  # was: listened on port 4464
        (["--fault-rate", "2"], "'2'", "0 to 1"),
        (["--fault-mix", "slowdwn"], "slowdwn", "did you mean slowdown"),
        (["--fault-ops", "PutObjet"], "PutObjet", "did you mean PutObject"),
        (["--fault-keys-kind", "intrnal"], "intrnal", "did you mean internal"),
        (["--latency-ms", "-5"], "'-5'", "0 or more"),  # was: served, with a negative delay
        (["--body-timeout", "0"], "'0'", "more than 0 seconds"),
        (["--throttle-rps", "0"], "'0'", "more than 0 requests a second"),
    ],
)
def test_serve_checks_its_values_before_listening(
    tmp_path: Path, options: list[str], value: str, hint: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bulkput", "serve", "--port", "0", *options],
        capture_output=True, text=True, timeout=20, env=clean_env({"HOME": str(tmp_path)}),
    )  # fmt: skip
    assert done.returncode == 2
    assert "listening" not in done.stdout
    [line] = done.stderr.splitlines()
    assert line.startswith("bulkput serve: ") and line.endswith("see `bulkput serve --help`")
    assert value in line and hint in line, line
