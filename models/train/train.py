"""Train an s4listen keyword model on Speech Commands (12 classes), export safetensors.

Tiny CPU smoke run (seconds):
    python train.py --tiny --out-dir runs/tiny
Paper-size run (GPU):
    python train.py --device cuda --out-dir runs/s4-h128 --epochs 50 \
        --d-model 128 --n-layers 6 --d-state 64 --batch-size 32

The stages network of model format 2 (stages.py: a filter bank at the input rate, 10 ms log
frames, S4 blocks at the frame rate) with --arch stages; distilled from a cached teacher with
--teacher-cache DIR (copies.npy, logits.npy, labels.npy, meta.json: see TeacherCache), and
with --kd-hint from its embeddings too (hint.py).

Validation speakers are carved out of train/ (never test/). The test split is only
scored at the very end with --test-at-end (recorded in the model's metrics, never
used for selection). Resume with --resume runs/x/last.pt.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import random
import time

import numpy as np
import torch
import torch.nn.functional as F

import data as D
import stages as ST
from export import export_model, load_model
from frame_cache import FrameCache, draw_pairs
from hint import EmbeddingHint
from model import SPEECH_COMMANDS_LABELS, ModelConfig, S4Model, count_parameters, deepen, param_groups
from oww_teacher import window_times
from teacher import distillation_loss, load_teacher


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    D.add_split_args(ap)
    a("--out-dir", default="runs/default")
    a("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    a("--tiny", action="store_true", help="tiny model + few clips + 1 epoch (CPU, seconds)")
    a("--compile", action="store_true", help="torch.compile the position-wise GELU/Out/GLU of each "
      "block (fuses its element-wise passes: ~25%% faster per step on CPU; needs a C++ compiler)")
    # model
    a("--arch", choices=["s4", "stages"], default="s4", help="s4: format 1, one stack at the input "
      "rate; stages: format 2 (filter bank, frame pooling, blocks at the frame rate; its defaults: "
      "--d-model 128 --n-layers 6 --d-state 64 --kernel diag --warmup-steps 100 --dt-min 0.01 "
      "--dt-max 0.5, rates on a 100 Hz grid)")
    a("--front-width", type=int, default=64, help="stages: H0, the filter bank's channels")
    a("--front-state", type=int, default=32, help="stages: N0")
    a("--front-kernel", choices=["dplr", "diag"], default="diag", help="stages: the bank's kernel")
    a("--front-f-max", type=float, default=4000.0, help="stages: top centre frequency of the bank")
    a("--frame-seconds", type=float, default=0.01)
    a("--rectifier", choices=["square", "abs"], default="square")
    a("--log-floor", type=float, default=1e-8)
    a("--freeze-front-end-epochs", type=int, default=0, help="stages: the bank is frozen (not "
      "trained, no backward through it) for the first K epochs")
    a("--frozen-frames", type=int, default=0, metavar="N", help="stages, with --teacher-cache and "
      "the bank frozen for every epoch: draw N (input rate, speed) pairs once, store the bank's log "
      "frames of every teacher copy at each (OUT_DIR/frames, frame_cache.py) and train the frame "
      "stages on them, each batch at one pair (several times faster per step)")
    a("--time-masks", type=int, default=2, help="stages: time masks per clip on the log frames")
    a("--time-mask-max", type=int, default=10, help="frames")
    a("--channel-masks", type=int, default=2)
    a("--channel-mask-max", type=int, default=8, help="channels")
    a("--dt-min", type=float, default=0.001, help="Delta range at init (stages: of the frame blocks, "
      "in frames)")
    a("--dt-max", type=float, default=0.1)
    a("--rate-grid", type=int, default=1, help="training rates (drawn and declared) rounded to this "
      "many Hz (stages: 100, so 10 ms frames are whole samples); validation uses exact rates")
    a("--kernel", choices=["dplr", "diag"], default="dplr")
    a("--disc", choices=["bilinear", "zoh"], default=None, help="default: bilinear (dplr), zoh (diag)")
    a("--init", default=None, help="dplr: legs; diag: lin|inv|legs (default legs / lin)")
    a("--first-init", default=None, help="diag: init of the first layer only (filterbank: "
      "ERB-spaced band-pass channels, see s4.s4d_filterbank)")
    a("--rank", type=int, default=1)
    a("--d-model", type=int, default=64)
    a("--n-layers", type=int, default=4)
    a("--d-state", type=int, default=32)
    a("--norm", choices=["layer", "batch"], default="layer")
    a("--output", choices=["glu", "linear"], default="glu")
    a("--dropout", type=float, default=0.1)
    a("--b-clip", type=float, default=2.0, help="clip Im B~ at init (<=0: off)")
    # optimisation
    a("--epochs", type=int, default=50)
    a("--batch-size", type=int, default=32)
    a("--lr", type=float, default=0.004)
    a("--ssm-lr", type=float, default=0.001, help="lr for Lambda, P, B, log_dt (no weight decay)")
    a("--weight-decay", type=float, default=0.05)
    a("--warmup-steps", type=int, default=500)
    a("--label-smoothing", type=float, default=0.1)
    a("--grad-clip", type=float, default=0.0)
    a("--teacher", default="", help="knowledge distillation from this log-mel CNN (teacher.py's "
      "teacher.pt): it sees each augmented clip at 16 kHz, the student the same clip at its rate")
    a("--kd-alpha", type=float, default=0.7, help="weight of the teacher's soft targets (0..1)")
    a("--kd-temperature", type=float, default=2.0)
    a("--unknown-weight", type=float, default=1.0, help="with a teacher: each `_unknown_` clip "
      "counts this many times in both terms of the loss (other clips once), so that words outside "
      "the vocabulary weigh more against being taken for commands")
    a("--kd-hint", type=float, default=0.0, metavar="WEIGHT", help="with --teacher-cache holding "
      "embeddings.npy: add WEIGHT x the mean squared error of a linear map (training only, not "
      "exported) from the student's last features to the teacher's standardised embeddings, "
      "each window at the frame where it ends (hint.py)")
    a("--student-shift-ms", type=float, default=0.0, metavar="S", help="with --teacher-cache on raw "
      "audio (not --frozen-frames): shift each copy by a further uniform [-S, S] ms (zero fill) for "
      "the student only, so that it is less sensitive to where a window places the word; the "
      "teacher's logits are those of the copy as stored")
    a("--student-reverb", type=float, default=0.0, metavar="P", help="with --teacher-cache on raw "
      "audio (not --frozen-frames): each copy heard in a synthetic room (data.reverberate: RT60 "
      f"{D.ROOM_RT60_S[0]:g}-{D.ROOM_RT60_S[1]:g} s, direct-to-reverberant {D.ROOM_DRR_DB[0]:g}-"
      f"{D.ROOM_DRR_DB[1]:g} dB) with probability P, by the student only")
    a("--teacher-cache", default="", help="distil from cached teacher logits: DIR with copies.npy "
      "(int16 [C, K, 16000] augmented copies of the training clips), logits.npy (float32 [C, K, 12]), "
      "labels.npy, meta.json (seed, val_fraction, items). Each epoch each clip draws one of its K "
      "copies; the student hears it at a drawn rate. Replaces the training clips and waveform "
      "augmentation")
    # data / augmentation
    a("--max-val", type=int, default=0)
    a("--no-augment", action="store_true")
    a("--shift-ms", type=float, default=100.0)
    a("--gain-db", type=float, default=6.0)
    a("--noise-prob", type=float, default=0.8)
    a("--snr-min", type=float, default=0.0)
    a("--snr-max", type=float, default=20.0)
    a("--multirate-prob", type=float, default=0.5)
    a("--min-rate", type=int, default=8000)
    a("--max-rate", type=int, default=48000)
    a("--speed-min", type=float, default=1.0, help="speed perturbation: each batch is played "
      "faster or slower by a log-uniform factor in [speed-min, speed-max] (pitch moves with it)")
    a("--speed-max", type=float, default=1.0)
    a("--eval-rates", default="16000,8000", help="comma-separated input rates for validation")
    a("--eval-batch-size", type=int, default=64)
    # run control
    a("--resume", default="", help="checkpoint to resume from ('auto': OUT_DIR/last.pt if present)")
    a("--init-from", default="", help="start from the best weights of this checkpoint (a last.pt) or "
      "model file (.safetensors; its config wins over the model flags) with a fresh optimiser and "
      "schedule: a further stage")
    a("--add-layers", type=int, default=0, help="with --init-from: append this many blocks that "
      "start as the identity (Out = 0), so the stage starts from the same function with more depth")
    a("--test-at-end", action="store_true", help="score the best model on test/ once, at the end")
    a("--export", default="", help="model file to write at the end (default OUT_DIR/model.safetensors)")
    a("--log-every", type=int, default=50)
    a("--average-from", type=int, default=0, help="from this epoch on (1-based; 0: never), also "
      "validate the running mean of the weights at each epoch's end, a candidate for the best")
    a("--draw-seed", type=int, default=None, help="seeds what training draws (initial weights, "
      "order, augmentation, masks; default: --seed, which still picks the validation speakers): "
      "the same recipe drawn again, e.g. for soup.py")
    a("--stop-at", default="", help="wall-clock UTC deadline, 'HH:MM' (today) or ISO 8601: stop "
      "training (mid-epoch if need be) early enough to validate, checkpoint and export by then")
    a("--time-schedule", action="store_true", help="with --stop-at: the cosine decay follows "
      "wall-clock progress towards the deadline (or step progress, whichever is further)")
    a("--export-best", default="", help="model file rewritten after every validation improvement "
      "(default OUT_DIR/best.safetensors; 'none' to disable)")
    pre, _ = ap.parse_known_args(argv)
    if pre.arch == "stages":
        ap.set_defaults(d_model=128, n_layers=6, d_state=64, kernel="diag", warmup_steps=100,
                        dt_min=0.01, dt_max=0.5, rate_grid=100)
    if pre.tiny:  # tiny defaults; explicit flags still win
        ap.set_defaults(d_model=8, n_layers=2, d_state=4, epochs=1, batch_size=8, max_train=48,
                        max_val=24, warmup_steps=2, log_every=2, eval_batch_size=24,
                        front_width=8, front_state=8)
    args = ap.parse_args(argv)
    if args.teacher and args.teacher_cache:
        ap.error("--teacher and --teacher-cache: give one teacher")
    if args.kd_hint < 0 or (args.kd_hint > 0 and (not args.teacher_cache or args.arch != "stages")):
        ap.error("--kd-hint must be at least 0, and above 0 only with --arch stages and --teacher-cache")
    if args.unknown_weight <= 0 or (args.unknown_weight != 1 and not (args.teacher or args.teacher_cache)):
        ap.error("--unknown-weight must be positive, and other than 1 only with a teacher")
    for flag, value in (("--student-shift-ms", args.student_shift_ms), ("--student-reverb", args.student_reverb)):
        if value < 0 or (value > 0 and (not args.teacher_cache or args.frozen_frames)):
            ap.error(f"{flag} must be at least 0, and above 0 only with --teacher-cache on raw audio "
                     f"(not --frozen-frames)")
    if args.student_shift_ms > 0 and args.kd_hint > 0:
        ap.error("--student-shift-ms with --kd-hint: the hint's windows would no longer fall on the "
                 "frames they describe")
    if args.teacher_cache and args.kd_alpha == 0:
        ap.error("--teacher-cache with --kd-alpha 0: the teacher would not be used")
    if args.arch == "stages" and args.add_layers:
        ap.error("--add-layers deepens a format-1 model only")
    if args.teacher and args.kd_alpha == 0:
        ap.error("--teacher with --kd-alpha 0: the teacher would not be used")
    if not 0 <= args.kd_alpha <= 1 or args.kd_temperature <= 0:
        ap.error(f"--kd-alpha must be in [0, 1] and --kd-temperature > 0, got {args.kd_alpha}, "
                 f"{args.kd_temperature}")
    if not 0 < args.speed_min <= args.speed_max:
        ap.error(f"--speed-min/--speed-max: need 0 < min <= max, got {args.speed_min}, {args.speed_max}")
    if args.add_layers and not args.init_from:
        ap.error("--add-layers deepens the model of --init-from: give one")
    if args.disc is None:
        args.disc = "bilinear" if args.kernel == "dplr" else "zoh"
    if args.init is None:
        args.init = "legs" if args.kernel == "dplr" else "lin"
    return args


def parse_deadline(s: str) -> float | None:
    """'HH:MM' (UTC, today) or an ISO 8601 time -> Unix time (None if empty)."""
    if not s:
        return None
    if len(s) <= 5 and ":" in s:
        hh, mm = (int(v) for v in s.split(":"))
        now = datetime.datetime.now(datetime.UTC)
        return now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    d = datetime.datetime.fromisoformat(s)
    if d.tzinfo is None:
        d = d.replace(tzinfo=datetime.UTC)
    return d.timestamp()


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%H:%M:%S")


def seed_all(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def cosine_warmup(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


@torch.no_grad()
def evaluate(model: S4Model, x: torch.Tensor, y: torch.Tensor, rates, device, batch_size=64):
    """Accuracy (and mean loss) per input rate; clips resampled from 16 kHz (band-limited)."""
    model.eval()
    res = {}
    for f_in in rates:
        correct, loss, n = 0, 0.0, 0
        for i in range(0, len(x), batch_size):
            xb = D.resample(x[i:i + batch_size].to(device), D.SAMPLE_RATE, f_in)
            yb = y[i:i + batch_size].to(device)
            logits = model(xb, rate=model.cfg.sample_rate / f_in)
            loss += F.cross_entropy(logits, yb, reduction="sum").item()
            correct += (logits.argmax(-1) == yb).sum().item()
            n += len(yb)
        res[str(f_in)] = {"acc": correct / max(1, n), "loss": loss / max(1, n)}
    return res


def save_checkpoint(path, **state):
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def mean_accuracy(val: dict) -> float:
    """The mean over the eval rates of evaluate()'s accuracies: the one score that picks weights."""
    return float(np.mean([v["acc"] for v in val.values()]))


