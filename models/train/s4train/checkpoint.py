"""A phase's checkpoint (OUT_DIR/last.pt): what resuming it needs, and what a later phase starts
from (its best weights). A phase resumes its own checkpoint only: one that other settings or
another teacher left in the folder is refused rather than trained on or exported as if it were
this run's."""

from __future__ import annotations

import dataclasses
import json
import os

import torch

from s4train.data.clips import require_same_held_out
from s4train.models.stages import StagesConfig, StagesModel


def save_checkpoint(path: str, **state) -> None:
    """Written beside `path`, then renamed: a stopped run leaves the previous one whole."""
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str, device="cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=False)


def _flat(d, prefix=""):
    """{"a": {"b": 1}} -> {"a.b": 1} (lists of tables by index)."""
    if isinstance(d, dict):
        items = d.items()
    elif isinstance(d, list) and any(isinstance(v, dict) for v in d):
        items = ((str(i), v) for i, v in enumerate(d))
    else:
        return {prefix: d}
    out = {}
    for k, v in items:
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def require_same_run(path: str, saved: dict, now: dict) -> None:
    """Refuse to resume `path` unless it learned from what this run learns from (`now`: the
    recipe's settings but the run's and the phase's length, the teacher cache's provenance)."""
    def same(a, b):     # as JSON: a tuple equals its list
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    a, b = _flat(saved), _flat(now)
    differ = sorted(k for k in a.keys() | b.keys() if not same(a.get(k), b.get(k)))
    if differ:
        shown = "; ".join(f"{k}: {a.get(k)!r} there, {b.get(k)!r} now" for k in differ[:6])
        raise SystemExit(f"{path} was saved by a run with other settings ({shown}): resume with "
                         f"the same, or remove {os.path.dirname(path)} to start afresh")


def starting_weights(path: str, data, dropout: float):
    """(config, weights, validation score, trained_on) of the best weights in the checkpoint at
    `path`, for a later phase. Its validation speakers must be the ones this run holds out, or
    the phase would train on them. Dropout is a training choice, not part of the weights: the
    recipe's applies."""
    ck = load_checkpoint(path)
    trained_on = ck.get("trained_on", {})
    require_same_held_out(path, trained_on, data)
    cfg = dataclasses.replace(StagesConfig.from_dict(ck["model_config"]), dropout=dropout)
    return cfg, ck.get("best_model") or ck["model"], ck["best_val"], trained_on


def model_from_checkpoint(ck: dict, use_last: bool = False) -> StagesModel:
    """The network of a checkpoint (best weights unless use_last), eval mode."""
    model = StagesModel(StagesConfig.from_dict(ck["model_config"]))
    model.load_state_dict(ck["model"] if use_last or not ck.get("best_model") else ck["best_model"])
    return model.eval()
