"""The stages network (format 2): both modes equal, frames in seconds, Delta rescaling, export."""

import json
import math

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from s4train.data.augment import AugmentConfig, FrameMask
from s4train.export import export_model, load_model, read_header
from s4train.fixtures import test_signal as signal_at
from s4train.models.stages import FrameStageConfig, StagesConfig, StagesModel, param_groups
from s4train.ops.conv import bank_conv, fft_conv_reference
from s4train.ops.frames import frame_bounds, pool_frames, pool_frames_loop, samples_per_frame


def tiny_stages(front="diag", frame="diag", clip_seconds=0.1, **kw):
    fs = FrameStageConfig(d_model=6, n_layers=2, d_state=4, kernel=frame,
                            discretization="bilinear" if frame == "dplr" else "zoh",
                            init="legs" if frame == "dplr" else "lin",
                            norm="batch" if frame == "dplr" else "layer",
                            output="linear" if frame == "dplr" else "glu")
    base = dict(front_width=4, front_state=8, front_kernel=front,
                front_discretization="bilinear" if front == "dplr" else "zoh",
                front_init="legs" if front == "dplr" else "filterbank",
                rectifier="abs" if front == "dplr" else "square", frame_stages=[fs],
                clip_seconds=clip_seconds, labels=["a", "b", "c"], input_mean=0.01, input_std=0.2,
                dropout=0.0)
    base.update(kw)
    m = StagesModel(StagesConfig(**base), seed=0).double()
    with torch.no_grad():   # every term of the stage-0 map and the norms nontrivial
        m.front_end.encoder.weight.uniform_(0.8, 1.2)
        m.front_end.encoder.bias.normal_(0, 0.05)
        m.front_end.ssm.d.normal_(0, 0.1)
        for n in [m.pooling.norm] + [b.norm for st in m.stages[1:] for b in st.layers] + [m.final_norm]:
            if isinstance(n, torch.nn.BatchNorm1d):
                n.running_mean.normal_(0, 0.3)
                n.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("front,frame", [("diag", "diag"), ("dplr", "dplr")])
@pytest.mark.parametrize("f_hz", [16000, 44100, 11025])
def test_recurrent_equals_convolution(front, frame, f_hz):
    m = tiny_stages(front, frame)
    step_scale = 16000 / f_hz
    L = m.window_length(step_scale)
    x = torch.from_numpy(signal_at(np.arange(L) / f_hz))[None]
    with torch.no_grad():
        lc, fc = m(x, step_scale, return_features=True)
        lr, fr = m(x, step_scale, recurrent=True, return_features=True)
    assert fc.keys() == fr.keys() and fc["frames"].shape[1] == int(0.1 * f_hz / (0.01 * f_hz)) - (f_hz == 11025)
    for k in fc:
        assert (fc[k] - fr[k]).abs().max() < 1e-10, k
    assert (lc - lr).abs().max() < 1e-10


def test_fractional_frame_boundaries():
    assert samples_per_frame(0.01, 11025) == 110.25
    assert samples_per_frame(0.01, 44100) == 441.0
    assert samples_per_frame(0.01, 22050) == 220.5
    b = frame_bounds(11025, 0.01, 11025)
    assert len(b) == 101 and b[0] == 0 and b[-1] == 11025
    assert b[4] == 441 and set(np.diff(b)) == {110, 111}
    n = np.arange(11025)
    frame_of = np.searchsorted(b, n, side="right") - 1
    assert np.array_equal(frame_of, np.floor(n / 110.25).astype(int))   # sample n in frame n // (tau f)
    # a trailing partial frame is dropped: 2756 samples hold 24 frames (b_25 = 2757)
    assert len(frame_bounds(2756, 0.01, 11025)) == 25
    assert len(frame_bounds(2757, 0.01, 11025)) == 26
    # whole-sample frames: reshape pooling = cumulative-sum pooling = frame-by-frame pooling
    r = torch.rand(2, 3, 4410, dtype=torch.float64)
    for f in (44100, 16000, 11025, 8000):
        a = pool_frames(r, 0.01, f)
        c = pool_frames_loop(r, 0.01, f)
        assert a.shape == c.shape and (a - c).abs().max() < 1e-12, f
    # tau * f rounded to 1e-9: 0.01 * 44100.000000001 Hz is still 441 samples
    assert samples_per_frame(0.01, 16000 / (16000 / 44100)) == 441.0


