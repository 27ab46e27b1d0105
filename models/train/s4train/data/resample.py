"""Band-limited resampling (FFT based, batched): the multi-rate training inputs and the
validation at other rates are the 16 kHz clips resampled."""

from __future__ import annotations

import math

import torch


def resample(x: torch.Tensor, f_from: int, f_to: int) -> torch.Tensor:
    """Resample the last axis from f_from to f_to Hz (integers) by ideal FFT band-limiting.

    The FFT length Lp >= L + L/8 (zero padding keeps the circular wrap-around out of
    the clip) is a multiple of f_from / gcd(f_from, f_to), so Lp * f_to / f_from is an
    integer and the time axis is not stretched."""
    if f_from == f_to:
        return x
    L = x.shape[-1]
    n_out = int(round(L * f_to / f_from))
    q = f_from // math.gcd(f_from, f_to)
    Lp = -(-(L + max(L // 8, 64)) // q) * q
    n_out_p = Lp * f_to // f_from
    X = torch.fft.rfft(x, n=Lp)
    J = n_out_p // 2 + 1
    keep = min(J, X.shape[-1])
    Y = torch.zeros(*X.shape[:-1], J, dtype=X.dtype, device=X.device)
    Y[..., :keep] = X[..., :keep]
    if n_out_p < Lp and n_out_p % 2 == 0:
        Y.imag[..., -1] = 0  # the new Nyquist bin of a real signal is real
    y = torch.fft.irfft(Y, n=n_out_p) * (n_out_p / Lp)
    return y[..., :n_out].contiguous()
