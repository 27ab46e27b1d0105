"""SSM maths: NPLR init, Cauchy+Woodbury kernel, step = convolution, step_scale."""

import math

import numpy as np
import pytest
import torch

from s4train.modules import ssm
from s4train.ops import conv, init, kernels


def _perturbed_dplr(H=3, N=8, rank=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    m = ssm.DPLRSSM(H, N, rank=rank, generator=g).double()
    with torch.no_grad():
        m.log_neg_lambda_re.add_(0.3 * torch.randn(m.log_neg_lambda_re.shape, generator=g, dtype=torch.float64))
        m.p_re.add_(0.2 * torch.randn(m.p_re.shape, generator=g, dtype=torch.float64))
        m.p_im.add_(0.2 * torch.randn(m.p_im.shape, generator=g, dtype=torch.float64))
        m.b_im.add_(0.2 * torch.randn(m.b_im.shape, generator=g, dtype=torch.float64))
        m.log_dt.copy_(torch.linspace(math.log(0.001), math.log(0.1), H, dtype=torch.float64))
    return m


def _dense_kernel(Abar, Bbar, C, L):
    """Kbar_k = C_full^T Abar^k Bbar by explicit powers of the dense matrix."""
    Cf = kernels.full(C)
    x, out = Bbar, []
    for _ in range(L):
        out.append(torch.einsum("hn,hn->h", Cf, x))
        x = torch.einsum("hnm,hm->hn", Abar, x)
    K = torch.stack(out, -1)
    assert K.imag.abs().max() < 1e-12
    return K.real


@pytest.mark.parametrize("N", [8, 16, 64])
def test_nplr_reconstructs_legs(N):
    A, B, P = init.hippo_legs(N)
    Lam, Pt, Bt, V = init.nplr_legs(N)
    assert Lam.shape == (N // 2,) and Pt.shape == (1, N // 2)
    assert np.allclose(Lam.real, -0.5) and np.all(Lam.imag < 0)
    Vf = np.concatenate([V, V.conj()], axis=1)
    assert np.allclose(Vf.conj().T @ Vf, np.eye(N), atol=1e-10)
    Lf = np.concatenate([Lam, Lam.conj()])
    pf = np.concatenate([Pt[0], Pt[0].conj()])
    A_rec = Vf @ (np.diag(Lf) - np.outer(pf, pf.conj())) @ Vf.conj().T
    assert np.abs(A_rec - A).max() < 1e-9 * np.abs(A).max()
    assert np.allclose(Vf @ np.concatenate([Bt, Bt.conj()]), B, atol=1e-9)
    # B clipping only touches Im B~
    _, _, Btc, _ = init.nplr_legs(N, b_clip=2.0)
    assert np.allclose(Btc.real, Bt.real) and np.abs(Btc.imag).max() <= 2.0


def test_s4d_inits():
    assert np.allclose(init.s4d_lin(8), -0.5 - 1j * np.pi * np.arange(4))
    n = np.arange(4)
    assert np.allclose(init.s4d_inv(8), -0.5 - 1j * (8 / np.pi) * (8 / (2 * n + 1) - 1))


def test_filterbank_init_is_a_band_pass_bank():
    """Each channel of the filterbank layer passes its own ERB band: its kernel's magnitude
    response peaks within one bandwidth of the channel centre with gain 1, the centres rise
    from 60 Hz to 4 kHz, D = 0, and at 48 kHz (Delta / 3) the response is the same filter."""
    H, N, fs = 12, 16, 16000
    m = ssm.DiagSSM(H, N, init="filterbank", discretization="zoh").double()
    fc = np.exp(m.log_dt.detach().numpy()) * fs / (2 * np.pi)
    assert abs(fc[0] - 60) < 1e-9 and abs(fc[-1] - 4000) < 1e-9 and np.all(np.diff(fc) > 0)
    assert torch.all(m.d == 0) and torch.all(m.c_im == 0)
    # ZOH holds each input sample, which scales the response by about sinc(f / f_s): at 16 kHz
    # the 4 kHz channel loses 10% that the normalisation gave back; at 48 kHz it loses 1%.
    for step_scale, L, rtol in [(1.0, fs, 0.02), (1 / 3, 3 * fs, 0.12)]:
        with torch.no_grad():
            K = m.kernel(L, step_scale).numpy()
        F = np.abs(np.fft.rfft(K, axis=-1))
        f = np.fft.rfftfreq(L, 1 / (fs / step_scale))
        peak = f[F.argmax(-1)]
        erb = 24.7 * (4.37e-3 * fc + 1)
        assert np.all(np.abs(peak - fc) < erb), (peak, fc)
        assert np.allclose(F.max(-1), 1.0, rtol=rtol)


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("L,step_scale", [(1, 1.0), (2, 1.0), (7, 1.0), (64, 1.0), (257, 2.0), (300, 0.37)])
def test_dplr_kernel_equals_dense_powers(rank, L, step_scale):
    m = _perturbed_dplr(rank=rank)
    with torch.no_grad():
        K = m.kernel(L, step_scale)
        Abar, Bbar = kernels.dense_bilinear(m.Lam, m.P, m.B, m.dt(step_scale))
        Kd = _dense_kernel(Abar, Bbar, m.C, L)
    assert K.dtype == torch.float64 and K.shape == (3, L)
    assert (K - Kd).abs().max() < 1e-10 * max(1.0, Kd.abs().max())


def test_dense_bilinear_matches_formula():
    m = _perturbed_dplr()
    dt = m.dt(1.0).detach()
    Abar, Bbar = kernels.dense_bilinear(m.Lam, m.P, m.B, dt)
    Lf, Pf = kernels.full(m.Lam), kernels.full(m.P)[0]
    for h in range(3):
        A = torch.diag(Lf[h]) - torch.outer(Pf[h], Pf[h].conj())
        I = torch.eye(8, dtype=A.dtype)
        lhs = I - dt[h] / 2 * A
        assert torch.allclose(Abar[h], torch.linalg.solve(lhs, I + dt[h] / 2 * A), atol=1e-12)
        assert torch.allclose(Bbar[h], torch.linalg.solve(lhs, dt[h] * kernels.full(m.B)[h]), atol=1e-12)


def test_c_tilde_correction_matters():
    """With C instead of C~ the truncated generating function is wrong when |Abar^L| is not tiny."""
    m = _perturbed_dplr()
    L = 50
    with torch.no_grad():
        K = m.kernel(L)
        wrong = kernels.dplr_kernel(m.Lam, m.P, m.B, m.C, m.dt(), L)
    assert (K - wrong).abs().max() > 1e-3


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("step_scale", [1.0, 2.0, 1 / 3])
def test_dplr_step_equals_convolution(rank, step_scale):
    m = _perturbed_dplr(rank=rank)
    u = torch.randn(2, 3, 200, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = m(u, step_scale)
    ys = m.scan(u, step_scale)
    assert (y - ys).abs().max() < 1e-10 * max(1.0, y.abs().max())


@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("init", ["lin", "inv", "legs"])
def test_diag_kernel_and_step(disc, init):
    g = torch.Generator().manual_seed(3)
    m = ssm.DiagSSM(3, 8, init=init, discretization=disc, generator=g).double()
    L, step_scale = 150, 2.0
    with torch.no_grad():
        K = m.kernel(L, step_scale)
        logA, Bbar = kernels.diag_discretize(m.Lam, m.B, m.dt(step_scale), disc)
        Abar = torch.exp(logA)
        # explicit powers
        x, Ks = Bbar, []
        for _ in range(L):
            Ks.append(2 * (m.C * x).sum(-1).real)
            x = Abar * x
        assert (K - torch.stack(Ks, -1)).abs().max() < 1e-10 * max(1.0, K.abs().max())
        dtl = m.dt(step_scale)[:, None] * m.Lam
        if disc == "zoh":
            assert torch.allclose(Abar, torch.exp(dtl), atol=1e-14)
        else:
            assert torch.allclose(Abar, (1 + dtl / 2) / (1 - dtl / 2), atol=1e-14)
        u = torch.randn(2, 3, L, dtype=torch.float64, generator=g)
        y = m(u, step_scale)
    ys = m.scan(u, step_scale)
    assert (y - ys).abs().max() < 1e-10 * max(1.0, y.abs().max())


def test_fft_conv_is_causal_linear_convolution():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(2, 3, 33, dtype=torch.float64, generator=g)
    K = torch.randn(3, 33, dtype=torch.float64, generator=g)
    y = conv.fft_conv(u, K)
    for b in range(2):
        for h in range(3):
            ref = np.convolve(u[b, h].numpy(), K[h].numpy())[:33]
            assert np.abs(y[b, h].numpy() - ref).max() < 1e-12


@pytest.mark.parametrize("shape", [((2, 3, 33), (3, 33)), ((2, 3, 40), (3, 17)), ((3, 29), (3, 29)),
                                   ((2, 2, 3, 31), (3, 31))])
def test_fft_conv_custom_backward_matches_autograd(shape):
    g = torch.Generator().manual_seed(1)
    u = torch.randn(*shape[0], dtype=torch.float64, generator=g, requires_grad=True)
    K = torch.randn(*shape[1], dtype=torch.float64, generator=g, requires_grad=True)
    w = torch.randn(*shape[0], dtype=torch.float64, generator=g)
    du, dK = torch.autograd.grad((conv.fft_conv(u, K) * w).sum(), (u, K))
    ru, rK = torch.autograd.grad((conv.fft_conv_reference(u, K) * w).sum(), (u, K))
    assert (du - ru).abs().max() < 1e-12 and (dK - rK).abs().max() < 1e-12
    assert torch.autograd.gradcheck(conv.fft_conv, (u, K))


def test_fast_fft_length():
    def smooth(k):
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        return k == 1

    for n in [1, 2, 7, 66, 30392, 32000, 88356]:
        m = conv.fast_fft_length(n)
        assert m >= n and smooth(m) and not any(smooth(k) for k in range(n, m))
    assert conv.fast_fft_length(30392) == 30720 and conv.fast_fft_length(32000) == 32000


@pytest.mark.parametrize("cls", ["dplr", "diag"])
def test_rate_scales_delta(cls):
    """step_scale multiplies Delta: kernel(L, step_scale) == kernel(L, 1) with log_dt + log(step_scale)."""
    m = _perturbed_dplr() if cls == "dplr" else ssm.DiagSSM(3, 8).double()
    with torch.no_grad():
        K2 = m.kernel(100, 2.5)
        m.log_dt.add_(math.log(2.5))
        K1 = m.kernel(100, 1.0)
    assert (K2 - K1).abs().max() < 1e-12


@pytest.mark.parametrize("cls", ["dplr", "diag"])
def test_rate_change_sanity(cls):
    """A band-limited signal at 16 kHz vs the same signal at 8 kHz: with Delta*2 the
    outputs agree closely; with Delta unchanged they do not."""
    if cls == "dplr":
        m = _perturbed_dplr(H=4, N=16)
    else:
        m = ssm.DiagSSM(4, 16, init="inv").double()
    with torch.no_grad():
        m.log_dt.copy_(torch.log(torch.tensor([0.001, 0.002, 0.004, 0.008], dtype=torch.float64)))

    def sig(t):
        return np.sin(2 * np.pi * 150 * t) + 0.5 * np.sin(2 * np.pi * 410 * t + 1) + 0.3 * np.sin(2 * np.pi * 900 * t)

    x16 = torch.from_numpy(sig(np.arange(4000) / 16000))[None, None].expand(1, 4, -1)
    x8 = torch.from_numpy(sig(np.arange(2000) / 8000))[None, None].expand(1, 4, -1)
    with torch.no_grad():
        y16 = m(x16, 1.0)[..., ::2]
        good = m(x8, 2.0)
        bad = m(x8, 1.0)
    scale = y16.abs().max()
    assert (good - y16).abs().max() / scale < 0.08
    assert (bad - y16).abs().max() / scale > 0.3


@pytest.mark.parametrize("cls", ["dplr", "diag"])
def test_float32_close_to_float64_and_differentiable(cls):
    torch.manual_seed(0)
    m = ssm.DPLRSSM(4, 16) if cls == "dplr" else ssm.DiagSSM(4, 16)
    m32 = m.float()
    u = torch.randn(2, 4, 1000)
    y32 = m32(u, 1.5)
    y64 = m.double()(u.double(), 1.5).detach()
    assert (y32.double() - y64).abs().max() < 1e-4 * y64.abs().max()
    m.float()
    y = m(u, 1.5)
    y.pow(2).mean().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