def best_epoch(history):
    """The best validation in the history by mean accuracy over the rates, of the weights or of
    their running average: {"epoch", "val", "averaged" (how many epochs' weights; 0: none)}."""
    found = [{"epoch": h["epoch"], "val": h["val"], "averaged": 0} for h in history]
    found += [{"epoch": h["epoch"], "val": h["val_average"], "averaged": h["averaged_epochs"]}
              for h in history if h.get("val_average")]
    return max(found, key=lambda c: mean_accuracy(c["val"]))


class WeightAverage:
    """The running mean of the weights at the end of each epoch from --average-from on (SWA,
    Izmailov et al. 2018): a point in the middle of what the last, low-learning-rate epochs
    visit, which tends to hold up better on new speakers than any one of them. BatchNorm's
    running statistics are averaged too; integer buffers keep the latest value."""

    def __init__(self, state=None, count: int = 0):
        self.state, self.count = state, count

    def update(self, model: torch.nn.Module) -> None:
        self.count += 1
        for k, v in model.state_dict().items():
            v = v.detach().cpu()
            if self.state is None or k not in self.state or not v.is_floating_point():
                self.state = self.state or {}
                self.state[k] = v.clone()
            else:
                self.state[k] += (v - self.state[k]) / self.count


def evaluate_weights(model, state, *args):
    """evaluate() with these weights loaded, then the model's own weights back."""
    cur = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.load_state_dict(state)
    try:
        return evaluate(model, *args)
    finally:
        model.load_state_dict(cur)
        model.train(was_training)


