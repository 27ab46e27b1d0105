"""Initialisations of the state matrix (numpy float64 / complex128): HiPPO-LegS in NPLR form,
S4D-Lin, S4D-Inv, and the ERB band-pass filter bank of the stages network's front end.

Written from the maths of the project's S4 reference, docs/s4-reference.md.
Only M = N/2 complex modes are stored; each stands for a conjugate pair.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from s4train.ops.kernels import diag_kernel


def hippo_legs(N: int):
    """HiPPO-LegS (A, B) and its rank-1 correction P, all real float64."""
    n = np.arange(N, dtype=np.float64)
    r = np.sqrt(2.0 * n + 1.0)
    A = -np.tril(np.outer(r, r), -1) - np.diag(n + 1.0)
    B = r.copy()
    P = np.sqrt(n + 0.5)
    return A, B, P


def nplr_legs(N: int, rank: int = 1, b_clip: float | None = None, seed: int | None = 0,
              extra_rank_scale: float = 0.01):
    """NPLR form of HiPPO-LegS with conjugate halving.

    Returns (Lambda [M], P [rank, M], B [M], V [N, M]) as complex128 such that,
    with the conjugate-expanded Lambda_f = [Lambda; conj Lambda] etc.,
    A = V_f (diag(Lambda_f) - p_f p_f^H) V_f^H and B~ = V_f^H B.
    Extra rank rows (rank > 1) are small random values (zero would never move:
    the gradient of P P^H vanishes at P = 0).
    """
    if N % 2:
        raise ValueError("d_state must be even")
    M = N // 2
    A, B, P = hippo_legs(N)
    S = A + np.outer(P, P)
    S = S + 0.5 * np.eye(N)                    # real skew-symmetric part
    S = 0.5 * (S - S.T)                        # exact skew (it already is to ~1e-14)
    w, V = np.linalg.eigh(-1j * S)             # S = V diag(i w) V^H, V unitary
    order = np.argsort(w)
    w, V = w[order], V[:, order]
    w, V = w[:M], V[:, :M]                     # keep the negative imaginary parts
    Lam = -0.5 + 1j * w
    Vh = V.conj().T
    Bt = Vh @ B.astype(np.complex128)
    Pt = Vh @ P.astype(np.complex128)
    if b_clip is not None:
        Bt = Bt.real + 1j * np.clip(Bt.imag, -b_clip, b_clip)
    Ps = np.zeros((rank, M), dtype=np.complex128)
    Ps[0] = Pt
    if rank > 1:
        rng = np.random.default_rng(seed)
        Ps[1:] = extra_rank_scale * (rng.standard_normal((rank - 1, M))
                                     + 1j * rng.standard_normal((rank - 1, M)))
    return Lam, Ps, Bt, V


def s4d_lin(N: int):
    M = N // 2
    n = np.arange(M)
    return -0.5 - 1j * math.pi * n


def s4d_inv(N: int):
    M = N // 2
    n = np.arange(M)
    return -0.5 - 1j * (N / math.pi) * (N / (2 * n + 1) - 1)


def _erb_number(f):
    return 21.4 * np.log10(4.37e-3 * f + 1.0)


def _erb_frequency(e):
    return (10.0 ** (e / 21.4) - 1.0) / 4.37e-3


def s4d_filterbank(H: int, N: int, sample_rate: float = 16000.0, f_min: float = 60.0,
                   f_max: float = 4000.0):
    """A band-pass filter bank as an S4D initialisation (for the layer that sees the waveform).

    Channel h is centred at f_h, ERB-spaced between f_min and f_max, with one ERB of bandwidth
    (as an auditory filter bank). With Delta_h = 2 pi f_h / sample_rate, Lambda is in units of
    the centre frequency: its M modes sit at Im Lambda = 1 + (bw/f_h)(m/(M-1) - 1/2), spread
    evenly over the band, each damped by the spacing between them (Re Lambda), so their sum is
    a smooth band-pass whose impulse response lasts about 1/bw. C is real and equal over the
    modes, scaled so the channel's peak gain at sample_rate (ZOH) is 1; D = 0 (no raw
    waveform passes the layer). Learning starts from frequency-selective channels instead of
    random combs, which is what lets a small model learn from ~3K clips on a CPU.
    f_max = 4 kHz keeps the bank at 8 kHz input's Nyquist frequency (the top channel's upper
    modes reach ~4.2 kHz), so ZOH barely aliases at any rate the model is meant for.
    Returns (Lambda [H, M], B [H, M], C [H, M], log_dt [H]), complex128 / float64."""
    M = N // 2
    fc = _erb_frequency(np.linspace(_erb_number(f_min), _erb_number(f_max), H))
    rel = 24.7 * (4.37e-3 * fc + 1.0) / fc                      # ERB / f_h
    offsets = np.arange(M) / (M - 1) - 0.5 if M > 1 else np.zeros(1)
    spacing = rel / max(M - 1, 1)
    Lam = -spacing[:, None] + 1j * (1.0 + rel[:, None] * offsets[None, :])
    B = np.ones((H, M), dtype=np.complex128)
    dt = 2 * math.pi * fc / sample_rate
    # peak gain of the ZOH kernel (C = 1) over one second at sample_rate
    K = diag_kernel(torch.as_tensor(Lam), torch.as_tensor(B), torch.ones(H, M, dtype=torch.complex128),
                    torch.as_tensor(dt), int(sample_rate), "zoh").numpy()
    peak = np.abs(np.fft.rfft(K, axis=-1)).max(axis=-1)
    C = np.repeat((1.0 / peak)[:, None], M, axis=1).astype(np.complex128)
    return Lam, B, C, np.log(dt)
