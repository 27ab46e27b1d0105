"""A log-mel CNN teacher for knowledge distillation (training only; never shipped).

With ~3.3K real training clips a small S4 on raw samples plateaus well below an ordinary
log-mel CNN (shared/docs/baselines.md: 83.7% against 91.7% at 16 kHz). The CNN cannot take
other sampling rates without resampling, so it is no product, but its soft outputs on the
same augmented audio give the S4 student more to learn from per clip than a one-hot label:
which words a clip resembles. `train.py --teacher runs/teacher/teacher.pt` mixes them in.

    python teacher.py --out-dir runs/teacher [--extra-train runs/synth]

Uses the same speaker-disjoint split as train.py and train.py's default augmentation (shift
±100 ms, gain ±6 dB, noise with probability 0.8 at 0–20 dB SNR; 16 kHz only), plus SpecAugment-style
time and frequency masks; keeps the epoch with the best validation accuracy.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import data as D
from model import SPEECH_COMMANDS_LABELS


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> torch.Tensor:
    """Triangular filters on the HTK mel scale, [n_mels, n_fft // 2 + 1]; each apex is 1 at its
    centre frequency, so the FFT bins sampling it reach 0.77–1."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(f_min), mel(f_max), n_mels + 2))
    bins = np.arange(n_fft // 2 + 1) * sample_rate / n_fft
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (bins[None, :] - lo) / (mid - lo)
    down = (hi - bins[None, :]) / (hi - mid)
    return torch.from_numpy(np.clip(np.minimum(up, down), 0.0, None).astype(np.float32))


class LogMel(nn.Module):
    """16 kHz samples [B, L] -> log mel energies [B, n_mels, frames] (25 ms Hann, 10 ms hop)."""

    def __init__(self, n_mels: int = 40, sample_rate: int = D.SAMPLE_RATE):
        super().__init__()
        self.n_fft, self.win, self.hop = 512, sample_rate // 40, sample_rate // 100
        self.register_buffer("window", torch.hann_window(self.win), persistent=False)
        self.register_buffer("fbank", mel_filterbank(n_mels, self.n_fft, sample_rate, 20.0,
                                                     sample_rate / 2), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x, self.n_fft, self.hop, self.win, self.window, center=True,
                          return_complex=True).abs().pow(2)            # [B, F, T]
        return torch.log(self.fbank @ spec + 1e-6)


class LogMelCNN(nn.Module):
    """Four 3×3 conv blocks (BatchNorm, ReLU; max-pooled after the first three), global
    average pooling, dropout, linear: the usual keyword-spotting design, ~180K parameters."""

    def __init__(self, n_classes: int = len(SPEECH_COMMANDS_LABELS), n_mels: int = 40,
                 widths=(32, 64, 96, 128), dropout: float = 0.2):
        super().__init__()
        self.features = LogMel(n_mels)
        self.input_norm = nn.BatchNorm2d(1)
        layers, cin = [], 1
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(cin, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(cin, n_classes)

    def forward(self, x: torch.Tensor, spec_mask=None) -> torch.Tensor:
        f = self.features(x).unsqueeze(1)                               # [B, 1, mels, frames]
        if spec_mask is not None:
            f = spec_mask(f)
        h = self.body(self.input_norm(f)).mean(dim=(2, 3))
        return self.head(self.dropout(h))


class SpecMask:
    """SpecAugment-style masks on [B, 1, F, T]: per clip, `count` time bands of up to `max_t`
    frames and `count` mel bands of up to `max_f` bands set to the clip's mean."""

    def __init__(self, max_t: int = 10, max_f: int = 5, count: int = 2, generator=None):
        self.max_t, self.max_f, self.count, self.g = max_t, max_f, count, generator

    def _bands(self, B, n, width, device):
        w = torch.randint(0, width + 1, (B, self.count), generator=self.g)
        s = (torch.rand(B, self.count, generator=self.g) * (n - w + 1)).long()
        pos = torch.arange(n)[None, None, :]
        return ((pos >= s[..., None]) & (pos < (s + w)[..., None])).any(1).to(device)   # [B, n]

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        B, _, F_, T = f.shape
        mask = self._bands(B, F_, self.max_f, f.device)[:, None, :, None] | \
            self._bands(B, T, self.max_t, f.device)[:, None, None, :]
        mean = f.mean(dim=(2, 3), keepdim=True)
        return torch.where(mask, mean, f)


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor,
                      alpha: float, temperature: float, label_smoothing: float = 0.0,
                      class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """(1 − α)·CE(student, labels) + α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)), each a
    mean over the batch of per-clip terms, a clip counting class_weight[its label] times (1 if
    None).

    T² keeps the soft term's gradient on the scale of the hard term's as T changes (Hinton et
    al., 2015)."""
    w = None if class_weight is None else class_weight.to(student.dtype)[labels]
    hard = F.cross_entropy(student, labels, label_smoothing=label_smoothing,
                           reduction="mean" if w is None else "none")
    if w is not None:
        hard = (w * hard).mean()
    if alpha <= 0:
        return hard
    T = temperature
    soft = F.kl_div(F.log_softmax(student / T, -1), F.log_softmax(teacher / T, -1),
                    reduction="none", log_target=True).sum(-1)
    soft = (soft if w is None else w * soft).mean() * T * T
    return (1 - alpha) * hard + alpha * soft


def load_teacher(path: str, device) -> tuple[LogMelCNN, dict]:
    """The teacher in eval mode, and its checkpoint (seed and val_fraction say which speakers
    it held out; val_acc its validation accuracy)."""
    ck = torch.load(path, map_location="cpu", weights_only=False)
    net = LogMelCNN(**ck["config"])
    net.load_state_dict(ck["model"])
    return net.to(device).eval(), ck


@torch.no_grad()
def accuracy(net: LogMelCNN, x: torch.Tensor, y: torch.Tensor, batch_size: int = 128) -> float:
    net.eval()
    correct = sum((net(x[i:i + batch_size]).argmax(-1) == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    return correct / max(1, len(x))


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    D.add_split_args(ap)   # the student's flags: it must hold out the same speakers
    a("--out-dir", default="runs/teacher")
    a("--epochs", type=int, default=30)
    a("--batch-size", type=int, default=64)
    a("--lr", type=float, default=0.003)
    a("--weight-decay", type=float, default=0.01)
    a("--label-smoothing", type=float, default=0.1)
    a("--threads", type=int, default=0)
    a("--widths", default="32,64,96,128")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    os.makedirs(args.out_dir, exist_ok=True)
    labels = list(SPEECH_COMMANDS_LABELS)
    tr_items, va_items = D.speaker_split(args)
    tr_items += [it for d in args.extra_train for it in D.read_manifest(d)]
    xtr, ytr = D.load_clips(tr_items, labels)
    xva, yva = D.load_clips(va_items, labels)
    g = torch.Generator().manual_seed(args.seed + 11)
    augment = D.Augmenter(D.AugmentConfig(multirate_prob=0.0), D.load_noise(args.data),
                          labels.index("_silence_"), "cpu", g)
    mask = SpecMask(generator=g)
    config = {"n_classes": len(labels), "widths": tuple(int(w) for w in args.widths.split(","))}
    net = LogMelCNN(**config)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = max(1, len(xtr) // args.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, args.lr, total_steps=steps * args.epochs)
    print(f"teacher: {sum(p.numel() for p in net.parameters())} parameters, "
          f"{len(xtr)} train / {len(xva)} val clips", flush=True)
    best, history = -1.0, []
    for epoch in range(args.epochs):
        net.train()
        t0, perm, total = time.time(), torch.randperm(len(xtr)), 0.0
        for b in range(steps):
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            xb = augment.waveform(xtr[idx], ytr[idx])
            loss = F.cross_entropy(net(xb, mask), ytr[idx], label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
        acc = accuracy(net, xva, yva)
        history.append({"epoch": epoch + 1, "train_loss": total / steps, "val_acc": acc})
        print(f"epoch {epoch + 1}/{args.epochs} loss {total / steps:.4f} val {acc:.4f} "
              f"({time.time() - t0:.1f}s)", flush=True)
        if acc > best:
            best = acc
            torch.save({"config": config, "model": net.state_dict(), "val_acc": acc,
                        "epoch": epoch + 1, "seed": args.seed, "val_fraction": args.val_fraction,
                        "history": history}, os.path.join(args.out_dir, "teacher.pt"))
    print(f"best validation accuracy {best:.4f}", flush=True)
    return best


if __name__ == "__main__":
    main()
