"""The stages network of model file format 2 (docs/model-format.md), training side.

    x_raw [B, L] at f_in Hz  ->  (x - input_mean) / input_std
      -> stage 0, clock "input": encoder Linear(1 -> H0), fixed at weight 1, bias 0 (not trained),
         then one bare SSM layer (a filter bank: no norm, activation, residual or map),
         Delta_run = Delta * step_scale, step_scale = sample_rate / f_in
      -> frame pooling: r = y^2 ("square") or |y| ("abs"), the mean over frames defined in seconds
         (ops/frames.py), z = log(mean r + log_floor); BatchNorm ("pooling.norm", eval: a
         per-channel affine)
      -> stage 1 ..., clock "frames": encoder Linear(H_{s-1} -> H_s), n pre-norm blocks
         (modules/block.py), Delta_run = Delta whatever f_in is
      -> head: final norm -> mean over frames -> decoder Linear(H_last -> K)     ("mean": a clip head)
      -> head: final norm -> decoder at every frame -> logits [B, F, K]           ("frame": streaming)
         -> the mean of the last head_window_frames frames' logits (1: each frame's own)

`step_scale` (the argument every model here takes) is f_train / f_in, a pure number; `f_hz` /
`f_in` are sampling rates in Hz (`input_hz(step_scale)`).

Two modes compute the same function: convolution mode (training: one FFT convolution of the
input with the H0 bank kernels, pooling by a reshape when a frame is a whole number of samples,
else by a float64 cumulative sum differenced at the boundaries) and recurrent mode (the bank
stepped sample by sample, each frame summed from its own samples, the frame stages stepped frame
by frame); tests hold them equal in float64.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from s4train.modules.block import Block, BlockConfig, apply_norm
from s4train.modules.ssm import DPLRSSM, DiagSSM
from s4train.ops.conv import bank_conv
from s4train.ops.frames import pool_frames, pool_frames_loop
from s4train.ops.init import s4d_filterbank
from s4train.vocabulary import LABELS

FORMAT_VERSION = 2


@dataclass
class FrameStageConfig:
    """One stage at the frame clock (Delta in frame units)."""
    d_model: int = 128
    n_layers: int = 6
    d_state: int = 64
    kernel: str = "diag"              # "diag" | "dplr"
    discretization: str = "zoh"       # dplr: always bilinear
    rank: int = 1
    init: str = "lin"                 # diag: lin | inv | legs; dplr: legs
    b_clip: float | None = 2.0
    dt_min: float = 0.01
    dt_max: float = 0.5
    norm: str = "layer"
    norm_eps: float = 1e-5
    output: str = "glu"

    def block_config(self, dropout: float) -> BlockConfig:
        return BlockConfig(d_model=self.d_model, d_state=self.d_state, kernel=self.kernel,
                           discretization=self.discretization, rank=self.rank, init=self.init,
                           b_clip=self.b_clip, dt_min=self.dt_min, dt_max=self.dt_max,
                           norm=self.norm, norm_eps=self.norm_eps, output=self.output,
                           dropout=dropout)


@dataclass
class StagesConfig:
    # stage 0: the filter bank at the input clock (Delta per sample at sample_rate)
    front_width: int = 64             # H0
    front_state: int = 32             # N0
    front_kernel: str = "diag"        # "diag" (S4D) | "dplr" (S4, bilinear)
    front_discretization: str = "zoh"
    front_rank: int = 1
    front_init: str = "filterbank"    # diag: filterbank | lin | inv | legs; dplr: legs
    front_f_min: float = 60.0         # filterbank centre frequencies (Hz at sample_rate)
    front_f_max: float = 4000.0
    front_dt_min: float = 0.001       # other inits
    front_dt_max: float = 0.1
    # frame pooling
    frame_seconds: float = 0.01
    rectifier: str = "square"         # "square" | "abs"
    log_floor: float = 1e-8
    pooling_norm_eps: float = 1e-5    # the pooling BatchNorm's eps (PyTorch's default)
    # frame stages and head
    frame_stages: list = field(default_factory=lambda: [FrameStageConfig()])
    head_norm: str | None = None      # None: the last frame stage's norm
    head_norm_eps: float = 1e-5
    head_pooling: str = "mean"        # "mean": one clip's logits; "frame": logits every frame
    head_window_frames: int = 1       # a frame head's logits: the mean of the last this many frames'
    dropout: float = 0.1
    labels: list = field(default_factory=lambda: list(LABELS))
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    input_mean: float = 0.0
    input_std: float = 1.0

    def __post_init__(self):
        self.frame_stages = [s if isinstance(s, FrameStageConfig) else FrameStageConfig(**s)
                             for s in self.frame_stages]
        if not self.frame_stages:
            raise ValueError("a stages network needs at least one frame stage")
        if self.head_norm is None:
            self.head_norm = self.frame_stages[-1].norm
        if self.head_pooling not in ("mean", "frame"):
            raise ValueError(f"unknown head pooling {self.head_pooling!r} (\"mean\" or \"frame\")")
        if not 1 <= self.head_window_frames <= 1000 or \
                (self.head_pooling == "mean" and self.head_window_frames != 1):
            raise ValueError(f"head_window_frames must be 1 to 1000, and 1 for a clip head; "
                             f"got {self.head_window_frames}")
        if self.rectifier not in ("square", "abs"):
            raise ValueError(f"unknown rectifier {self.rectifier!r}")
        if not (0.001 <= self.frame_seconds <= 1.0) or not self.log_floor > 0:
            raise ValueError("frame_seconds must be in 0.001..1 s and log_floor > 0")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class BankLayer(nn.Module):
    """The filter bank's one layer: x <- SSM(x), nothing else (`bank: true`)."""

    def __init__(self, cfg: StagesConfig, generator=None):
        super().__init__()
        H, N = cfg.front_width, cfg.front_state
        if cfg.front_kernel == "dplr":
            if cfg.front_discretization != "bilinear":
                raise ValueError("dplr is always bilinear")
            self.ssm = DPLRSSM(H, N, rank=cfg.front_rank, init="legs", dt_min=cfg.front_dt_min,
                               dt_max=cfg.front_dt_max, generator=generator)
        elif cfg.front_kernel == "diag":
            init = cfg.front_init
            self.ssm = DiagSSM(H, N, init="lin" if init == "filterbank" else init,
                               discretization=cfg.front_discretization, dt_min=cfg.front_dt_min,
                               dt_max=cfg.front_dt_max, generator=generator)
            if init == "filterbank":
                Lam, Bm, Cm, log_dt = s4d_filterbank(H, N, cfg.sample_rate, cfg.front_f_min,
                                                     cfg.front_f_max)
                s = self.ssm
                with torch.no_grad():
                    s.log_neg_lambda_re.copy_(torch.as_tensor(np.log(-Lam.real)))
                    s.lambda_im.copy_(torch.as_tensor(Lam.imag))
                    s.b_re.copy_(torch.as_tensor(Bm.real))
                    s.b_im.copy_(torch.as_tensor(Bm.imag))
                    s.c_re.copy_(torch.as_tensor(Cm.real))
                    s.c_im.copy_(torch.as_tensor(Cm.imag))
                    s.log_dt.copy_(torch.as_tensor(log_dt))
                    s.d.zero_()
        else:
            raise ValueError(f"unknown kernel {cfg.front_kernel!r}")


