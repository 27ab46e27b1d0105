"""Generate the Swift engine's test fixtures (deterministic; `make fixtures`).

    python -m s4train fixtures [--out ../../Tests/S4CoreTests/Fixtures]

For each tiny model it writes `<name>.safetensors` (the model file) and
`<name>.reference.safetensors` (float64 tensors computed by this code in float64
convolution mode from the float32 weights stored in the model file):

    input_16000 [4000], input_8000 [2000]   the same band-limited signal at 16/8 kHz
    rate_R.encoder [L, H]                   after the encoder (R = 16000, 8000)
    rate_R.layers.i [L, H]                  residual stream after block i
    rate_R.final_norm [L, H]
    rate_R.logits [K]
    rate_R.kernel.i [H, L]                  SSM kernel Kbar of layer i at that rate (no D)

The step scale is sample_rate / R (1 at 16 kHz, 2 at 8 kHz). Before writing, the
recurrent (step) mode is checked against the convolution mode (~1e-10).

The two-stage (format 2) models stages_diag and stages_dplr get, for R = 16000 and 11025
(11.025 kHz: frames of 110.25 samples, a trailing partial frame dropped):

    input_R [round(0.25 R)]                 the same test signal at R
    rate_R.stage0 [L, H0]                   stage 0's output (the bank, before rectifying)
    rate_R.frames [F, H0]                   the log frames after the pooling norm
    rate_R.final_norm [F, H1]               the last stage after the final norm
    rate_R.logits [K]

stages_frame is stages_diag's network with a streaming head (`head.pooling: "frame"`, labels
alpha, beta, gamma, _nothing_, head.window_frames 3): the same keys, but rate_R.logits is [F, K],
at every frame of one run from a zero state the mean of the decoder's logits of the last three
frames (frame k's after the samples of frames 0..k).
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import torch
from safetensors.numpy import save_file

from s4train.export import export_model, load_model
from s4train.models.flat import ModelConfig, S4Model
from s4train.models.stages import FrameStageConfig, StagesConfig, StagesModel

DEFAULT_OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                            "Tests", "S4CoreTests", "Fixtures"))
# What the committed fixtures record as their maker and their rate convention (in their bytes).
GENERATOR = "make_fixtures.py"
RATE_NOTE = {"rate": "sample_rate / R"}
SEED = 20240521
RATES = (16000, 8000)
STAGES_RATES = (16000, 11025)
STEP_TOL = 1e-10


def test_signal(t: np.ndarray) -> np.ndarray:
    """A fixed band-limited continuous-time signal (all content below 3 kHz), |x| < 1.

    Four tones plus 'filtered noise' made of 48 low-amplitude tones with random
    frequencies in [60, 2900] Hz, under a slow raised-cosine envelope. Defined in
    continuous time, so every sampling rate sees the same signal.
    """
    rng = np.random.default_rng(12345)
    x = (0.30 * np.sin(2 * np.pi * 220.0 * t + 0.3)
         + 0.20 * np.sin(2 * np.pi * 587.0 * t + 1.1)
         + 0.15 * np.sin(2 * np.pi * 1250.0 * t + 2.0)
         + 0.10 * np.sin(2 * np.pi * 2700.0 * t + 0.7))
    f = rng.uniform(60.0, 2900.0, 48)
    ph = rng.uniform(0, 2 * np.pi, 48)
    a = rng.uniform(0.005, 0.02, 48)
    x = x + (a[:, None] * np.sin(2 * np.pi * f[:, None] * t[None, :] + ph[:, None])).sum(0)
    env = 0.6 + 0.4 * np.cos(2 * np.pi * 3.0 * t)          # 3 Hz amplitude modulation
    return 0.9 * x * env


def tiny_config(kind: str) -> ModelConfig:
    common = dict(d_model=4, d_state=8, n_layers=2, sample_rate=16000, clip_seconds=0.25,
                  labels=["alpha", "beta", "gamma"], input_mean=0.01, input_std=0.2)
    if kind == "dplr":
        return ModelConfig(kernel="dplr", discretization="bilinear", rank=1, init="legs",
                           norm="layer", output="glu", **common)
    return ModelConfig(kernel="diag", discretization="zoh", init="lin", norm="batch",
                       output="linear", **common)


def _normal(g: torch.Generator):
    """rn(t, s): s times standard normal draws from g, of t's shape and dtype."""
    def rn(t, s=1.0):
        return s * torch.randn(t.shape, generator=g, dtype=t.dtype)
    return rn


def _perturb_poles(ssm, rn) -> None:
    """The poles, B and (DPLR) P perturbed around their init."""
    ssm.log_neg_lambda_re.add_(rn(ssm.log_neg_lambda_re, 0.3))
    ssm.lambda_im.mul_(1 + rn(ssm.lambda_im, 0.1))
    ssm.b_re.add_(rn(ssm.b_re, 0.1))
    ssm.b_im.add_(rn(ssm.b_im, 0.1))
    if hasattr(ssm, "p_re"):
        ssm.p_re.add_(rn(ssm.p_re, 0.1) * ssm.p_re.abs())
        ssm.p_im.add_(rn(ssm.p_im, 0.1) * ssm.p_im.abs() + rn(ssm.p_im, 0.02))


