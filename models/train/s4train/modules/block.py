"""The residual block of both networks: x <- x + Out(GELU_erf(SSM(Norm(x)))), pre-norm, causal.

Out is Linear(H -> 2H) + GLU (value = first H outputs, gate = last H: value * sigmoid(gate)) or
Linear(H -> H). Norm is LayerNorm over H (biased variance, eps inside the sqrt) or BatchNorm1d
(in eval mode a per-channel affine map), as docs/model-format.md defines them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from s4train.modules.ssm import DPLRSSM, DiagSSM


@dataclass
class BlockConfig:
    d_model: int = 64
    d_state: int = 32
    kernel: str = "dplr"              # "dplr" | "diag"
    discretization: str = "bilinear"  # dplr: always bilinear; diag: "zoh" | "bilinear"
    rank: int = 1                     # dplr only
    init: str = "legs"                # dplr: legs; diag: lin | inv | legs | filterbank
    b_clip: float | None = 2.0        # clip Im B~ of the LegS NPLR init (None: no clip)
    dt_min: float = 0.001
    dt_max: float = 0.1
    norm: str = "layer"               # "layer" | "batch"
    norm_eps: float = 1e-5
    output: str = "glu"               # "glu" | "linear"
    dropout: float = 0.0


def make_norm(kind: str, width: int, eps: float) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(width, eps=eps)
    if kind == "batch":
        return nn.BatchNorm1d(width, eps=eps)
    raise ValueError(f"unknown norm {kind!r}")


def apply_norm(norm: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x [B, L, H]."""
    if isinstance(norm, nn.BatchNorm1d):
        return norm(x.transpose(1, 2)).transpose(1, 2)
    return norm(x)


class Block(nn.Module):
    def __init__(self, cfg: BlockConfig, generator=None):
        super().__init__()
        H = cfg.d_model
        self.norm = make_norm(cfg.norm, H, cfg.norm_eps)
        if cfg.kernel == "dplr":
            if cfg.discretization != "bilinear":
                raise ValueError("dplr is always bilinear")
            self.ssm = DPLRSSM(H, cfg.d_state, rank=cfg.rank, init=cfg.init, b_clip=cfg.b_clip,
                               dt_min=cfg.dt_min, dt_max=cfg.dt_max, generator=generator)
        elif cfg.kernel == "diag":
            self.ssm = DiagSSM(H, cfg.d_state, init=cfg.init, discretization=cfg.discretization,
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

    def forward(self, x: torch.Tensor, step_scale: float = 1.0, recurrent: bool = False):
        z = apply_norm(self.norm, x).transpose(1, 2)                     # [B, H, L]
        z = self.ssm.scan(z, step_scale) if recurrent else self.ssm(z, step_scale)
        return x + self.pointwise_out(z.transpose(1, 2))
