"""Speech Commands loading, speaker-disjoint validation split, augmentation, resampling.

Layout (shared/data/speech-commands): <split>/manifest.csv with columns path,label,speaker
(path relative to <split>/, speaker empty for _silence_), 16 kHz mono FLAC, and
_background_noise_/*.flac. Audio is read as float in [-1, 1].
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

from model import SPEECH_COMMANDS_LABELS
from vocabulary import read_manifest as read_manifest_rows

SAMPLE_RATE = 16000
DEFAULT_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                             "..", "..", "..", "shared", "data", "speech-commands"))


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


def add_split_args(ap, training: bool = True):
    """The flags that pick the validation speakers (and, for a training run, its clips). One
    definition for train.py, teacher.py and val_clips.py: a teacher or a threshold folder with
    other validation speakers than the student's would make its validation score mean nothing."""
    a = ap.add_argument
    a("--data", default=os.environ.get("S4_DATA", DEFAULT_DATA))
    a("--seed", type=int, default=1112, help="seeds the run; also picks the validation speakers")
    a("--val-fraction", type=float, default=0.1, help="share of train/'s speakers held out")
    if training:
        a("--max-train", type=int, default=0, help="use at most this many clips of train/ (0: all; "
          "--extra-train clips come on top)")
        a("--extra-train", action="append", default=[], metavar="DIR", help="more training clips "
          "laid out like a split folder (manifest.csv), e.g. synthetic speakers from synth.py; added "
          "to training only, never to validation (repeatable)")


def speaker_split(args) -> tuple[list[Item], list[Item]]:
    """train/'s clips of the training speakers (at most --max-train) and of the validation ones,
    as chosen by add_split_args' flags; --extra-train clips are the caller's to add."""
    items = read_manifest(os.path.join(args.data, "train"))
    train, val = split_by_speaker(items, args.val_fraction, seed=args.seed)
    return subsample(train, getattr(args, "max_train", 0), args.seed), val


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


def load_clips(items: list[Item], labels=SPEECH_COMMANDS_LABELS, clip_samples: int = SAMPLE_RATE):
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


# ---------------------------------------------------------------------------
# Resampling (band-limited, FFT based, batched)
# ---------------------------------------------------------------------------

