"""The teacher cache: what the student learns from. In a folder,

    copies.npy  int16 [C, K, 16000]  K augmented copies (noise, shift, gain applied) of each of
                                     C training clips at 16 kHz: exactly the audio the teacher
                                     heard (float = int16 / 32767 when written, / 32768 read)
    logits.npy  float32 [C, K, 12]   the teacher's logits, labels in vocabulary.LABELS order
    labels.npy  int64 [C]
    meta.json   the split it used ("seed", "val_fraction"), "items" (the clips' paths), the
                teacher's provenance; written last, so a cache without it is incomplete.
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import torch

from s4train.data.clips import SAMPLE_RATE, require_same_held_out
from s4train.teacher.embedding import CLIP, save_npy
from s4train.vocabulary import LABELS


def write_cache(cache_dir: str, copies, logits: np.ndarray, labels: np.ndarray, meta: dict) -> None:
    """copies.npy int16 [C, K, 16000] (an array, or the path of one to hard-link), logits.npy
    float32 [C, K, 12], labels.npy int64 [C], then meta.json. Every file goes in atomically, and
    meta.json, the completion mark, is removed first and written last."""
    labels = np.asarray(labels, dtype=np.int64)
    logits = np.asarray(logits, dtype=np.float32)
    C, K = logits.shape[:2]
    arr = np.load(copies, mmap_mode="r") if isinstance(copies, str) else copies
    if arr.dtype != np.int16 or arr.shape != (C, K, CLIP) or labels.shape != (C,) or \
            logits.shape != (C, K, len(LABELS)):
        raise ValueError(f"cache shapes disagree: copies {arr.dtype} {arr.shape}, logits "
                         f"{logits.shape}, labels {labels.shape}")
    if meta.get("copies") != K or len(meta.get("items", [])) != C:
        raise ValueError("meta.json's copies / items disagree with the arrays")
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
            shutil.copyfile(copies, tmp)
        os.replace(tmp, dst)
    else:
        save_npy(dst, arr)
    save_npy(os.path.join(cache_dir, "logits.npy"), logits)
    save_npy(os.path.join(cache_dir, "labels.npy"), labels)
    tmp = meta_path + ".part"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, meta_path)


class TeacherCache:
    """A teacher cache read for training (the arrays memory-mapped). meta.json's split may stand
    at its top or under "split"."""

    def __init__(self, path: str):
        self.path = path
        with open(os.path.join(path, "meta.json")) as f:
            self.meta = json.load(f)
        self.copies = np.load(os.path.join(path, "copies.npy"), mmap_mode="r")
        self.logits = np.load(os.path.join(path, "logits.npy"), mmap_mode="r")
        self.labels = torch.from_numpy(np.load(os.path.join(path, "labels.npy")).astype(np.int64))
        C, K, n = self.copies.shape
        if self.logits.shape[:2] != (C, K) or self.labels.shape != (C,) or n != SAMPLE_RATE:
            raise SystemExit(f"{path}: copies {self.copies.shape}, logits {self.logits.shape}, labels "
                             f"{tuple(self.labels.shape)} do not fit together (1 s at 16 kHz)")
        self.clips, self.n_copies = C, K

    def split(self) -> dict:
        m = self.meta.get("split", self.meta)
        return {"seed": m.get("seed"), "val_fraction": m.get("val_fraction")}

    def check(self, data, labels, val_items):
        """Refuse a cache of another split (`data`: the recipe's data settings), other labels, or
        holding a validation clip."""
        require_same_held_out(self.path, self.split(), data)
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
