"""``bulkput put``, manifests, multipart, ``sync`` and ``abort-incomplete`` against two S3 servers
this project did not write: SeaweedFS (``weed server -s3``) and moto's server.

Each test runs the command as a user would (``bulkput ...`` in-process, credentials from the
environment) and checks the result with another client, boto3: the bytes and headers stored,
the uploads left, the exit code and the report.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bulkput.cli import main
from tests.integration.test_multipart_dialects import MULTIPART, PART, SIZES, THRESHOLD

SERVERS = ["seaweedfs", "moto"]
PAST = 1_600_000_000
_buckets = itertools.count(1)

TREE = {
    "plain.txt": b"plain",
    "with space/a b+c.bin": b"space plus",
    "ünïcødé/ñ 日本.json": b'{"u": 1}',
    "reserved/a=b&c;d,e@f$g!h'i(j)k*.bin": b"reserved",
    "percent/100%.txt": b"percent",
    "deep/er/still/x.html": b"<p>deep</p>",
    "empty.dat": b"",
}


@dataclass
class Server:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    client: Any  # boto3's S3 client: the independent check

    def new_bucket(self) -> str:
        bucket = f"{self.name}-it-{next(_buckets)}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def objects(self, bucket: str, prefix: str = "") -> dict[str, bytes]:
        found = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=prefix
        ):
            for entry in page.get("Contents", []):
                key = entry["Key"]
                found[key[len(prefix) :]] = self.client.get_object(Bucket=bucket, Key=key)[
                    "Body"
                ].read()
        return found

    def uploads(self, bucket: str) -> list[str]:
        answer = self.client.list_multipart_uploads(Bucket=bucket)
        return sorted(upload["Key"] for upload in answer.get("Uploads", []))


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    import boto3
    import botocore.config

    running = request.getfixturevalue(f"{request.param}_server")
    # the command adds a stderr handler once per process: each test gets its own (capsys)
    monkeypatch.setattr(logging.getLogger("bulkput"), "handlers", [])
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", running.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", running.secret_key)
    monkeypatch.setenv("AWS_REGION", running.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    client = boto3.client(
        "s3",
        endpoint_url=running.endpoint,
        aws_access_key_id=running.access_key,
        aws_secret_access_key=running.secret_key,
        region_name=running.region,
        config=botocore.config.Config(s3={"addressing_style": "path"}),
    )
    try:
        yield Server(request.param, running.endpoint, running.access_key, running.secret_key, client)
    finally:
        client.close()


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for key, data in files.items():
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (PAST, PAST))
    return root


def bulkput(server: Server, verb: str, *args: str) -> int:
    progress = ["--progress", "none"] if verb in ("put", "sync") else []
    return main([verb, *args, "--endpoint", server.endpoint, *progress])


def report(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    return {line["key"]: line for line in lines if "key" in line}, lines[-1]["summary"]


def test_put_a_tree_with_its_headers_and_report(server: Server, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", TREE)
    bucket = server.new_bucket()
    out = tmp_path / "report.jsonl"
    dest = f"s3://{bucket}/up"
    args = ["--meta", "owner=it", "--state-dir", str(tmp_path / "state"), "--report", str(out)]
    assert bulkput(server, "put", str(src), dest, *args) == 0
    assert server.objects(bucket, "up/") == TREE
    head = server.client.head_object(Bucket=bucket, Key="up/ünïcødé/ñ 日本.json")
    assert head["ContentType"] == "application/json"
    assert {k.lower(): v for k, v in head["Metadata"].items()} == {"owner": "it"}
    results, summary = report(out)
    assert summary["stored"] == len(TREE) and summary["exit_code"] == 0
    for name, data in TREE.items():
        line = results[f"up/{name}"]
        assert line["status"] == "stored"
        assert line["etag"] == line["md5"] == hashlib.md5(data).hexdigest()


def test_manifest_keys_headers_and_metadata(server: Server, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", TREE)
    bucket = server.new_bucket()
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,key,content_type,meta_color,cache_control\n"
        f"{src / 'plain.txt'},csv/one.txt,text/x-one,red,no-cache\n"
        f'"{src / "with space/a b+c.bin"}",csv/two words+plus.bin,,blue,\n'
    )
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(
        json.dumps({"path": str(src / "ünïcødé/ñ 日本.json"), "key": "j/ü.json",
                    "content_type": "application/x-u", "metadata": {"n": "1"}}) + "\n"
    )  # fmt: skip
    assert bulkput(server, "put", "--manifest", str(manifest), f"s3://{bucket}/m", "--no-journal") == 0
    assert bulkput(server, "put", "--manifest", str(jsonl), f"s3://{bucket}/m", "--no-journal") == 0
    assert server.objects(bucket, "m/") == {
        "csv/one.txt": TREE["plain.txt"],
        "csv/two words+plus.bin": TREE["with space/a b+c.bin"],
        "j/ü.json": TREE["ünïcødé/ñ 日本.json"],
    }
    one = server.client.head_object(Bucket=bucket, Key="m/csv/one.txt")
    assert (one["ContentType"], one["CacheControl"]) == ("text/x-one", "no-cache")
    assert {k.lower(): v for k, v in one["Metadata"].items()} == {"color": "red"}
    two = server.client.head_object(Bucket=bucket, Key="m/csv/two words+plus.bin")
    assert {k.lower(): v for k, v in two["Metadata"].items()} == {"color": "blue"}
    third = server.client.head_object(Bucket=bucket, Key="m/j/ü.json")
    assert third["ContentType"] == "application/x-u"
    assert {k.lower(): v for k, v in third["Metadata"].items()} == {"n": "1"}


@pytest.mark.slow
def test_multipart_sizes_byte_exact(server: Server, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, size in SIZES.items():
        (src / name).write_bytes(os.urandom(size))
    bucket = server.new_bucket()
    out = tmp_path / "report.jsonl"
    code = bulkput(
        server, "put", str(src), f"s3://{bucket}/mp",
        "--multipart-threshold", str(THRESHOLD), "--part-size", str(PART),
        "--no-journal", "--report", str(out),
    )  # fmt: skip
    assert code == 0
    files = {name: (src / name).read_bytes() for name in SIZES}
    assert server.objects(bucket, "mp/") == files
    results, summary = report(out)
    assert summary["stored"] == len(SIZES)
    for name, data in files.items():
        head = server.client.head_object(Bucket=bucket, Key=f"mp/{name}")
        md5 = hashlib.md5(data).hexdigest()
        assert results[f"mp/{name}"]["md5"] == md5
        if name in MULTIPART:
            assert head["Metadata"].get("md5") == md5, name  # the whole file's MD5
            assert head["ETag"].strip('"').endswith(f"-{MULTIPART[name]}"), head["ETag"]
        else:
            assert head["ETag"].strip('"') == md5
    assert server.uploads(bucket) == []  # none left behind


def test_sync_uploads_what_changed_and_deletes_what_went(server: Server, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", TREE)
    bucket = server.new_bucket()
    dest = f"s3://{bucket}/s"
    first, second, third = (tmp_path / f"{n}.jsonl" for n in (1, 2, 3))
    assert bulkput(server, "sync", str(src), dest, "--report", str(first)) == 0
    assert server.objects(bucket, "s/") == TREE
    assert report(first)[1]["stored"] == len(TREE)

    assert bulkput(server, "sync", str(src), dest, "--report", str(second)) == 0
    results, summary = report(second)
    assert (summary["stored"], summary["skipped"]) == (0, len(TREE))

    (src / "plain.txt").write_bytes(b"plain, grown")
    (src / "with space/a b+c.bin").unlink()
    make_tree(src, {"new/n e w.txt": b"new"})
    assert bulkput(server, "sync", str(src), dest, "--delete", "--report", str(third)) == 0
    results, summary = report(third)
    stored = sorted(key for key, line in results.items() if line["status"] == "stored")
    deleted = sorted(key for key, line in results.items() if line["status"] == "deleted")
    assert stored == ["s/new/n e w.txt", "s/plain.txt"]
    assert deleted == ["s/with space/a b+c.bin"]
    expected = {k: v for k, v in TREE.items() if k != "with space/a b+c.bin"}
    expected |= {"plain.txt": b"plain, grown", "new/n e w.txt": b"new"}
    assert server.objects(bucket, "s/") == expected


def test_abort_incomplete_aborts_exactly_the_uploads_under_the_prefix(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = server.new_bucket()
    keys = ["left/a b+c.bin", "left/ü 100%.bin", "keep/x.bin"]
    for key in keys:
        upload = server.client.create_multipart_upload(Bucket=bucket, Key=key)
        server.client.upload_part(
            Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=1, Body=b"part one"
        )
    capsys.readouterr()
    assert bulkput(server, "abort-incomplete", f"s3://{bucket}/left/", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "left/a b+c.bin" in out and "left/ü 100%.bin" in out and "keep/x.bin" not in out
    assert "2 would abort" in out
    assert server.uploads(bucket) == sorted(keys)

    assert bulkput(server, "abort-incomplete", f"s3://{bucket}/left/") == 0
    out = capsys.readouterr().out
    assert "2 aborted" in out and "0 failed" in out
    assert server.uploads(bucket) == ["keep/x.bin"]


def test_a_1024_byte_key_is_stored_and_a_1025_byte_key_refused_before_sending(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_tree(tmp_path / "src", {"x.bin": b"long key"})
    bucket = server.new_bucket()

    def key_of(size: int) -> str:  # path segments under 255 bytes, as file systems want
        segments, left = [], size - len("k/")
        while left > 0:
            take = min(200, left)
            segments.append("ü" * ((take - 1) // 2) + "a" * ((take - 1) % 2))
            left -= len(segments[-1].encode()) + 1
        key = "k/" + "/".join(segments)
        return key + "b" * (size - len(key.encode()))

    longest, too_long = key_of(1024), key_of(1025)
    assert (len(longest.encode()), len(too_long.encode())) == (1024, 1025)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        "".join(json.dumps({"path": str(src / "x.bin"), "key": key}) + "\n" for key in (longest, too_long))
    )
    capsys.readouterr()
    code = bulkput(server, "put", "--manifest", str(manifest), f"s3://{bucket}/", "--no-journal")
    err = capsys.readouterr().err
    assert code == 1  # one object refused, the other stored
    assert "1025 bytes of UTF-8; the limit on s3 is 1024" in err
    assert server.objects(bucket) == {longest: b"long key"}


def test_a_storage_class_aws_does_not_know_is_sent_and_the_store_decides(
    server: Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"a", "b.txt": b"b", "ia.txt": b"ia"})
    bucket = server.new_bucket()
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        json.dumps({"path": str(src / "a.txt"), "key": "a.txt", "storage_class": "WARM"}) + "\n"
        + json.dumps({"path": str(src / "b.txt"), "key": "b.txt", "storage_class": "WARM"}) + "\n"
        + json.dumps({"path": str(src / "ia.txt"), "key": "ia.txt", "storage_class": "standard_ia"})
        + "\n"
    )  # fmt: skip
    out = tmp_path / "r.jsonl"
    capsys.readouterr()
    code = bulkput(server, "put", "--manifest", str(manifest), f"s3://{bucket}/", "--no-journal",
                   "--report", str(out))  # fmt: skip
    err = capsys.readouterr().err
    # these two stores know only AWS's classes: they refuse WARM themselves, one object at a time
    assert code == 1
    results, _ = report(out)
    assert {key: line["status"] for key, line in results.items()} == {
        "a.txt": "failed", "b.txt": "failed", "ia.txt": "stored"
    }  # fmt: skip
    assert all("InvalidStorageClass" in results[k]["message"] for k in ("a.txt", "b.txt"))
    assert err.count("storage class 'WARM' is not one of AWS S3's") == 1
    head = server.client.head_object(Bucket=bucket, Key="ia.txt")
    assert head["StorageClass"] == "STANDARD_IA"
    assert server.objects(bucket) == {"ia.txt": b"ia"}
