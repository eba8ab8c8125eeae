"""Runs cases of tests/test_outputs.py: ``gen`` in this process (click's runner) in a work
folder, and what a user would see and lose: the exit status, stderr as a terminal shows it
(progress bars and 'dask:' notes left out), the files that changed, and what a failed write
left in the full disk.

Run as a module (``python -m tests.outputs_runner CASES.json RESULTS.json``) inside a mount
namespace where ``ro/`` is a read-only bind mount and ``full/`` a small tmpfs, for the cases
that need either; the rest run through :func:`run_case` in the pytest process."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

BIG = 8 * 2**20  # files above this (the amodal checkpoint) are compared by inode, size and mtime


def snapshot(root: Path, skip=("full",)) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if rel.parts[0] in skip:
            continue
        if p.is_symlink() or not p.is_file():
            out[str(rel)] = "dir" if p.is_dir() else "link"
            continue
        st = p.stat()
        out[str(rel)] = (f"stat:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}" if st.st_size > BIG
                         else hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def terminal_lines(err: str) -> list[str]:
    """What a terminal shows: each line's text after its last carriage return, without
    progress bars and informational 'dask:' lines."""
    lines = [ln.rsplit("\r", 1)[-1] for ln in err.split("\n")]
    return [ln for ln in lines if ln.strip() and not ln.startswith("dask: ") and not re.search(r"\d+%\|", ln)]


def fill(folder: Path, keep: int) -> None:
    """Fill the file system of ``folder`` until ``keep`` bytes are left."""
    for p in folder.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    with open(folder / ".fill", "wb") as f, contextlib.suppress(OSError):
        f.write(b"\0" * max(free - keep, 0))
        f.flush()
        while keep == 0:
            f.write(b"\0" * 4096)
            f.flush()


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` a failed write should not have left: temporary names, images that
    do not decode, JSON that does not parse."""
    import cv2
    bad = []
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == ".fill":
            continue
        if ".partial" in p.name or (p.suffix in (".png", ".jpg", ".tif") and cv2.imread(str(p)) is None):
            bad.append(p.name)
        elif p.suffix == ".json":
            try:
                json.loads(p.read_text())
            except ValueError:
                bad.append(p.name)
    return bad


@contextlib.contextmanager
def fd2_captured():
    """Text written to file descriptor 2 (Dask workers, C libraries) meanwhile."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        got = []
        try:
            yield got
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            f.seek(0)
            got.append(f.read().decode(errors="replace"))


def run_case(args: list[str], work: Path, full_keep: int | None = None) -> dict:
    from click.testing import CliRunner

    from pipelines.cli import cli
    if full_keep is not None:
        fill(work / "full", full_keep)
    before = snapshot(work)
    old = os.getcwd()
    os.chdir(work)
    try:
        with fd2_captured() as fd2:
            r = CliRunner().invoke(cli, args)
    finally:
        os.chdir(old)
    err = r.stderr + fd2[0]
    if r.exception is not None and not isinstance(r.exception, SystemExit):
        import traceback
        err += "".join(traceback.format_exception(r.exception))
    after = snapshot(work)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    for k in changed:  # undo what a wrong success wrote, so that other cases see the same folder
        p = work / k
        if k not in before and p.exists():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    left = leftovers(work / "full") if full_keep is not None else []
    return {"rc": r.exit_code, "err": err, "lines": terminal_lines(err), "changed": changed, "leftovers": left}


def main(cases_json: str, results_json: str) -> None:
    cases = json.loads(Path(cases_json).read_text())
    results = {c["id"]: run_case(c["args"], Path(c["work"]), c.get("full_keep")) for c in cases}
    Path(results_json).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:3])
