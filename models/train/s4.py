"""S4 / S4D state-space layers (training side of s4listen).

Written from the maths in shared/docs/s4-reference.md. Conventions:

* Only M = N/2 complex modes are stored; each stands for a conjugate pair, so
  every output is y = 2 Re(sum_m C_m x_m) + D u.
* DPLR: A = Lambda - P P^H (P tied, rank r), always bilinear.
  Lambda is parametrised as log(-Re Lambda) and Im Lambda, so Re Lambda < 0.
* The layer holds the TRUE (continuous-time) C. The length-dependent
  C~ = (I - Abar^L)^T C needed by the truncated generating function is
  computed on the fly for the Delta and L in use, so any rate is exact.
* rate = f_train / f_in; Delta_run = Delta * rate; the kernel has as many taps
  as the input has samples.
* Everything runs in float32 or float64; complex dtypes follow the real dtype.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

__all__ = [
    "hippo_legs",
    "nplr_legs",
    "s4d_lin",
    "s4d_inv",
    "s4d_filterbank",
    "complex_dtype",
    "full",
    "dense_bilinear",
    "dplr_kernel",
    "diag_discretize",
    "diag_kernel",
    "fast_fft_length",
    "fft_conv",
    "DPLRSSM",
    "DiagSSM",
]


# ---------------------------------------------------------------------------
# Initialisations (numpy float64 / complex128)
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Pure functions on tensors
# ---------------------------------------------------------------------------

def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def full(v: torch.Tensor) -> torch.Tensor:
    """Conjugate expansion along the last axis: [..., M] -> [..., 2M]."""
    return torch.cat([v, v.conj()], dim=-1)


def dense_bilinear(Lam: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor):
    """Dense conjugate-expanded bilinear discretisation of A = Lambda - P P^H.

    Lam [H, M], P [r, H, M], B [H, M] complex; dt [H] real (already * rate).
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


def fast_fft_length(n: int) -> int:
    """Smallest 5-smooth integer (2^a 3^b 5^c) >= n: an FFT size without large prime factors
    (arbitrary input rates give lengths like 2 * 15196 = 8 * 3799 that would need the much
    slower Bluestein path)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            m = p35
            while m < n:
                m *= 2
            best = min(best, m)
            p35 *= 3
        p5 *= 5
    return best


def fft_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Causal convolution y_t = sum_{k<=t} K_k u_{t-k}; u [..., H, L], K [H, L_k].
    Any FFT length >= L + L_k - 1 is exact (no wrap-around into the first L outputs)."""
    return _FFTConv.apply(u, K)


class _FFTConv(torch.autograd.Function):
    """fft_conv with a hand-written backward: the adjoints are the correlations
    du = irfft(rfft(g) conj(Kf))[:L] and dK = irfft(sum_batch rfft(g) conj(Uf))[:Lk]
    (n >= L + Lk - 1, so neither wraps). Two long real FFTs per backward instead of
    autograd's complex-to-complex transforms, pads and fills (same values)."""

    @staticmethod
    def forward(ctx, u, K):
        L, Lk = u.shape[-1], K.shape[-1]
        n = fast_fft_length(2 * max(L, Lk))
        Uf = torch.fft.rfft(u, n=n)
        Kf = torch.fft.rfft(K, n=n)
        ctx.save_for_backward(Uf if ctx.needs_input_grad[1] else None,
                              Kf if ctx.needs_input_grad[0] else None)
        ctx.shape = (n, L, Lk, u.dim())
        return torch.fft.irfft(Uf * Kf, n=n)[..., :L]

    @staticmethod
    def backward(ctx, g):
        Uf, Kf = ctx.saved_tensors
        n, L, Lk, ud = ctx.shape
        Gf = torch.fft.rfft(g, n=n)
        du = dK = None
        if ctx.needs_input_grad[0]:
            du = torch.fft.irfft(Gf * Kf.conj(), n=n)[..., :L]
        if ctx.needs_input_grad[1]:
            P = Gf * Uf.conj()
            if ud > 2:
                P = P.sum(dim=tuple(range(ud - 2)))
            dK = torch.fft.irfft(P, n=n)[..., :Lk]
        return du, dK


