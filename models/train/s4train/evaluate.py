"""Validation: accuracy per input rate, the one score that picks weights, the best epoch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from s4train.data.clips import SAMPLE_RATE
from s4train.data.resample import resample


@torch.no_grad()
def evaluate(model, x: torch.Tensor, y: torch.Tensor, rates, device, batch_size: int = 64) -> dict:
    """Accuracy and mean loss per input rate ({"16000": {"acc", "loss"}, ...}); the 16 kHz clips
    resampled (band-limited) to each rate, the model told the step scale 16000 / f_in."""
    model.eval()
    res = {}
    for f_in in rates:
        correct, loss, n = 0, 0.0, 0
        for i in range(0, len(x), batch_size):
            xb = resample(x[i:i + batch_size].to(device), SAMPLE_RATE, f_in)
            yb = y[i:i + batch_size].to(device)
            logits = model(xb, step_scale=model.cfg.sample_rate / f_in)
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(-1) == yb).sum().item()
            n += len(yb)
        res[str(f_in)] = {"acc": correct / max(1, n), "loss": loss / max(1, n)}
    return res


def mean_accuracy(val: dict) -> float:
    """The mean over the rates of evaluate()'s accuracies: the one score that picks weights."""
    return float(np.mean([v["acc"] for v in val.values()]))


def best_epoch(history: list[dict]) -> dict:
    """The history's entry with the best validation (by mean_accuracy; the earliest of equals)."""
    return max(history, key=lambda h: mean_accuracy(h["val"]))


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