def resample(x: torch.Tensor, f_from: int, f_to: int) -> torch.Tensor:
    """Resample the last axis from f_from to f_to Hz (integers) by ideal FFT band-limiting.

    The FFT length Lp >= L + L/8 (zero padding keeps the circular wrap-around out of
    the clip) is a multiple of f_from / gcd(f_from, f_to), so Lp * f_to / f_from is an
    integer and the time axis is not stretched."""
    if f_from == f_to:
        return x
    L = x.shape[-1]
    n_out = int(round(L * f_to / f_from))
    q = f_from // math.gcd(f_from, f_to)
    Lp = -(-(L + max(L // 8, 64)) // q) * q
    n_out_p = Lp * f_to // f_from
    X = torch.fft.rfft(x, n=Lp)
    J = n_out_p // 2 + 1
    keep = min(J, X.shape[-1])
    Y = torch.zeros(*X.shape[:-1], J, dtype=X.dtype, device=X.device)
    Y[..., :keep] = X[..., :keep]
    if n_out_p < Lp and n_out_p % 2 == 0:
        Y.imag[..., -1] = 0  # the new Nyquist bin of a real signal is real
    y = torch.fft.irfft(Y, n=n_out_p) * (n_out_p / Lp)
    return y[..., :n_out].contiguous()


# ---------------------------------------------------------------------------
# Augmentation (on batches, on the training device)
# ---------------------------------------------------------------------------

def shift(x: torch.Tensor, most_ms: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each row of x [B, L] at 16 kHz moved by its own uniform draw in [-most_ms, most_ms] ms
    (whole samples), zero fill."""
    B, L = x.shape
    most = int(most_ms * SAMPLE_RATE / 1000)
    if most <= 0:
        return x
    sh = torch.randint(-most, most + 1, (B, 1), generator=generator).to(x.device)
    idx = torch.arange(L, device=x.device)[None, :] - sh
    valid = (idx >= 0) & (idx < L)
    return torch.gather(x, 1, idx.clamp(0, L - 1)) * valid


ROOM_RT60_S = (0.1, 0.7)       # reverberate's range of reverberation times
ROOM_DRR_DB = (0.0, 12.0)      # and of direct-to-reverberant ratios


def reverberate(x: torch.Tensor, prob: float, generator: torch.Generator | None = None,
                rt60: tuple[float, float] = ROOM_RT60_S, drr_db: tuple[float, float] = ROOM_DRR_DB,
                rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Rows of x [B, L] at `rate`, each with probability `prob` heard in a synthetic room: the
    direct sound plus a tail of Gaussian noise decaying by 60 dB over a drawn RT60, at a drawn
    direct-to-reverberant ratio; the same RMS and length as before (the tail past L is cut)."""
    B, L = x.shape
    if prob <= 0:
        return x

    def draw(lo_hi):
        lo, hi = lo_hi
        return lo + (hi - lo) * torch.rand(B, 1, generator=generator)

    on = torch.rand(B, generator=generator) < prob
    t60, drr = draw(rt60), draw(drr_db)
    n = int(rt60[1] * rate)
    t = torch.arange(1, n, dtype=x.dtype)[None, :] / rate
    decay = torch.exp(-math.log(1000) * t / t60)                     # amplitude −60 dB at t = RT60
    tail = torch.randn(B, n - 1, generator=generator, dtype=x.dtype) * decay
    tail = tail / tail.pow(2).sum(1, keepdim=True).sqrt() * 10 ** (-drr / 20)   # energy vs the direct 1
    h = torch.cat([torch.ones(B, 1, dtype=x.dtype), tail], 1).to(x.device)
    size = L + n                                                     # linear, not circular, convolution
    wet = torch.fft.irfft(torch.fft.rfft(x, size) * torch.fft.rfft(h, size), size)[:, :L]
    wet = wet * x.pow(2).mean(1, keepdim=True).sqrt() / wet.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-8)
    return torch.where(on.to(x.device)[:, None], wet, x)


@dataclass
class AugmentConfig:
    shift_ms: float = 100.0       # uniform time shift in [-shift, shift], zero fill
    gain_db: float = 6.0          # uniform gain in [-gain, gain] dB
    noise_prob: float = 0.8       # probability of adding background noise
    snr_min: float = 0.0          # SNR (dB) relative to the clip's RMS
    snr_max: float = 20.0
    silence_noise_max: float = 0.1  # peak-ish noise RMS for _silence_ clips
    multirate_prob: float = 0.5   # probability that a batch is resampled
    min_rate: int = 8000
    max_rate: int = 48000
    speed_min: float = 1.0        # speed perturbation factor range (log-uniform; 1, 1: off)
    speed_max: float = 1.0
    rate_grid: int = 1            # drawn and declared rates rounded to this many Hz (1: off);
                                  # 100 keeps 10 ms frames whole numbers of samples


class Augmenter:
    def __init__(self, cfg: AugmentConfig, noise: list[torch.Tensor], silence_index: int | None,
                 device, generator: torch.Generator | None = None):
        self.cfg = cfg
        self.noise = [n.to(device) for n in noise if len(n) > SAMPLE_RATE]
        self.silence_index = silence_index
        self.device = device
        self.g = generator

    def _rand(self, *shape):
        return torch.rand(*shape, generator=self.g).to(self.device)

    def shift(self, x):
        return shift(x, self.cfg.shift_ms, self.g)

    def gain(self, x):
        g = self.cfg.gain_db
        if g <= 0:
            return x
        db = (2 * self._rand(x.shape[0], 1) - 1) * g
        return x * 10 ** (db / 20)

    def add_noise(self, x, y):
        if not self.noise or self.cfg.noise_prob <= 0:
            return x
        B, L = x.shape
        segs = []
        for _ in range(B):
            k = int(torch.randint(len(self.noise), (1,), generator=self.g))
            n = self.noise[k]
            o = int(torch.randint(len(n) - L + 1, (1,), generator=self.g))
            seg = n[o:o + L]
            segs.append(seg / seg.pow(2).mean().sqrt().clamp_min(1e-6))
        noise = torch.stack(segs)                                     # unit RMS
        rms = x.pow(2).mean(1, keepdim=True).sqrt().clamp_min(1e-3)
        snr = self.cfg.snr_min + (self.cfg.snr_max - self.cfg.snr_min) * self._rand(B, 1)
        level = rms / 10 ** (snr / 20)
        if self.silence_index is not None:
            sil = (y == self.silence_index)[:, None]
            level = torch.where(sil, self.cfg.silence_noise_max * self._rand(B, 1), level)
        on = self._rand(B, 1) < self.cfg.noise_prob
        return x + noise * level * on

    def pick_rate(self) -> int:
        c = self.cfg
        if self._rand(1).item() >= c.multirate_prob:
            return SAMPLE_RATE
        lo, hi = math.log(c.min_rate), math.log(c.max_rate)
        f = math.exp(lo + (hi - lo) * self._rand(1).item())
        if c.rate_grid > 1:
            return int(round(f / c.rate_grid)) * c.rate_grid
        return int(round(f))

    def pick_speed(self) -> float:
        c = self.cfg
        if c.speed_min == c.speed_max == 1.0:
            return 1.0     # no draw: the random stream of a run without it is unchanged
        lo, hi = math.log(c.speed_min), math.log(c.speed_max)
        return math.exp(lo + (hi - lo) * self._rand(1).item())

    def waveform(self, x, y):
        """x [B, 16000] at 16 kHz -> shifted, gained, noisy x, still at 16 kHz."""
        return self.add_noise(self.gain(self.shift(x)), y).clamp(-1, 1)

    def to_rate(self, x):
        """Augmented 16 kHz x -> (x resampled to a drawn f_in, the rate the model is told).

        Speed perturbation by s costs nothing: samples at f_in declared to be at s·f_in play s
        times faster (and higher), and the model's Δ follows the declared rate."""
        f_in, declared = self.pick_rates()
        return resample(x, SAMPLE_RATE, f_in), declared

    def pick_rates(self) -> tuple[int, float]:
        """(f_in, the rate the model is told): a drawn input rate and speed."""
        f_in = self.pick_rate()
        declared = f_in * self.pick_speed()
        if self.cfg.rate_grid > 1:   # speed quantised so that the declared rate is on the grid too
            declared = float(int(round(declared / self.cfg.rate_grid)) * self.cfg.rate_grid)
        return f_in, declared

    def __call__(self, x, y):
        """x [B, 16000] at 16 kHz -> (augmented x at f_in, the rate the model is told)."""
        return self.to_rate(self.waveform(x, y))


def input_stats(x: torch.Tensor) -> tuple[float, float]:
    """Scalar mean and std over all training samples (float64 accumulation)."""
    x = x.to(torch.float64)
    return float(x.mean()), float(x.std())
