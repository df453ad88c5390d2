"""The partitions one process runs share its loop and, per destination and credentials, one
open store (bulkput/job/worker_runtime.py): counted on the server as client connections."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bulkput.config import TransferConfig
from bulkput.errors import PartitionError
from bulkput.items import UploadItem
from bulkput.job.cluster import Partition, make_partitions, run_partition, task_spec
from bulkput.job.spec import JobSpec, StoreSettings
from bulkput.job.worker_runtime import close_worker_runtime, worker_runtime
from bulkput.remote.credential_values import Credentials
from bulkput.server.testing import ServerHandle

CONCURRENCY = 4  # pinned: a store never has more connections open than requests in flight
OTHER = Credentials("AKOTHERTENANT", "other-tenant-secret-key")


@pytest.fixture(autouse=True)
def _fresh_runtime() -> Iterator[None]:
    close_worker_runtime()  # no store left open by an earlier test
    yield
    close_worker_runtime()


def _partitions(root: Path, count: int, size: int) -> list[Partition]:
    items = []
    for i in range(count):
        path = root / f"f{i:03d}"
        path.write_bytes(f"object {i}\n".encode())
        items.append(UploadItem(path=str(path), key=f"p/f{i:03d}"))
    return list(make_partitions(items, size))


def _spec(server: ServerHandle, bucket: str, credentials: Credentials | None = None) -> JobSpec:
    store = StoreSettings(endpoint=server.endpoint_url,
                          credentials=credentials or server.credentials[0])  # fmt: skip
    return task_spec(JobSpec(f"s3://{bucket}/p/", store=store,
                             transfer=TransferConfig(concurrency=CONCURRENCY)))  # fmt: skip


@pytest.fixture
def server(bulkput_server_factory: Callable[..., ServerHandle]) -> ServerHandle:
    default = Credentials("AKLOCALTEST", "local-test-secret-key")
    return bulkput_server_factory(buckets=["b-1"], credentials=[default, OTHER])


def test_partitions_run_one_after_another_reuse_one_pool_of_connections(
    server: ServerHandle, tmp_path: Path
) -> None:
    parts = _partitions(tmp_path, 120, 40)
    spec = _spec(server, "b-1")
    for part in parts:
        outcome = run_partition(spec, part)
        assert (outcome.summary.stored, outcome.summary.failed) == (40, 0)
    for i in range(120):
        assert server.stats.puts(f"p/f{i:03d}", bucket="b-1") == 1
    # one store for the three partitions: at most CONCURRENCY connections, not 3 x that
    assert 1 <= server.stats.connections <= CONCURRENCY
    assert worker_runtime().open_stores == 1


def test_partitions_from_several_threads_share_the_loop_and_the_store(
    server: ServerHandle, tmp_path: Path
) -> None:
    parts = _partitions(tmp_path, 160, 40)
    spec = _spec(server, "b-1")
    stored: list[int] = []
    errors: list[BaseException] = []

    def run(part: Partition) -> None:
        try:
            stored.append(run_partition(spec, part).summary.stored)
        except BaseException as error:  # shown by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(part,)) for part in parts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and sorted(stored) == [40, 40, 40, 40]
    assert all(server.stats.puts(f"p/f{i:03d}", bucket="b-1") == 1 for i in range(160))
    assert worker_runtime().open_stores == 1
    assert server.stats.connections <= CONCURRENCY  # one limit for the four: one pool


def test_jobs_with_other_credentials_never_share_a_store(
    server: ServerHandle, tmp_path: Path
) -> None:
    first, second, third = _partitions(tmp_path, 30, 10)
    assert run_partition(_spec(server, "b-1"), first).summary.stored == 10
    before = server.stats.connections
    # the same endpoint and bucket, a secret the server refuses: the open store of the first
    # job (which signs with good keys) must not be used for it
    refused = replace(OTHER, secret_key="not-the-secret")
    with pytest.raises(PartitionError) as caught:
        run_partition(_spec(server, "b-1", refused), second)
    assert "not-the-secret" not in caught.value.one_line()
    assert not any(server.stats.puts(item.key, bucket="b-1") for item in second.items)
    # other good credentials: a store of their own, with connections of its own
    assert run_partition(_spec(server, "b-1", OTHER), third).summary.stored == 10
    assert worker_runtime().open_stores == 3
    assert server.stats.connections > before


def test_closing_the_runtime_closes_its_stores_and_a_later_partition_opens_anew(
    server: ServerHandle, tmp_path: Path
) -> None:
    first, second = _partitions(tmp_path, 20, 10)
    spec = _spec(server, "b-1")
    assert run_partition(spec, first).summary.stored == 10
    connections = server.stats.connections
    close_worker_runtime()
    assert worker_runtime().open_stores == 0
    assert run_partition(spec, second).summary.stored == 10
    assert server.stats.connections > connections  # the old pool was closed with its store
