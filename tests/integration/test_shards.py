"""``--shard K/N``: shards 0..N-1 together store every object exactly once, with no overlap."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from bulkput.cli import main
from bulkput.job.shard import Shard, shard_of
from bulkput.server.testing import ServerHandle

OBJECTS = 120


def _make_tree(root: Path) -> dict[str, bytes]:
    contents: dict[str, bytes] = {}
    rng = random.Random(7)
    for i in range(OBJECTS):
        rel = f"dir{i % 5}/sub{i % 3}/file-{i:04d}.bin"
        data = rng.randbytes(rng.randint(0, 300))
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        contents[rel] = data
    return contents


def _stored_keys(report: Path) -> list[str]:
    keys = []
    for line in report.read_text().splitlines():
        record = json.loads(line)
        if record.get("status") == "stored":
            keys.append(record["key"])
    return keys


@pytest.mark.parametrize("count", [1, 3, 7])
@pytest.mark.parametrize("source", ["manifest", "tree"])
def test_shards_together_store_every_object_exactly_once(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str,
    monkeypatch: pytest.MonkeyPatch, count: int, source: str,
) -> None:  # fmt: skip
    tree = tmp_path / "tree"
    contents = _make_tree(tree)
    manifest = tmp_path / "manifest.txt"
    lines = sorted(contents)
    random.Random(1).shuffle(lines)  # order must not matter: shards go by key
    manifest.write_text("".join(f"{rel}\n" for rel in lines))
    monkeypatch.chdir(tree)
    for name, value in bulkput_server.env("s3").items():
        monkeypatch.setenv(name, value)

    all_stored: list[str] = []
    for index in range(count):
        report = tmp_path / f"report-{index}.jsonl"
        args = (
            # the lines are relative to the tree, not to the manifest's folder
            ["--manifest", str(manifest), "--base", str(tree)]
            if source == "manifest" else [str(tree)]
        )  # fmt: skip
        code = main([
            "put", *args, f"s3://{bulkput_bucket}/", "--endpoint", bulkput_server.endpoint_url,
            "--shard", f"{index}/{count}", "--report", str(report), "--quiet", "--no-journal",
        ])  # fmt: skip
        assert code == 0
        stored = _stored_keys(report)
        assert all(shard_of(key, count) == index for key in stored), "a shard stored a foreign key"
        all_stored.extend(stored)

    assert sorted(all_stored) == sorted(contents), "every key stored by exactly one shard"
    stats = bulkput_server.stats
    for rel in contents:
        assert stats.puts(rel, bucket=bulkput_bucket) == 1
    # bytes stored equal bytes sent, checked on a sample through the S3 API
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=bulkput_server.endpoint_url, region_name="us-east-1",
        aws_access_key_id=bulkput_server.access_key, aws_secret_access_key=bulkput_server.secret_key,
    )  # fmt: skip
    for rel in lines[:10]:
        assert s3.get_object(Bucket=bulkput_bucket, Key=rel)["Body"].read() == contents[rel]


def test_shard_of_a_key_does_not_depend_on_anything_else() -> None:
    keys = [f"k/{i}" for i in range(1000)]
    first = [shard_of(k, 7) for k in keys]
    assert first == [shard_of(k, 7) for k in reversed(keys)][::-1]
    assert sorted(set(first)) == list(range(7)), "every shard gets keys"
    assert sum(Shard(i, 7).owns(keys[0]) for i in range(7)) == 1


def test_auto_shards_report_their_run_and_merge_checks_every_shard(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Three pods of a Kubernetes Indexed Job (``--shard auto/3``): each report's summary names
    the job, its shard, N and attempt; merging all three exits 0, merging two exits 3."""
    tree = tmp_path / "tree"
    contents = _make_tree(tree)
    for name, value in bulkput_server.env("s3").items():
        monkeypatch.setenv(name, value)
    reports = []
    for index in range(3):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        report = tmp_path / f"report-{index}.jsonl"
        code = main([
            "put", str(tree), f"s3://{bulkput_bucket}/", "--endpoint", bulkput_server.endpoint_url,
            "--shard", "auto/3", "--attempt", "1", "--report", str(report), "--quiet",
            "--no-journal",
        ])  # fmt: skip
        assert code == 0
        summary = json.loads(report.read_text().splitlines()[-1])["summary"]
        assert (summary["shard"], summary["shards"], summary["attempt"]) == (index, 3, 1)
        reports.append(str(report))
    jobs = {json.loads(Path(r).read_text().splitlines()[-1])["summary"]["job"] for r in reports}
    assert len(jobs) == 1, "the shards of one job share its id"
    capsys.readouterr()
    assert main(["report", "merge", "--json", *reports]) == 0
    assert json.loads(capsys.readouterr().out)["stored"] == len(contents)
    assert main(["report", "merge", *reports[:2]]) == 3
    assert "missing: no report of shard 2" in capsys.readouterr().out


def test_auto_shard_without_the_completion_index_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.delenv("JOB_COMPLETION_INDEX", raising=False)
    (tmp_path / "f").write_text("x")
    code = main(["put", str(tmp_path / "f"), "s3://bkt/", "--endpoint", "http://127.0.0.1:9",
                 "--shard", "auto/3", "--access-key", "a", "--secret-key", "b"])
    assert code == 2
    assert "$JOB_COMPLETION_INDEX is not set" in capsys.readouterr().err
