"""What the ``gen`` commands check before they write anything, and how every user mistake
becomes one line on stderr with exit status 2 (pipelines/cli.py uses these)."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import sys
from pathlib import Path

import click


class OutOfRange(ValueError):
    """An index range reaching past the store, found before any index list is made."""

    def __init__(self, index: int, limit: int):
        super().__init__(f"scene {index} is outside 0..{limit - 1}")
        self.index, self.limit = index, limit


def index_pairs(text: str) -> list[tuple[int, int]]:
    """(first, last) pairs from '17', '3,5,10-12' or '0-999,1200' (ValueError on anything else)."""
    out: list[tuple[int, int]] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        a, b = part.split("-", 1) if "-" in part[1:] else (part, part)
        out.append((int(a), int(b)))
    return out


def index_ranges(text: str, limit: int | None = None) -> list[int]:
    """Scene indices from '17', '3,5,10-12' or '0-999,1200' (ValueError on anything else).
    With ``limit`` (the store's scene count), an index outside 0..limit-1 raises OutOfRange
    before the list is made: '0-9999999999' must not allocate 80 GB to be refused."""
    pairs = index_pairs(text)
    if limit is not None:
        for a, b in pairs:
            bad = next((v for v in (a, b) if not 0 <= v < limit), None)
            if bad is not None and a <= b:
                raise OutOfRange(bad, limit)
    out: list[int] = []
    for a, b in pairs:
        out += range(a, b + 1)
    return out


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


class Fault(click.ClickException):
    """A failure of the machine, not of the request (a full disk, say): exit status 1."""
    exit_code = 1

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


def _last_resort(exc: BaseException) -> click.ClickException | None:
    """The one line for failures a command did not turn into one itself: a write that
    failed (scenes.atomic), any other OSError, a damaged or unusable store, a Dask cluster
    that cannot be reached."""
    from pipelines.cluster import ClusterError
    from scenes.atomic import WriteError
    from scenes.safety import StoreError
    if isinstance(exc, OSError) and exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EISDIR):
        return UserError(_one_line(exc))  # a path the user gave that is not there
    if isinstance(exc, (WriteError, OSError)):
        return Fault(_one_line(exc))
    if isinstance(exc, (StoreError, ClusterError)):
        return UserError(_one_line(exc))
    return None


class OneLineErrors(click.Group):
    """Click's usage errors (a bad option value, a missing option) as one line too, where
    click prints the usage, a hint and the error on three."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"error: {' '.join(exc.format_message().split())}{where}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        except Exception as exc:  # noqa: BLE001 - only the kinds _last_resort knows; the rest re-raised
            one = _last_resort(exc)
            if one is None:
                raise
            one.show()
            sys.exit(one.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)


def _onto_input(option: str, out: str, inputs, replaces: bool) -> None:
    from scenes.safety import overlapping
    hit = overlapping(str(out), [str(i) for i in inputs if i], replaces)
    if hit:
        hint = option if option.startswith("--") else "--out"
        raise UserError(f"{option} {out} would write onto the input {hit}; choose another {hint}")


def _new_file(out: str, exts: tuple[str, ...], overwrite: bool, inputs=(), option: str = "--out") -> None:
    """An output file path with a known extension, under the output rule (check_outputs)."""
    check_outputs([(option, out, "file")], inputs, overwrite)
    if Path(out).suffix.lower() not in exts:
        raise UserError(f"{option} {out}: the extension must be one of {', '.join(exts)}")


def _read_only(p: Path) -> str | None:
    """Why nothing can be written into the existing folder ``p``, or None."""
    if os.access(p, os.W_OK | os.X_OK):
        return None
    try:
        if os.statvfs(p).f_flag & os.ST_RDONLY:
            return "is on a read-only file system"
    except OSError:
        pass
    return "is read-only (no write permission)"


def _existing_folder(p: Path) -> Path:
    return next((q for q in [p, *p.parents] if q.exists()), Path("/"))


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


def check_outputs(outputs, inputs=(), overwrite: bool = False) -> None:
    """The one output rule of every ``gen`` command: refuse, in one line naming the path and
    the reason, before anything is read at length or written:

    - an output that is an input or lies inside one (a store, a folder or a file given as
      an input), paths resolved and symlinks followed; a store output may not hold an input
      either, since --overwrite empties it;
    - two outputs of the command that are the same path (``--out D --images-dir D``, a
      JSON and the overlay PNG written beside it);
    - an existing file without ``overwrite``, a file where a folder is wanted and the other
      way round, a missing parent folder, and a folder nothing can be written into.

    ``outputs``: (option, path, kind) with kind "file" (written whole), "dir" (a folder files
    are written into: report and run folders, --images-dir; its own files given as "file"
    entries) or "store" (a Zarr store: scenes.safety.check_replaceable has its own rule for
    what --overwrite may replace).  Object-store URLs get the input rule only."""
    from scenes.safety import is_local
    seen: dict[Path, str] = {}
    dirs = {_resolved(str(p)) for _, p, kind in outputs if p is not None and kind == "dir" and is_local(str(p))}
    for option, path, kind in outputs:
        if path is None:
            continue
        path = str(path)
        _onto_input(option, path, inputs, kind == "store")
        if not is_local(path):
            continue
        p = Path(path.removeprefix("file://"))
        r = _resolved(str(p))
        if r in seen:
            raise UserError(f"{option} {path} and {seen[r]} are the same path; give each output its own path")
        seen[r] = f"{option} {path}"
        if kind == "file":
            if p.is_dir():
                raise UserError(f"{option} {path} is a folder, not a file")
            if not r.parent.is_dir() and r.parent not in dirs:  # a report folder the command makes
                raise UserError(f"{option} {path}: folder {p.parent} does not exist")
            if p.exists() and not overwrite:
                raise UserError(f"{option} {path} already exists (use --overwrite to replace it)")
            where = _existing_folder(r.parent)
        else:
            if p.exists() and not p.is_dir():
                raise UserError(f"{option} {path} is a file, not a folder")
            where = _existing_folder(r)
        why = _read_only(where) if where.is_dir() else None
        if why:
            raise UserError(f"{option} {path}: folder {where} {why}")


@contextlib.contextmanager
def removed_if_failed(folder, scratch=()):
    """An output folder the command creates is removed again if the command fails and it
    holds nothing but the ``scratch`` files the command began it with (a run's log.csv and
    config.json, say): a failed run leaves nothing behind, and a checkpoint is never removed."""
    p = Path(folder)
    existed = p.exists()
    try:
        yield
    except BaseException:
        if not existed and p.is_dir():
            with contextlib.suppress(OSError):
                if all(c.name in scratch for c in p.iterdir()):
                    shutil.rmtree(p)
        raise


# What a training run writes before its first checkpoint: its log, its settings and its
# TensorBoard folder (trainer/watch.py).
RUN_SCRATCH = ("log.csv", "config.json", "val.csv", "tb")


def folder_files(option: str, folder: str, names) -> list[tuple[str, str, str]]:
    """The fixed-name files a command writes into an output folder, as outputs."""
    return [(option, str(Path(folder) / n), "file") for n in names]


def _store_errors():
    """What a command that reads or writes stores turns into one line."""
    from scenes.store import StoreError
    return (StoreError, OSError)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = text.splitlines()
    if "Original Traceback" in text:  # raised again by torch's DataLoader: the worker's own message is last
        last = lines[-1]
        return last.split(": ", 1)[1] if ": " in last else last
    return lines[0]


# Far past any real run, far below what the stores' one-flag-per-scene/shard layout can list.
MAX_SCENES, MAX_SAMPLES = 10_000_000, 1_000_000_000
# Above these, a run is weeks of rendering or terabytes of shards: likely a typo, so --force.
RUN_SCENES, RUN_SAMPLES = 100_000, 10_000_000


def _checkpoint_errors() -> tuple:
    """trainer.checkpoint's one-line error, where that module exists."""
    try:
        from trainer.checkpoint import CheckpointError
    except ImportError:
        return ()
    return (CheckpointError,)