def test_bank_conv_and_its_gradient():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(3, 50, generator=g, dtype=torch.float64, requires_grad=True)
    K = torch.randn(4, 50, generator=g, dtype=torch.float64, requires_grad=True)
    y = bank_conv(u, K)
    want = fft_conv_reference(u[:, None, :].expand(3, 4, 50), K)
    assert (y - want).abs().max() < 1e-12
    assert torch.autograd.gradcheck(bank_conv, (u, K))


def test_delta_rescaling_keeps_frames_across_rates():
    """The same band-limited signal at 16 kHz and at 8/44.1/48 kHz gives close log frames when
    stage 0's Delta follows the step_scale, and clearly different ones when it does not."""
    cfg = StagesConfig(front_width=16, front_state=16, front_f_max=3000.0,
                         frame_stages=[FrameStageConfig(d_model=8, n_layers=1, d_state=4)],
                         clip_seconds=0.5, labels=["a", "b"], input_std=0.3, dropout=0.0)
    m = StagesModel(cfg, seed=0).double().eval()

    def pooled(f_hz, scaled):
        x = torch.from_numpy(signal_at(np.arange(int(0.5 * f_hz)) / f_hz))[None]
        feats = {}
        with torch.no_grad():
            m.frames(x, 16000 / f_hz if scaled else 1.0, feats=feats)
        return feats["pooled"][0, 5:]          # skip the filters' onset

    ref = pooled(16000, True)
    for f in (8000, 44100, 48000):
        same = (pooled(f, True) - ref).abs().mean().item()
        other = pooled(f, False)
        n = min(len(other), len(ref))
        diff = (other[:n] - ref[:n]).abs().mean().item()
        assert same < 0.1 and diff > 1.0, (f, same, diff)


def test_front_end_freezing_and_fixed_encoder():
    m = StagesModel(StagesConfig(front_width=4, front_state=4,
                                     frame_stages=[FrameStageConfig(d_model=6, n_layers=1, d_state=4)],
                                     clip_seconds=0.05, labels=["a", "b"]), seed=0)
    assert torch.all(m.front_end.encoder.weight == 1) and torch.all(m.front_end.encoder.bias == 0)
    assert not any(p.requires_grad for p in m.front_end.encoder.parameters())
    names = {n for g in param_groups(m, 1e-3, 0.05, 1e-4) for n in [g["name"]]}
    assert names == {"main", "no_wd", "ssm"}
    x = 0.1 * torch.randn(2, 800)
    m.train()
    m.set_front_end_trainable(False)
    m(x).sum().backward()
    assert all(p.grad is None for p in m.front_end.parameters())
    assert m.pooling.norm.weight.grad is not None and m.decoder.weight.grad is not None
    m.zero_grad()
    m.set_front_end_trainable(True)
    m(x).sum().backward()
    assert all(p.grad is not None for p in m.front_end.layers.parameters())
    assert m.front_end.encoder.weight.grad is None


def test_frame_masks_only_in_training():
    m = tiny_stages()
    m.frame_mask = FrameMask(AugmentConfig(time_masks=2, time_mask_max=3, channel_masks=2, channel_mask_max=2),
                             torch.Generator().manual_seed(0))
    x = torch.from_numpy(signal_at(np.arange(1600) / 16000))[None].repeat(4, 1)
    z = torch.randn(4, 10, 4)
    zm = m.frame_mask(z)
    assert (zm == 0).any() and ((zm == z) | (zm == 0)).all()
    with torch.no_grad():
        a, b = m(x), m(x)
    assert torch.equal(a, b)


KEYS = ["format", "labels", "sample_rate", "input_mean", "input_std", "clip_seconds", "stages",
        "pooling", "head", "trained_on", "metrics"]


