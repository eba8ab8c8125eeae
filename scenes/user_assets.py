"""User assets (``--assets DIR``): models in folders named by kind, and RGBA pedestrian cutouts.

Pure Python: the model index (kind, path, measured size) is made once by the driver with
Blender (:func:`generator.blender_assets.scan`) and stored in ``cfg["assets"]["index"]``, so
scene sampling stays a function of (seed, i, config) and needs no ``bpy``.

Asset paths stay in their folder: every path in an index, a config or a stored spec, and
every file found under ``--assets`` (symlinks resolved), must resolve inside the declared
asset folder ``assets.dir`` (:func:`asset_file`); a config or store shared between people
must not make rgsd read arbitrary local files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from scenes import people
from scenes.assets import ASSETS
from scenes.mesh import Mesh

MODEL_SUFFIXES = (".glb", ".gltf", ".obj", ".blend")
IMAGE_SUFFIXES = (".png", ".webp", ".tif", ".tiff")
CUTOUT_DIR = "pedestrian_cutouts"


def sample_params(rng: np.random.Generator, kind: str, cfg: dict) -> dict:
    """Params of one ``kind`` object: a user model, a cutout, or the procedural recipe.

    Without user assets of this kind no random number is drawn, so a run without
    ``--assets`` is unchanged by this hook."""
    a = cfg.get("assets") or {}
    index = a.get("index") or []
    if kind == "pedestrian":
        cutouts = [m for m in index if m["kind"] == CUTOUT_DIR]
        if cutouts and rng.random() < a["cutout_probability"]:
            m = cutouts[int(rng.integers(len(cutouts)))]
            height = float(rng.uniform(1.55, 1.9))
            width = height * m["aspect"]
            return {"cutout": m["path"], "asset_size": [0.02, width, height]}
    models = [m for m in index if m["kind"] == kind]
    if models and (a["mode"] == "replace" or rng.random() < a["probability"]):
        m = models[int(rng.integers(len(models)))]
        return {"user_asset": m["path"], "asset_size": list(m["size"])}
    if kind == "pedestrian":
        return people.sample_pedestrian(rng, people_options(cfg))
    return ASSETS[kind].sample(rng)


def people_options(cfg: dict) -> dict | None:
    """The ``people`` knobs in force, or None (the sampler of before issue 16) when
    ``variety.enabled`` is false or the config predates them."""
    if not (cfg.get("variety") or {}).get("enabled", False):
        return None
    return cfg.get("people")


def size_of(kind: str, params: dict) -> tuple[float, float, float]:
    if "asset_size" in params:
        return tuple(float(s) for s in params["asset_size"])
    return ASSETS[kind].size(params)


class AssetPathError(ValueError):
    """An asset path outside the declared asset folder (one line, exit 2)."""


def asset_file(root: str | Path, rel: str, what: str = "asset") -> Path:
    """The file ``rel`` names in the asset folder ``root``, symlinks resolved; AssetPathError
    when there is no folder or the path leaves it (``..``, an absolute path, a link out)."""
    if not isinstance(rel, str) or not rel:
        raise AssetPathError(f"{what} path {rel!r} is not a path")
    if not root:
        raise AssetPathError(f"{what} {rel} names a file but no asset folder is declared (--assets DIR or "
                             "assets.dir); rgsd reads assets only from inside that folder")
    base = Path(root).expanduser().resolve()
    path = (base / rel).resolve()
    if not path.is_relative_to(base):
        raise AssetPathError(f"{what} {rel} resolves to {path}, outside the asset folder {base}; "
                             "rgsd reads assets only from inside it")
    return path


def check_index(cfg: dict, what: str = "assets.index") -> None:
    """Every entry of the config's asset index stays in its asset folder (AssetPathError)."""
    a = cfg.get("assets") or {}
    index = a.get("index") or []
    if not isinstance(index, list):
        raise AssetPathError(f"{what} must be a list of {{kind, path, ...}} entries")
    for entry in index:
        if not isinstance(entry, dict):
            raise AssetPathError(f"{what} entry {entry!r} is not a {{kind, path, ...}} object")
        asset_file(a.get("dir") or "", entry.get("path"), f"{what} entry")