class FrontEnd(nn.Module):
    """Stage 0: encoder Linear(1 -> H0) (weight 1, bias 0, not trained) and one BankLayer."""

    def __init__(self, cfg: StagesConfig, generator=None):
        super().__init__()
        self.encoder = nn.Linear(1, cfg.front_width)
        with torch.no_grad():
            self.encoder.weight.fill_(1.0)
            self.encoder.bias.zero_()
        self.encoder.requires_grad_(False)
        self.layers = nn.ModuleList([BankLayer(cfg, generator)])

    @property
    def ssm(self):
        return self.layers[0].ssm

    def forward(self, u: torch.Tensor, step_scale: float, recurrent: bool = False) -> torch.Tensor:
        """u [B, L] normalised samples -> y [B, H0, L]."""
        ssm = self.ssm
        w, b = self.encoder.weight[:, 0], self.encoder.bias
        if recurrent:
            return ssm.scan(self.encoder(u.unsqueeze(-1)).transpose(1, 2), step_scale)
        K = ssm.kernel(u.shape[-1], step_scale)                             # [H, L]
        y = bank_conv(u, K)                                           # K_h * u
        identity = bool(torch.all(w == 1)) and bool(torch.all(b == 0))
        if not identity:     # SSM(w u + b) = w (K * u) + b cumsum(K) + D (w u + b)
            y = y * w[:, None] + (b[:, None] * torch.cumsum(K, -1) + (ssm.d * b)[:, None])
        return y + (ssm.d * w)[:, None] * u[:, None, :]


