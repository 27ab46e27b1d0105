"""Frames defined in seconds: frame k of a signal at f Hz holds the samples
b_k <= n < b_{k+1}, b_k = ceil(k * tau * f - 1e-6), tau * f rounded to 1e-9 in float64 (10 ms
frames are 110.25 samples at 11.025 kHz; a trailing partial frame is dropped). The Swift
engine frames its streams the same way."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def samples_per_frame(frame_seconds: float, f_hz: float) -> float:
    """tau * f in float64, rounded to 1e-9 (44.1 kHz: 441.0; 11.025 kHz: 110.25)."""
    return round(float(frame_seconds) * float(f_hz) * 1e9) / 1e9


def frame_bounds(n_samples: int, frame_seconds: float, f_hz: float) -> np.ndarray:
    """b_0 .. b_F of the F complete frames of n_samples samples: b_k = ceil(k tau f - 1e-6)."""
    tf = samples_per_frame(frame_seconds, f_hz)
    k = np.arange(int(n_samples / tf) + 3, dtype=np.float64)
    b = np.ceil(k * tf - 1e-6).astype(np.int64)
    n_frames = int(np.count_nonzero(b[1:] <= n_samples))
    return b[:n_frames + 1]


def pool_frames(r: torch.Tensor, frame_seconds: float, f_hz: float) -> torch.Tensor:
    """Mean of r [..., L] over each complete frame -> [..., F]. A frame of whole samples is a
    reshape; fractional frames use a float64 cumulative sum differenced at the boundaries."""
    L = r.shape[-1]
    tf = samples_per_frame(frame_seconds, f_hz)
    if tf == round(tf):
        S = int(round(tf))
        n_frames = L // S
        if n_frames == 0:
            raise ValueError(f"{L} samples at {f_hz} Hz hold no complete frame")
        return r[..., :n_frames * S].reshape(*r.shape[:-1], n_frames, S).mean(-1)
    b = frame_bounds(L, frame_seconds, f_hz)
    if len(b) < 2:
        raise ValueError(f"{L} samples at {f_hz} Hz hold no complete frame")
    c = F.pad(torch.cumsum(r.to(torch.float64), dim=-1), (1, 0))
    lo, hi = torch.as_tensor(b[:-1], device=r.device), torch.as_tensor(b[1:], device=r.device)
    n = (hi - lo).to(torch.float64)
    return ((c[..., hi] - c[..., lo]) / n).to(r.dtype)


def pool_frames_loop(r: torch.Tensor, frame_seconds: float, f_hz: float) -> torch.Tensor:
    """The same, frame by frame as a streaming engine emits them (each frame's own samples)."""
    b = frame_bounds(r.shape[-1], frame_seconds, f_hz)
    return torch.stack([r[..., b[k]:b[k + 1]].sum(-1) / float(b[k + 1] - b[k])
                        for k in range(len(b) - 1)], dim=-1)
