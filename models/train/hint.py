"""Embedding hints: the student's frame features predict the teacher's embeddings (training only).

The teacher's logits give the student 12 numbers per clip; its speech_embedding gives 96 per
80-ms step, learned from far more speakers than Speech Commands holds. A linear map from the
student's last features (after its final norm) at the frame where a teacher window ends, to that
window's embedding (standardised per dimension over the training copies), trained by mean
squared error beside the distillation loss, asks the student's representation to carry what the
teacher's carries (FitNets, Romero et al., ICLR 2015). The map is not part of the model: nothing
of it is exported.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingHint(nn.Module):
    def __init__(self, d_student: int, window_ends_s, mean, std, frame_seconds: float):
        """window_ends_s [W]: when each teacher window ends, in seconds from the start of the
        clip as the teacher heard it (16 kHz); mean, std [E]: the embeddings' statistics."""
        super().__init__()
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        self.proj = nn.Linear(d_student, mean.numel())
        self.register_buffer("ends", torch.as_tensor(np.asarray(window_ends_s, dtype=np.float64)))
        self.register_buffer("mean", mean)
        self.register_buffer("std", torch.as_tensor(np.asarray(std, dtype=np.float32)).clamp_min(1e-6))
        self.frame_seconds = frame_seconds

    @classmethod
    def from_embeddings(cls, d_student: int, window_ends_s, embeddings, frame_seconds: float):
        """Statistics from embeddings [..., W, E] (e.g. a cache's float16 [C, K, W, E])."""
        e = np.asarray(embeddings, dtype=np.float32).reshape(-1, np.shape(embeddings)[-1])
        return cls(d_student, window_ends_s, e.mean(0), e.std(0), frame_seconds)

    def frame_of_window(self, time_scale: float, n_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(windows, frames): each window the student heard to its end, and the first frame whose
        causal feature has heard it all. The student hears the clip stretched by time_scale
        (f_in / declared rate: speed perturbation); a window ending within one frame after the
        last is given the last."""
        end_frames = torch.ceil(self.ends * time_scale / self.frame_seconds - 1e-6).long() - 1
        keep = (end_frames >= 0) & (end_frames <= n_frames)
        windows = torch.nonzero(keep).flatten()
        return windows, end_frames[windows].clamp(max=n_frames - 1)

    def forward(self, feats: torch.Tensor, embeddings: torch.Tensor, time_scale: float) -> torch.Tensor:
        """Mean squared error between proj(feats [B, F, H] at each window's end frame) and the
        standardised embeddings [B, W, E] of those windows."""
        windows, frames = self.frame_of_window(time_scale, feats.shape[1])
        if len(windows) == 0:
            return feats.new_zeros(())
        target = (embeddings[:, windows].to(feats.dtype) - self.mean) / self.std
        return F.mse_loss(self.proj(feats[:, frames]), target)
