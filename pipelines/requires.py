"""What each command needs installed, checked before it creates anything.

A missing or out-of-range optional dependency is a user mistake: one line that names the
extra to install, exit 2, nothing written.  Checked from package metadata, so the check
costs microseconds and imports neither bpy nor torch.
"""
from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

# distribution -> (extra that installs it, lowest supported, first unsupported, what it is for)
SUPPORTED = {
    "bpy": ("render", (5, 3), (5, 4), "Blender's Python module"),
    "torch": ("train", (2, 6), (3, 0), "PyTorch"),  # >= 2.6: weights-only loading is the default
    "torchvision": ("train", (0, 21), (1, 0), "torchvision"),
    "s3fs": ("s3", (2024, 6), (10**6,), "s3fs (s3:// URLs)"),
}


class MissingDependency(RuntimeError):
    """An optional dependency that the command needs is missing or of an unsupported version."""


def _release(v: str) -> tuple[int, ...]:
    """(2, 14, 1) for '2.14.1+cu130'; a pre-release suffix ends the release part."""
    out = []
    for part in v.split("+")[0].split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.end() != len(part):
            break
    return tuple(out)


def require(dist: str, command: str) -> str:
    """The installed version of ``dist``, or MissingDependency naming the extra to install."""
    extra, low, high, what = SUPPORTED[dist]
    try:
        found = version(dist)
    except PackageNotFoundError:
        raise MissingDependency(f"{command} needs {what}, which is not installed: pip install 'rgsd[{extra}]'") \
            from None
    rel = _release(found)
    if not low <= rel < high:
        span = f"{'.'.join(map(str, low))} <= {dist} < {'.'.join(map(str, high))}"
        raise MissingDependency(f"{command} needs {span}, found {dist} {found}: pip install 'rgsd[{extra}]'")
    return found


def require_for_urls(urls, command: str) -> None:
    """s3fs for any s3:// URL among ``urls`` (other fsspec protocols name their own package)."""
    if any(str(u).startswith(("s3://", "s3a://")) for u in urls if u):
        require("s3fs", command)
