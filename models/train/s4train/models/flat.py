"""The format-1 network: one stack of S4 blocks at the input rate (docs/model-format.md).

No model is trained in this form any more (the stages network replaced it); it stays because
format-1 files still load in the Swift engine, whose tests compare against fixtures made from it
(`s4train.fixtures`).

x_raw [B, L] in [-1, 1]  (zero-padded to the window in the raw domain)
  -> (x - input_mean) / input_std
  -> encoder Linear(1 -> H) per sample
  -> n_layers x Block (modules/block.py)
  -> final norm -> mean over time -> decoder Linear(H -> K)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from s4train.modules.block import Block, BlockConfig, apply_norm, make_norm
from s4train.vocabulary import LABELS


@dataclass
class ModelConfig:
    d_model: int = 64
    n_layers: int = 4
    d_state: int = 32
    kernel: str = "dplr"            # "dplr" | "diag"
    discretization: str = "bilinear"  # dplr: always bilinear; diag: "zoh" | "bilinear"
    rank: int = 1                   # dplr only
    init: str = "legs"              # dplr: legs; diag: lin | inv | legs
    b_clip: float | None = 2.0      # clip Im B~ of the LegS NPLR init (None: no clip)
    dt_min: float = 0.001
    dt_max: float = 0.1
    norm: str = "layer"             # "layer" | "batch"
    norm_eps: float = 1e-5
    output: str = "glu"             # "glu" | "linear"
    dropout: float = 0.0
    labels: list = field(default_factory=lambda: list(LABELS))
    sample_rate: int = 16000
    clip_seconds: float = 1.0
    input_mean: float = 0.0
    input_std: float = 1.0

    def block_config(self) -> BlockConfig:
        names = {f.name for f in dataclasses.fields(BlockConfig)}
        return BlockConfig(**{k: v for k, v in dataclasses.asdict(self).items() if k in names})


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
        self.layers = nn.ModuleList([Block(cfg.block_config(), gen) for _ in range(cfg.n_layers)])
        self.final_norm = make_norm(cfg.norm, H, cfg.norm_eps)
        self.decoder = nn.Linear(H, len(cfg.labels))
        self.to(torch.float32)

    def window_length(self, step_scale: float = 1.0) -> int:
        """Samples in one clip at input rate f_in = sample_rate / step_scale."""
        return int(round(self.cfg.clip_seconds * self.cfg.sample_rate / step_scale))

    def forward(self, x: torch.Tensor, step_scale: float = 1.0, recurrent: bool = False,
                return_features: bool = False):
        """x [B, L] raw samples at f_in = sample_rate / step_scale. Returns logits [B, K]
        (and a dict of intermediates [B, L, H] if return_features)."""
        W = self.window_length(step_scale)
        if x.shape[-1] < W:
            x = F.pad(x, (0, W - x.shape[-1]))
        h = (x - self.cfg.input_mean) / self.cfg.input_std
        h = self.encoder(h.unsqueeze(-1))                                 # [B, L, H]
        feats = {"encoder": h} if return_features else None
        for i, blk in enumerate(self.layers):
            h = blk(h, step_scale, recurrent)
            if return_features:
                feats[f"layers.{i}"] = h
        h = apply_norm(self.final_norm, h)
        if return_features:
            feats["final_norm"] = h
        logits = self.decoder(h.mean(dim=1))
        return (logits, feats) if return_features else logits

    @torch.no_grad()
    def kernels(self, L: int, step_scale: float = 1.0):
        return [blk.ssm.kernel(L, step_scale) for blk in self.layers]
