"""Causal FFT convolutions with hand-written backward passes: one kernel per channel
(`fft_conv`, the frame blocks) and one input through a bank of kernels (`bank_conv`, the
stages network's front end)."""

from __future__ import annotations

import torch


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
class _BankConv(torch.autograd.Function):
    """y[b, h] = K_h * u_b (causal), u [B, L], K [H, Lk] -> [B, H, L]. The input's spectrum is
    computed once per clip (not once per channel); the backward is written out (two real FFT
    passes) and skips the input's gradient unless it is needed. Batched in chunks of clips to
    bound the size of the complex [chunk, H, n/2+1] products."""

    CHUNK = 8

    @staticmethod
    def forward(ctx, u, K):
        L, Lk = u.shape[-1], K.shape[-1]
        n = fast_fft_length(L + Lk - 1)
        Uf = torch.fft.rfft(u, n=n)                                  # [B, J]
        Kf = torch.fft.rfft(K, n=n)                                  # [H, J]
        B, H = u.shape[0], K.shape[0]
        y = u.new_empty(B, H, L)
        for i in range(0, B, _BankConv.CHUNK):
            y[i:i + _BankConv.CHUNK] = torch.fft.irfft(Uf[i:i + _BankConv.CHUNK, None, :] * Kf, n=n)[..., :L]
        ctx.save_for_backward(Uf if ctx.needs_input_grad[1] else None,
                              Kf if ctx.needs_input_grad[0] else None)
        ctx.shape = (n, L, Lk)
        return y

    @staticmethod
    def backward(ctx, g):
        Uf, Kf = ctx.saved_tensors
        n, L, Lk = ctx.shape
        du = dK = None
        dKf = None
        dus = []
        for i in range(0, g.shape[0], _BankConv.CHUNK):
            Gf = torch.fft.rfft(g[i:i + _BankConv.CHUNK], n=n)       # [c, H, J]
            if ctx.needs_input_grad[1]:
                part = (Gf * Uf[i:i + _BankConv.CHUNK, None, :].conj()).sum(0)   # (einsum: slow bmm)
                dKf = part if dKf is None else dKf + part
            if ctx.needs_input_grad[0]:
                dus.append(torch.fft.irfft((Gf * Kf.conj()).sum(1), n=n)[..., :L])
        if ctx.needs_input_grad[1]:
            dK = torch.fft.irfft(dKf, n=n)[..., :Lk]
        if ctx.needs_input_grad[0]:
            du = torch.cat(dus)
        return du, dK


def bank_conv(u: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    return _BankConv.apply(u, K)
