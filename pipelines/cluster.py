"""Dask clusters for every pipeline: a LocalCluster sized to the machine, or a given scheduler."""
from __future__ import annotations

import contextlib
import os
import sys


def default_layout(cores: int | None = None) -> tuple[int, int]:
    """(worker processes, Cycles threads per worker) for this machine: one worker per core,
    one Cycles thread each.  Measured on 2 cores (benchmarks/RESULTS.md): at the tiny preset
    2x1 renders 1.27x faster than 1x2, because a scene's Python-side work (building meshes,
    reading passes, writing the store) is serial and a second process fills those gaps; at
    1280x720 the two splits are within noise (0.024 vs 0.026 scenes/s).  Separate processes
    also keep a crash or a leak to one worker."""
    cores = cores or len(os.sched_getaffinity(0))
    return cores, 1


@contextlib.contextmanager
def connect(scheduler: str | None = None, workers: int | None = None, threads_per_worker: int | None = None,
            memory_limit: str | None = "auto", quiet: bool = False):
    """Yield a distributed Client; a LocalCluster when no scheduler address is given."""
    import dask
    from distributed import Client, LocalCluster

    # Renders hold the GIL rarely but long; keep the scheduler from declaring workers dead.
    # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which hands every freed patch
    # buffer back to the OS and page-faults it in again: it cost shard building ~35 %.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ"))
    environ["MALLOC_TRIM_THRESHOLD_"] = 256 * 2**20
    # Setting any of these fixes glibc's otherwise adaptive mmap threshold at 128 KiB, so
    # every patch and source array would be mmap'd and page-faulted afresh; serve blocks
    # up to 32 MiB (glibc's maximum) from the reused heap instead.
    environ["MALLOC_MMAP_THRESHOLD_"] = 32 * 2**20
    dask.config.set({"distributed.nanny.pre-spawn-environ": environ})
    dask.config.set({"distributed.scheduler.worker-ttl": "30 minutes",
                     "distributed.comm.timeouts.connect": "60s",
                     "distributed.worker.daemon": False,
                     "distributed.logging.distributed": "error"})
    if scheduler:
        with Client(scheduler) as client:
            if not quiet:
                print(f"dask: connected to {scheduler}, dashboard {client.dashboard_link}", file=sys.stderr)
            yield client
        return
    n, _ = default_layout()
    n = workers or n
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                           resources={"render": 1}, memory_limit=memory_limit,
                           dashboard_address="127.0.0.1:0", silence_logs=40)
    try:
        with Client(cluster) as client:
            if not quiet:
                print(f"dask: LocalCluster with {n} worker process(es), dashboard {client.dashboard_link}",
                      file=sys.stderr)
            yield client
    finally:
        cluster.close()
