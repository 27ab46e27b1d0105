"""Speech Commands clips: the manifest, the speaker-disjoint validation split, loading.

Layout (shared/data/speech-commands): <split>/manifest.csv with columns path,label,speaker
(path relative to <split>/, speaker empty for _silence_), 16 kHz mono FLAC, and
_background_noise_/*.flac. Audio is read as float in [-1, 1].
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

from s4train.vocabulary import LABELS
from s4train.vocabulary import read_manifest as read_manifest_rows

SAMPLE_RATE = 16000


@dataclass
class Item:
    path: str       # absolute
    label: str
    speaker: str    # "" for _silence_


def read_manifest(split_dir: str) -> list[Item]:
    return [Item(path, label, speaker) for path, label, speaker in read_manifest_rows(split_dir)]


def _unit_hash(key: str, seed: int) -> float:
    h = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(h[:8], "little") / 2.0 ** 64


def speaker_draw(it: Item, seed: int) -> float:
    """A number in [0, 1) shared by all clips of one speaker (deterministic, by hashed speaker
    id); a clip without a speaker (_silence_) draws by its own path."""
    return _unit_hash(it.speaker or ("path:" + os.path.basename(it.path)), seed)


def split_by_speaker(items: list[Item], val_fraction: float = 0.1, seed: int = 0):
    """Speaker-disjoint train/validation split."""
    train, val = [], []
    for it in items:
        (val if speaker_draw(it, seed) < val_fraction else train).append(it)
    return train, val


def speaker_split(clips_dir: str, data) -> tuple[list[Item], list[Item]]:
    """clips_dir/train/'s clips of the training speakers (at most data.max_train) and of the
    validation ones, for a recipe's data settings (`seed`, `val_fraction`). One definition
    for the teacher, the student and the threshold's clips: a teacher or a threshold folder with
    other validation speakers than the student's would make its validation score mean nothing."""
    items = read_manifest(os.path.join(clips_dir, "train"))
    train, val = split_by_speaker(items, data.val_fraction, seed=data.seed)
    return subsample(train, data.max_train, data.seed), val


def subsample(items: list[Item], n: int, seed: int = 0) -> list[Item]:
    """A deterministic random subset of n items (for tiny runs)."""
    if n <= 0 or n >= len(items):
        return items
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(items), n, replace=False))
    return [items[i] for i in idx]


def load_audio(path: str, expected_rate: int = SAMPLE_RATE) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != expected_rate:
        raise ValueError(f"{path}: sample rate {sr}, expected {expected_rate}")
    return x.mean(axis=1)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad at the end (or crop centrally) to exactly n samples."""
    if len(x) >= n:
        s = (len(x) - n) // 2
        return x[s:s + n]
    return np.pad(x, (0, n - len(x)))


def load_clips(items: list[Item], labels=LABELS, clip_samples: int = SAMPLE_RATE):
    """All clips in memory: x [n, clip_samples] float32, y [n] int64."""
    index = {l: i for i, l in enumerate(labels)}
    x = np.zeros((len(items), clip_samples), dtype=np.float32)
    y = np.zeros(len(items), dtype=np.int64)
    for i, it in enumerate(items):
        x[i] = fit_length(load_audio(it.path), clip_samples)
        y[i] = index[it.label]
    return torch.from_numpy(x), torch.from_numpy(y)


def load_noise(root: str) -> list[torch.Tensor]:
    d = os.path.join(root, "_background_noise_")
    if not os.path.isdir(d):
        return []
    return [torch.from_numpy(load_audio(os.path.join(d, f)))
            for f in sorted(os.listdir(d)) if f.endswith((".flac", ".wav"))]


def input_stats(x: torch.Tensor) -> tuple[float, float]:
    """Scalar mean and std over all training samples (float64 accumulation)."""
    x = x.to(torch.float64)
    return float(x.mean()), float(x.std())


def require_same_held_out(source: str, held_out: dict, data) -> None:
    """Refuse a model, checkpoint or teacher (`source`) whose split (`held_out`: its "seed" and
    "val_fraction") is not the recipe's: it was trained on some of this run's validation
    speakers, and its influence would make the validation score mean nothing."""
    theirs = {k: held_out.get(k) for k in ("seed", "val_fraction")}
    if theirs != {"seed": data.seed, "val_fraction": data.val_fraction}:
        raise SystemExit(f"{source} held out the validation speakers of {theirs}, this run "
                         f"those of seed {data.seed}, val_fraction {data.val_fraction}: give the same")
