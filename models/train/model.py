"""The s4listen network, exactly as in shared/docs/model-format.md.

x_raw [B, L] in [-1, 1]  (zero-padded to the window in the raw domain)
  -> (x - input_mean) / input_std
  -> encoder Linear(1 -> H) per sample
  -> n_layers x [ x <- x + Out(GELU_erf(SSM(Norm(x)))) ]   (pre-norm, causal)
  -> final norm -> mean over time -> decoder Linear(H -> K)

Out is Linear(H -> 2H) + GLU (value = first H outputs, gate = last H:
value * sigmoid(gate)) or Linear(H -> H). Norm is LayerNorm over H (biased
variance, eps inside the sqrt) or BatchNorm1d (eval: per-channel affine).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from s4 import DPLRSSM, DiagSSM
from vocabulary import LABELS

# The labels a model is trained on (vocabulary.py is their one definition).
SPEECH_COMMANDS_LABELS = LABELS


@dataclass
class ModelConfig:
    d_model: int = 64
    n_layers: int = 4
    d_state: int = 32
    kernel: str = "dplr"            # "dplr" | "diag"
    discretization: str = "bilinear"  # dplr: always bilinear; diag: "zoh" | "bilinear"
    rank: int = 1                   # dplr only
    init: str = "legs"              # dplr: legs; diag: lin | inv | legs
    first_init: str | None = None   # diag: init of layer 0 only, e.g. "filterbank" (None: init)
    b_clip: float | None = 2.0      # clip Im B~ of the LegS NPLR init (None: no clip)
    dt_min: float = 0.001
    dt_max: float = 0.1
    norm: str = "layer"             # "layer" | "batch"
    norm_eps: float = 1e-5
    output: str = "glu"             # "glu" | "linear"
    dropout: float = 0.0
    labels: list = field(default_factory=lambda: list(SPEECH_COMMANDS_LABELS))
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    input_mean: float = 0.0
    input_std: float = 1.0

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "layer":
        return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps)
    if cfg.norm == "batch":
        return nn.BatchNorm1d(cfg.d_model, eps=cfg.norm_eps)
    raise ValueError(f"unknown norm {cfg.norm!r}")


def apply_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x [B, L, H]."""
    if isinstance(norm, nn.BatchNorm1d):
        return norm(x.transpose(1, 2)).transpose(1, 2)
    return norm(x)


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig, generator=None, init: str | None = None):
        super().__init__()
        H = cfg.d_model
        self.norm = make_norm(cfg)
        if cfg.kernel == "dplr":
            if cfg.discretization != "bilinear":
                raise ValueError("dplr is always bilinear")
            self.ssm = DPLRSSM(H, cfg.d_state, rank=cfg.rank, init=cfg.init, b_clip=cfg.b_clip,
                               dt_min=cfg.dt_min, dt_max=cfg.dt_max, generator=generator)
        elif cfg.kernel == "diag":
            self.ssm = DiagSSM(H, cfg.d_state, init=init or cfg.init, discretization=cfg.discretization,
                               dt_min=cfg.dt_min, dt_max=cfg.dt_max, generator=generator)
        else:
            raise ValueError(f"unknown kernel {cfg.kernel!r}")
        self.glu = cfg.output == "glu"
        if cfg.output not in ("glu", "linear"):
            raise ValueError(f"unknown output {cfg.output!r}")
        self.out = nn.Linear(H, 2 * H if self.glu else H)
        self.dropout = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def pointwise_out(self, z: torch.Tensor) -> torch.Tensor:
        """GELU (erf) -> dropout -> Out. z [B, L, H]."""
        z = self.dropout(F.gelu(z, approximate="none"))
        z = self.out(z)
        if self.glu:
            H = z.shape[-1] // 2
            z = z[..., :H] * torch.sigmoid(z[..., H:])
        return z

    def forward(self, x: torch.Tensor, rate: float = 1.0, recurrent: bool = False):
        z = apply_norm(self.norm, x).transpose(1, 2)                     # [B, H, L]
        z = self.ssm.scan(z, rate) if recurrent else self.ssm(z, rate)
        return x + self.pointwise_out(z.transpose(1, 2))


