"""SSM convolution kernels and discretisations (pure functions on tensors).

Conventions:
* Only M = N/2 complex modes are stored; each stands for a conjugate pair, so every output is
  y = 2 Re(sum_m C_m x_m) + D u.
* DPLR: A = Lambda - P P^H (P tied, rank r), always bilinear.
* The layers hold the TRUE (continuous-time) C. The length-dependent C~ = (I - Abar^L)^T C of
  the truncated generating function is computed here for the Delta and L in use, so any input
  rate is exact.
* Delta arrives already scaled by the step scale f_train / f_in.
* Everything runs in float32 or float64; complex dtypes follow the real dtype.
"""

from __future__ import annotations

import math

import torch


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def full(v: torch.Tensor) -> torch.Tensor:
    """Conjugate expansion along the last axis: [..., M] -> [..., 2M]."""
    return torch.cat([v, v.conj()], dim=-1)


def dense_bilinear(Lam: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor):
    """Dense conjugate-expanded bilinear discretisation of A = Lambda - P P^H.

    Lam [H, M], P [r, H, M], B [H, M] complex; dt [H] real (already times the step scale).
    Returns Abar [H, N, N], Bbar [H, N] acting on the full state [x; conj x].
    """
    Lf, Pf, Bf = full(Lam), full(P), full(B)
    N = Lf.shape[-1]
    A = torch.diag_embed(Lf) - torch.einsum("rhn,rhm->hnm", Pf, Pf.conj())
    dtA = dt.to(A.dtype)[:, None, None] * A
    eye = torch.eye(N, dtype=A.dtype, device=A.device)
    lhs = 2 * eye - dtA
    Abar = torch.linalg.solve(lhs, 2 * eye + dtA)
    Bbar = torch.linalg.solve(lhs, (2 * dt.to(A.dtype))[:, None] * Bf)
    return Abar, Bbar


def row_times_power(c: torch.Tensor, A: torch.Tensor, L: int) -> torch.Tensor:
    """c^T A^L by repeated squaring. c [H, N], A [H, N, N]."""
    v = c
    Ap = A
    while L > 0:
        if L & 1:
            v = torch.einsum("hn,hnm->hm", v, Ap)
        L >>= 1
        if L:
            Ap = Ap @ Ap
    return v


def c_tilde(Lam, P, B, C, dt, L: int, setup_dtype=torch.complex128):
    """C~ = (I - Abar^L)^T C (first half), computed in `setup_dtype`."""
    cd = C.dtype
    Abar, _ = dense_bilinear(Lam.to(setup_dtype), P.to(setup_dtype), B.to(setup_dtype),
                             dt.to(torch.float64 if setup_dtype == torch.complex128 else dt.dtype))
    Cf = full(C.to(setup_dtype))
    Ct = Cf - row_times_power(Cf, Abar, L)
    return Ct[..., : C.shape[-1]].to(cd)


def dplr_kernel(Lam, P, B, Ct, dt, L: int) -> torch.Tensor:
    """SSM convolution kernel Kbar [H, L] of a DPLR system from C~ (for this L).

    Truncated generating function at the L-th roots of unity, evaluated through
    (I - Abar w)^-1 Bbar = Delta (2(1-w) - (1+w) Delta A)^-1 2B
    (no singularity at w = -1), Cauchy sums over both conjugate halves and a
    rank-r Woodbury correction, then an inverse real FFT.
    """
    cdt = Lam.dtype
    rdt = dt.dtype
    device = Lam.device
    r = P.shape[0]
    J = L // 2 + 1
    j = torch.arange(J, dtype=rdt, device=device)
    omega = torch.polar(torch.ones_like(j), -2 * math.pi * j / L).to(cdt)
    a = 2 * (1 - omega)                                    # [J]
    b = 1 + omega                                          # [J]
    dtc = dt.to(cdt)
    Lf = full(dtc[:, None] * Lam)                          # [H, N]  Delta*lambda
    Ps = torch.sqrt(dt).to(cdt)[None, :, None] * P         # sqrt(Delta) P
    Pf, Bf, Cf = full(Ps), full(B), full(Ct)               # [r,H,N], [H,N], [H,N]
    R = 1.0 / (a[None, None, :] - b[None, None, :] * Lf[:, :, None])   # [H, N, J]
    Pc = Pf.conj()
    num = [Cf * Bf]                                        # C^T R B
    num += [Cf * Pf[i] for i in range(r)]                  # C^T R P_i
    num += [Pc[i] * Bf for i in range(r)]                  # P_i^H R B
    num += [Pc[i] * Pf[k] for i in range(r) for k in range(r)]  # P_i^H R P_k
    S = torch.stack(num, dim=1) @ R                        # [H, Q, J]
    k00 = S[:, 0]
    k01 = S[:, 1:1 + r].transpose(1, 2)                    # [H, J, r]
    k10 = S[:, 1 + r:1 + 2 * r].transpose(1, 2)            # [H, J, r]
    k11 = S[:, 1 + 2 * r:].transpose(1, 2).reshape(-1, J, r, r)
    bb = b[None, :]
    if r == 1:   # scalar (1 + b k11)^-1: avoids thousands of tiny batched LU solves
        corr = k01[..., 0] * k10[..., 0] / (1 + bb * k11[..., 0, 0])
    else:
        eye = torch.eye(r, dtype=cdt, device=device)
        Mmat = eye + bb[..., None, None] * k11
        sol = torch.linalg.solve(Mmat, k10.unsqueeze(-1)).squeeze(-1)   # [H, J, r]
        corr = (k01 * sol).sum(-1)
    Khat = 2 * dtc[:, None] * (k00 - bb * corr)
    return torch.fft.irfft(Khat, n=L)


def diag_discretize(Lam, B, dt, method: str):
    """Diagonal discretisation. Returns (log Abar, Bbar), each [H, M]."""
    dtA = dt.to(Lam.dtype)[:, None] * Lam
    if method == "zoh":
        return dtA, B * torch.expm1(dtA) / Lam
    if method == "bilinear":
        den = 1 - dtA / 2
        return torch.log((1 + dtA / 2) / den), dt.to(Lam.dtype)[:, None] * B / den
    raise ValueError(f"unknown discretization {method!r}")


def diag_kernel(Lam, B, C, dt, L: int, method: str, block: int | None = None) -> torch.Tensor:
    """Vandermonde kernel Kbar_k = 2 Re sum_m C_m Bbar_m Abar_m^k, k < L. [H, L].

    Blocked: k = T j + i with Abar^k = Abar^(T j) Abar^i, so the kernel is one batched
    matmul [H, L/T, M] @ [H, M, T] instead of an elementwise exp over [H, M, L]
    (same values; ~sqrt(L) times fewer transcendental evaluations, forward and backward)."""
    logA, Bbar = diag_discretize(Lam, B, dt, method)
    T = block or max(1, int(math.ceil(math.sqrt(L))))
    nb = -(-L // T)
    i = torch.arange(T, dtype=dt.dtype, device=dt.device).to(Lam.dtype)
    j = torch.arange(nb, dtype=dt.dtype, device=dt.device).to(Lam.dtype) * T
    Vi = torch.exp(logA[..., None] * i)                            # [H, M, T]
    Wj = (C * Bbar)[:, None, :] * torch.exp(logA[:, None, :] * j[:, None])   # [H, nb, M]
    K = (Wj @ Vi).reshape(Lam.shape[0], nb * T)[:, :L]
    return 2 * K.real
