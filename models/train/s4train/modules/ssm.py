"""The S4 layers: DPLRSSM (S4: A = Lambda - P P^H, bilinear, Cauchy + Woodbury kernel) and
DiagSSM (S4D: diagonal A, ZOH or bilinear, Vandermonde kernel).

Each layer holds continuous-time parameters (Lambda as log(-Re) and Im, so Re Lambda < 0; B; the
true C; log Delta; D), all per channel, and computes the same function two ways: convolution
mode (training) and recurrent mode (one O(N) step per sample, as the Swift engine streams).
`step_scale` = f_train / f_in multiplies Delta: a layer trained at 16 kHz hears 8 kHz input with
step_scale 2, and the kernel has as many taps as the input has samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from s4train.ops.conv import fft_conv
from s4train.ops.init import nplr_legs, s4d_filterbank, s4d_inv, s4d_lin
from s4train.ops.kernels import c_tilde, complex_dtype, diag_discretize, diag_kernel, dplr_kernel


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

    def dt(self, step_scale: float = 1.0):
        return torch.exp(self.log_dt) * step_scale

    # convolution mode -----------------------------------------------------
    def kernel(self, L: int, step_scale: float = 1.0) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, u: torch.Tensor, step_scale: float = 1.0) -> torch.Tensor:
        """u [B, H, L] -> y = Kbar * u + D u, [B, H, L]."""
        K = self.kernel(u.shape[-1], step_scale)
        return fft_conv(u, K) + self.d[:, None] * u

    # recurrent mode -------------------------------------------------------
    def step_setup(self, step_scale: float = 1.0) -> dict:
        raise NotImplementedError

    def default_state(self, batch: int) -> torch.Tensor:
        M = self.d_state // 2
        return torch.zeros(batch, self.d_model, M, dtype=complex_dtype(self.log_dt.dtype),
                           device=self.log_dt.device)

    def step(self, x, u, cache) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def scan(self, u: torch.Tensor, step_scale: float = 1.0) -> torch.Tensor:
        """Recurrent evaluation over a whole sequence, state zero at the start."""
        cache = self.step_setup(step_scale)
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

    def c_tilde(self, L: int, step_scale: float = 1.0, setup_dtype=torch.complex128):
        return c_tilde(self.Lam, self.P, self.B, self.C, self.dt(step_scale), L, setup_dtype)

    def kernel(self, L: int, step_scale: float = 1.0) -> torch.Tensor:
        Ct = self.c_tilde(L, step_scale)
        return dplr_kernel(self.Lam, self.P, self.B, Ct, self.dt(step_scale), L)

    def step_setup(self, step_scale: float = 1.0) -> dict:
        dt = self.dt(step_scale).to(self.Lam.dtype)[:, None]
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

    def kernel(self, L: int, step_scale: float = 1.0) -> torch.Tensor:
        return diag_kernel(self.Lam, self.B, self.C, self.dt(step_scale), L, self.discretization)

    def step_setup(self, step_scale: float = 1.0) -> dict:
        logA, Bbar = diag_discretize(self.Lam, self.B, self.dt(step_scale), self.discretization)
        return dict(A=torch.exp(logA), B=Bbar, C=self.C, d=self.d)

    def step(self, x, u, c):
        x = c["A"] * x + c["B"] * u[..., None]
        y = 2 * torch.einsum("hm,zhm->zh", c["C"], x).real + c["d"] * u
        return x, y
