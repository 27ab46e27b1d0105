"""The distillation loss: the student learns from the teacher's logits and the labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      alpha: float, temperature: float, label_smoothing: float = 0.0) -> torch.Tensor:
    """(1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), each a
    mean over the batch of per-clip terms.

    T² keeps the soft term's gradient on the scale of the hard term's as T changes (Hinton et
    al., 2015)."""
    hard = F.cross_entropy(student, labels, label_smoothing=label_smoothing)
    T = temperature
    soft = F.kl_div(F.log_softmax(student / T, -1), F.log_softmax(teacher / T, -1),
                    reduction="none", log_target=True).sum(-1)
    soft = soft.mean() * T * T
    return (1 - alpha) * hard + alpha * soft
