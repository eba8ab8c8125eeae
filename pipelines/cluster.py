"""Dask clusters for every pipeline: a LocalCluster sized to the machine, or a given scheduler."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys

# Frames at least this heavy (pixels x samples) render faster as fewer workers with more
# Cycles threads; cheaper ones as one single-threaded worker per core.  Measured on either
# side: tiny 160x90x2 = 29 k (2x1 wins by 1.2x), small 640x360x8 = 1.8 M (1x2 wins by 1.2x).
HEAVY_FRAME = 500_000
MAX_DEFAULT_THREADS = 4


def default_layout(render_cfg: dict | None = None, cores: int | None = None, workers: int | None = None,
                   threads: int | None = None) -> tuple[int, int]:
    """(worker processes, Cycles threads per worker) filling this machine's cores, for
    whichever of the two the user left out.  Measured on 2 cores (benchmarks/RESULTS.md):
    at the tiny preset (160x90, 2 spp) 2 workers x 1 thread beat 1 x 2, because a scene's
    Python-side work (building meshes, reading passes, writing the store) is serial and a
    second process fills those gaps; at 640x360 and up that work is a small share of a scene,
    Cycles' second thread gives 1.7-2x, and 1 x 2 beats 2 x 1 by ~1.2x (two Blenders slow
    each other down) while holding one Blender's memory instead of two.  Threads are capped at
    ``MAX_DEFAULT_THREADS`` so the serial part stays small on big nodes."""
    cores = cores or len(os.sched_getaffinity(0))
    if workers and threads:
        return workers, threads
    if threads:
        return max(1, cores // threads), threads
    heavy = bool(render_cfg) and render_cfg["width"] * render_cfg["height"] * render_cfg["samples"] >= HEAVY_FRAME
    if workers:
        return workers, max(1, cores // workers) if heavy else 1
    threads = min(cores, MAX_DEFAULT_THREADS) if heavy else 1
    return max(1, cores // threads), threads


def _not_compute_failed(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Compute Failed")


def quiet_task_failures(worker=None) -> None:
    """In a LocalCluster worker: drop distributed's multi-line 'Compute Failed' log record
    (a traceback on the user's terminal per failed task).  The runners report task failures
    themselves, in one line, and keep each task's message in the store's failure log."""
    logging.getLogger("distributed.worker").addFilter(_not_compute_failed)


class ClusterError(RuntimeError):
    """A Dask cluster that cannot be reached or started (one line for the user)."""


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """Refuse a tcp:// scheduler nobody listens on at once (before anything is written);
    distributed itself retries it until its connect timeout (60 s here)."""
    import socket
    from urllib.parse import urlsplit

    if not address.startswith(("tcp://", "tls://")) and "://" in address:
        return
    u = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = u.port or 8786
    except ValueError:
        raise ClusterError(f"--scheduler {address} is not host:port") from None
    try:
        socket.create_connection((u.hostname or "", port), timeout=timeout_s).close()
    except OSError as exc:
        raise ClusterError(f"cannot connect to the Dask scheduler {address}: {exc.strerror or exc}") from None


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
        reachable(scheduler)
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ClusterError(f"cannot connect to the Dask scheduler {scheduler}: {exc}") from None
        with client:
            if not quiet:
                print(f"dask: connected to {scheduler}, dashboard {client.dashboard_link}", file=sys.stderr)
            yield client
        return
    n = workers or default_layout(threads=threads_per_worker)[0]
    import multiprocessing
    # Ctrl-C in a terminal reaches every process of its group: our workers would shut
    # themselves down (and their nannies log tracebacks and restart them) while the driver
    # stops the run.  Workers are spawned through a wrapper that ignores SIGINT, which exec
    # keeps, so the driver alone handles Ctrl-C -- from the first instant, restarts included.
    multiprocessing.set_executable(_sigint_ignoring_python())
    cluster = client = None
    try:
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               resources={"render": 1}, memory_limit=memory_limit,
                               dashboard_address="127.0.0.1:0", silence_logs=40)
        client = Client(cluster)
        _register_quiet(client)
        if not quiet:
            each = f" x {threads_per_worker} Cycles threads" if (threads_per_worker or 1) > 1 else ""
            print(f"dask: LocalCluster with {n} worker process(es){each}, dashboard {client.dashboard_link}",
                  file=sys.stderr)
        yield client
    except BaseException as exc:
        _stop_fast(cluster, client)
        if _interrupted(exc) and not isinstance(exc, KeyboardInterrupt):
            # Ctrl-C while the cluster was starting surfaces as distributed's own error
            raise KeyboardInterrupt from None
        raise
    else:
        client.close()
        cluster.close()
    finally:
        multiprocessing.set_executable(sys.executable)


def _register_quiet(client) -> None:
    from distributed.diagnostics.plugin import WorkerPlugin

    class QuietTaskFailures(WorkerPlugin):
        name = "rgsd-quiet-task-failures"

        def setup(self, worker):
            quiet_task_failures(worker)

    client.register_plugin(QuietTaskFailures())


def _sigint_ignoring_python() -> str:
    """A shell script that execs this Python with SIGINT ignored (created once per user)."""
    import hashlib
    import tempfile
    tag = hashlib.sha1(sys.executable.encode()).hexdigest()[:10]
    path = os.path.join(tempfile.gettempdir(), f"rgsd-python-nosigint-{os.getuid()}-{tag}")
    text = f"#!/bin/sh\ntrap '' INT\nexec '{sys.executable}' \"$@\"\n"
    try:
        with open(path) as f:
            if f.read() == text and os.access(path, os.X_OK):
                return path
    except OSError:
        pass
    tmp = f"{path}.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o755)
    os.replace(tmp, path)
    return path


def worker_pids(cluster) -> list[int]:
    """Process ids of a LocalCluster's worker processes (its nannies run in this process)."""
    pids = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        proc = getattr(getattr(nanny, "process", None), "process", None)
        if proc is not None and proc.pid:
            pids.append(proc.pid)
    return pids


def kill_workers(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


STOP_TIMEOUT_S = 1.0


def _stop_fast(cluster, client) -> None:
    """Tear down after Ctrl-C or an error within a second or two.  Work still running is
    lost anyway (its scenes stay not-done; chunk writes are atomic), so the workers are
    killed first rather than waited for -- a worker in a long render would hold a graceful
    close for minutes -- and the nannies' complaints about that are not the user's business."""
    from distributed.deploy.spec import SpecCluster

    logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
    if cluster is None:  # interrupted while starting: the workers spawned so far
        kill_workers(spawned_children())
        for c in list(SpecCluster._instances):  # else distributed retries closing it at exit
            if c.status.name in ("init", "starting", "failed"):
                SpecCluster._instances.discard(c)
        return
    for nanny in list(getattr(cluster, "workers", {}).values()):
        nanny.auto_restart = False
    kill_workers(worker_pids(cluster))
    with contextlib.suppress(BaseException):
        if client is not None:
            client.close(timeout=STOP_TIMEOUT_S)
    with contextlib.suppress(BaseException):
        cluster.close(timeout=STOP_TIMEOUT_S)
    # A close that timed out would be retried, without a timeout, by distributed at exit.
    SpecCluster._instances.discard(cluster)


def _interrupted(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def spawned_children() -> list[int]:
    import psutil  # distributed's own dependency
    out = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if any("spawn_main" in part for part in p.cmdline()):
                out.append(p.pid)
    return out
