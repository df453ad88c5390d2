"""Dask worker set-up for bulkput: ``dask worker SCHEDULER --preload bulkput.cluster``.

At the worker's start it imports what a partition task runs (bulkput's job and transport
layers, aiohttp: ~0.15 s of CPU a fresh worker process would otherwise spend in its first
task, inside the first job's time) and starts the process's loop thread
(:mod:`bulkput.job.worker_runtime`); when the worker closes, it closes the stores its
partitions kept open. Without the preload a worker works the same: its first partition pays
the imports, and the stores close at the process's exit.

The jobs themselves are submitted by the client (``bulkput put --dask``,
:func:`bulkput.job.cluster.run_partitions`).
"""

from __future__ import annotations

import importlib

# What a partition task imports, in the order it does.
PARTITION_MODULES = (
    "bulkput.job.cluster",
    "bulkput.job.run",
    "bulkput.job.checks",
    "bulkput.job.store_resume",
    "bulkput.job.engine",
    "bulkput.job.multipart",
    "bulkput.remote.client",
)


def dask_setup(worker: object) -> None:
    """Dask's preload hook, at the worker's start."""
    from bulkput.job.worker_runtime import worker_runtime

    for name in PARTITION_MODULES:
        importlib.import_module(name)
    worker_runtime().start()


def dask_teardown(worker: object) -> None:
    """Dask's preload hook, when the worker closes."""
    from bulkput.job.worker_runtime import close_worker_runtime

    close_worker_runtime()