def export_best(model: S4Model, best_state, path, trained_on, history, best):
    """Write the best-by-validation weights as a model file (atomically), then restore."""
    cur = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.load_state_dict(best_state)
    model.eval()
    h = best_epoch(history)
    metrics = {"val_mean_acc": best, "epoch": h["epoch"], "val": h["val"],
               "averaged_epochs": h["averaged"], "parameters": count_parameters(model)}
    tmp = path + ".tmp"
    export_model(model, tmp, trained_on=trained_on, metrics=metrics)
    os.replace(tmp, path)
    model.load_state_dict(cur)
    model.train(was_training)


def starting_weights(args) -> tuple[ModelConfig, dict, float, dict]:
    """The config, weights, validation score and `trained_on` of what a further stage starts from
    (`--init-from`).

    A checkpoint gives its best weights. A model file (e.g. the shipped models/default.safetensors,
    whose run folder may be gone) gives its weights exactly: it stores the parameters themselves,
    true C included. Either way its validation speakers must be the ones this run holds out, or the
    next stage would train on them and its validation score would mean nothing. Dropout is a
    training choice, not part of the weights: --dropout sets it for the new stage.
    """
    if args.init_from.endswith(".safetensors"):
        model, meta = load_model(args.init_from, dtype=torch.float32)
        cfg = model.cfg
        state, val = model.state_dict(), meta.get("metrics", {}).get("val_mean_acc", float("nan"))
        trained_on = meta.get("trained_on", {})
    else:
        ck = torch.load(args.init_from, map_location="cpu", weights_only=False)
        cfg = config_from_dict(ck.get("arch", "s4"), ck["model_config"])
        state, val = ck.get("best_model") or ck["model"], ck["best_val"]
        trained_on = ck.get("trained_on", {})
    require_same_held_out(args.init_from, trained_on, args)
    return dataclasses.replace(cfg, dropout=args.dropout), state, val, trained_on


