"""Write / read the s4listen model file (docs/model-format.md): format 2 (the stages network)
and format 1 (one stack at the input rate, which the Swift fixtures still use).

Tensors are float32 (complex as `_re`/`_im` pairs); `__metadata__` = {"s4": "<json>"}.
The file holds continuous-time parameters and the TRUE C (the layers here are
parametrised by the true C, so nothing has to be solved).
"""

from __future__ import annotations

import json
import os
import struct
from collections import OrderedDict

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from s4train.models.flat import ModelConfig, S4Model
from s4train.models.stages import FrameStageConfig, StagesConfig, StagesModel

FORMAT_VERSION = 1          # S4Model (one stack at the input clock)
STAGES_FORMAT_VERSION = 2   # StagesModel (stages.py)


def _np32(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().to(torch.float64).numpy().astype(np.float32))


def _ssm_tensors(out, p: str, s, kernel: str):
    """The continuous-time SSM of one layer under prefix p (`...ssm`)."""
    out[f"{p}.log_dt"] = _np32(s.log_dt)
    lam = s.Lam
    out[f"{p}.lambda_re"] = _np32(lam.real)
    out[f"{p}.lambda_im"] = _np32(lam.imag)
    if kernel == "dplr":
        out[f"{p}.p_re"] = _np32(s.p_re)                             # [rank, H, M]
        out[f"{p}.p_im"] = _np32(s.p_im)
    out[f"{p}.b_re"] = _np32(s.b_re)
    out[f"{p}.b_im"] = _np32(s.b_im)
    out[f"{p}.c_re"] = _np32(s.c_re)                                 # true C
    out[f"{p}.c_im"] = _np32(s.c_im)
    out[f"{p}.d"] = _np32(s.d)


def _norm_tensors(out, prefix: str, n):
    """A LayerNorm's affine map; a BatchNorm's with its running statistics."""
    out[f"{prefix}.weight"] = _np32(n.weight)
    out[f"{prefix}.bias"] = _np32(n.bias)
    if isinstance(n, torch.nn.BatchNorm1d):
        out[f"{prefix}.running_mean"] = _np32(n.running_mean)
        out[f"{prefix}.running_var"] = _np32(n.running_var)


def model_tensors(model) -> OrderedDict[str, np.ndarray]:
    if isinstance(model, StagesModel):
        return stages_tensors(model)
    cfg = model.cfg
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    out["encoder.weight"] = _np32(model.encoder.weight)              # [H, 1]
    out["encoder.bias"] = _np32(model.encoder.bias)
    for i, blk in enumerate(model.layers):
        p = f"layers.{i}"
        _norm_tensors(out, f"{p}.norm", blk.norm)
        _ssm_tensors(out, f"{p}.ssm", blk.ssm, cfg.kernel)
        out[f"{p}.out.weight"] = _np32(blk.out.weight)               # [2H or H, H]
        out[f"{p}.out.bias"] = _np32(blk.out.bias)
    _norm_tensors(out, "final_norm", model.final_norm)
    out["decoder.weight"] = _np32(model.decoder.weight)              # [K, H]
    out["decoder.bias"] = _np32(model.decoder.bias)
    return out


def stages_tensors(model: StagesModel) -> OrderedDict[str, np.ndarray]:
    cfg = model.cfg
    out: OrderedDict[str, np.ndarray] = OrderedDict()
    kinds = [cfg.front_kernel] + [sc.kernel for sc in cfg.frame_stages]
    for s, st in enumerate(model.stages):
        out[f"stages.{s}.encoder.weight"] = _np32(st.encoder.weight)  # [H, W]
        out[f"stages.{s}.encoder.bias"] = _np32(st.encoder.bias)
        for i, layer in enumerate(st.layers):
            p = f"stages.{s}.layers.{i}"
            if s > 0:
                _norm_tensors(out, f"{p}.norm", layer.norm)
            _ssm_tensors(out, f"{p}.ssm", layer.ssm, kinds[s])
            if s > 0:
                out[f"{p}.out.weight"] = _np32(layer.out.weight)     # [2H or H, H]
                out[f"{p}.out.bias"] = _np32(layer.out.bias)
    n = model.pooling.norm
    for k in ("weight", "bias", "running_mean", "running_var"):
        out[f"pooling.norm.{k}"] = _np32(getattr(n, k))
    _norm_tensors(out, "final_norm", model.final_norm)
    out["decoder.weight"] = _np32(model.decoder.weight)              # [K, H_last]
    out["decoder.bias"] = _np32(model.decoder.bias)
    return out


