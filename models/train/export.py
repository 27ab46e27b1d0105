"""Write / read the s4listen model file (shared/docs/model-format.md).

Tensors are float32 (complex as `_re`/`_im` pairs); `__metadata__` = {"s4": "<json>"}.
The file holds continuous-time parameters and the TRUE C (the layers here are
parametrised by the true C, so nothing has to be solved).

    python export.py CHECKPOINT.pt OUT.safetensors
"""

from __future__ import annotations

import argparse
import json
import struct
from collections import OrderedDict

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from model import ModelConfig, S4Model

FORMAT_VERSION = 1


def _np32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().to(torch.float64).numpy().astype(np.float32))


def model_tensors(model: S4Model) -> "OrderedDict[str, np.ndarray]":
    cfg = model.cfg
    out: "OrderedDict[str, np.ndarray]" = OrderedDict()

    def norm(prefix, n):
        out[f"{prefix}.weight"] = _np32(n.weight)
        out[f"{prefix}.bias"] = _np32(n.bias)
        if cfg.norm == "batch":
            out[f"{prefix}.running_mean"] = _np32(n.running_mean)
            out[f"{prefix}.running_var"] = _np32(n.running_var)

    out["encoder.weight"] = _np32(model.encoder.weight)              # [H, 1]
    out["encoder.bias"] = _np32(model.encoder.bias)
    for i, blk in enumerate(model.layers):
        p = f"layers.{i}"
        norm(f"{p}.norm", blk.norm)
        s = blk.ssm
        out[f"{p}.ssm.log_dt"] = _np32(s.log_dt)
        lam = s.Lam
        out[f"{p}.ssm.lambda_re"] = _np32(lam.real)
        out[f"{p}.ssm.lambda_im"] = _np32(lam.imag)
        if cfg.kernel == "dplr":
            out[f"{p}.ssm.p_re"] = _np32(s.p_re)                     # [rank, H, M]
            out[f"{p}.ssm.p_im"] = _np32(s.p_im)
        out[f"{p}.ssm.b_re"] = _np32(s.b_re)
        out[f"{p}.ssm.b_im"] = _np32(s.b_im)
        out[f"{p}.ssm.c_re"] = _np32(s.c_re)                         # true C
        out[f"{p}.ssm.c_im"] = _np32(s.c_im)
        out[f"{p}.ssm.d"] = _np32(s.d)
        out[f"{p}.out.weight"] = _np32(blk.out.weight)               # [2H or H, H]
        out[f"{p}.out.bias"] = _np32(blk.out.bias)
    norm("final_norm", model.final_norm)
    out["decoder.weight"] = _np32(model.decoder.weight)              # [K, H]
    out["decoder.bias"] = _np32(model.decoder.bias)
    return out


def model_metadata(model: S4Model, trained_on=None, metrics=None) -> dict:
    cfg = model.cfg
    meta = OrderedDict()
    meta["format"] = FORMAT_VERSION
    meta["labels"] = list(cfg.labels)
    meta["sample_rate"] = int(cfg.sample_rate)
    meta["input_mean"] = float(cfg.input_mean)
    meta["input_std"] = float(cfg.input_std)
    meta["clip_seconds"] = float(cfg.clip_seconds)
    meta["d_model"] = int(cfg.d_model)
    meta["n_layers"] = int(cfg.n_layers)
    meta["d_state"] = int(cfg.d_state)
    meta["kernel"] = cfg.kernel
    meta["discretization"] = "bilinear" if cfg.kernel == "dplr" else cfg.discretization
    if cfg.kernel == "dplr":
        meta["rank"] = int(cfg.rank)
    meta["norm"] = cfg.norm
    meta["norm_eps"] = float(cfg.norm_eps)
    meta["activation"] = "gelu"
    meta["output"] = cfg.output
    meta["pooling"] = "mean"
    meta["trained_on"] = dict(trained_on or {})
    meta["metrics"] = dict(metrics or {})
    return meta


def export_model(model: S4Model, path: str, trained_on=None, metrics=None) -> dict:
    meta = model_metadata(model, trained_on, metrics)
    save_file(model_tensors(model), path, metadata={"s4": json.dumps(meta)})
    return meta


def read_header(path: str) -> dict:
    """The raw safetensors JSON header (independent of the safetensors package)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))


def read_metadata(path: str) -> dict:
    return json.loads(read_header(path)["__metadata__"]["s4"])


def load_model(path: str, dtype=torch.float64) -> tuple[S4Model, dict]:
    """Rebuild an S4Model from a model file (eval mode, in `dtype`)."""
    meta = read_metadata(path)
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in load_file(path).items()}
    cfg = ModelConfig(
        d_model=meta["d_model"], n_layers=meta["n_layers"], d_state=meta["d_state"],
        kernel=meta["kernel"], discretization=meta["discretization"], rank=meta.get("rank", 1),
        init="legs" if meta["kernel"] == "dplr" else "lin", norm=meta["norm"],
        norm_eps=meta["norm_eps"], output=meta["output"], labels=meta["labels"],
        sample_rate=meta["sample_rate"], clip_seconds=meta["clip_seconds"],
        input_mean=meta["input_mean"], input_std=meta["input_std"])
    model = S4Model(cfg).to(torch.float64)
    with torch.no_grad():
        def norm(prefix, n):
            n.weight.copy_(t[f"{prefix}.weight"])
            n.bias.copy_(t[f"{prefix}.bias"])
            if cfg.norm == "batch":
                n.running_mean.copy_(t[f"{prefix}.running_mean"])
                n.running_var.copy_(t[f"{prefix}.running_var"])

        model.encoder.weight.copy_(t["encoder.weight"])
        model.encoder.bias.copy_(t["encoder.bias"])
        for i, blk in enumerate(model.layers):
            p = f"layers.{i}"
            norm(f"{p}.norm", blk.norm)
            s = blk.ssm
            s.log_dt.copy_(t[f"{p}.ssm.log_dt"])
            s.log_neg_lambda_re.copy_(torch.log(-t[f"{p}.ssm.lambda_re"]))
            s.lambda_im.copy_(t[f"{p}.ssm.lambda_im"])
            if cfg.kernel == "dplr":
                s.p_re.copy_(t[f"{p}.ssm.p_re"])
                s.p_im.copy_(t[f"{p}.ssm.p_im"])
            for n in ("b_re", "b_im", "c_re", "c_im", "d"):
                getattr(s, n).copy_(t[f"{p}.ssm.{n}"])
            blk.out.weight.copy_(t[f"{p}.out.weight"])
            blk.out.bias.copy_(t[f"{p}.out.bias"])
        norm("final_norm", model.final_norm)
        model.decoder.weight.copy_(t["decoder.weight"])
        model.decoder.bias.copy_(t["decoder.bias"])
    model.eval()
    return model.to(dtype), meta


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("out")
    ap.add_argument("--use-last", action="store_true", help="export the last weights, not the best")
    a = ap.parse_args()
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=False)
    cfg = ModelConfig.from_dict(ck["model_config"])
    model = S4Model(cfg)
    state = ck["model"] if a.use_last or "best_model" not in ck else ck["best_model"]
    model.load_state_dict(state)
    model.eval()
    meta = export_model(model, a.out, ck.get("trained_on"), ck.get("metrics"))
    print(json.dumps(meta, indent=1))


if __name__ == "__main__":
    main()