def model_config(args, labels, mean, std):
    if args.arch == "stages":
        frame = ST.FrameStageConfig(d_model=args.d_model, n_layers=args.n_layers, d_state=args.d_state,
                                    kernel=args.kernel, discretization=args.disc, rank=args.rank,
                                    init=args.init, b_clip=args.b_clip if args.b_clip > 0 else None,
                                    dt_min=args.dt_min, dt_max=args.dt_max, norm=args.norm,
                                    output=args.output)
        return ST.StagesConfig(front_width=args.front_width, front_state=args.front_state,
                               front_kernel=args.front_kernel,
                               front_discretization="bilinear" if args.front_kernel == "dplr" else "zoh",
                               front_init="legs" if args.front_kernel == "dplr" else "filterbank",
                               front_f_max=args.front_f_max, frame_seconds=args.frame_seconds,
                               rectifier=args.rectifier, log_floor=args.log_floor,
                               frame_stages=[frame], dropout=args.dropout, labels=labels,
                               sample_rate=D.SAMPLE_RATE, clip_seconds=1.0, input_mean=mean,
                               input_std=std)
    return ModelConfig(d_model=args.d_model, n_layers=args.n_layers, d_state=args.d_state,
                       kernel=args.kernel, discretization=args.disc, rank=args.rank, init=args.init,
                       first_init=args.first_init, b_clip=args.b_clip if args.b_clip > 0 else None,
                       norm=args.norm, output=args.output, dropout=args.dropout,
                       dt_min=args.dt_min, dt_max=args.dt_max, labels=labels,
                       sample_rate=D.SAMPLE_RATE, clip_seconds=1.0, input_mean=mean, input_std=std)


def config_from_dict(arch: str, d: dict):
    return ST.StagesConfig.from_dict(d) if arch == "stages" else ModelConfig.from_dict(d)


def build_model(cfg, seed):
    return ST.StagesModel(cfg, seed=seed) if isinstance(cfg, ST.StagesConfig) else S4Model(cfg, seed=seed)