class FrameStage(nn.Module):
    def __init__(self, cfg: FrameStageConfig, d_in: int, dropout: float, generator=None):
        super().__init__()
        bc = cfg.block_config(dropout)
        self.encoder = nn.Linear(d_in, cfg.d_model)
        self.layers = nn.ModuleList([Block(bc, generator) for _ in range(cfg.n_layers)])


class Pooling(nn.Module):
    def __init__(self, cfg: StagesConfig):
        super().__init__()
        self.norm = nn.BatchNorm1d(cfg.front_width, eps=cfg.pooling_norm_eps)


class StagesModel(nn.Module):
    arch = "stages"

    def __init__(self, cfg: StagesConfig, seed: int | None = None):
        super().__init__()
        self.cfg = cfg
        gen = None
        if seed is not None:
            gen = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
        stages = [FrontEnd(cfg, gen)]
        d_in = cfg.front_width
        for sc in cfg.frame_stages:
            stages.append(FrameStage(sc, d_in, cfg.dropout, gen))
            d_in = sc.d_model
        self.stages = nn.ModuleList(stages)
        self.pooling = Pooling(cfg)
        H = cfg.frame_stages[-1].d_model
        if cfg.head_norm == "layer":
            self.final_norm = nn.LayerNorm(H, eps=cfg.head_norm_eps)
        elif cfg.head_norm == "batch":
            self.final_norm = nn.BatchNorm1d(H, eps=cfg.head_norm_eps)
        else:
            raise ValueError(f"unknown norm {cfg.head_norm!r}")
        self.decoder = nn.Linear(H, len(cfg.labels))
        self.frame_mask = None     # data.augment.FrameMask, applied in training mode (the loop sets it)
        self.to(torch.float32)

    def input_hz(self, step_scale: float = 1.0) -> float:
        """The input sampling rate (Hz) that `step_scale` stands for."""
        return self.cfg.sample_rate / step_scale

    def window_length(self, step_scale: float = 1.0) -> int:
        return int(round(self.cfg.clip_seconds * self.cfg.sample_rate / step_scale))

    @property
    def front_end(self) -> FrontEnd:
        return self.stages[0]

    def front_end_parameters(self):
        return [p for p in self.front_end.layers.parameters()]

    def set_front_end_trainable(self, on: bool):
        for p in self.front_end_parameters():
            p.requires_grad_(on)

    def front_end_trainable(self) -> bool:
        return any(p.requires_grad for p in self.front_end_parameters())

    def ssm_parameters(self):
        for st in self.stages[1:]:
            for blk in st.layers:
                for n in blk.ssm.ssm_param_names:
                    yield getattr(blk.ssm, n)

    # ---- the network ----
    def log_frames(self, x: torch.Tensor, step_scale: float = 1.0, recurrent: bool = False,
                   feats: dict | None = None) -> torch.Tensor:
        """Raw samples [B, L] at step scale `step_scale` -> log frames before the pooling norm
        [B, H0, F]: everything the front end decides (a frozen front end's are a fixed function
        of the clip and the input rate, which `frame_cache.py` stores)."""
        W = self.window_length(step_scale)
        if x.shape[-1] < W:
            x = F.pad(x, (0, W - x.shape[-1]))
        u = (x - self.cfg.input_mean) / self.cfg.input_std
        f_hz = self.input_hz(step_scale)
        if self.front_end_trainable() or recurrent:
            y = self.front_end(u, step_scale, recurrent)
        else:
            with torch.no_grad():
                y = self.front_end(u, step_scale, recurrent)
        if feats is not None:
            feats["stage0"] = y.transpose(1, 2)
        r = y * y if self.cfg.rectifier == "square" else y.abs()
        pool = pool_frames_loop if recurrent else pool_frames
        m = pool(r, self.cfg.frame_seconds, f_hz)                     # [B, H0, F]
        z = torch.log(m + self.cfg.log_floor)
        if feats is not None:
            feats["pooled"] = z.transpose(1, 2)
        return z

    def frames(self, x: torch.Tensor, step_scale: float = 1.0, recurrent: bool = False,
               feats: dict | None = None) -> torch.Tensor:
        """Raw samples [B, L] at step scale `step_scale` -> normalised log frames [B, F, H0]."""
        return self.pooling.norm(self.log_frames(x, step_scale, recurrent, feats)).transpose(1, 2)

    def forward(self, x: torch.Tensor, step_scale: float = 1.0, recurrent: bool = False,
                return_features: bool = False):
        """x [B, L] raw samples at f_in = sample_rate / step_scale. Returns logits [B, K], or
        [B, F, K] for a frame head (and a dict of intermediates, [B, steps, H], if return_features)."""
        feats = {} if return_features else None
        h = self.frames(x, step_scale, recurrent, feats)
        logits = self.classify_frames(h, recurrent, feats)
        return (logits, feats) if return_features else logits

    def classify_log_frames(self, z: torch.Tensor, feats: dict | None = None) -> torch.Tensor:
        """Log frames [B, H0, F] (`log_frames`) -> logits [B, K] or [B, F, K] (intermediates into feats)."""
        return self.classify_frames(self.pooling.norm(z).transpose(1, 2), feats=feats)

    def classify_frames(self, h: torch.Tensor, recurrent: bool = False,
                        feats: dict | None = None) -> torch.Tensor:
        """Normalised log frames [B, F, H0] -> logits: the frame stages at the frame clock, then the
        head. A clip head ("mean") gives [B, K]; a frame head ("frame") [B, F, K], the decoder at
        every frame. Every stage is causal and starts from a zero state at the first frame, so
        frame k's logits are those of a stream run from its start, never reset: what the engine's
        streaming head computes."""
        if feats is not None:
            feats["frames"] = h
        if self.training and self.frame_mask is not None:
            h = self.frame_mask(h)
        for s, st in enumerate(self.stages[1:], start=1):
            h = st.encoder(h)
            if feats is not None:
                feats[f"stages.{s}.encoder"] = h
            for i, blk in enumerate(st.layers):
                h = blk(h, 1.0, recurrent)           # frame clock: Delta not rescaled
                if feats is not None:
                    feats[f"stages.{s}.layers.{i}"] = h
        h = apply_norm(self.final_norm, h)
        if feats is not None:
            feats["final_norm"] = h
        if self.cfg.head_pooling == "frame":
            return causal_mean(self.decoder(h), self.cfg.head_window_frames)
        return self.decoder(h.mean(dim=1))


