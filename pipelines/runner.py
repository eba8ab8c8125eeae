"""One runner for ``gen scenes`` and ``gen shards``: tasks on a Dask cluster (or in this
process), a bounded window of them in flight, failures logged instead of aborting, a cluster
that lost every worker reported instead of waited on, and Ctrl-C that stops within seconds.

The pipelines say what a task is and what to do with its result; the runner owns how tasks
travel: what every task shares (the config, the source list) is scattered to the workers
once, and only ``window_per_slot`` tasks per worker are submitted at a time, so a 40,000-scene
run starts as fast and holds as little driver memory as a 40-scene one.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Iterable


class RunError(ValueError):
    """A user-facing problem with the run as asked (one line, exit status 2)."""


@dataclass
class ClusterOptions:
    scheduler: str | None = None
    workers: int | None = None  # None: fill the cores (cluster.default_layout); 0: in this process, no Dask
    threads_per_worker: int | None = None  # Cycles threads per worker process
    blender: str = "worker"  # worker: bpy imported once per worker; subprocess: one per task
    recycle_after: int = 200  # restart a worker after this many scenes (0 = never)
    max_rss_mib: float = 3072.0  # ... or once it grows past this
    retries: int = 2  # retries of a task that raised (a broken asset, say)
    stall_timeout_s: float = 600.0  # give up when the cluster has had no worker this long
    window_per_slot: int = 3  # tasks in flight per worker: enough to hide the round trip
    gpus_per_worker: int = 0  # gen scenes: each LocalCluster worker renders on its own GPUs (generator/gpus.py)

    @property
    def in_process(self) -> bool:
        return self.workers == 0 and not self.scheduler


@dataclass
class Task:
    key: str  # the Dask key (unique per run)
    items: list  # the scene or shard indices it covers (for the failure log and the bar)
    arg: object  # its own argument, after the shared ones


@dataclass
class RunResult:
    """What a run did: ``code`` is the command's exit status (0, 1 = some tasks failed,
    130 = interrupted).  ``results``: what the pipeline chose to keep per task."""
    code: int
    done: int = 0
    total: int = 0
    wall_s: float = 0.0
    failures: dict = field(default_factory=dict)
    results: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)


def config_diff(a: dict, b: dict, path: str = "") -> str | None:
    """The first dotted key whose value differs between two configs, or None."""
    for key in sorted(set(a) | set(b)):
        where = f"{path}{key}"
        if key not in a or key not in b:
            return where
        if isinstance(a[key], dict) and isinstance(b[key], dict):
            d = config_diff(a[key], b[key], where + ".")
            if d:
                return d
        elif json.dumps(a[key]) != json.dumps(b[key]):
            return where
    return None


def check_resume(stored: dict, asked: dict) -> None:
    """RunError naming the first setting of a ``--resume`` that differs from the store's.
    ``stored``/``asked``: {"config": dict, "seed": int, ...} with the same keys."""
    for key in stored:
        if key == "config":
            diff = config_diff(stored[key], asked[key])
            if diff:
                raise RunError(f"--resume: config key '{diff}' differs from the store's; "
                               "rerun with the store's settings")
        elif json.dumps(stored[key]) != json.dumps(asked[key]):
            raise RunError(f"--resume: {key} {json.dumps(asked[key])} differs from the store's "
                           f"{json.dumps(stored[key])}; rerun with the store's settings")


def failure_message(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[-1] if text else ''}"


def update_failure_log(group, failures: dict, done, tolerate: bool = False) -> str | None:
    """The store's failure log (a group attribute, driver only): entries of items now done
    go, this run's failures come in.  With ``tolerate``, a log that cannot be written (the
    disk that failed the tasks is full) returns why instead of raising."""
    log = {k: v for k, v in dict(group.attrs.get("failures", {})).items() if not done[int(k)]}
    log.update({str(i): msg for i, msg in failures.items()})
    try:
        if log or "failures" in group.attrs:
            group.attrs["failures"] = log
    except OSError as exc:
        if not tolerate:
            raise
        return exc.strerror or str(exc)
    return None


def execute(fn: Callable, tasks: Iterable[Task], shared: tuple, opts: ClusterOptions, *,
            on_result: Callable, on_failure: Callable, tick: Callable = lambda: None,
            layout: tuple[int, int] | None = None, resources: dict | None = None, local_fn: Callable | None = None,
            on_cluster: Callable = lambda: None) -> None:
    """Run ``fn(*shared, task.arg)`` for every task; ``on_result(task, result)`` or
    ``on_failure(task, message)`` (after ``opts.retries``) in the driver as each finishes;
    ``tick()`` between results (the pipelines flush batched writes there).  ``layout``:
    (worker processes, threads) of a LocalCluster; ``local_fn`` is called instead of ``fn``
    when ``opts.in_process``.  KeyboardInterrupt stops the tasks (within a few seconds) and
    propagates; a second Ctrl-C ends the process at once."""
    if opts.in_process:
        fn = local_fn or fn
        arm_ctrl_c()
        for task in tasks:
            try:
                result = fn(*shared, task.arg)
            except Exception as exc:  # noqa: BLE001 - a failed task is logged, as on Dask
                on_failure(task, failure_message(exc))
            else:
                on_result(task, result)
            tick()
        return
    from pipelines.cluster import connect, spawned_children, worker_pids

    workers, threads = layout or (opts.workers, opts.threads_per_worker)
    clusters: list = []
    arm_ctrl_c(lambda: worker_pids(clusters[0]) if clusters else spawned_children())
    with connect(opts.scheduler, workers, threads) as client:
        on_cluster()
        cluster = getattr(client, "cluster", None)
        if cluster is not None:
            clusters.append(cluster)
        # Shared data goes to the scheduler once, as a task of its own, and on to each
        # worker once (tasks depend on it).  Not scattered: scatter waits for workers,
        # and scattered data a lost worker held cannot be recomputed.
        token = uuid.uuid4().hex[:12]
        shared_f = tuple(client.submit(_identity, s, key=f"rgsd-shared-{k}-{token}", pure=False)
                         for k, s in enumerate(shared))
        _pump(client, fn, iter(tasks), shared_f, opts, on_result, on_failure, tick, resources)


def arm_ctrl_c(pids: Callable = lambda: ()) -> None:
    """The first Ctrl-C raises KeyboardInterrupt (the run stops in an orderly way, within a
    few seconds); from that moment a second one ends the process at once, taking our worker
    processes (``pids()``) with it.  :func:`disarm` restores Python's handler."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return

    def now(*_):
        from pipelines.cluster import kill_workers
        try:
            kill_workers(pids())
            from scenes.store_lock import drop_all
            drop_all()  # the store's writer lease: the next run need not wait for it to expire
        finally:
            os._exit(130)

    def first(*_):
        signal.signal(signal.SIGINT, now)
        raise KeyboardInterrupt
    signal.signal(signal.SIGINT, first)