class S4Model(nn.Module):
    def __init__(self, cfg: ModelConfig, seed: int | None = None):
        super().__init__()
        self.cfg = cfg
        gen = None
        if seed is not None:
            gen = torch.Generator().manual_seed(seed)
            torch.manual_seed(seed)
        H = cfg.d_model
        self.encoder = nn.Linear(1, H)
        self.layers = nn.ModuleList([Block(cfg, gen, cfg.first_init if i == 0 else None)
                                     for i in range(cfg.n_layers)])
        self.final_norm = make_norm(cfg)
        self.decoder = nn.Linear(H, len(cfg.labels))
        self.to(torch.float32)

    def set_input_stats(self, mean: float, std: float):
        """input_mean/std are plain Python floats (exact doubles, as in the metadata)."""
        self.cfg.input_mean, self.cfg.input_std = float(mean), float(std)

    def window_length(self, rate: float = 1.0) -> int:
        """Samples in one clip at input rate f_in = sample_rate / rate."""
        return int(round(self.cfg.clip_seconds * self.cfg.sample_rate / rate))

    def ssm_parameters(self):
        for blk in self.layers:
            for n in blk.ssm.ssm_param_names:
                yield getattr(blk.ssm, n)

    def forward(self, x: torch.Tensor, rate: float = 1.0, recurrent: bool = False,
                return_features: bool = False):
        """x [B, L] raw samples at f_in = sample_rate / rate. Returns logits [B, K]
        (and a dict of intermediates [B, L, H] if return_features)."""
        W = self.window_length(rate)
        if x.shape[-1] < W:
            x = F.pad(x, (0, W - x.shape[-1]))
        h = (x - self.cfg.input_mean) / self.cfg.input_std
        h = self.encoder(h.unsqueeze(-1))                                 # [B, L, H]
        feats = {"encoder": h} if return_features else None
        for i, blk in enumerate(self.layers):
            h = blk(h, rate, recurrent)
            if return_features:
                feats[f"layers.{i}"] = h
        h = apply_norm(self.final_norm, h)
        if return_features:
            feats["final_norm"] = h
        logits = self.decoder(h.mean(dim=1))
        return (logits, feats) if return_features else logits

    @torch.no_grad()
    def kernels(self, L: int, rate: float = 1.0):
        return [blk.ssm.kernel(L, rate) for blk in self.layers]


def deepen(model: S4Model, extra_layers: int, seed: int | None = None) -> S4Model:
    """`model` with `extra_layers` more blocks after its own, computing exactly the same function:
    each new block's Out map starts at zero, so x + Out(GELU(SSM(Norm(x)))) = x, and its SSM as
    `cfg.init`. More depth for a model that underfits, without losing what it has learned."""
    cfg = dataclasses.replace(model.cfg, n_layers=model.cfg.n_layers + extra_layers,
                              labels=list(model.cfg.labels))
    param = next(model.parameters())
    grown = S4Model(cfg, seed=seed).to(dtype=param.dtype, device=param.device)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    new = tuple(f"layers.{i}." for i in range(model.cfg.n_layers, cfg.n_layers))
    if unexpected or any(not k.startswith(new) for k in missing):
        raise ValueError(f"deepen: weights that do not fit ({unexpected or missing})")
    with torch.no_grad():
        for blk in grown.layers[model.cfg.n_layers:]:
            blk.out.weight.zero_()
            blk.out.bias.zero_()
    return grown


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def param_groups(model: S4Model, lr: float, weight_decay: float, ssm_lr: float):
    """AdamW groups: SSM dynamics (Lambda, P, B, log Delta) at ssm_lr without weight
    decay; biases and norm parameters without weight decay; the rest with it."""
    ssm_ids = {id(p) for p in model.ssm_parameters()}
    ssm, no_wd, wd = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in ssm_ids:
            ssm.append(p)
        elif p.ndim < 2 or ".norm." in name or name.startswith("final_norm") or name.endswith(".d"):
            no_wd.append(p)
        else:
            wd.append(p)
    groups = [dict(params=wd, lr=lr, weight_decay=weight_decay, name="main"),
              dict(params=no_wd, lr=lr, weight_decay=0.0, name="no_wd"),
              dict(params=ssm, lr=ssm_lr, weight_decay=0.0, name="ssm")]
    return [g for g in groups if g["params"]]