def _random_readout(ssm, rn, g: torch.Generator, lo: float, hi: float) -> None:
    """Random C and D, and log_dt spread over [lo, hi] in a random order."""
    H = ssm.d_model
    ssm.c_re.copy_(rn(ssm.c_re, math.sqrt(0.5)))
    ssm.c_im.copy_(rn(ssm.c_im, math.sqrt(0.5)))
    ssm.d.copy_(rn(ssm.d))
    ssm.log_dt.copy_(torch.linspace(lo, hi, H, dtype=ssm.log_dt.dtype)[torch.randperm(H, generator=g)])


def _random_norms(norms, rn, g: torch.Generator) -> None:
    for n in norms:
        n.weight.copy_(1 + rn(n.weight, 0.2))
        n.bias.copy_(rn(n.bias, 0.1))
        if isinstance(n, torch.nn.BatchNorm1d):
            n.running_mean.copy_(rn(n.running_mean, 0.3))
            n.running_var.copy_(0.5 + 1.5 * torch.rand(n.running_var.shape, generator=g,
                                                        dtype=n.running_var.dtype))


@torch.no_grad()
def randomise(model: S4Model, g: torch.Generator):
    """Realistic random weights: perturbed inits, random C/D, spread log_dt, random norms."""
    rn = _normal(g)
    for blk in model.layers:
        _perturb_poles(blk.ssm, rn)
        _random_readout(blk.ssm, rn, g, math.log(0.001), math.log(0.1))
    _random_norms([blk.norm for blk in model.layers] + [model.final_norm], rn, g)


def stages_config(kind: str) -> StagesConfig:
    """kind "diag", "dplr", or "frame" (diag with a streaming head over a window of 3 frames
    and a no-command label)."""
    common = dict(front_width=4, front_state=8, frame_seconds=0.01, sample_rate=16000,
                  clip_seconds=0.25, labels=["alpha", "beta", "gamma"], input_mean=0.01,
                  input_std=0.2, dropout=0.0, log_floor=1e-8)
    if kind == "frame":
        common.update(labels=["alpha", "beta", "gamma", "_nothing_"], head_pooling="frame", head_window_frames=3)
    if kind in ("diag", "frame"):
        return StagesConfig(front_kernel="diag", front_discretization="zoh", front_init="filterbank",
                            rectifier="square",
                            frame_stages=[FrameStageConfig(d_model=6, n_layers=2, d_state=4,
                                                           kernel="diag", discretization="zoh",
                                                           init="lin", norm="layer", output="glu")],
                            **common)
    return StagesConfig(front_kernel="dplr", front_discretization="bilinear", front_rank=1,
                        front_init="legs", rectifier="abs",
                        frame_stages=[FrameStageConfig(d_model=6, n_layers=2, d_state=4,
                                                       kernel="dplr", discretization="bilinear",
                                                       rank=1, init="legs", norm="batch",
                                                       output="linear")],
                        **common)


@torch.no_grad()
def randomise_stages(model: StagesModel, g: torch.Generator):
    """As randomise(), for every SSM and norm of a stages network; stage 0's encoder is a random
    affine map too (the engine must apply it, though training keeps it at weight 1, bias 0)."""
    rn = _normal(g)
    for s, st in enumerate(model.stages):
        if s == 0:
            st.encoder.weight.mul_(1 + rn(st.encoder.weight, 0.2))
            st.encoder.bias.copy_(rn(st.encoder.bias, 0.05))
        for layer in st.layers:
            ssm = layer.ssm
            _perturb_poles(ssm, rn)
            if s == 0 and model.cfg.front_init == "filterbank":
                ssm.c_re.mul_(1 + rn(ssm.c_re, 0.2))      # keep the bank's scale
                ssm.c_im.copy_(rn(ssm.c_im, 0.2) * ssm.c_re.abs())
                ssm.d.copy_(rn(ssm.d, 0.1))
                ssm.log_dt.add_(rn(ssm.log_dt, 0.1))
            else:
                lo, hi = (math.log(0.001), math.log(0.1)) if s == 0 else (math.log(0.01), math.log(0.5))
                _random_readout(ssm, rn, g, lo, hi)
    blocks = [blk for st in model.stages[1:] for blk in st.layers]
    _random_norms([blk.norm for blk in blocks] + [model.final_norm], rn, g)


