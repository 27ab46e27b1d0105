"""The teacher's head: a small network on the sequence of speech embeddings of a clip, trained
on the training speakers only (training time only; never shipped)."""

from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from s4train.teacher.embedding import EMBED_DIM
from s4train.vocabulary import LABELS


class Head(nn.Module):
    """[B, W, 96] embeddings -> [B, classes]: input BatchNorm, two 3-wide 1-D convolutions
    (BatchNorm, ReLU), max and mean over time, dropout, linear."""

    def __init__(self, n_classes: int = len(LABELS), dim: int = EMBED_DIM,
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


def accuracy(logits: torch.Tensor, y, labels=LABELS) -> dict:
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
    head = Head(n_classes=len(LABELS), dim=e_tr.shape[-1], channels=channels,
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
