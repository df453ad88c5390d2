"""A bucket in another region than the one configured (or none configured), end to end
through ``bulkput put`` and ``bulkput sync`` against a fake cloud on 127.0.0.1 that answers as
S3 (301 PermanentRedirect with ``x-amz-bucket-region``; 400 AuthorizationHeaderMalformed with
``<Region>``) and OSS (403 with ``<Endpoint>``) do. Provider host names resolve to 127.0.0.1
through a stand-in resolver (tests.fixtures.fake_cloud.LoopbackNames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkput.cli import main
from tests.fixtures.fake_cloud import LoopbackNames

FILES = 20
CONCURRENCY = 4


def _tree(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for n in range(FILES):
        (source / f"f{n:02d}.txt").write_bytes(f"object {n}\n".encode() * (n + 1))
    return source


def _common(tmp_path: Path) -> list[str]:
    return [
        "--access-key", "AKIDEXAMPLE", "--secret-key", "not-a-real-secret",
        "--concurrency", str(CONCURRENCY),
        "--quiet",
    ]  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL",
                 "AWS_ENDPOINT_URL_S3", "OSS_REGION", "OSS_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


def _moved_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The one-line notices the user sees on stderr (the CLI's log handler prints them)."""
    return [
        r.getMessage() for r in caplog.records
        if r.name == "bulkput.remote" and r.levelname == "WARNING" and "is in region" in r.getMessage()
    ]  # fmt: skip


def _stored_all(cloud: Any, source: Path, prefix: str) -> None:
    for path in source.iterdir():
        assert cloud.objects[f"bkt/{prefix}{path.name}"] == path.read_bytes()


@pytest.mark.parametrize("form", ["redirect", "malformed"])
def test_put_finds_the_right_region_from_the_answer(
    form: str, fake_cloud: Any, tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cloud = fake_cloud(region="eu-west-1", wrong_region=form)
    source = _tree(tmp_path)
    code = main(["put", str(source), "s3://bkt/p/", "--endpoint", cloud.endpoint_url,
                 "--region", "us-east-1", *_common(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    _stored_all(cloud, source, "p/")
    stored = cloud.puts(wrong=False)
    assert len(stored) == FILES and {s.signing_region for s in stored} == {"eu-west-1"}
    assert len(cloud.puts(wrong=True)) <= CONCURRENCY  # only those in flight when it moved
    [line] = _moved_lines(caplog)
    assert "s3://bkt is in region eu-west-1, not us-east-1" in line


def test_sync_lists_and_uploads_in_the_right_region(
    fake_cloud: Any, tmp_path: Path, clean_env: None, capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cloud = fake_cloud(region="ap-southeast-2", wrong_region="redirect")
    source = _tree(tmp_path)
    code = main(["sync", str(source), "s3://bkt/s/", "--endpoint", cloud.endpoint_url,
                 "--region", "us-east-1", *_common(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    _stored_all(cloud, source, "s/")
    assert len(_moved_lines(caplog)) == 1


def test_no_region_on_aws_is_found_with_one_head_bucket(
    fake_cloud: Any, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    names = LoopbackNames(".amazonaws.com").install(monkeypatch)
    cloud = fake_cloud(region="eu-central-1", wrong_region="redirect")
    source = _tree(tmp_path)
    code = main(["put", str(source), "s3://bkt/h/", "--endpoint",
                 f"http://s3.amazonaws.com:{cloud.port}", *_common(tmp_path)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    _stored_all(cloud, source, "h/")
    first = cloud.seen[0]
    assert (first.method, first.path) == ("HEAD", "/")  # HEAD bucket, before any upload
    assert [s.method for s in cloud.seen].count("HEAD") == 1
    assert cloud.puts(wrong=True) == []  # no upload sent to the wrong region
    assert {s.host for s in cloud.puts()} == {f"bkt.s3.eu-central-1.amazonaws.com:{cloud.port}"}
    assert "bkt.s3.eu-central-1.amazonaws.com" in names.asked


def test_oss_follows_the_endpoint_its_403_names(
    fake_cloud: Any, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    LoopbackNames(".aliyuncs.com").install(monkeypatch)
    cloud = fake_cloud(scheme="oss", region="cn-beijing")
    source = _tree(tmp_path)
    code = main(["put", str(source), "oss://bkt/o/", "--endpoint",
                 f"http://oss-cn-hangzhou.aliyuncs.com:{cloud.port}", *_common(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    _stored_all(cloud, source, "o/")
    assert {s.host for s in cloud.puts(wrong=False)} == {f"bkt.oss-cn-beijing.aliyuncs.com:{cloud.port}"}
    [line] = _moved_lines(caplog)
    assert "oss://bkt is in region cn-beijing, not cn-hangzhou" in line
