"""The pieces every ``gen`` subcommand module builds on: the Command class that checks a
command's optional distributions before it runs, ``needs`` to declare them, and UserError.

A module of its own so the subcommand modules (cli_amodal, cli_refiner, ...) import it and
not pipelines.cli, which imports them: no import circle."""
from __future__ import annotations

import click

from pipelines.cli_checks import UserError

__all__ = ["Command", "UserError", "needs"]


def needs(*dists: str):
    """Mark a command as needing these optional distributions (bpy, torch, ...): checked
    before the command body runs, so a missing extra is one line and nothing is written."""
    def mark(f):
        f.rgsd_needs = dists
        return f
    return mark


def _strings(values):
    for v in values:
        if isinstance(v, str):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _strings(v)


def _not_finite(command: click.Command, params: dict) -> str | None:
    """The first float option given NaN or an infinity (click's FloatRange lets NaN through:
    every comparison with it is false)."""
    import math
    for p in command.params:
        v = params.get(p.name)
        if isinstance(v, float) and not math.isfinite(v):
            return f"{p.opts[-1]} must be a finite number, not {v}"
    return None


class Command(click.Command):
    def invoke(self, ctx):
        from pipelines.requires import MissingDependency, require, require_for_urls
        if problem := _not_finite(self, ctx.params):
            raise UserError(problem)
        try:
            for dist in getattr(self.callback, "rgsd_needs", ()):
                require(dist, ctx.command_path)
            require_for_urls(_strings(ctx.params.values()), ctx.command_path)
        except MissingDependency as exc:
            raise UserError(str(exc)) from None
        return super().invoke(ctx)
