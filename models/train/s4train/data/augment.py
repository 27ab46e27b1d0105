"""Training augmentation, on batches on the training device: time shift, gain, background
noise (all at 16 kHz, on the teacher's copies), synthetic rooms (the streams'), the drawn input
rate and speed of each batch (multi-rate training), and masks on the stages network's log frames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from s4train.data.clips import SAMPLE_RATE
from s4train.data.resample import resample


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
    direct-to-reverberant ratio; the same RMS and length as before (the tail past L is cut).
    The streams' rooms (data/streams.py): a home's talker is rarely at the microphone."""
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
    decay = torch.exp(-math.log(1000) * t / t60)                     # amplitude -60 dB at t = RT60
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
    time_masks: int = 2           # FrameMask: bands of frames per clip
    time_mask_max: int = 10       # frames
    channel_masks: int = 2        # bands of channels per clip
    channel_mask_max: int = 8     # channels


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


class FrameMask:
    """Training augmentation on the normalised log frames [B, F, H]: per clip, `time_masks` bands
    of up to `time_mask_max` frames and `channel_masks` bands of up to `channel_mask_max` channels
    set to 0 (the pooling norm's mean)."""

    def __init__(self, cfg: AugmentConfig, generator=None):
        self.tm, self.mf, self.g = cfg.time_masks, cfg.time_mask_max, generator
        self.cm, self.mc = cfg.channel_masks, cfg.channel_mask_max

    def _bands(self, B, n, count, width, device):
        if count <= 0 or width <= 0:
            return torch.zeros(B, n, dtype=torch.bool, device=device)
        w = torch.randint(0, width + 1, (B, count), generator=self.g)
        s = (torch.rand(B, count, generator=self.g) * (n - w + 1).clamp_min(1)).long()
        pos = torch.arange(n)[None, None, :]
        return ((pos >= s[..., None]) & (pos < (s + w)[..., None])).any(1).to(device)

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        B, T, H = z.shape
        mask = self._bands(B, T, self.tm, self.mf, z.device)[:, :, None] | \
            self._bands(B, H, self.cm, self.mc, z.device)[:, None, :]
        return z.masked_fill(mask, 0.0)
