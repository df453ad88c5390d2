"""bulkput/local/keys.py: one test per row of its tables, and the keys ``put`` makes."""

from __future__ import annotations

import pytest

from bulkput.job.spec import PutSource
from bulkput.local.keys import common_folder, file_key, manifest_key
from bulkput.local.manifest import read_manifest
from bulkput.remote.target import Target


@pytest.mark.parametrize(
    ("prefix", "only_file", "key"),
    [
        ("", True, "meta.json"),
        ("a/", True, "a/meta.json"),
        ("r.json", True, "r.json"),
        ("a", False, "a/meta.json"),
    ],
)
def test_file_key_table(prefix, only_file, key):
    assert file_key(prefix, "meta.json", only_file) == key


@pytest.mark.parametrize(
    ("path", "folder", "key"),
    [
        ("sub/a.txt", None, "sub/a.txt"),
        ("./sub/a.txt", None, "sub/a.txt"),
        ("/data/sub/p3.parquet", "/data", "sub/p3.parquet"),
        ("/data/p3.parquet", "/data/", "p3.parquet"),
        ("/other/x", "/data", None),
        ("/data", "/data", None),
        ("sub/", None, None),
    ],
)
def test_manifest_key_table(path, folder, key):
    assert manifest_key(path, folder) == key


def test_common_folder_folds_one_path_at_a_time():
    folder = common_folder(None, "/data/a/x")
    assert folder == "/data/a"
    assert common_folder(folder, "/data/b/y") == "/data"


def test_put_of_one_file_to_a_dest_without_slash_stores_that_exact_key(tmp_path):
    (tmp_path / "meta.json").write_text("{}")
    source = PutSource(paths=(str(tmp_path / "meta.json"),))
    items = list(source.items(Target.parse("s3://photos/renamed.json")))
    assert [item.key for item in items] == ["renamed.json"]
    items = list(source.items(Target.parse("s3://photos/dir/")))
    assert [item.key for item in items] == ["dir/meta.json"]


def test_manifest_of_absolute_paths_gives_keys_relative_to_their_common_folder(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("/data/sub/p3.parquet\n/data/other/p4.parquet\n")
    keys = [item.key for item in read_manifest(str(manifest), "shards")]
    assert keys == ["shards/sub/p3.parquet", "shards/other/p4.parquet"]


def test_manifest_from_stdin_of_absolute_paths_is_relative_to_the_common_folder(monkeypatch):
    import io
    import sys

    class _Stdin:
        buffer = io.BytesIO(b"/data/sub/p3.parquet\n/data/sub/deep/p5.parquet\n")

    monkeypatch.setattr(sys, "stdin", _Stdin())
    keys = [item.key for item in read_manifest("-", "")]
    assert keys == ["p3.parquet", "deep/p5.parquet"]


def test_put_manifest_base_makes_keys_relative_to_it(tmp_path):
    """``put --manifest FILE --base DIR``: the flag reaches the manifest reader."""
    import argparse

    from bulkput.commands import put

    manifest = tmp_path / "list.txt"
    manifest.write_text("/data/sub/p3.parquet\n")
    parser = argparse.ArgumentParser()
    put.add_parser(parser.add_subparsers())
    args = parser.parse_args(["put", "--manifest", str(manifest), "--base", "/data/sub",
                              "--no-journal", "s3://photos/m/"])  # fmt: skip
    _spec, source = put.spec_from_args(args)
    assert [item.key for item in source.items(Target.parse("s3://photos/m/"))] == ["m/p3.parquet"]


def test_a_source_is_made_absolute_where_it_is_described_and_keeps_its_keys(
    tmp_path, monkeypatch
):
    from bulkput.job.spec import JournalSettings

    (tmp_path / "photos" / "a").mkdir(parents=True)
    (tmp_path / "photos" / "a" / "x.jpg").write_text("x")
    (tmp_path / "meta.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    source = PutSource(paths=("photos", "meta.json"))
    assert source.paths == (str(tmp_path / "photos"), str(tmp_path / "meta.json"))
    items = list(source.items(Target.parse("s3://photos/p/")))
    assert sorted((item.key, item.path) for item in items) == [
        ("p/a/x.jpg", str(tmp_path / "photos" / "a" / "x.jpg")),
        ("p/meta.json", str(tmp_path / "meta.json")),
    ]
    listed = PutSource(manifest="lists/m.csv", base="data")
    assert (listed.manifest, listed.base) == (str(tmp_path / "lists/m.csv"), str(tmp_path / "data"))
    assert PutSource(manifest="-").manifest == "-"  # standard input stays where it is
    assert JournalSettings(state_dir="state").state_dir == str(tmp_path / "state")
