"""bulkput.job.counting: the totals of a put job, counted by a second read of its source."""

from __future__ import annotations

from pathlib import Path

from bulkput.items import UploadItem
from bulkput.job.counting import SourceCount, SourceCounter
from bulkput.job.shard import Shard
from bulkput.job.spec import JobSpec, PutSource
from bulkput.local.filters import Filter


def make_tree(root: Path) -> None:
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(b"x" * 10)
    (root / "b.txt").write_bytes(b"x" * 20)
    (root / "sub" / "c.jpg").write_bytes(b"x" * 30)


def count_of(spec: JobSpec, source: PutSource) -> SourceCount:
    return SourceCounter.for_put(spec, source).run()


def test_a_walk_counts_what_the_filters_let_through(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    source = PutSource(paths=(str(tmp_path / "src"),))
    everything = count_of(JobSpec("s3://bkt/p/"), source)
    assert everything == SourceCount(3, 60, complete=True)
    jpgs = Filter.from_patterns([("exclude", "*"), ("include", "*.jpg")])
    assert count_of(JobSpec("s3://bkt/p/", filters=jpgs), source) == SourceCount(2, 40, complete=True)


def test_a_shard_counts_only_its_own_keys(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    source = PutSource(paths=(str(tmp_path / "src"),))
    shards = [count_of(JobSpec("s3://bkt/p/", shard=Shard(k, 2)), source) for k in (0, 1)]
    assert sum(c.objects for c in shards) == 3 and sum(c.bytes for c in shards) == 60
    # each shard counts exactly the keys the engine would upload there
    items = source.items(JobSpec("s3://bkt/p/").target)
    keys = [item.key for item in items if isinstance(item, UploadItem)]
    assert [c.objects for c in shards] == [sum(Shard(k, 2).owns(key) for key in keys) for k in (0, 1)]


def test_a_manifest_counts_its_objects_and_their_sizes(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    manifest = tmp_path / "list.txt"
    manifest.write_text(
        "# comment, not an object\n"
        f"{tmp_path}/src/a.jpg\n"
        "\n"
        f"{tmp_path}/src/sub/c.jpg\n"
        f"{tmp_path}/src/missing.bin\n",  # one error line, reported as one object, 0 bytes
        encoding="utf-8",
    )
    count = count_of(JobSpec("s3://bkt/p/"), PutSource(manifest=str(manifest)))
    assert count == SourceCount(3, 40, complete=True)


def test_standard_input_is_not_read_twice() -> None:
    counter = SourceCounter.for_put(JobSpec("s3://bkt/p/"), PutSource(manifest="-"))
    counter.start()
    assert counter.count() == SourceCount(known=False)


def test_the_count_runs_in_a_thread_and_stops_when_asked(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    source = PutSource(paths=(str(tmp_path / "src"),))
    counter = SourceCounter.for_put(JobSpec("s3://bkt/p/"), source).start()
    assert counter.wait(10) == SourceCount(3, 60, complete=True)
    stopped = SourceCounter.for_put(JobSpec("s3://bkt/p/"), source)
    stopped.stop()
    assert stopped.run() == SourceCount(0, 0, complete=False)


def test_a_sync_counts_its_walk_under_the_keys_it_plans(tmp_path: Path) -> None:
    from bulkput.job.sync.run import SyncOptions

    make_tree(tmp_path / "src")
    jpgs = Filter.from_patterns([("exclude", "*"), ("include", "*.jpg")])
    counter = SourceCounter.for_sync(str(tmp_path / "src"), "p", SyncOptions(filter=jpgs))
    assert counter.run() == SourceCount(2, 40, complete=True)
    shards = [SourceCounter.for_sync(str(tmp_path / "src"), "p", SyncOptions(shard=Shard(k, 2))).run()
              for k in (0, 1)]  # fmt: skip
    owned = [sum(Shard(k, 2).owns(f"p/{key}") for key in ("a.jpg", "b.txt", "sub/c.jpg"))
             for k in (0, 1)]  # fmt: skip
    assert [c.objects for c in shards] == owned
