"""Network conventions of model-format.md and step = convolution for the whole model."""

import math

import pytest
import torch
import torch.nn.functional as F

from s4train.models.flat import ModelConfig, S4Model


def tiny(kind="dplr", **kw):
    base = dict(d_model=4, d_state=8, n_layers=2, sample_rate=16000, clip_seconds=0.02,
                labels=["a", "b", "c"], input_mean=0.01, input_std=0.2, dropout=0.0)
    if kind == "dplr":
        base.update(kernel="dplr", discretization="bilinear", norm="layer", output="glu")
    else:
        base.update(kernel="diag", discretization="zoh", init="lin", norm="batch", output="linear")
    base.update(kw)
    m = S4Model(ModelConfig(**base), seed=0).double()
    if kind != "dplr":
        with torch.no_grad():
            for n in [b.norm for b in m.layers] + [m.final_norm]:
                n.running_mean.normal_(0, 0.3)
                n.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("kind", ["dplr", "diag"])
@pytest.mark.parametrize("step_scale", [1.0, 2.0, 0.5])
def test_model_recurrent_equals_convolution(kind, step_scale):
    m = tiny(kind)
    L = m.window_length(step_scale)
    x = 0.5 * torch.sin(torch.arange(L, dtype=torch.float64) * 0.07)[None]
    with torch.no_grad():
        lc, fc = m(x, step_scale, return_features=True)
        lr, fr = m(x, step_scale, recurrent=True, return_features=True)
    for k in fc:
        assert (fc[k] - fr[k]).abs().max() < 1e-10, k
    assert (lc - lr).abs().max() < 1e-10


def test_manual_forward_matches_spec():
    """Re-derive the forward pass by hand: normalisation, encoder, pre-norm blocks with
    LayerNorm (biased variance, eps inside sqrt), erf-GELU, GLU (value first, gate second),
    final norm, mean over time, decoder."""
    m = tiny("dplr")
    cfg = m.cfg
    L = m.window_length()
    x = torch.linspace(-0.9, 0.9, L, dtype=torch.float64)[None]
    h = (x - cfg.input_mean) / cfg.input_std
    h = h[..., None] * m.encoder.weight[:, 0] + m.encoder.bias
    for blk in m.layers:
        mu = h.mean(-1, keepdim=True)
        var = ((h - mu) ** 2).mean(-1, keepdim=True)
        z = (h - mu) / torch.sqrt(var + cfg.norm_eps) * blk.norm.weight + blk.norm.bias
        z = blk.ssm(z.transpose(1, 2)).transpose(1, 2)
        z = 0.5 * z * (1 + torch.erf(z / math.sqrt(2)))
        z = z @ blk.out.weight.T + blk.out.bias
        H = cfg.d_model
        z = z[..., :H] * torch.sigmoid(z[..., H:])
        h = h + z
    mu = h.mean(-1, keepdim=True)
    var = ((h - mu) ** 2).mean(-1, keepdim=True)
    h = (h - mu) / torch.sqrt(var + cfg.norm_eps) * m.final_norm.weight + m.final_norm.bias
    logits = h.mean(1) @ m.decoder.weight.T + m.decoder.bias
    with torch.no_grad():
        assert (m(x) - logits).abs().max() < 1e-12


def test_batchnorm_eval_is_affine():
    m = tiny("diag")
    n = m.layers[0].norm
    h = torch.randn(2, 5, 4, dtype=torch.float64)
    ref = (h - n.running_mean) / torch.sqrt(n.running_var + n.eps) * n.weight + n.bias
    from s4train.modules.block import apply_norm
    assert (apply_norm(n, h) - ref).abs().max() < 1e-12


def test_short_input_is_zero_padded_in_raw_domain():
    m = tiny("dplr")
    W = m.window_length(2.0)
    x = torch.randn(1, W - 37, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(m(x, 2.0), m(F.pad(x, (0, 37)), 2.0))
        assert not torch.allclose(m(x, 2.0), m(F.pad(x, (0, 37), value=m.cfg.input_mean), 2.0))
