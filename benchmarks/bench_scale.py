"""`gen scenes --n 40000` against `--n 40`: store metadata, task submission and stopping.

    python benchmarks/bench_scale.py                # local disk and the loopback S3 server
    python benchmarks/bench_scale.py --skip-s3

No Blender: scenes come from tests/fake_scenes.py, through the ``make`` hook of
pipelines/scenes_run.run (the task writes its per-pixel arrays and returns its tables as a
real one does, it just does not render).  Steps:

1. a 40,000-scene store (tiny preset: 160x90, 64 instance slots), ``--done`` scenes written
   through the store module; ``gen info`` on it (a subprocess: the whole command) and the
   start of ``--resume`` (opening the store, checking the config, reading ``done``), each
   timed, and on S3 the requests the server saw;
2. objects (files / S3 keys) per finished scene;
3. runs on a LocalCluster (``--workers``) with ``--n 40`` and ``--n 40000``: seconds from
   the command's start to the first task running, the driver's RSS once 40 scenes are done
   (and at ``--rss-at`` done for the big run), and Ctrl-C: seconds from SIGINT to exit.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import sys
from pipelines import scenes_run
from scenes.config import build_config
from tests.fake_scenes import MAKE
url, n, mode, workers = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cfg = build_config("tiny")
r = scenes_run.run(url, n=n, cfg=cfg, seed=0, resume=mode == "resume", overwrite=mode == "overwrite",
                   cluster=scenes_run.ClusterOptions(workers=workers), make=MAKE)
sys.exit(r.code)
"""