def _header(version: int, cfg) -> OrderedDict:
    """What both formats' metadata start with: the format, the labels and the input."""
    meta = OrderedDict()
    meta["format"] = version
    meta["labels"] = list(cfg.labels)
    meta["sample_rate"] = int(cfg.sample_rate)
    meta["input_mean"] = float(cfg.input_mean)
    meta["input_std"] = float(cfg.input_std)
    meta["clip_seconds"] = float(cfg.clip_seconds)
    return meta


def _block_fields(d: OrderedDict, c) -> OrderedDict:
    """A stack of residual blocks' kernel and block settings, added to `d` (returned);
    `c`: a ModelConfig (format 1) or a FrameStageConfig (a frame stage of format 2)."""
    d["kernel"] = c.kernel
    d["discretization"] = "bilinear" if c.kernel == "dplr" else c.discretization
    if c.kernel == "dplr":
        d["rank"] = int(c.rank)
    d["norm"] = c.norm
    d["norm_eps"] = float(c.norm_eps)
    d["activation"] = "gelu"
    d["output"] = c.output
    return d


def stages_metadata(model: StagesModel, trained_on=None, metrics=None) -> dict:
    cfg = model.cfg
    if cfg.head_pooling == "frame" and not any(label.startswith("_") for label in cfg.labels):
        raise ValueError("a frame head needs a no-command label starting with '_' (e.g. _nothing_): "
                         "the engine reads the others as commands")
    meta = _header(STAGES_FORMAT_VERSION, cfg)
    front = OrderedDict(clock="input", d_model=int(cfg.front_width), n_layers=1,
                        d_state=int(cfg.front_state), bank=True, kernel=cfg.front_kernel,
                        discretization="bilinear" if cfg.front_kernel == "dplr" else cfg.front_discretization)
    if cfg.front_kernel == "dplr":
        front["rank"] = int(cfg.front_rank)
    stages = [front]
    for sc in cfg.frame_stages:
        st = OrderedDict(clock="frames", d_model=int(sc.d_model), n_layers=int(sc.n_layers),
                         d_state=int(sc.d_state), bank=False)
        stages.append(_block_fields(st, sc))
    meta["stages"] = stages
    meta["pooling"] = OrderedDict(frame_seconds=float(cfg.frame_seconds), rectifier=cfg.rectifier,
                                  log_floor=float(cfg.log_floor))
    meta["head"] = OrderedDict(norm=cfg.head_norm, norm_eps=float(cfg.head_norm_eps),
                               pooling=cfg.head_pooling)
    if cfg.head_pooling == "frame":
        meta["head"]["window_frames"] = int(cfg.head_window_frames)
    meta["trained_on"] = dict(trained_on or {})
    meta["metrics"] = dict(metrics or {})
    return meta


def model_metadata(model, trained_on=None, metrics=None) -> dict:
    if isinstance(model, StagesModel):
        return stages_metadata(model, trained_on, metrics)
    cfg = model.cfg
    meta = _header(FORMAT_VERSION, cfg)
    meta["d_model"] = int(cfg.d_model)
    meta["n_layers"] = int(cfg.n_layers)
    meta["d_state"] = int(cfg.d_state)
    _block_fields(meta, cfg)
    meta["pooling"] = "mean"
    meta["trained_on"] = dict(trained_on or {})
    meta["metrics"] = dict(metrics or {})
    return meta


def export_model(model, path: str, trained_on=None, metrics=None) -> dict:
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


