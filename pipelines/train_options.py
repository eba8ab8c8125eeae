"""What both ``gen train`` commands share: ``--val`` (each model's own evaluation during
training; ``best.pt`` chosen on it) and ``--config FILE`` / ``--set key=value`` over the
run's settings, as ``gen scenes`` takes them.

Precedence: the settings' defaults, then each ``--config`` file in order, then each ``--set``;
an option given as its own flag on the command line (``--lr 3e-4``) wins over both.  Every
setting of the run (config.json in its folder lists them) can be set, including those
without a flag (``weight_decay``, ``log_every``, ``augment``, ``milestones``, ...)."""
from __future__ import annotations

import dataclasses

import click

from pipelines.cli_base import UserError


def train_options(f):
    for opt in reversed([
        click.option("--val", default=None, metavar="STORES",
                     help="Held-out scene store(s), comma-separated: the model's own evaluation runs on them every "
                          "--val-every steps (refiner: gen eval refiner's RMSE; amodal: amodal mask AP), logged to "
                          "val.csv and TensorBoard, and best.pt is the best of those instead of the lowest training loss."),
        click.option("--val-every", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Steps between validations; 0 = at every checkpoint (--ckpt-every)."),
        click.option("--val-scenes", type=click.IntRange(min=1), default=16, show_default=True,
                     help="Scenes of --val each validation scores (the first finished ones, fixed inputs)."),
        click.option("--config", "config_files", multiple=True, type=click.Path(dir_okay=False),
                     help="JSON/YAML file of run settings (the keys of the run folder's config.json), applied in order."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="One run setting, e.g. --set weight_decay=0.05 --set log_every=50 (value parsed as JSON)."),
    ]):
        f = opt(f)
    return f


def _coerce(key: str, value, default):
    """``value`` as the type of the setting's default, or a one-line UserError."""
    def bad(kind):
        return UserError(f"--config/--set: '{key}' must be {kind}, not {value!r}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("an integer")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad("a number")
        return float(value)
    if isinstance(default, list):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise bad("a list")
        return value
    if value is not None and not isinstance(value, (str, int, float, list)):
        raise bad("a plain value")
    return value


def build_train_config(ctx: click.Context, cls, values: dict, config_files, overrides, param_of: dict | None = None):
    """``cls`` (a training config dataclass) from the command's option ``values`` (by
    setting name), the ``--config`` files and the ``--set`` overrides."""
    from scenes.config import ConfigError, load_file, parse_override
    param_of = param_of or {}
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(cls)}
    out = {**defaults, **values}
    layered: dict = {}
    try:
        for path in config_files:
            layered.update(load_file(path))
        for text in overrides:
            layered.update(parse_override(text))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    for key, value in layered.items():
        if key not in defaults:
            raise UserError(f"--config/--set: '{key}' is not a training setting (settings: {', '.join(defaults)})")
        param = param_of.get(key, key)
        if param in ctx.params and ctx.get_parameter_source(param) == click.core.ParameterSource.COMMANDLINE:
            continue  # its own flag, given on the command line, wins
        default = defaults[key]
        out[key] = _coerce(key, value, default) if default is not None else value
    return cls(**out)