def causal_mean(z: torch.Tensor, window: int) -> torch.Tensor:
    """[B, F, K] -> at each frame the mean of the last `window` frames' rows (fewer at the start):
    a clip head's mean over a sliding window, so a frame head weighs a word's evidence as the
    clip head it starts from did, and a word inside running speech shares its window with its
    neighbours'."""
    if window == 1:
        return z
    c = torch.cumsum(z, dim=1)
    behind = torch.cat([torch.zeros_like(c[:, :window]), c[:, :-window]], dim=1)[:, :z.shape[1]]
    count = torch.arange(1, z.shape[1] + 1, device=z.device).clamp(max=window).to(z.dtype)
    return (c - behind) / count[None, :, None]


def param_groups(model: StagesModel, lr: float, weight_decay: float, ssm_lr: float):
    """AdamW groups: the front end (all of its SSM: Lambda, B, C, Delta, D) and the frame stages'
    SSM dynamics at ssm_lr without weight decay; biases and norms without weight decay; the rest
    (encoders, C/D of the frame SSMs, Out maps, decoder) with it. Frozen parameters are kept in
    their group (a later epoch may unfreeze them); the fixed encoder of stage 0 is left out."""
    ssm_ids = {id(p) for p in model.ssm_parameters()} | {id(p) for p in model.front_end_parameters()}
    ssm, no_wd, wd = [], [], []
    for name, p in model.named_parameters():
        if name.startswith("stages.0.encoder."):
            continue
        if id(p) in ssm_ids:
            ssm.append(p)
        elif p.ndim < 2 or ".norm." in name or name.startswith(("final_norm", "pooling")) \
                or name.endswith(".d"):
            no_wd.append(p)
        else:
            wd.append(p)
    groups = [dict(params=wd, lr=lr, weight_decay=weight_decay, name="main"),
              dict(params=no_wd, lr=lr, weight_decay=0.0, name="no_wd"),
              dict(params=ssm, lr=ssm_lr, weight_decay=0.0, name="ssm")]
    return [g for g in groups if g["params"]]
