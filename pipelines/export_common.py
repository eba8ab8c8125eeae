"""What every ``gen export`` command shares: choosing scenes and classes, refusing to
overwrite, writing a file atomically, and running per-scene tasks in order on Dask."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

from scenes import store as scene_store


class ExportError(ValueError):
    """A user-facing problem with the export as asked (one line)."""


def open_scenes(url: str, mode: str = "r") -> scene_store.SceneStore:
    try:
        return scene_store.open_store(url, mode=mode)
    except scene_store.StoreError as exc:
        raise ExportError(str(exc)) from None


def parse_ranges(text: str, option: str = "--scenes", limit: int | None = None, url: str = "") -> list[int]:
    """The indices ``text`` names; with ``limit``, any outside 0..limit-1 is refused before
    the list is made."""
    from pipelines.cli_checks import OutOfRange, index_ranges
    try:
        out = index_ranges(text, limit)
    except OutOfRange as exc:
        raise ExportError(f"{option}: {exc}{' of ' + url if url else ''}") from None
    except ValueError:
        raise ExportError(f"{option} expects indices like 17 or 0-999,1200, got '{text}'") from None
    if not out:
        raise ExportError(f"{option} selects no scene")
    return out


def select_scenes(st, scenes: str | None) -> tuple[list[int], int]:
    """The done scenes asked for, ascending, and how many asked-for scenes are not done."""
    done = st.done()
    if scenes is None:
        wanted = np.arange(st.n)
    else:
        wanted = np.unique(parse_ranges(scenes, limit=st.n, url=st.url))
    keep = [int(i) for i in wanted if done[i]]
    if not keep:
        raise ExportError(f"{st.url} has no finished scenes among those asked for")
    return keep, len(wanted) - len(keep)


def categories(st, classes: str | None) -> list[dict]:
    """COCO categories: id = 1 + the class's index in the store's class table (an append-only
    table, so ids never change between exports or with --classes), name = the class name.
    Default: the classes the store makes instances of (config scene.instance_classes)."""
    table = list(st.attrs["classes"])
    if classes is not None:
        names = [c.strip() for c in classes.split(",") if c.strip()]
        if not names:
            raise ExportError("--classes selects no class")
        unknown = [c for c in names if c not in table]
        if unknown:
            raise ExportError(f"--classes: '{unknown[0]}' is not a class of {st.url} "
                              f"(classes: {', '.join(table)})")
    else:
        names = st.attrs.get("config", {}).get("scene", {}).get("instance_classes") or table
    chosen = sorted({table.index(c) for c in names})
    return [{"id": c + 1, "name": table[c], "supercategory": "thing"} for c in chosen]


def check_output(path: str, overwrite: bool, what: str = "--out") -> None:
    p = Path(path)
    if p.exists() and not overwrite:
        raise ExportError(f"{path} already exists (use --overwrite to replace it)")
    if not p.parent.exists():
        raise ExportError(f"{what}: folder {p.parent} does not exist")


def check_images_dir(path: str | None, overwrite: bool) -> None:
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ExportError(f"--images-dir {path} is a file")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise ExportError(f"--images-dir {path} is not empty (use --overwrite to write into it)")


class AtomicText:
    """A text file written piece by piece under a temporary name and renamed into place on
    success (scenes.atomic.replacing), so an error, a full disk or Ctrl-C leaves no partial
    output behind."""

    def __init__(self, path: str):
        self.path = path
        self.f = None

    def __enter__(self):
        from scenes.atomic import replacing
        self._ctx = replacing(self.path)
        tmp = self._ctx.__enter__()
        try:
            self.f = open(tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
        except BaseException:
            self._ctx.__exit__(*sys.exc_info())
            raise
        return self.f

    def __exit__(self, exc_type, exc, tb):
        import contextlib
        if exc_type is None:
            try:
                self.f.flush()
                os.fsync(self.f.fileno())  # a full disk may show only here
                self.f.close()
            except OSError:
                with contextlib.suppress(OSError):
                    self.f.close()
                return self._ctx.__exit__(*sys.exc_info())
            return self._ctx.__exit__(None, None, None)
        with contextlib.suppress(OSError):
            self.f.close()
        return self._ctx.__exit__(exc_type, exc, tb)


def batches(indices: list[int], size: int) -> list[list[int]]:
    return [indices[k:k + size] for k in range(0, len(indices), size)]


def run_ordered(fn, jobs: list, *, workers: int | None, scheduler: str | None, on_result, desc: str,
                unit_count=len, window_per_worker: int = 3) -> None:
    """Run ``fn(job)`` for every job (in this process with workers=0, else on Dask with a
    bounded window of tasks in flight) and call ``on_result(job, result)`` in job order, so
    the output does not depend on the worker count.  Memory stays bounded by the window."""
    from tqdm import tqdm

    if scheduler:  # refused at once, before a progress bar shows
        from pipelines.cluster import reachable
        reachable(scheduler)
    total = sum(unit_count(j) for j in jobs)
    bar = tqdm(total=total, unit="scene", desc=desc, dynamic_ncols=True, file=sys.stderr, smoothing=0.05, leave=False)
    try:
        if workers == 0 and not scheduler:
            for job in jobs:
                on_result(job, fn(job))
                bar.update(unit_count(job))
            return
        from distributed import as_completed

        from pipelines.cluster import connect
        with connect(scheduler, workers, 1, quiet=True) as client:
            nslots = max(1, sum(client.nthreads().values()))
            window = nslots * window_per_worker
            it = iter(enumerate(jobs))
            futures: dict = {}  # key -> (job index, future)
            ready: dict[int, object] = {}  # finished, waiting for an earlier job
            ac = as_completed()

            def refill():
                # Finished-but-unwritten results count against the window too, so one slow
                # task cannot make the driver hold everything after it.
                while len(futures) + len(ready) < window:
                    nxt = next(it, None)
                    if nxt is None:
                        return
                    k, job = nxt
                    f = client.submit(fn, job, pure=False, key=f"{desc}-{k}-{os.getpid()}")
                    futures[f.key] = (k, f)
                    ac.add(f)

            refill()
            nxt_out = 0
            try:
                for f in ac:
                    k, _ = futures.pop(f.key)
                    ready[k] = f.result()
                    f.release()
                    while nxt_out in ready:
                        on_result(jobs[nxt_out], ready.pop(nxt_out))
                        bar.update(unit_count(jobs[nxt_out]))
                        nxt_out += 1
                    refill()
            except BaseException:
                client.cancel([f for _, f in futures.values()])
                raise
    finally:
        bar.close()
