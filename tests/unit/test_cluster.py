"""bulkput/job/cluster.py without a cluster: partition sizes (one test per row of the table),
partitions made on the client, and the task run in this process."""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path

import pytest

from bulkput.errors import BulkputError, ManifestError, PartitionError
from bulkput.items import Status, UploadItem
from bulkput.job.cluster import (
    PartitionSize,
    in_key_order,
    make_partitions,
    run_partition,
    task_spec,
)
from bulkput.job.spec import JobSpec, JournalSettings, StoreSettings
from bulkput.server.testing import ServerHandle

RULE = PartitionSize()


def test_size_given_is_used_as_it_is() -> None:
    assert RULE.items(given=7, total=1_000_000, threads=4) == 7


def test_size_when_the_count_is_not_known() -> None:
    assert RULE.items(given=None, total=None, threads=4) == 1000


def test_size_is_about_4_partitions_per_thread() -> None:
    assert RULE.items(given=None, total=12_000, threads=2) == 1500  # 8 partitions


def test_size_is_at_least_the_smallest_a_small_job_is_not_cut_into_tiny_partitions() -> None:
    assert RULE.items(given=None, total=2000, threads=2) == 1000  # 2 partitions, not 16


def test_size_is_at_most_the_largest_a_big_job_is_hundreds_of_partitions() -> None:
    assert RULE.items(given=None, total=1_000_000, threads=8) == 2000  # 500 partitions


def test_partitions_hold_absolute_paths_and_the_folders_the_client_sees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    errors: list[BulkputError] = []
    bad = ManifestError("not JSON", line=2)
    entries = [UploadItem(path="a/1", key="k1"), bad, UploadItem(path="a/2", key="k2"),
               UploadItem(path="gone/3", key="k3")]  # fmt: skip
    parts = list(make_partitions(in_key_order(entries, errors.append), 2))
    assert errors == [bad]
    assert [p.index for p in parts] == [0, 1]
    assert [i.path for i in parts[0].items] == [str(tmp_path / "a/1"), str(tmp_path / "a/2")]
    assert parts[0].folders == (str(tmp_path / "a"),)
    assert parts[1].folders == ()  # the client does not see gone/: that object fails alone


def test_items_in_key_order_stream_and_the_rest_is_sorted_from_the_first_out_of_order() -> None:
    errors: list[BulkputError] = []
    bad = ManifestError("not JSON", line=4)
    entries = [UploadItem(path="/x", key=k) for k in ("a", "c", "b")]
    entries += [bad, *(UploadItem(path="/x", key=k) for k in ("e", "d", "b"))]
    ordered = in_key_order(entries, errors.append)
    assert [next(ordered).key, next(ordered).key] == ["a", "c"]  # streamed: nothing read ahead
    assert errors == []
    assert [item.key for item in ordered] == ["b", "b", "d", "e"]  # the rest, sorted
    assert errors == [bad]


def test_a_partition_error_keeps_its_cause_host_and_folder_through_pickle() -> None:
    error = PartitionError("partition 3: no credentials", host="w1", cwd="/srv")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, PartitionError)
    assert copy.one_line() == "partition 3: no credentials (on worker w1, working directory /srv)"
    assert copy.exit_code == 3


def _spec(server: ServerHandle, bucket: str) -> JobSpec:
    return JobSpec(f"s3://{bucket}/p/", store=StoreSettings(endpoint=server.endpoint_url,
                                                            credentials=server.credentials[0]))


def test_the_task_raises_naming_host_and_folder_when_it_cannot_see_the_source(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_bytes(b"x")
    parts = list(make_partitions([UploadItem(path=str(tmp_path / "data" / "f"), key="p/f")], 10))
    (tmp_path / "data" / "f").unlink()
    (tmp_path / "data").rmdir()  # gone on "the worker"
    with pytest.raises(PartitionError) as caught:
        run_partition(task_spec(_spec(bulkput_server, bulkput_bucket)), parts[0])
    assert caught.value.host == socket.gethostname() and caught.value.cwd == os.getcwd()
    assert f"cannot read source folder {tmp_path / 'data'}: No such file" in caught.value.one_line()
    assert bulkput_server.stats.puts("p/f", bucket=bulkput_bucket) == 0


def test_the_task_returns_counts_and_failed_objects_and_resumes_from_the_store(
    tmp_path: Path, bulkput_server: ServerHandle, bulkput_bucket: str
) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode() * 10)
    items = [UploadItem(path=str(tmp_path / n), key=f"p/{n}") for n in ("b", "a", "missing")]
    [part] = make_partitions(items, 10)
    spec = task_spec(_spec(bulkput_server, bulkput_bucket))
    assert spec.resume_from_store and spec.remote
    assert spec.journal == JournalSettings() and spec.shard is None
    first = run_partition(spec, part)
    assert first.partition == 0 and first.host == socket.gethostname()
    assert (first.summary.stored, first.summary.failed) == (2, 1)
    assert [(f.key, f.status) for f in first.failures] == [("p/missing", Status.FAILED)]
    assert "missing" in (first.failures[0].message or "")
    again = run_partition(spec, part)  # a partition run again sends nothing the store has
    assert (again.summary.stored, again.summary.skipped_in_store) == (0, 2)
    assert bulkput_server.stats.puts("p/a", bucket=bulkput_bucket) == 1


class _FailedFuture:
    """What the client sees of a task Dask itself gave up on (not a bulkput error)."""

    status = "error"

    def exception(self) -> BaseException:
        return RuntimeError("Error during deserialization of the task graph.\nFor more, see\n  docs")


def test_a_partition_dask_gave_up_on_is_one_line_naming_it() -> None:
    from bulkput.job.cluster import ClusterResult, _merge
    from bulkput.job.summary import JobSummary

    result = ClusterResult(summary=JobSummary())
    assert _merge(result, _FailedFuture(), 7) is None  # type: ignore[arg-type]
    [failure] = result.failed_partitions
    assert failure.index == 7
    assert failure.cause == ("partition 7: RuntimeError: Error during deserialization of the task "
                             "graph. For more, see docs")  # fmt: skip
