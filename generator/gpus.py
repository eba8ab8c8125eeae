"""Which GPUs a render process takes (no bpy here: tested with a faked device list).

By default a process takes every GPU of the backend Cycles picks (OPTIX, CUDA, ...).  With
``gen scenes --gpus-per-worker G`` each LocalCluster worker takes its own G: worker k (its
Dask name) uses GPUs k*G .. k*G+G-1 of that backend, wrapping round when workers x G exceeds
the GPUs (then workers share).  The slot travels as ``RGSD_GPU_SLOT=k:G`` in the worker's
environment, so a Blender subprocess (``--blender subprocess``) inherits it.  On a cluster
whose scheduler hands out GPUs (SLURM, Kubernetes), leave it off and let
``CUDA_VISIBLE_DEVICES`` decide what each worker sees.
"""
from __future__ import annotations

import os

SLOT_ENV = "RGSD_GPU_SLOT"


def slot_env(worker_name, gpus_per_worker: int) -> str | None:
    """The ``RGSD_GPU_SLOT`` value of a worker named ``worker_name`` (LocalCluster names its
    workers 0, 1, ...); None for names that are no index (another cluster's workers)."""
    try:
        k = int(worker_name)
    except (TypeError, ValueError):
        return None
    return f"{k}:{gpus_per_worker}" if gpus_per_worker > 0 and k >= 0 else None


def use_flags(device_types: list[str], kind: str, slot: str | None = None) -> list[bool]:
    """Per Cycles device (``device_types``: each device's type, CPU included, in Cycles'
    order): whether to render on it with backend ``kind``.  ``slot``: "k:G" (default: the
    environment's ``RGSD_GPU_SLOT``; unset = every GPU of ``kind``)."""
    slot = os.environ.get(SLOT_ENV) if slot is None else slot
    gpus = [i for i, t in enumerate(device_types) if t == kind]
    if not slot or not gpus:
        return [t == kind for t in device_types]
    k, per = (int(v) for v in slot.split(":"))
    mine = {gpus[(k * per + j) % len(gpus)] for j in range(per)}
    return [i in mine for i in range(len(device_types))]
