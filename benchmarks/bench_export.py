"""Export throughput and memory (issue 10): ``gen export kins`` / ``coco`` / ``instaorder`` /
``region-support`` on fake 1280x720 scenes written through the scene store module.

    PYTHONPATH=$PWD python benchmarks/bench_export.py --scenes 40 --memory-scenes 1000

Throughput: scenes/s of the KINS export (no images, then with PNG images) in this process
(--workers 0) and on a Dask LocalCluster of 1 and 2 workers; InstaOrder; region support.
Memory: the driver's RSS sampled every 0.25 s through a --workers 0 KINS export of
--memory-scenes scenes (flat = the JSON is streamed, never held).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

H, W, KMAX, K = 720, 1280, 64, 24


def fake_scenes(seed: int, n_distinct: int = 4) -> list[dict]:
    """A few distinct street-like scenes: road and sky, K box-shaped instances in depth
    order (nearer painted last), amodal = box, modal = what stays visible."""
    from scenes.annotations import boxes, depth_order, occlusion_matrix, pad_instances, pad_pairs
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_distinct):
        yy = np.arange(H)[:, None]
        depth = np.where(yy > 300, 2 + 80 * (1 - (yy - 300) / 420) ** 2, np.inf).astype(np.float32).repeat(W, 1)
        semantic = np.where(np.isfinite(depth), 2, 1).astype(np.uint8)
        z = np.sort(rng.uniform(4, 60, K))[::-1].astype(np.float32)
        amodal = np.zeros((K, H, W), bool)
        instance = np.zeros((H, W), np.uint16)
        cls = rng.choice([13, 14, 15, 16, 17], K).astype(np.uint8)
        for j in range(K):  # farthest first
            h = int(np.clip(4000 / z[j], 8, 400))
            w = int(h * (0.5 if cls[j] == 17 else 2.0))
            y0 = int(np.clip(300 + 3000 / z[j] - h, 0, H - 1))
            x0 = int(rng.integers(0, W - 8))
            amodal[j, y0:y0 + h, x0:x0 + w] = True
            instance[amodal[j]] = j + 1
            semantic[amodal[j]] = cls[j]
            depth[amodal[j]] = z[j]
        modal = instance[None] == np.arange(1, K + 1, dtype=np.uint16)[:, None, None]
        mar, aar = modal.reshape(K, -1).sum(1), amodal.reshape(K, -1).sum(1)
        box3d = np.zeros((K, 7), np.float32)
        box3d[:, 2] = z

        out.append({
            "rgb": rng.integers(0, 255, (H, W, 3), dtype=np.uint8) // 8 * 8, "depth": depth, "instance": instance,
            "semantic": semantic, "normals": np.zeros((H, W, 3), np.float16), "num_instances": np.uint16(K),
            "amodal": pad_instances(amodal, KMAX, False), "instance_class": pad_instances(cls, KMAX, 0),
            "instance_object": pad_instances(np.arange(K, dtype=np.int32), KMAX, -1),
            "modal_box": pad_instances(boxes(modal), KMAX, -1),
            "amodal_box": pad_instances(boxes(amodal), KMAX, -1), "modal_area": pad_instances(mar.astype(np.int32), KMAX, 0),
            "amodal_area": pad_instances(aar.astype(np.int32), KMAX, 0),
            "visible_fraction": pad_instances((mar / aar).astype(np.float32), KMAX, 0.0),
            "distance": pad_instances(z, KMAX, np.nan),
            "box3d": pad_instances(box3d, KMAX, np.nan), "occlusion": pad_pairs(occlusion_matrix(instance, amodal), KMAX, False),
            "depth_order": pad_pairs(depth_order(z), KMAX, 0)})
    return out


def make_store(url: str, n: int) -> float:
    from scenes import store as scene_store
    from scenes.config import build_config
    cfg = build_config("default", [], [f"scene.max_instances={KMAX}"])
    st = scene_store.create(url, n, cfg, seed=0, intrinsics={"fx": 1000.0, "fy": 1000.0, "cx": W / 2, "cy": H / 2},
                            overwrite=True)
    scenes = fake_scenes(0)
    t0 = time.perf_counter()
    for i in range(n):
        st.write_scene(i, scenes[i % len(scenes)], "{}")
    return time.perf_counter() - t0


class RSS:
    def __init__(self, every=0.25):
        self.samples, self.every, self._stop = [], every, threading.Event()

    def _run(self):
        import psutil
        p = psutil.Process()
        t0 = time.perf_counter()
        while not self._stop.is_set():
            self.samples.append((time.perf_counter() - t0, p.memory_info().rss / 2**20))
            self._stop.wait(self.every)

    def __enter__(self):
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()
        return self

    def __exit__(self, *a):
        self._stop.set()
        self.t.join()


@contextlib.contextmanager
def cluster(workers: int):
    if workers == 0:
        yield None
        return
    from distributed import LocalCluster
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as c:
        yield c.scheduler_address


def timed(fn, n) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--memory-scenes", type=int, default=1000)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    from composer.region_support import region_support
    from pipelines import export_coco, export_order, region_support_run
    sc = fake_scenes(0, 1)[0]
    times, cpu = [], []
    for _ in range(5):
        t0, c0 = time.perf_counter(), time.process_time()
        _, ids = region_support(sc["semantic"], sc["depth"])
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    # CPU time as well as wall time: on a shared machine the wall time mostly measures the queue.
    print(f"region_support() on one {W}x{H} scene ({ids.max()} regions): wall {min(times) * 1e3:.0f} ms min / "
          f"{np.median(times) * 1e3:.0f} ms median of 5; CPU {min(cpu) * 1e3:.0f} ms min", flush=True)
    root = args.dir or tempfile.mkdtemp(prefix="bench_export_")
    url = os.path.join(root, "s.zarr")
    w = make_store(url, args.scenes)
    print(f"wrote {args.scenes} fake {W}x{H} scenes ({K} instances each) in {w:.1f} s", flush=True)
    out = os.path.join(root, "k.json")
    for workers in (0, 1, 2):
        # Dask runs go to a cluster started beforehand, so the figures are steady-state
        # rates, not LocalCluster start-up (a few seconds here).
        with cluster(workers) as address:
            for images in (False, True):
                img = os.path.join(root, "img") if images else None
                shutil.rmtree(os.path.join(root, "img"), ignore_errors=True)
                t0 = time.perf_counter()
                export_coco.export(url, out, kind="kins", workers=workers, scheduler=address, overwrite=True,
                                   images_dir=img)
                dt = time.perf_counter() - t0
                print(f"kins export, workers={workers}, images={'png' if images else 'no'}: "
                      f"{args.scenes / dt:.2f} scenes/s", flush=True)
            if workers != 1:
                t0 = time.perf_counter()
                region_support_run.run(url, workers=workers, scheduler=address, overwrite=True)
                print(f"region-support, workers={workers}: {args.scenes / (time.perf_counter() - t0):.2f} scenes/s",
                      flush=True)
    print(f"json size: {os.path.getsize(out) / args.scenes / 1024:.0f} KiB per scene", flush=True)
    r = timed(lambda: export_order.export(url, os.path.join(root, "o.json"), overwrite=True), args.scenes)
    print(f"instaorder export: {r:.1f} scenes/s", flush=True)

    if args.memory_scenes:
        big = os.path.join(root, "big.zarr")
        w = make_store(big, args.memory_scenes)
        print(f"wrote {args.memory_scenes} scenes in {w:.0f} s", flush=True)
        with RSS() as rss:
            t0 = time.perf_counter()
            export_coco.export(big, out, kind="kins", workers=0, overwrite=True)
            dt = time.perf_counter() - t0
        s = np.array(rss.samples)
        q = [s[int(len(s) * f) - 1, 1] for f in (0.1, 0.25, 0.5, 0.75, 1.0)]
        print(f"memory over {args.memory_scenes} scenes ({args.memory_scenes / dt:.2f} scenes/s): RSS MiB at "
              f"10/25/50/75/100 % of the run: {' / '.join(f'{v:.0f}' for v in q)}; max {s[:, 1].max():.0f}; "
              f"JSON {os.path.getsize(out) / 2**20:.0f} MiB", flush=True)
    if not args.dir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