def disarm() -> None:
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _identity(x):
    return x


def _worker_threads(client) -> int:
    """Worker threads on the cluster now (0: no workers)."""
    try:
        info = client.scheduler_info(n_workers=-1)
    except TypeError:  # older distributed: no n_workers
        info = client.scheduler_info()
    return sum(w.get("nthreads", 1) for w in info.get("workers", {}).values())


def _pump(client, fn, tasks, shared_f, opts: ClusterOptions, on_result, on_failure, tick, resources,
          poll_s: float = 0.05) -> None:
    """Keep ``window_per_slot`` tasks per worker thread in flight until ``tasks`` runs out.
    Raises RunError once the cluster has had no worker for ``opts.stall_timeout_s``."""
    from distributed import as_completed

    pending: dict = {}
    ac = as_completed()
    exhausted = False
    threads, checked = _worker_threads(client), time.monotonic()
    check_every = min(5.0, max(0.5, opts.stall_timeout_s / 2))

    resubmitted: dict[str, int] = {}

    def submit(task, key):
        f = client.submit(fn, *shared_f, task.arg, key=key, pure=False, retries=opts.retries, resources=resources)
        pending[f] = task
        ac.add(f)

    def refill():
        nonlocal exhausted
        while not exhausted and len(pending) < opts.window_per_slot * max(threads, 1):
            task = next(tasks, None)
            if task is None:
                exhausted = True
                return
            submit(task, task.key)

    workerless_since = None
    try:
        refill()
        while pending:
            batch = ac.next_batch(block=False)
            for f in batch:
                task = pending.pop(f)
                status = f.status
                if status == "error":
                    on_failure(task, failure_message(f.exception()))
                elif status == "finished":
                    on_result(task, f.result())
                else:  # cancelled or lost by the cluster (a worker died holding it): again
                    k = resubmitted[task.key] = resubmitted.get(task.key, 0) + 1
                    if k > opts.retries + 1:
                        on_failure(task, f"task {status} {k} times by the cluster")
                    else:
                        submit(task, f"{task.key}-again{k}")
                f.release()
            tick()
            now = time.monotonic()
            if now - checked > check_every:  # workers come and go on a shared cluster
                threads, checked = _worker_threads(client), now
                if threads:
                    workerless_since = None
                elif workerless_since is None:
                    workerless_since = now
                elif now - workerless_since > opts.stall_timeout_s:
                    raise RunError(f"the Dask cluster has had no workers for {opts.stall_timeout_s:.0f} s; "
                                   "finished work is saved, continue with --resume")
            if batch:
                workerless_since = None
                refill()
            else:
                time.sleep(poll_s)
    except BaseException:
        if pending:
            client.cancel(list(pending), force=True)
        raise


def interrupted_line(done: int, total: int, unit: str) -> str:
    return f"interrupted: {done}/{total} {unit} done; continue with --resume"


def print_err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
