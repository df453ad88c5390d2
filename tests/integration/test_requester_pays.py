"""``--request-payer``: every request to a requester-pays bucket says the requester pays
(``x-amz-request-payer``, ``x-oss-request-payer``), against a fake cloud on 127.0.0.1 that
refuses requests which do not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bulkput.cli import main
from tests.fixtures.fake_cloud import LoopbackNames


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))


def _tree(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for n in range(5):
        (source / f"f{n}.txt").write_text(f"file {n}\n" * (n + 1))
    return source


def _args(cloud: Any, endpoint: str | None = None) -> list[str]:
    return [
        "--endpoint", endpoint or cloud.endpoint_url, "--region", cloud.region,
        "--access-key", "AKIDEXAMPLE", "--secret-key", "not-a-real-secret", "--quiet",
    ]  # fmt: skip


@pytest.mark.parametrize("verb", ["put", "sync"])
def test_s3_requester_pays(verb: str, fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cloud = fake_cloud(requester_pays=True)
    source = _tree(tmp_path)
    assert main([verb, str(source), "s3://bkt/rp/", "--request-payer", *_args(cloud)]) == 0, capsys.readouterr().err
    assert sorted(k for k in cloud.objects) == [f"bkt/rp/f{n}.txt" for n in range(5)]
    assert cloud.seen and all(s.headers.get("x-amz-request-payer") == "requester" for s in cloud.seen)


def test_without_the_option_a_requester_pays_bucket_refuses(
    fake_cloud: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud = fake_cloud(requester_pays=True)
    assert main(["put", str(_tree(tmp_path)), "s3://bkt/rp/", *_args(cloud)]) == 3
    assert cloud.objects == {}


def test_oss_requester_pays(
    fake_cloud: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    LoopbackNames(".aliyuncs.com").install(monkeypatch)
    cloud = fake_cloud(scheme="oss", region="cn-beijing", requester_pays=True)
    endpoint = f"http://oss-cn-beijing.aliyuncs.com:{cloud.port}"
    source = _tree(tmp_path)
    code = main(["put", str(source), "oss://bkt/rp/", "--request-payer", "requester", *_args(cloud, endpoint)])
    assert code == 0, capsys.readouterr().err
    assert len(cloud.objects) == 5
    assert all(s.headers.get("x-oss-request-payer") == "requester" for s in cloud.seen)


def test_bos_has_no_requester_pays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    names = LoopbackNames().install(monkeypatch)
    monkeypatch.setenv("BCE_ACCESS_KEY_ID", "AK")
    monkeypatch.setenv("BCE_SECRET_ACCESS_KEY", "SK")
    code = main(["put", str(_tree(tmp_path)), "bos://bkt/rp/", "--request-payer"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--request-payer" in err[0]
    assert names.asked == []