def spec_asset_paths(spec_json: str) -> list[str]:
    """Every user-asset path (``user_asset``, ``cutout``) anywhere in a stored spec."""
    import json
    found: list[str] = []

    def walk(v):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ("user_asset", "cutout"):
                    found.append(x)
                else:
                    walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    walk(json.loads(spec_json) if spec_json else {})
    return found


def check_spec(cfg: dict, spec_json: str, what: str) -> None:
    """Every asset a stored spec names stays in the store's asset folder (AssetPathError)."""
    root = (cfg.get("assets") or {}).get("dir") or ""
    for rel in spec_asset_paths(spec_json):
        asset_file(root, rel, what)


def list_files(root: str | Path) -> list[tuple[str, str]]:
    """(kind, path relative to root) of every model and cutout image, sorted; AssetPathError
    for one that is a link leading out of ``root``."""
    root = Path(root)
    base = root.resolve()
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        suffixes = IMAGE_SUFFIXES if d.name == CUTOUT_DIR else MODEL_SUFFIXES
        for f in sorted(d.rglob("*")):
            if f.suffix.lower() in suffixes:
                if not f.resolve().is_relative_to(base):
                    raise AssetPathError(f"--assets: {f} leads to {f.resolve()}, outside the asset folder {base} "
                                         "(a symbolic link); rgsd reads assets only from inside it")
                out.append((d.name, f.relative_to(root).as_posix()))
    return out


def unknown_kinds(root: str | Path) -> list[str]:
    """Folders of ``root`` holding models whose name is no asset kind rgsd places (such as a
    new class, ``cyclist/``): the class table is fixed, so these would never be placed."""
    return sorted({kind for kind, _ in list_files(root) if kind != CUTOUT_DIR and kind not in ASSETS})


def read_alpha(path: str | Path) -> np.ndarray:
    """Opaque texels (alpha >= 0.5) of an RGBA image, row 0 at the top."""
    from PIL import Image
    with Image.open(path) as im:
        if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
            raise ValueError("image has no alpha channel")
        alpha = np.asarray(im.convert("RGBA"))[..., 3]
    if not (alpha >= 128).any():
        raise ValueError("image is fully transparent")
    return alpha >= 128


def cutout_mesh(alpha: np.ndarray, width: float, height: float) -> tuple[Mesh, np.ndarray]:
    """A flat figure in the local YZ plane (facing +X) made of one quad per horizontal run of
    opaque texels, so the silhouette is exactly the texel-level alpha mask: a camera ray
    hits the mesh iff it crosses an opaque texel.  Returns the mesh and per-loop UVs."""
    rows, cols = alpha.shape
    tw, th = width / cols, height / rows
    verts, uvs = [], []
    padded = np.pad(alpha, ((0, 0), (1, 1))).astype(np.int8)
    d = np.diff(padded, axis=1)
    for r in range(rows):
        starts, ends = np.flatnonzero(d[r] == 1), np.flatnonzero(d[r] == -1)
        z1, z0 = height - r * th, height - (r + 1) * th
        for c0, c1 in zip(starts, ends):
            y0, y1 = width / 2 - c0 * tw, width / 2 - c1 * tw  # image left is +Y seen from +X
            verts += [(0, y0, z0), (0, y1, z0), (0, y1, z1), (0, y0, z1)]
            u0, u1, v0, v1 = c0 / cols, c1 / cols, 1 - (r + 1) / rows, 1 - r / rows
            uvs += [(u0, v0), (u1, v0), (u1, v1), (u0, v1)]
    verts = np.asarray(verts, np.float32)
    uvs = np.asarray(uvs, np.float32)
    q = np.arange(0, len(verts), 4)[:, None]
    faces = np.concatenate([q + [0, 1, 2], q + [0, 2, 3]], 1).reshape(-1, 3)
    loop_uv = uvs[faces.ravel()]
    return Mesh(verts, faces, 0, ("plastic",)), loop_uv
