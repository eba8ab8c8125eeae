"""Damage to the driver-written arrays of a scene store (``done``, ``num_instances``, the
per-instance tables, ``spec``: scenes.store.META_ARRAYS), found chunk by chunk and repaired.

One such chunk covers up to 65,536 scenes, so a flipped byte in it must not strand them:

* ``done`` is rebuilt: a scene is done when its spec is stored and every per-pixel chunk of
  it is there (the driver writes the spec after the worker wrote the pixels, and ``done``
  right after the spec); ``gen verify`` then reads those scenes' pixels as usual;
* ``num_instances`` is rebuilt from the scene's amodal masks (instances are the non-empty
  masks, packed from slot 0 -- scenes.annotations.assemble);
* every other table and ``spec`` is rewritten with fill values and the finished scenes it
  covered are marked not done, so ``gen scenes --resume`` renders exactly those again
  (rendering is deterministic: they come back as they were).

Every rewrite replaces the whole chunk, so it never reads the damaged bytes.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from scenes import safety
from scenes.store import META_ARRAYS, PER_SCENE, PIXEL_ARRAYS, SceneStore

# Repaired first: the others' repairs depend on knowing which scenes are done.
ORDER = ["done", "num_instances"] + [n for n in META_ARRAYS if n not in ("done", "num_instances")]


@dataclass(frozen=True)
class MetaDamage:
    name: str
    lo: int  # the chunk's scenes lo..hi-1
    hi: int
    reason: str

    def line(self, url: str) -> str:
        return f"{url}: array '{self.name}' chunk of scenes {self.lo}-{self.hi - 1} is damaged ({self.reason})"


def _spans(st: SceneStore, name: str, indices=None) -> list[tuple[int, int]]:
    c, n = st.array(name).chunks[0], st.n
    ks = range(math.ceil(n / c)) if indices is None else sorted({int(i) // c for i in indices})
    return [(k * c, min((k + 1) * c, n)) for k in ks]


def _undecodable(st: SceneStore, name: str, indices=None) -> list[MetaDamage]:
    a = st.array(name)
    if indices is None:
        try:
            a[:]  # the common case, an intact array, in one read
            return []
        except Exception:  # noqa: BLE001 - find which chunk below
            pass
    out = []
    for lo, hi in _spans(st, name, indices):
        try:
            a[lo:hi]
        except Exception as exc:  # noqa: BLE001 - any undecodable chunk is damage
            out.append(MetaDamage(name, lo, hi, safety.describe(exc)))
    return out


def _stored(group, asks: list[tuple[str, list]]) -> list[np.ndarray]:
    """For each (array name, rows): whether every chunk (or shard) holding each row is
    stored -- all of them in one concurrent round of existence checks."""
    from scenes.zarr_chunks import chunk_io
    checks, keys_of = [], []
    for name, rows in asks:
        a = group[name]
        grid = a.metadata.chunk_grid.chunk_shape
        rest = list(itertools.product(*[range(math.ceil(s / c)) for s, c in zip(a.shape[1:], grid[1:])]))
        keys = sorted({int(r) // grid[0] for r in rows})
        keys_of.append((grid[0], len(checks), keys, len(rest)))
        checks += [(a, (k,) + coords) for k in keys for coords in rest]
    found = chunk_io(exists=checks)[2] if checks else []
    out = []
    for (per, start, keys, m), (_, rows) in zip(keys_of, asks):
        ok = {k: all(found[start + j * m:start + (j + 1) * m]) for j, k in enumerate(keys)}
        out.append(np.array([ok[int(r) // per] for r in rows], bool))
    return out


def rebuilt_done(st: SceneStore, lo: int, hi: int) -> np.ndarray:
    """The done flags of scenes lo..hi-1 as the stored data shows them: spec and every
    per-pixel chunk present."""
    try:
        spec = st.array("spec")[lo:hi]
        done = np.array([bool(s) for s in spec], bool)
    except Exception:  # noqa: BLE001 - a damaged spec chunk: each of its scenes is unknown
        done = np.zeros(hi - lo, bool)
        for j in range(hi - lo):
            try:
                done[j] = bool(st.array("spec")[lo + j])
            except Exception:  # noqa: BLE001
                pass
    rows = np.arange(lo, hi)[done]
    if len(rows):
        keeps = _stored(st.group, [(name, rows) for name in PIXEL_ARRAYS])
        rows = rows[np.logical_and.reduce(keeps)]
    out = np.zeros(hi - lo, bool)
    out[rows - lo] = True
    return out


def instance_count(st: SceneStore, i: int) -> int | None:
    """num_instances of scene ``i`` from its amodal masks, or None when they do not show it
    (unreadable, or not packed from slot 0, or the instance map names more)."""
    try:
        amodal = np.asarray(st.array("amodal")[i])
        top = int(np.asarray(st.array("instance")[i]).max(initial=0))
    except Exception:  # noqa: BLE001 - damaged pixels: that scene is re-rendered
        return None
    used = amodal.reshape(len(amodal), -1).any(1)
    k = int(used.sum())
    return k if used[:k].all() and top <= k else None


def find(st: SceneStore, indices=None, missing: bool = True) -> list[MetaDamage]:
    """The damaged chunks of the driver-written arrays (only those covering ``indices`` if
    given): undecodable ones, and with ``missing`` -- in stores that write every chunk --
    missing ones that cover a finished scene."""
    bad = [d for name in ORDER for d in _undecodable(st, name, indices)]
    if not missing or not safety.checked(st.group):
        return bad
    try:
        done = st.array("done")[:]
    except Exception:  # noqa: BLE001 - its damaged chunks are in ``bad``; estimate those
        done = np.concatenate([rebuilt_done(st, lo, hi) for lo, hi in _spans(st, "done")])
    seen = {(d.name, d.lo) for d in bad}
    # A missing chunk of done reads as "nothing done": damage when the data show scenes done.
    spans = [("done", lo, hi) for lo, hi in _spans(st, "done", indices) if ("done", lo) not in seen]
    for (_, lo, hi), ok in zip(spans, _stored(st.group, [("done", [lo]) for _, lo, _ in spans])):
        if not ok[0] and rebuilt_done(st, lo, hi).any():
            bad.append(MetaDamage("done", lo, hi, "no stored chunk although scenes of it are finished"))
            seen.add(("done", lo))
            done[lo:hi] = rebuilt_done(st, lo, hi)
    spans = [(name, lo, hi) for name in ORDER for lo, hi in _spans(st, name, indices)
             if (name, lo) not in seen and done[lo:hi].any()]
    stored = _stored(st.group, [(name, [lo]) for name, lo, _ in spans])
    bad += [MetaDamage(name, lo, hi, "no stored chunk although its scenes are done")
            for (name, lo, hi), ok in zip(spans, stored) if not ok[0]]
    return sorted(bad, key=lambda d: (ORDER.index(d.name), d.lo))


def _rewrite(st: SceneStore, name: str, lo: int, hi: int, values) -> None:
    a = st.array(name)
    fill = PER_SCENE[name][2]
    if values is None:
        values = np.full((hi - lo,) + tuple(a.shape[1:]), fill, dtype=object if name == "spec" else a.dtype)
    st._writable(name)[lo:hi] = values  # the whole chunk: the damaged bytes are never read


def repair(st: SceneStore, damage: list[MetaDamage]) -> tuple[list[str], list[int]]:
    """Rewrite every damaged chunk (``st`` opened "r+"); returns (one line per repair, the
    scenes marked not done so that --resume renders them again)."""
    notes: list[str] = []
    redo: set[int] = set()
    for d in sorted(damage, key=lambda d: ORDER.index(d.name)):
        span = f"scenes {d.lo}-{d.hi - 1}"
        if d.name == "done":
            flags = rebuilt_done(st, d.lo, d.hi)
            _rewrite(st, "done", d.lo, d.hi, flags)
            notes.append(f"'done' of {span} rebuilt from the stored specs and per-pixel chunks "
                         f"({int(flags.sum())} done)")
            continue
        done = np.flatnonzero(st.array("done")[d.lo:d.hi]) + d.lo
        if d.name == "num_instances":
            values = np.zeros(d.hi - d.lo, np.uint16)
            lost = []
            for i in done:
                k = instance_count(st, int(i))
                if k is None:
                    lost.append(int(i))
                else:
                    values[i - d.lo] = k
            _rewrite(st, d.name, d.lo, d.hi, values)
            redo.update(lost)
            notes.append(f"'num_instances' of {span} rebuilt from the amodal masks"
                         + (f" ({len(lost)} scene(s) to re-render)" if lost else ""))
            continue
        _rewrite(st, d.name, d.lo, d.hi, None)
        redo.update(int(i) for i in done)
        notes.append(f"'{d.name}' of {span} cleared; its {len(done)} finished scene(s) to re-render")
    if redo:
        st.set_done(sorted(redo), False)
    st._chunks.clear()
    return notes, sorted(redo)
