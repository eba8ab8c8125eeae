"""What the ``gen`` commands check before they write anything, and how every user mistake
becomes one line on stderr with exit status 2 (pipelines/cli.py uses these)."""
from __future__ import annotations

import sys
from pathlib import Path

import click


def index_ranges(text: str) -> list[int]:
    """Scene indices from '17', '3,5,10-12' or '0-999,1200' (ValueError on anything else)."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            out += range(int(a), int(b) + 1)
        else:
            out.append(int(part))
    return out


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file=None):
        click.echo(f"error: {self.message}", err=True)


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
        sys.exit(rv if isinstance(rv, int) else 0)


def _not_onto_inputs(out: str, inputs, replaces: bool = True) -> None:
    """No command writes onto one of its own inputs (see scenes.safety.overlapping)."""
    from scenes.safety import overlapping
    hit = overlapping(out, inputs, replaces)
    if hit:
        raise UserError(f"--out {out} would write onto the input {hit}; choose another --out")


def _new_file(out: str, exts: tuple[str, ...], overwrite: bool | None = None) -> None:
    """An output file path: a known extension, an existing folder, and not an existing file
    unless ``overwrite`` (None: the command has no --overwrite)."""
    p = Path(out)
    if p.suffix.lower() not in exts:
        raise UserError(f"--out {out}: the extension must be one of {', '.join(exts)}")
    if not p.parent.is_dir():
        raise UserError(f"--out {out}: folder {p.parent} does not exist")
    if p.is_dir():
        raise UserError(f"--out {out} is a folder, not a file")
    if p.exists() and overwrite is False:
        raise UserError(f"--out {out} already exists (use --overwrite to replace it)")


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


def _checkpoint_errors() -> tuple:
    """trainer.checkpoint's one-line error, where that module exists."""
    try:
        from trainer.checkpoint import CheckpointError
    except ImportError:
        return ()
    return (CheckpointError,)