def set_metadata(path: str, **keys) -> None:
    """Sets keys of a model file's s4 metadata, its tensors kept byte for byte: e.g. the
    detection threshold chosen for the model once it is trained (tools/stream_eval.py --write).
    The file is replaced whole (written beside it, then renamed), never left half-written."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = json.loads(header["__metadata__"]["s4"])
    meta.update(keys)
    header["__metadata__"]["s4"] = json.dumps(meta)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data stays 8-byte aligned, as safetensors writes it
    tmp = path + ".tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_model(path: str, dtype=torch.float64):
    """Rebuild the network of a model file (eval mode, in `dtype`): an S4Model for format 1, a
    StagesModel for format 2. Returns (model, metadata)."""
    meta = read_metadata(path)
    t = {k: torch.from_numpy(v.astype(np.float64)) for k, v in load_file(path).items()}
    if meta.get("format") == STAGES_FORMAT_VERSION:
        return load_stages(meta, t, dtype), meta
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path}: model file format {meta.get('format')!r} is not 1 or 2")
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


def stages_config_from_metadata(meta: dict) -> StagesConfig:
    st = meta["stages"]
    if len(st) < 2 or not st[0]["bank"] or st[0]["clock"] != "input" or \
            any(s["bank"] or s["clock"] != "frames" for s in st[1:]):
        raise ValueError("this trainer reads format-2 networks of a bank stage at the input clock "
                         "followed by block stages at the frame clock")
    front, pool = st[0], meta["pooling"]
    frame = [FrameStageConfig(d_model=s["d_model"], n_layers=s["n_layers"], d_state=s["d_state"],
                              kernel=s["kernel"], discretization=s["discretization"],
                              rank=s.get("rank", 1), init="legs" if s["kernel"] == "dplr" else "lin",
                              norm=s["norm"], norm_eps=s["norm_eps"], output=s["output"])
             for s in st[1:]]
    return StagesConfig(
        front_width=front["d_model"], front_state=front["d_state"], front_kernel=front["kernel"],
        front_discretization=front["discretization"], front_rank=front.get("rank", 1),
        front_init="legs" if front["kernel"] == "dplr" else "lin",
        frame_seconds=pool["frame_seconds"], rectifier=pool["rectifier"], log_floor=pool["log_floor"],
        frame_stages=frame, head_norm=meta["head"]["norm"], head_norm_eps=meta["head"]["norm_eps"],
        head_pooling=meta["head"].get("pooling", "mean"), head_window_frames=meta["head"].get("window_frames", 1),
        dropout=0.0, labels=meta["labels"], sample_rate=meta["sample_rate"],
        clip_seconds=meta["clip_seconds"], input_mean=meta["input_mean"], input_std=meta["input_std"])


def load_stages(meta: dict, t: dict, dtype=torch.float64) -> StagesModel:
    cfg = stages_config_from_metadata(meta)
    model = StagesModel(cfg).to(torch.float64)
    kinds = [cfg.front_kernel] + [sc.kernel for sc in cfg.frame_stages]
    want = stages_tensors(model)
    if set(want) != set(t):
        raise ValueError(f"tensors missing {sorted(set(want) - set(t))}, unexpected {sorted(set(t) - set(want))}")
    for k, v in want.items():
        if tuple(t[k].shape) != v.shape:
            raise ValueError(f"{k}: shape {tuple(t[k].shape)}, expected {v.shape}")

    def norm(prefix, n):
        n.weight.copy_(t[f"{prefix}.weight"])
        n.bias.copy_(t[f"{prefix}.bias"])
        if isinstance(n, torch.nn.BatchNorm1d):
            n.running_mean.copy_(t[f"{prefix}.running_mean"])
            n.running_var.copy_(t[f"{prefix}.running_var"])

    with torch.no_grad():
        for s, st in enumerate(model.stages):
            st.encoder.weight.copy_(t[f"stages.{s}.encoder.weight"])
            st.encoder.bias.copy_(t[f"stages.{s}.encoder.bias"])
            for i, layer in enumerate(st.layers):
                p = f"stages.{s}.layers.{i}"
                if s > 0:
                    norm(f"{p}.norm", layer.norm)
                    layer.out.weight.copy_(t[f"{p}.out.weight"])
                    layer.out.bias.copy_(t[f"{p}.out.bias"])
                ssm = layer.ssm
                ssm.log_dt.copy_(t[f"{p}.ssm.log_dt"])
                ssm.log_neg_lambda_re.copy_(torch.log(-t[f"{p}.ssm.lambda_re"]))
                ssm.lambda_im.copy_(t[f"{p}.ssm.lambda_im"])
                if kinds[s] == "dplr":
                    ssm.p_re.copy_(t[f"{p}.ssm.p_re"])
                    ssm.p_im.copy_(t[f"{p}.ssm.p_im"])
                for n in ("b_re", "b_im", "c_re", "c_im", "d"):
                    getattr(ssm, n).copy_(t[f"{p}.ssm.{n}"])
        norm("pooling.norm", model.pooling.norm)
        norm("final_norm", model.final_norm)
        model.decoder.weight.copy_(t["decoder.weight"])
        model.decoder.bias.copy_(t["decoder.bias"])
    model.eval()
    return model.to(dtype)
