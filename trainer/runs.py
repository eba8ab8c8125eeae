"""What the trainers share about a run as a whole: ``--resume`` (settings added since a run
began count as their defaults; model, optimizer, schedule and RNG restored) and ranks that
agree on a decision."""
from __future__ import annotations

import torch


def with_defaults(old: dict, defaults: dict) -> dict:
    """A run config saved before a setting existed, read as if it had its default (so such a
    run still resumes)."""
    return {**defaults, **old}


def restore_run(path, *, kind: str, device, now: dict, defaults: dict, model, opt, sched, error) -> dict:
    """``--resume`` of a trainer that builds first: read ``path`` (a ``kind`` checkpoint), refuse
    it with ``error`` (the trainer's one-line exception) if damaged or made with other settings
    (resume_mismatch), else restore model, optimizer, schedule and torch's RNG.  Returns the
    checkpoint, for the trainer's own counters."""
    from trainer import checkpoint
    try:
        ck = checkpoint.load(path, kind=kind, device=device)
    except checkpoint.CheckpointError as exc:
        raise error(str(exc)) from None
    why = resume_mismatch(ck["config"], now, defaults)
    if why:
        raise error(why)
    model.load_state_dict(ck["model"])
    opt.load_state_dict(ck["optimizer"])
    sched.load_state_dict(ck["scheduler"])
    torch.set_rng_state(ck["rng"])
    return ck


def resume_mismatch(saved: dict, now: dict, defaults: dict) -> str | None:
    """Why ``--resume`` with settings ``now`` cannot continue a run saved with ``saved`` (its
    settings added since then count as ``defaults``), or None when it can."""
    old = with_defaults(saved, defaults)
    if old == now:
        return None
    key = next(k for k in sorted(set(old) | set(now)) if old.get(k) != now.get(k))
    return f"--resume: setting '{key}' differs from the run's ({old.get(key)})"


def any_rank(flag: bool, device) -> bool:
    """``flag`` or'ed over every rank of a distributed run: all ranks take the same branch, so
    none waits in a collective the others skipped."""
    t = torch.tensor([int(flag)], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())