def fft_conv_reference(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """fft_conv through plain autograd (the reference the custom backward is tested against)."""
    L = u.shape[-1]
    n = fast_fft_length(2 * max(L, K.shape[-1]))
    return torch.fft.irfft(torch.fft.rfft(u, n=n) * torch.fft.rfft(K, n=n), n=n)[..., :L]


# ---------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------

def _log_dt_init(H: int, dt_min: float, dt_max: float, generator=None) -> torch.Tensor:
    u = torch.rand(H, generator=generator, dtype=torch.float64)
    return u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def _randn_c(shape, generator=None) -> torch.Tensor:
    """Complex standard normal (real and imaginary parts each N(0, 1/2))."""
    re = torch.randn(shape, generator=generator, dtype=torch.float64)
    im = torch.randn(shape, generator=generator, dtype=torch.float64)
    return (re + 1j * im) / math.sqrt(2)


class _SSMBase(nn.Module):
    """Shared parts: Lambda (log(-Re), Im), B, true C, log Delta, D; all per channel."""

    # parameters in the low-lr, no-weight-decay optimiser group
    ssm_param_names = ("log_neg_lambda_re", "lambda_im", "b_re", "b_im", "log_dt")

    def __init__(self, d_model: int, d_state: int, Lam: np.ndarray, B: np.ndarray,
                 dt_min: float = 0.001, dt_max: float = 0.1, generator=None):
        super().__init__()
        if d_state % 2:
            raise ValueError("d_state must be even")
        H, M = d_model, d_state // 2
        self.d_model, self.d_state = H, d_state
        Lam = torch.as_tensor(np.broadcast_to(Lam, (H, M)).copy())
        B = torch.as_tensor(np.broadcast_to(B, (H, M)).copy())
        if torch.any(Lam.real >= 0):
            raise ValueError("Re Lambda must be negative")
        self.log_neg_lambda_re = nn.Parameter(torch.log(-Lam.real))
        self.lambda_im = nn.Parameter(Lam.imag.clone())
        self.b_re = nn.Parameter(B.real.clone())
        self.b_im = nn.Parameter(B.imag.clone())
        C = _randn_c((H, M), generator)
        self.c_re = nn.Parameter(C.real.clone())
        self.c_im = nn.Parameter(C.imag.clone())
        self.log_dt = nn.Parameter(_log_dt_init(H, dt_min, dt_max, generator))
        self.d = nn.Parameter(torch.randn(H, generator=generator, dtype=torch.float64))

    # complex views --------------------------------------------------------
    @property
    def Lam(self):
        return torch.complex(-torch.exp(self.log_neg_lambda_re), self.lambda_im)

    @property
    def B(self):
        return torch.complex(self.b_re, self.b_im)

    @property
    def C(self):
        return torch.complex(self.c_re, self.c_im)

    def dt(self, rate: float = 1.0):
        return torch.exp(self.log_dt) * rate

    # convolution mode -----------------------------------------------------
    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """u [B, H, L] -> y = Kbar * u + D u, [B, H, L]."""
        K = self.kernel(u.shape[-1], rate)
        return fft_conv(u, K) + self.d[:, None] * u

    # recurrent mode -------------------------------------------------------
    def step_setup(self, rate: float = 1.0) -> dict:
        raise NotImplementedError

    def default_state(self, batch: int) -> torch.Tensor:
        M = self.d_state // 2
        return torch.zeros(batch, self.d_model, M, dtype=complex_dtype(self.log_dt.dtype),
                           device=self.log_dt.device)

    def step(self, x, u, cache) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def scan(self, u: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Recurrent evaluation over a whole sequence, state zero at the start."""
        cache = self.step_setup(rate)
        x = self.default_state(u.shape[0])
        ys = []
        for t in range(u.shape[-1]):
            x, y = self.step(x, u[..., t], cache)
            ys.append(y)
        return torch.stack(ys, dim=-1)


class DPLRSSM(_SSMBase):
    """S4: A = Lambda - P P^H (tied), bilinear, Cauchy + Woodbury kernel."""

    ssm_param_names = _SSMBase.ssm_param_names + ("p_re", "p_im")
    discretization = "bilinear"

    def __init__(self, d_model: int, d_state: int, rank: int = 1, init: str = "legs",
                 b_clip: float | None = None, dt_min: float = 0.001, dt_max: float = 0.1,
                 generator=None):
        if init != "legs":
            raise ValueError("DPLR layer supports init='legs'")
        Lam, P, B, _ = nplr_legs(d_state, rank=rank, b_clip=b_clip)
        super().__init__(d_model, d_state, Lam, B, dt_min, dt_max, generator)
        H, M = d_model, d_state // 2
        P = torch.as_tensor(np.broadcast_to(P[:, None, :], (rank, H, M)).copy())
        self.rank = rank
        self.p_re = nn.Parameter(P.real.clone())
        self.p_im = nn.Parameter(P.imag.clone())

    @property
    def P(self):
        return torch.complex(self.p_re, self.p_im)

    def c_tilde(self, L: int, rate: float = 1.0, setup_dtype=torch.complex128):
        return c_tilde(self.Lam, self.P, self.B, self.C, self.dt(rate), L, setup_dtype)

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        Ct = self.c_tilde(L, rate)
        return dplr_kernel(self.Lam, self.P, self.B, Ct, self.dt(rate), L)

    def step_setup(self, rate: float = 1.0) -> dict:
        dt = self.dt(rate).to(self.Lam.dtype)[:, None]
        Lam, P = self.Lam, self.P
        Dn = 1.0 / (2.0 / dt - Lam)                         # [H, M]
        E = 2.0 / dt + Lam
        r = P.shape[0]
        Q = torch.eye(r, dtype=self.log_dt.dtype, device=Lam.device) + 2 * torch.einsum(
            "ahm,hm,bhm->hab", P.conj(), Dn, P).real       # [H, r, r]
        return dict(D=Dn, E=E, P=P, Qinv=torch.linalg.inv(Q), B2=2 * self.B, C=self.C,
                    d=self.d)

    def step(self, x, u, c):
        """One O(N r) Woodbury step. x [Z, H, M] complex, u [Z, H] real."""
        P = c["P"]
        t = 2 * torch.einsum("ahm,zhm->zha", P.conj(), x).real
        s = c["E"] * x - torch.einsum("ahm,zha->zhm", P, t.to(x.dtype)) + c["B2"] * u[..., None]
        w = 2 * torch.einsum("ahm,hm,zhm->zha", P.conj(), c["D"], s).real
        w = torch.einsum("hab,zhb->zha", c["Qinv"], w)
        x = c["D"] * (s - torch.einsum("ahm,zha->zhm", P, w.to(x.dtype)))
        y = 2 * torch.einsum("hm,zhm->zh", c["C"], x).real + c["d"] * u
        return x, y


class DiagSSM(_SSMBase):
    """S4D: diagonal A = Lambda, ZOH or bilinear, Vandermonde kernel."""

    def __init__(self, d_model: int, d_state: int, init: str = "lin",
                 discretization: str = "zoh", dt_min: float = 0.001, dt_max: float = 0.1,
                 generator=None):
        bank = None
        if init == "filterbank":
            bank = s4d_filterbank(d_model, d_state)
            Lam, B = bank[0], bank[1]
        elif init == "lin":
            Lam, B = s4d_lin(d_state), np.ones(d_state // 2, dtype=np.complex128)
        elif init == "inv":
            Lam, B = s4d_inv(d_state), np.ones(d_state // 2, dtype=np.complex128)
        elif init == "legs":
            Lam, _, B, _ = nplr_legs(d_state)
        else:
            raise ValueError(f"unknown init {init!r}")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"unknown discretization {discretization!r}")
        super().__init__(d_model, d_state, Lam, B, dt_min, dt_max, generator)
        self.discretization = discretization
        if bank is not None:
            with torch.no_grad():
                self.c_re.copy_(torch.as_tensor(bank[2].real))
                self.c_im.zero_()
                self.log_dt.copy_(torch.as_tensor(bank[3]))
                self.d.zero_()

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        return diag_kernel(self.Lam, self.B, self.C, self.dt(rate), L, self.discretization)

    def step_setup(self, rate: float = 1.0) -> dict:
        logA, Bbar = diag_discretize(self.Lam, self.B, self.dt(rate), self.discretization)
        return dict(A=torch.exp(logA), B=Bbar, C=self.C, d=self.d)

    def step(self, x, u, c):
        x = c["A"] * x + c["B"] * u[..., None]
        y = 2 * torch.einsum("hm,zhm->zh", c["C"], x).real + c["d"] * u
        return x, y