class TeacherCache:
    """Cached teacher outputs (written by the pretrained-embedding teacher): in DIR

        copies.npy  int16 [C, K, 16000]  K augmented copies (noise, shift, gain applied) of each of
                                         C training clips at 16 kHz
        logits.npy  float32 [C, K, 12]   the teacher's logits, labels in model.SPEECH_COMMANDS_LABELS order
        labels.npy  int64 [C]
        embeddings.npy  float16 [C, K, W, E], optional: the teacher's embeddings of each copy,
                    window w spanning oww_teacher.window_times(meta["teacher"]["pad_ms"])[w]
        meta.json   the split it used ("seed", "val_fraction", at the top or under "split"), "items"
                    (the clips' paths), free-form provenance

    The arrays are memory-mapped."""

    def __init__(self, path: str):
        self.path = path
        with open(os.path.join(path, "meta.json")) as f:
            self.meta = json.load(f)
        self.copies = np.load(os.path.join(path, "copies.npy"), mmap_mode="r")
        self.logits = np.load(os.path.join(path, "logits.npy"), mmap_mode="r")
        self.labels = torch.from_numpy(np.load(os.path.join(path, "labels.npy")).astype(np.int64))
        emb = os.path.join(path, "embeddings.npy")
        self.embeddings = np.load(emb, mmap_mode="r") if os.path.exists(emb) else None
        C, K, n = self.copies.shape
        if self.logits.shape[:2] != (C, K) or self.labels.shape != (C,) or n != D.SAMPLE_RATE:
            raise SystemExit(f"{path}: copies {self.copies.shape}, logits {self.logits.shape}, labels "
                             f"{tuple(self.labels.shape)} do not fit together (1 s at 16 kHz)")
        if self.embeddings is not None and self.embeddings.shape[:2] != (C, K):
            raise SystemExit(f"{path}: embeddings {self.embeddings.shape} do not fit copies {self.copies.shape}")
        self.clips, self.n_copies = C, K

    def hint(self, d_student: int, frame_seconds: float) -> EmbeddingHint:
        """The training-only map from student features to these embeddings."""
        teacher = self.meta.get("teacher")
        pad_ms = teacher.get("pad_ms") if isinstance(teacher, dict) else None
        if self.embeddings is None or pad_ms is None:
            raise SystemExit(f"{self.path}: no embeddings.npy or no teacher pad_ms in meta.json "
                             f"(run oww_teacher.py again): --kd-hint cannot be used")
        ends = window_times(pad_ms)[:, 1]
        if len(ends) != self.embeddings.shape[2]:
            raise SystemExit(f"{self.path}: {self.embeddings.shape[2]} embeddings per copy, but "
                             f"a padding of {pad_ms} ms gives {len(ends)} windows")
        return EmbeddingHint.from_embeddings(d_student, ends, self.embeddings, frame_seconds)

    def embeddings_of(self, idx: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Clips idx, copies which[idx] -> the teacher's embeddings [B, W, E] (float32)."""
        i, k = idx.numpy(), which[idx].numpy()
        return torch.from_numpy(np.asarray(self.embeddings[i, k], dtype=np.float32))

    def split(self) -> dict:
        m = self.meta.get("split", self.meta)
        return {"seed": m.get("seed"), "val_fraction": m.get("val_fraction")}

    def check(self, args, labels, val_items):
        """Refuse a cache of another split, other labels, or holding a validation clip."""
        require_same_held_out(self.path, self.split(), args)
        if self.logits.shape[-1] != len(labels) or self.meta.get("labels", labels) != labels:
            raise SystemExit(f"{self.path}: the teacher's labels are not {labels}")
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= len(labels):
            raise SystemExit(f"{self.path}: labels outside 0..{len(labels) - 1}")
        items = self.meta.get("items")
        if items is not None:
            if len(items) != self.clips:
                raise SystemExit(f"{self.path}: {len(items)} items for {self.clips} clips")
            def tail(p):
                return "/".join(os.path.normpath(str(p)).split(os.sep)[-2:])

            leak = {tail(p) for p in items} & {tail(it.path) for it in val_items}
            if leak:
                raise SystemExit(f"{self.path} holds {len(leak)} validation clips, e.g. {sorted(leak)[0]}")

    def batch(self, idx: torch.Tensor, which: torch.Tensor):
        """Clips idx, copies which[idx] -> (x [B, 16000] float32 at 16 kHz, teacher logits, labels)."""
        i, k = idx.numpy(), which[idx].numpy()
        x = torch.from_numpy(self.copies[i, k].astype(np.float32) / 32768.0)
        return (x,) + self.targets(idx, which)

    def targets(self, idx: torch.Tensor, which: torch.Tensor):
        """Clips idx, copies which[idx] -> (teacher logits, labels)."""
        i, k = idx.numpy(), which[idx].numpy()
        return torch.from_numpy(np.asarray(self.logits[i, k], dtype=np.float32)), self.labels[idx]


def require_same_held_out(source: str, trained_on: dict, args):
    """A model or teacher (`source`) that held out other validation speakers (its `seed` and
    `val_fraction`) was trained on some of this run's: its influence would make the validation
    score mean nothing."""
    held_out = {k: trained_on.get(k) for k in ("seed", "val_fraction")}
    if held_out != {"seed": args.seed, "val_fraction": args.val_fraction}:
        raise SystemExit(f"{source} held out the validation speakers of {held_out}, this run "
                         f"those of seed {args.seed}, val_fraction {args.val_fraction}: give the same")


# What a resumed run may do differently: how it is carried out and for how long, not what it learns.
RESUME_MAY_CHANGE = {"resume", "threads", "device", "compile", "epochs", "stop_at", "time_schedule",
                     "export", "export_best", "log_every", "eval_batch_size", "test_at_end"}


def require_same_run(path: str, saved: dict, now: dict, what: str):
    """--resume continues the run that saved `path`. A checkpoint left in OUT_DIR by other flags or
    another teacher (an older recipe, a retrained teacher head) would otherwise be trained on, or
    a finished one exported, as if it were this run. Keys the checkpoint lacks (flags added
    since it was saved) are not compared."""
    def same(a, b):     # as JSON: a tuple equals its list, NaN its NaN
        return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)

    differ = sorted(k for k in saved.keys() & now.keys() if k not in RESUME_MAY_CHANGE
                    and not same(saved[k], now[k]))
    if differ:
        shown = "; ".join(f"{k}: {saved[k]!r} there, {now[k]!r} now" for k in differ)
        raise SystemExit(f"{path} was saved by a run with other {what} ({shown}): resume with the "
                         f"same, or start afresh in another --out-dir (or remove {os.path.dirname(path)})")


