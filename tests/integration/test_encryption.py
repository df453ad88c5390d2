"""Encrypted objects end to end against a fake S3 on 127.0.0.1 whose ETags are not the MD5
of the bytes (as SSE-KMS and SSE-C stores answer): uploads are not failed as BadDigest, the
encryption headers and key go out, the key is never shown, and ``sync --checksum`` compares
the ``md5`` metadata, not the ETag."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from bulkput.cli import main

FILES = 6


def _tree(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    for n in range(FILES):
        (source / f"f{n}.bin").write_bytes(os.urandom(100 + n))
    return source


def _args(cloud: Any, tmp_path: Path) -> list[str]:
    return [
        "--endpoint", cloud.endpoint_url, "--region", cloud.region,
        "--access-key", "AKIDEXAMPLE", "--secret-key", "not-a-real-secret",
        "--retries", "9",
    ]  # fmt: skip


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # journals and tool files of this test only


def test_bucket_default_kms_etags_are_not_bad_digests(
    fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = fake_cloud(encrypted_etags=True)
    source = _tree(tmp_path)
    code = main(["put", str(source), "s3://bkt/kms/", "--quiet", *_args(cloud, tmp_path)])
    assert code == 0, capsys.readouterr().err
    assert len(cloud.puts()) == FILES  # each object written once, not retried as BadDigest
    for path in source.iterdir():
        assert cloud.objects[f"bkt/kms/{path.name}"] == path.read_bytes()


def test_sse_kms_with_a_key_id(fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cloud = fake_cloud(encrypted_etags=True)
    source = _tree(tmp_path)
    key_id = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    code = main(["put", str(source), "s3://bkt/k/", "--quiet", "--sse", "aws:kms",
                 "--sse-kms-key-id", key_id, *_args(cloud, tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    for seen in cloud.puts():
        assert seen.headers["x-amz-server-side-encryption"] == "aws:kms"
        assert seen.headers["x-amz-server-side-encryption-aws-kms-key-id"] == key_id
    for path in source.iterdir():  # the MD5 kept as metadata, since the ETag is not it
        assert cloud.metadata[f"bkt/k/{path.name}"]["md5"] == _md5(path)


def test_sse_c_sends_the_key_and_never_shows_it(
    fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    cloud = fake_cloud(encrypted_etags=True)
    source = _tree(tmp_path)
    key = bytes(range(32))
    key_file = tmp_path / "sse-c.key"
    key_file.write_text(base64.b64encode(key).decode() + "\n")
    report = tmp_path / "report.jsonl"
    code = main(["put", str(source), "s3://bkt/c/", "--sse-c-key-file", str(key_file),
                 "--report", str(report), "--debug", *_args(cloud, tmp_path)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    key_b64 = base64.b64encode(key).decode()
    key_md5 = base64.b64encode(hashlib.md5(key).digest()).decode()
    for seen in cloud.puts():
        assert seen.headers["x-amz-server-side-encryption-customer-algorithm"] == "AES256"
        assert seen.headers["x-amz-server-side-encryption-customer-key"] == key_b64
        assert seen.headers["x-amz-server-side-encryption-customer-key-md5"] == key_md5
    shown = out + err + report.read_text() + caplog.text
    assert key_b64 not in shown and key.hex() not in shown
    assert len(report.read_text().splitlines()) == FILES + 1
    for line in report.read_text().splitlines()[:-1]:
        assert json.loads(line)["status"] == "stored"


def test_sync_checksum_skips_encrypted_objects_by_their_md5_metadata(
    fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = fake_cloud(encrypted_etags=True)
    source = _tree(tmp_path)
    assert main(["put", str(source), "s3://bkt/s/", "--quiet", "--sse", "aws:kms",
                 *_args(cloud, tmp_path)]) == 0  # fmt: skip
    assert len(cloud.puts()) == FILES
    (source / "f0.bin").write_bytes(b"x" * 100)  # one file changed, its size the same
    code = main(["sync", str(source), "s3://bkt/s/", "--checksum", "--quiet", "--sse", "aws:kms",
                 *_args(cloud, tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert [s.path for s in cloud.puts()[FILES:]] == ["/bkt/s/f0.bin"]  # only the changed one


@pytest.mark.parametrize(
    ("extra", "dest", "fragment"),
    [
        (["--sse-kms-key-id", "k1"], "s3://bkt/x/", "--sse-kms-key-id goes with --sse aws:kms"),
        (["--sse", "AES256", "--sse-kms-key-id", "k1"], "s3://bkt/x/", "--sse-kms-key-id goes with"),
        (["--sse-c-key-file", "KEYFILE"], "oss://bkt/x/", "SSE-C"),
        (["--sse-c-key-file", "SHORTKEY"], "s3://bkt/x/", "expected a 32-byte key"),
        (["--sse-c-key-file", "KEYFILE", "--sse", "AES256"], "s3://bkt/x/", "do not go together"),
    ],
)
def test_encryption_options_are_checked_before_any_request(
    extra: list[str], dest: str, fragment: str, fake_cloud: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cloud = fake_cloud(encrypted_etags=True)
    (tmp_path / "key").write_bytes(bytes(32))
    (tmp_path / "short").write_bytes(bytes(16))
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "SK")
    extra = [{"KEYFILE": str(tmp_path / "key"), "SHORTKEY": str(tmp_path / "short")}.get(a, a) for a in extra]
    source = _tree(tmp_path)
    code = main(["put", str(source), dest, *extra, *_args(cloud, tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and fragment in err[0]
    assert cloud.seen == []