@pytest.mark.parametrize("front,frame", [("diag", "diag"), ("dplr", "dplr")])
def test_export_round_trip(front, frame, tmp_path):
    m = tiny_stages(front, frame)
    path = str(tmp_path / "m.safetensors")
    export_model(m, path, trained_on={"x": 1}, metrics={"acc": 0.5})
    hdr = read_header(path)
    meta = json.loads(hdr["__metadata__"]["s4"])
    assert list(meta) == KEYS and meta["format"] == 2
    s0, s1 = meta["stages"]
    want0 = {"clock": "input", "d_model": 4, "n_layers": 1, "d_state": 8, "bank": True,
             "kernel": front, "discretization": "bilinear" if front == "dplr" else "zoh"}
    if front == "dplr":
        want0["rank"] = 1
    assert s0 == want0
    want1 = {"clock": "frames", "d_model": 6, "n_layers": 2, "d_state": 4, "bank": False,
             "kernel": frame, "discretization": "bilinear" if frame == "dplr" else "zoh",
             "norm": "batch" if frame == "dplr" else "layer", "norm_eps": 1e-5,
             "activation": "gelu", "output": "linear" if frame == "dplr" else "glu"}
    if frame == "dplr":
        want1["rank"] = 1
    assert s1 == want1
    assert meta["pooling"] == {"frame_seconds": 0.01, "log_floor": 1e-8,
                               "rectifier": "abs" if front == "dplr" else "square"}
    assert meta["head"] == {"norm": want1["norm"], "norm_eps": 1e-5, "pooling": "mean"}
    H0, M0, H1, M1, K = 4, 4, 6, 2, 3
    O = H1 if frame == "dplr" else 2 * H1
    want = {"stages.0.encoder.weight": [H0, 1], "stages.0.encoder.bias": [H0],
            "stages.0.layers.0.ssm.log_dt": [H0], "stages.0.layers.0.ssm.d": [H0],
            "stages.1.encoder.weight": [H1, H0], "stages.1.encoder.bias": [H1],
            "final_norm.weight": [H1], "final_norm.bias": [H1],
            "decoder.weight": [K, H1], "decoder.bias": [K]}
    for n in ("lambda", "b", "c"):
        want[f"stages.0.layers.0.ssm.{n}_re"] = want[f"stages.0.layers.0.ssm.{n}_im"] = [H0, M0]
    if front == "dplr":
        want["stages.0.layers.0.ssm.p_re"] = want["stages.0.layers.0.ssm.p_im"] = [1, H0, M0]
    for k in ("weight", "bias", "running_mean", "running_var"):
        want[f"pooling.norm.{k}"] = [H0]
    for i in range(2):
        p = f"stages.1.layers.{i}"
        want.update({f"{p}.norm.weight": [H1], f"{p}.norm.bias": [H1], f"{p}.ssm.log_dt": [H1],
                     f"{p}.ssm.d": [H1], f"{p}.out.weight": [O, H1], f"{p}.out.bias": [O]})
        for n in ("lambda", "b", "c"):
            want[f"{p}.ssm.{n}_re"] = want[f"{p}.ssm.{n}_im"] = [H1, M1]
        if frame == "dplr":
            want[f"{p}.ssm.p_re"] = want[f"{p}.ssm.p_im"] = [1, H1, M1]
            want[f"{p}.norm.running_mean"] = want[f"{p}.norm.running_var"] = [H1]
    if frame == "dplr":
        want["final_norm.running_mean"] = want["final_norm.running_var"] = [H1]
    got = {k: v["shape"] for k, v in hdr.items() if k != "__metadata__"}
    assert got == want
    assert all(v["dtype"] == "F32" for k, v in hdr.items() if k != "__metadata__")
    t = load_file(path)
    s = m.stages[1].layers[1].ssm
    assert np.array_equal(t["stages.1.layers.1.ssm.c_re"], s.c_re.detach().numpy().astype(np.float32))
    assert np.all(t["stages.0.layers.0.ssm.lambda_re"] < 0)
    m2, meta2 = load_model(path)
    assert meta2 == meta and isinstance(m2, StagesModel)
    x = torch.from_numpy(signal_at(np.arange(m.window_length()) / 16000))[None]
    with torch.no_grad():
        assert (m(x) - m2(x)).abs().max() < 1e-4
        x11 = torch.from_numpy(signal_at(np.arange(m.window_length(16000 / 11025)) / 11025))[None]
        assert (m(x11, 16000 / 11025) - m2(x11, 16000 / 11025)).abs().max() < 1e-4
    # a file missing a tensor is refused by name
    from safetensors.numpy import save_file
    del t["pooling.norm.running_var"]
    bad = str(tmp_path / "bad.safetensors")
    save_file(t, bad, metadata={"s4": json.dumps(meta)})
    with pytest.raises(ValueError, match="pooling.norm.running_var"):
        load_model(bad)


def test_float32_training_step_is_finite():
    cfg = StagesConfig(front_width=8, front_state=8,
                         frame_stages=[FrameStageConfig(d_model=8, n_layers=2, d_state=8)],
                         clip_seconds=0.2, labels=["a", "b", "c"], dropout=0.1)
    m = StagesModel(cfg, seed=1)
    m.frame_mask = FrameMask(AugmentConfig())
    opt = torch.optim.AdamW(param_groups(m, 1e-3, 0.05, 1e-3))
    x = 0.2 * torch.randn(4, 4410)
    loss = torch.nn.functional.cross_entropy(m(x, 16000 / 22050), torch.tensor([0, 1, 2, 0]))
    loss.backward()
    opt.step()
    assert math.isfinite(loss.item())