def main(argv=None):
    args = parse_args(argv)
    draw_seed = args.seed if args.draw_seed is None else args.draw_seed
    seed_all(draw_seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    os.makedirs(args.out_dir, exist_ok=True)
    labels = list(SPEECH_COMMANDS_LABELS)
    eval_rates = [int(r) for r in args.eval_rates.split(",") if r]

    # ---- data (validation speakers from train/; test/ untouched) ----
    t0 = time.time()
    tr_items, va_items = D.speaker_split(args)
    va_items = D.subsample(va_items, args.max_val, args.seed + 1)
    extra = {d: D.read_manifest(d) for d in args.extra_train}
    real_clips = len(tr_items)
    tr_items += [it for items in extra.values() for it in items]
    xtr, ytr = D.load_clips(tr_items, labels)
    xva, yva = D.load_clips(va_items, labels)
    noise = D.load_noise(args.data)
    mean, std = D.input_stats(xtr[:real_clips])   # the input normalisation follows real recordings
    print(f"data: {len(xtr)} train / {len(xva)} val clips, {len(noise)} noise files, "
          f"mean {mean:.3g} std {std:.3g} ({time.time() - t0:.1f}s)", flush=True)

    # ---- model / optimiser ----
    cfg = model_config(args, labels, mean, std)
    if args.init_from:
        cfg, init_state, init_val, init_trained_on = starting_weights(args)
        if isinstance(cfg, ST.StagesConfig) != (args.arch == "stages"):
            raise SystemExit(f"{args.init_from} is not a model of --arch {args.arch}")
    model = build_model(cfg, draw_seed).to(device)
    stages_arch = isinstance(model, ST.StagesModel)
    if args.init_from:
        model.load_state_dict(init_state)
        print(f"initialised from the best weights of {args.init_from} (val {init_val:.4f})", flush=True)
        if args.add_layers:
            model = deepen(model, args.add_layers, seed=draw_seed)
            cfg = model.cfg
            print(f"{args.add_layers} identity blocks appended: {cfg.n_layers} layers", flush=True)
    if args.compile:
        for blk in model.layers:   # the parameters stay the module's own: checkpoints are unchanged
            blk.pointwise_out = torch.compile(blk.pointwise_out, dynamic=True)
    groups = (ST.param_groups if stages_arch else param_groups)(model, args.lr, args.weight_decay, args.ssm_lr)
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    cache = None
    if args.teacher_cache:
        cache = TeacherCache(args.teacher_cache)
        cache.check(args, labels, va_items)
        print(f"teacher cache {args.teacher_cache}: {cache.clips} clips x {cache.n_copies} copies, "
              f"alpha {args.kd_alpha}, T {args.kd_temperature}", flush=True)
    hint = None
    if args.kd_hint > 0:
        hint = cache.hint(cfg.frame_stages[-1].d_model, cfg.frame_seconds).to(device)
        opt.add_param_group({"params": list(hint.parameters()), "lr": args.lr,
                             "weight_decay": args.weight_decay})
        print(f"embedding hints: weight {args.kd_hint}, {len(hint.ends)} windows of "
              f"{hint.mean.numel()} dimensions", flush=True)
    n_train = cache.clips if cache is not None else len(xtr)
    steps_per_epoch = max(1, n_train // args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    deadline = parse_deadline(args.stop_at)
    clock = {"t0": time.time()}   # start of the time budget (kept across resumes)

    def lr_factor(s):
        f = cosine_warmup(s, args.warmup_steps, total_steps)
        if args.time_schedule and deadline is not None and s >= args.warmup_steps:
            p = (time.time() - clock["t0"]) / max(1.0, deadline - clock["t0"])
            f = min(f, 0.5 * (1 + math.cos(math.pi * min(1.0, max(0.0, p)))))
        return f

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
    print(f"model: {count_parameters(model)} parameters, {json.dumps(cfg.to_dict())}", flush=True)
    mask_gen = torch.Generator().manual_seed(draw_seed + 13)
    if stages_arch and not args.no_augment:
        model.frame_mask = ST.FrameMask(args.time_masks, args.time_mask_max, args.channel_masks,
                                        args.channel_mask_max, mask_gen)

    start_epoch, step, best, best_state, history = 0, 0, -1.0, None, []
    average = WeightAverage()
    ckpt_path = os.path.join(args.out_dir, "last.pt")
    resume = ckpt_path if args.resume == "auto" and os.path.exists(ckpt_path) else \
        (args.resume if args.resume not in ("", "auto") else "")
    if resume:
        ck = torch.load(resume, map_location=device, weights_only=False)
        if ck.get("arch", "s4") != ("stages" if stages_arch else "s4"):
            raise SystemExit(f"{resume} is a checkpoint of another --arch")
        require_same_run(resume, ck.get("args", {}), vars(args), "flags")
        resumed_trained_on = ck.get("trained_on", {})
        model.cfg = cfg = config_from_dict(ck.get("arch", "s4"), ck["model_config"])
        model.load_state_dict(ck["model"])
        if hint is not None:
            hint.load_state_dict(ck["hint"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        start_epoch, step, best = ck["epoch"], ck["step"], ck["best_val"]
        best_state, history = ck.get("best_model"), ck.get("history", [])
        clock["t0"] = ck.get("clock_t0", clock["t0"])
        average = WeightAverage(ck.get("average"), ck.get("average_count", 0))
        if "mask" in ck["rng"]:
            mask_gen.set_state(ck["rng"]["mask"])
        torch.set_rng_state(ck["rng"]["torch"])
        np.random.set_state(ck["rng"]["numpy"])
        random.setstate(ck["rng"]["python"])
        print(f"resumed from {resume} at epoch {start_epoch}, step {step}", flush=True)

    aug_gen = torch.Generator().manual_seed(draw_seed + 7 + start_epoch)
    aug_cfg = D.AugmentConfig(args.shift_ms, args.gain_db, args.noise_prob, args.snr_min, args.snr_max,
                              multirate_prob=args.multirate_prob, min_rate=args.min_rate,
                              max_rate=args.max_rate, speed_min=args.speed_min,
                              speed_max=args.speed_max, rate_grid=args.rate_grid)
    augment = None if args.no_augment else D.Augmenter(aug_cfg, noise, labels.index("_silence_"),
                                                       device, aug_gen)
    frames = None
    if args.frozen_frames:
        if not stages_arch or cache is None or args.freeze_front_end_epochs < args.epochs:
            raise SystemExit("--frozen-frames needs --arch stages, --teacher-cache and "
                             "--freeze-front-end-epochs at least --epochs")
        model.set_front_end_trainable(False)
        frames = FrameCache(os.path.join(args.out_dir, "frames"), model, cache,
                            draw_pairs(aug_cfg, args.frozen_frames, draw_seed + 29),
                            log=lambda m: print(m, flush=True))
    trained_on = {"dataset": "speech-commands (shared/data)", "train_clips": len(xtr),
                  "val_clips": len(xva), "val_fraction": args.val_fraction, "seed": args.seed,
                  "draw_seed": draw_seed,
                  "augment": not args.no_augment, "multirate": [args.min_rate, args.max_rate,
                                                                args.multirate_prob],
                  "speed": [args.speed_min, args.speed_max], "arch": args.arch,
                  "extra_train": {d: len(items) for d, items in extra.items()},
                  "licence": "Speech Commands, Pete Warden, CC BY 4.0"}
    if args.init_from:       # the model file tells every phase that made it
        trained_on["init_from"] = {"path": args.init_from, "val_mean_acc": init_val,
                                   "trained_on": init_trained_on}

    teacher = None
    if args.teacher:
        teacher, ck = load_teacher(args.teacher, device)
        require_same_held_out(args.teacher, ck, args)
        trained_on["teacher"] = {"path": args.teacher, "val_acc": ck["val_acc"],
                                 "alpha": args.kd_alpha, "temperature": args.kd_temperature}
        print(f"distilling from {args.teacher} (val {ck['val_acc']:.4f}), alpha {args.kd_alpha}, "
              f"T {args.kd_temperature}", flush=True)

    if cache is not None:
        trained_on["teacher_cache"] = {"path": args.teacher_cache, "copies": cache.n_copies,
                                       "clips": cache.clips, "alpha": args.kd_alpha,
                                       "temperature": args.kd_temperature,
                                       "hint_weight": args.kd_hint,
                                       "teacher": cache.meta.get("teacher", "")}
        trained_on["train_clips"] = cache.clips
    if stages_arch:
        trained_on["front_end_frozen_epochs"] = args.freeze_front_end_epochs
        if frames is not None:
            trained_on["frozen_frames"] = [list(r) for r in frames.pairs]
        trained_on["frame_masks"] = [args.time_masks, args.time_mask_max, args.channel_masks,
                                     args.channel_mask_max]

    class_weight = None
    if args.unknown_weight != 1:
        class_weight = torch.ones(len(labels), device=device)
        class_weight[labels.index("_unknown_")] = args.unknown_weight
        trained_on["unknown_weight"] = args.unknown_weight
    if args.student_shift_ms > 0:
        trained_on["student_shift_ms"] = args.student_shift_ms
    if args.student_reverb > 0:
        trained_on["student_reverb"] = args.student_reverb
    if resume:
        require_same_run(resume, resumed_trained_on, trained_on, "data or teacher")
    best_path = args.export_best or os.path.join(args.out_dir, "best.safetensors")
    if best_path == "none":
        best_path = ""
    eval_cost = [0.0]   # seconds the last validation took (to stop early enough)

    def must_stop() -> bool:
        if deadline is None:
            return False
        margin = 1.5 * eval_cost[0] + 30.0      # final validation + checkpoint + export
        return time.time() + margin >= deadline

    if deadline is not None:
        print(f"deadline {datetime.datetime.fromtimestamp(deadline, datetime.UTC).isoformat()}"
              f" ({(deadline - time.time()) / 60:.1f} min from now)", flush=True)
    stopped = False
    for epoch in range(start_epoch, args.epochs):
        if must_stop():
            print(f"deadline reached before epoch {epoch + 1}: stopping", flush=True)
            stopped = True
            break
        model.train()
        if stages_arch:
            model.set_front_end_trainable(epoch >= args.freeze_front_end_epochs)
        perm = torch.randperm(n_train)
        which = torch.randint(cache.n_copies, (n_train,)) if cache is not None else None
        t_ep, run_loss, run_hint, run_n = time.time(), 0.0, 0.0, 0
        done_steps = 0
        for b in range(steps_per_epoch):
            if must_stop():
                print(f"deadline reached at epoch {epoch + 1} step {b}/{steps_per_epoch}: "
                      f"stopping mid-epoch", flush=True)
                stopped = True
                break
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            declared_rate = f_in = D.SAMPLE_RATE   # the rate the model is told (speed included)
            feats = {} if hint is not None else None
            if frames is not None:          # the stored log frames of a copy at a drawn pair
                pair = int(torch.randint(len(frames.pairs), (1,), generator=aug_gen))
                f_in, declared_rate = frames.pairs[pair]
                soft, yb = (t.to(device) for t in cache.targets(idx, which))
                logits = model.classify_log_frames(frames.batch(pair, idx, which).to(device), feats)
            elif cache is not None:         # an augmented copy and the teacher's logits for it (as
                                            # stored: the student may hear it further augmented)
                xb, soft, yb = (t.to(device) for t in cache.batch(idx, which))
                if args.student_shift_ms > 0:
                    xb = D.shift(xb, args.student_shift_ms, aug_gen)
                if args.student_reverb > 0:
                    xb = D.reverberate(xb, args.student_reverb, aug_gen)
                if augment is not None:
                    xb, declared_rate = augment.to_rate(xb)
                f_in = xb.shape[-1]
            else:
                xb, yb = xtr[idx].to(device), ytr[idx].to(device)
                x16 = xb                    # what the teacher hears: the augmented clip at 16 kHz
                if augment is not None:
                    x16 = augment.waveform(xb, yb)
                    xb, declared_rate = augment.to_rate(x16)
                f_in = xb.shape[-1]
            if frames is None and hint is None:
                logits = model(xb, rate=cfg.sample_rate / declared_rate)
            elif frames is None:
                logits, feats = model(xb, rate=cfg.sample_rate / declared_rate, return_features=True)
            if cache is not None:
                loss = distillation_loss(logits, soft, yb, args.kd_alpha, args.kd_temperature,
                                         args.label_smoothing, class_weight)
            elif teacher is None:
                loss = F.cross_entropy(logits, yb, label_smoothing=args.label_smoothing)
            else:
                with torch.no_grad():
                    soft = teacher(x16)
                loss = distillation_loss(logits, soft, yb, args.kd_alpha, args.kd_temperature,
                                         args.label_smoothing, class_weight)
            if hint is not None:            # f_in samples heard as declared_rate: time stretched
                hint_loss = hint(feats["final_norm"], cache.embeddings_of(idx, which).to(device),
                                 f_in / declared_rate)
                run_hint += hint_loss.item() * len(yb)
                loss = loss + args.kd_hint * hint_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item() * len(yb)
            run_n += len(yb)
            if not math.isfinite(loss.item()):
                raise SystemExit(f"non-finite loss at step {step}")
            done_steps += 1
            if step % args.log_every == 0:
                el = time.time() - t_ep
                shown_hint = "" if hint is None else f" (hint {run_hint / run_n:.4f})"
                print(f"epoch {epoch + 1} step {step} loss {run_loss / run_n:.4f}{shown_hint} "
                      f"lr {sched.get_last_lr()[0]:.2e} rate {f_in} (as {declared_rate:.0f}) "
                      f"{el / done_steps:.2f}s/step [{utc_now()}]", flush=True)
        if done_steps == 0:
            break
        t_train = time.time() - t_ep
        t_ev = time.time()
        val = evaluate(model, xva, yva, eval_rates, device, args.eval_batch_size)
        eval_cost[0] = time.time() - t_ev
        score = mean_accuracy(val)
        val_average = None
        if args.average_from and epoch + 1 >= args.average_from and not stopped:
            average.update(model)
            val_average = evaluate_weights(model, average.state, xva, yva, eval_rates, device,
                                           args.eval_batch_size)
        history.append({"epoch": epoch + 1, "train_loss": run_loss / max(1, run_n), "val": val,
                        "val_average": val_average, "averaged_epochs": average.count,
                        "steps": done_steps, "complete": not stopped, "train_s": t_train,
                        "eval_s": eval_cost[0]})
        improved = score > best
        if improved:
            best = score
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if val_average is not None and mean_accuracy(val_average) > best:
            improved, best = True, mean_accuracy(val_average)
            best_state = {k: v.clone() for k, v in average.state.items()}
        shown_average = "" if val_average is None else f" average of {average.count} " + \
            " ".join(f"{r}:{v['acc']:.4f}" for r, v in val_average.items())
        print(f"epoch {epoch + 1}/{args.epochs}{' (partial)' if stopped else ''} train_loss "
              f"{run_loss / max(1, run_n):.4f} val "
              + " ".join(f"{r}:{v['acc']:.4f}" for r, v in val.items()) + shown_average
              + f" best {best:.4f} (train {t_train:.1f}s = {t_train / done_steps:.2f}s/step, "
              f"val {eval_cost[0]:.1f}s) [{utc_now()}]", flush=True)
        # a partial epoch is recorded as not done, so a resume redoes it
        save_checkpoint(ckpt_path, model=model.state_dict(), optimizer=opt.state_dict(),
                        scheduler=sched.state_dict(), epoch=epoch + (0 if stopped else 1),
                        step=step, best_val=best, arch="stages" if stages_arch else "s4",
                        best_model=best_state, history=history, model_config=cfg.to_dict(),
                        args=vars(args), trained_on=trained_on, clock_t0=clock["t0"],
                        average=average.state, average_count=average.count,
                        hint=None if hint is None else hint.state_dict(),
                        rng={"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate(), "mask": mask_gen.get_state()})
        if improved and best_path:
            export_best(model, best_state, best_path, trained_on, history, best)
            print(f"exported {best_path} (val mean {best:.4f})", flush=True)
        if stopped:
            break

    # ---- final: best weights, optional one-off test score, export ----
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    metrics = {"val_mean_acc": best, "epochs": args.epochs, "parameters": count_parameters(model)}
    if history:
        metrics["val"] = best_epoch(history)["val"]
        metrics["averaged_epochs"] = best_epoch(history)["averaged"]
    if args.test_at_end:
        te_items = D.read_manifest(os.path.join(args.data, "test"))
        xte, yte = D.load_clips(te_items, labels)
        metrics["test"] = evaluate(model, xte, yte, sorted(set(eval_rates) | {16000, 8000, 44100, 48000}),
                                   device, args.eval_batch_size)
        print("test: " + json.dumps(metrics["test"]), flush=True)
    out = args.export or os.path.join(args.out_dir, "model.safetensors")
    export_model(model.cpu(), out, trained_on=trained_on, metrics=metrics)
    with open(os.path.join(args.out_dir, "metrics.json"), "w") as f:
        json.dump({"metrics": metrics, "history": history}, f, indent=1)
    print(f"exported {out}", flush=True)
    return metrics


if __name__ == "__main__":
    main()