@torch.no_grad()
def calibrate_pooling_norm(model: StagesModel):
    """Set the pooling norm's running statistics near those of the test signal's log frames (so
    the frame stage sees values of order one), then perturb its affine map deterministically."""
    x = torch.from_numpy(test_signal(np.arange(4000) / 16000.0))[None].to(model.decoder.weight.dtype)
    n = model.pooling.norm
    n.reset_running_stats()
    n.weight.fill_(1.0)
    n.bias.zero_()
    feats = {}
    model.eval()
    model.frames(x, 1.0, feats=feats)
    z = feats["pooled"][0]
    H = z.shape[-1]
    k = torch.arange(H, dtype=z.dtype)
    n.running_mean.copy_(z.mean(0) + 0.1 * torch.cos(k))
    n.running_var.copy_(z.var(0) * (1.2 + 0.3 * torch.sin(k)) + 0.05)
    n.weight.copy_(1 + 0.2 * torch.sin(1.7 * k))
    n.bias.copy_(0.1 * torch.cos(2.3 * k))


@torch.no_grad()
def reference(model) -> dict:
    """Inputs and float64 outputs at each fixture rate, in convolution mode; refuses to return
    unless recurrent mode agrees. Format 1 keeps every layer's features and the kernels; the
    stages network its stage-0 output, pooled frames and final features."""
    stages = isinstance(model, StagesModel)
    rates = STAGES_RATES if stages else RATES
    sr = model.cfg.sample_rate
    out = {}
    for R in rates:
        n = int(round(model.cfg.clip_seconds * R))
        x = test_signal(np.arange(n) / R)
        assert np.abs(x).max() < 1
        out[f"input_{R}"] = x
    for R in rates:
        step_scale = sr / R
        x = torch.from_numpy(out[f"input_{R}"])[None]
        logits, feats = model(x, step_scale, return_features=True)
        logits_s, feats_s = model(x, step_scale, recurrent=True, return_features=True)
        err = max([(feats[k] - feats_s[k]).abs().max().item() for k in feats]
                  + [(logits - logits_s).abs().max().item()])
        frames = f" ({feats['frames'].shape[1]} frames)" if stages else ""
        print(f"  rate {R}: recurrent vs convolution max |diff| = {err:.2e}{frames}")
        if err > STEP_TOL:
            raise SystemExit(f"recurrent mode disagrees with convolution mode: {err}")
        for k in ("stage0", "frames", "final_norm") if stages else feats:
            out[f"rate_{R}.{k}"] = feats[k][0].numpy()
        out[f"rate_{R}.logits"] = logits[0].numpy()
        if not stages:
            for i, K in enumerate(model.kernels(x.shape[-1], step_scale)):
                out[f"rate_{R}.kernel.{i}"] = K.numpy()
    return {k: np.ascontiguousarray(v, dtype=np.float64) for k, v in out.items()}


def write_fixture(name: str, model, rates, out_dir: str, seed: int):
    """`model` (float64, random weights) as OUT_DIR/NAME.safetensors, and its reference outputs
    beside it."""
    model.eval()
    path = os.path.join(out_dir, f"{name}.safetensors")
    export_model(model, path, trained_on={"fixture": "random weights", "generator": GENERATOR,
                                          "seed": seed},
                 metrics={})
    # Reference outputs come from the float32 weights exactly as stored, in float64.
    m64, _ = load_model(path, torch.float64)
    ref = reference(m64)
    ref_path = os.path.join(out_dir, f"{name}.reference.safetensors")
    save_file(ref, ref_path, metadata={"reference": json.dumps({
                  "model": f"{name}.safetensors", "dtype": "float64", "mode": "convolution",
                  "rates": list(rates), **RATE_NOTE})})  # one key: byte-stable
    print(f"  wrote {path} ({os.path.getsize(path)} B), {ref_path} ({os.path.getsize(ref_path)} B)")


def make(name: str, kind: str, out_dir: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = S4Model(tiny_config(kind), seed=seed).to(torch.float64)
    randomise(model, g)
    write_fixture(name, model, RATES, out_dir, seed)


def make_stages(name: str, kind: str, out_dir: str, seed: int):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = StagesModel(stages_config(kind), seed=seed).to(torch.float64)
    randomise_stages(model, g)
    calibrate_pooling_norm(model)
    write_fixture(name, model, STAGES_RATES, out_dir, seed)


def make_all(out: str = DEFAULT_OUT, seed: int = SEED, only: set[str] = frozenset()) -> None:
    """Every fixture (or those named in `only`) into `out`. The committed tiny_* references were
    made with another PyTorch build; this one agrees with them to ~1e-16, not byte for byte, so
    they need not be rewritten."""
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    for name, kind, off in (("tiny_dplr", "dplr", 0), ("tiny_diag", "diag", 1)):
        if not only or name in only:
            print(name)
            make(name, kind, out, seed + off)
    for name, kind, off in (("stages_diag", "diag", 2), ("stages_dplr", "dplr", 3),
                            ("stages_frame", "frame", 4)):
        if not only or name in only:
            print(name)
            make_stages(name, kind, out, seed + off)