def _restore_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def loopback_s3():
    """moto's S3 on 127.0.0.1 behind a counting WSGI wrapper: (endpoint, counter, stop)."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server
    app = DomainDispatcherApplication(create_backend_app)
    counter: Counter = Counter()

    def counting(environ, start_response):
        counter[environ["REQUEST_METHOD"]] += 1
        return app(environ, start_response)

    import logging
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = make_server("127.0.0.1", 0, counting, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", counter, server.shutdown


def make_store(url: str, n: int, done: int) -> float:
    from scenes.config import build_config
    from tests.fake_scenes import fake_store
    t0 = time.perf_counter()
    fake_store(url, n, range(done), build_config("tiny"))
    return time.perf_counter() - t0


def time_info(url: str, env: dict) -> float:
    t0 = time.perf_counter()
    r = subprocess.run([str(Path(sys.executable).with_name("gen")), "info", url], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return time.perf_counter() - t0


def time_version(env: dict) -> float:
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("gen")), "--version"], env=env, capture_output=True)
    return time.perf_counter() - t0


def time_resume_start(url: str, n: int) -> float:
    from pipelines import scenes_run
    from scenes.config import build_config
    t0 = time.perf_counter()
    _, _, _, todo, _ = scenes_run.open_run(url, n, build_config("tiny"), 0, resume=True)
    assert len(todo)
    return time.perf_counter() - t0


def timed_run(url: str, n: int, mode: str, workers: int, env: dict, tmp: str, stop_at: int | None,
              rss_at: list[int]) -> dict:
    """Start the command, wait for the first task, sample the driver's RSS, then either let it
    finish or send SIGINT once ``stop_at`` scenes are done."""
    from scenes import store as scene_store
    mark = os.path.join(tmp, f"mark-{n}-{mode}")
    if os.path.exists(mark):
        os.unlink(mark)
    env = dict(env, RGSD_FAKE_MARK=mark)
    t0 = time.time()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, url, str(n), mode, str(workers)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_restore_sigint)
    out: dict = {"rss": {}}
    while not os.path.exists(mark) and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(0.05)
    out["first_task_s"] = float(Path(mark).read_text()) - t0
    want = sorted(rss_at)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, rss_mib(proc.pid))
        try:
            d = int(scene_store.open_store(url).done().sum()) if want or stop_at else 0
        except scene_store.StoreError:
            d = 0
        while want and d >= want[0]:
            out["rss"][want.pop(0)] = max(peak, rss_mib(proc.pid))
        if stop_at and d >= stop_at and not want:
            t1 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=60)
            out["stop_s"] = time.monotonic() - t1
            out["stop_line"] = [x for x in err.splitlines() if "interrupted" in x]
            out["traceback"] = "Traceback" in err
            break
        time.sleep(0.1)
    else:
        _, err = proc.communicate()
    out["code"] = proc.returncode
    out["peak_rss"] = peak
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40000)
    ap.add_argument("--done", type=int, default=300)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rss-at", type=int, default=300, help="done scenes at which the big run's RSS is read again")
    ap.add_argument("--skip-s3", action="store_true")
    args = ap.parse_args()
    from scenes import store as scene_store

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    rows = []
    with tempfile.TemporaryDirectory(prefix="rgsd-scale-") as tmp:
        big = os.path.join(tmp, "big.zarr")
        made = make_store(big, args.n, args.done)
        files = sum(len(f) for _, _, f in os.walk(big))
        meta = sum(1 for _ in Path(big).glob("*/zarr.json")) + 1
        rows.append(f"local store: {args.n} scenes, {args.done} done, written in {made:.1f} s")
        rows.append(f"  objects per finished scene: {(files - meta) / args.done:.2f} "
                    f"({files} files; per-pixel arrays: {len(scene_store.PIXEL_ARRAYS)})")
        info = min(time_info(big, env) for _ in range(2))
        base = min(time_version(env) for _ in range(2))
        from pipelines import inspect_store
        t0 = time.perf_counter()
        inspect_store.info_text(big)
        inner = time.perf_counter() - t0
        rows.append(f"  gen info (whole command, best of 2): {info:.2f} s; of which reading the store "
                    f"{inner:.3f} s (gen --version alone: {base:.2f} s)")
        res = min(time_resume_start(big, args.n) for _ in range(2))
        rows.append(f"  start of --resume (open, check, read done; best of 2): {res:.3f} s")

        # Alternating, best of 2: cluster start-up alone varies by seconds on a loaded machine.
        smalls, larges = [], []
        for k in range(2):
            smalls.append(timed_run(os.path.join(tmp, f"small{k}.zarr"), 40, "new", args.workers, env, tmp, None,
                                    [40]))
            larges.append(timed_run(os.path.join(tmp, f"large{k}.zarr"), args.n, "new", args.workers, env, tmp,
                                    args.rss_at, [40, args.rss_at]))
            shutil.rmtree(os.path.join(tmp, f"large{k}.zarr"), ignore_errors=True)
        small = min(smalls, key=lambda r: r["first_task_s"])
        large = min(larges, key=lambda r: r["first_task_s"])
        resumed = timed_run(big, args.n, "resume", args.workers, env, tmp, args.done + 40, [args.done + 40])
        rows.append(f"runs on a LocalCluster, {args.workers} workers, fake scenes (no rendering):")
        extra = large["first_task_s"] - small["first_task_s"]
        rows.append(f"  command start -> first task running: --n 40 {small['first_task_s']:.2f} s, "
                    f"--n {args.n} {large['first_task_s']:.2f} s ({extra:+.2f}), "
                    f"--resume of the {args.n}-scene store {resumed['first_task_s']:.2f} s")
        r40, rbig = small["rss"].get(40, small["peak_rss"]), large["rss"].get(40)
        rows.append(f"  driver RSS at 40 done: --n 40 {r40:.0f} MiB, --n {args.n} {rbig:.0f} MiB "
                    f"({rbig / r40:.2f}x); at {args.rss_at} done {large['rss'].get(args.rss_at, float('nan')):.0f} MiB")
        stops = [r["stop_s"] for r in larges + [resumed]]
        rows.append(f"  Ctrl-C to exit: {', '.join(f'{x:.2f}' for x in stops)} s (--n {args.n} x2, --resume); "
                    f"exit {large['code']}, traceback: {any(r['traceback'] for r in larges + [resumed])}, "
                    f"line: {large['stop_line']}")
        if not args.skip_s3:
            rows += s3_part(args, env)
    print("\n".join(rows))


def s3_part(args, env) -> list[str]:
    import boto3
    import fsspec.config
    endpoint, counter, stop = loopback_s3()
    try:
        creds = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "FSSPEC_S3_ENDPOINT_URL": endpoint}
        os.environ.update(creds)
        env = dict(env, **creds)
        fsspec.config.conf["s3"] = {"endpoint_url": endpoint}
        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="rgsd")
        url = "s3://rgsd/big.zarr"
        made = make_store(url, args.n, args.done)
        keys = sum(p["KeyCount"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="rgsd"))
        rows = [f"loopback S3 (moto on 127.0.0.1): {args.n} scenes, {args.done} done, written in {made:.1f} s",
                f"  objects per finished scene: {keys / args.done:.2f} ({keys} keys, metadata included)"]
        counter.clear()
        t = time_info(url, env)
        rows.append(f"  gen info: {t:.2f} s, {sum(counter.values())} requests ({dict(counter)})")
        counter.clear()
        t = time_resume_start(url, args.n)
        rows.append(f"  start of --resume: {t:.3f} s, {sum(counter.values())} requests ({dict(counter)})")
        return rows
    finally:
        stop()


if __name__ == "__main__":
    main()
