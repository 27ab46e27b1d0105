"""Log frames of a frozen front end, computed once per teacher copy and drawn rate.

While stage 0 is frozen it is a fixed function of the clip and of the rate it hears, and at
16–48 kHz it is most of a training step's time; the frame stages run at 100 frames per second
and cost a fraction of it. So a phase with `frozen_frames = N` draws N (input rate, declared rate)
pairs once, from the same distribution as the augmentation's (multi-rate and speed), runs every
augmented copy of the teacher cache through the front end at each, and trains the frame stages
on these stored log frames (pooling norm, frame masks and all that follows stay live). Each
batch takes one pair, as a batch on the fly takes one rate.

On disk, in the run's folder: frames-<i>.npy, float16 [C, K, H0, F] for pair i (log energies,
whose float16 rounding, about 0.005 at 10, is far below the frame masks' and noise's
perturbations), and meta.json naming what they were computed from: a cache that does not match
the model's front end, the teacher's copies or the pairs is computed again, a finished pair is
kept across a resume.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import torch

from s4train.data.augment import AugmentConfig, Augmenter
from s4train.data.clips import SAMPLE_RATE
from s4train.data.resample import resample


def draw_pairs(cfg: AugmentConfig, n: int, seed: int) -> list[tuple[int, float]]:
    """n (f_in, declared rate) pairs, drawn as the augmentation draws one per batch."""
    draws = Augmenter(cfg, [], None, "cpu", torch.Generator().manual_seed(seed))
    return [draws.pick_rates() for _ in range(n)]


def fingerprint(model, copies: np.ndarray, pairs) -> str:
    """What the stored frames depend on: the front end's weights, the input normalisation and
    pooling settings, the teacher's copies (their samples, not the teacher's provenance: a new
    head on the same copies keeps the frames), and the pairs."""
    h = hashlib.sha256()
    for name, t in sorted(model.front_end.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    c = model.cfg
    h.update(json.dumps([c.input_mean, c.input_std, c.log_floor, c.frame_seconds, c.rectifier,
                         c.sample_rate, c.clip_seconds, list(copies.shape),
                         [list(r) for r in pairs]], sort_keys=True).encode())
    flat = copies.reshape(len(copies), -1)
    for s in range(0, len(flat), 256):      # a memory map, read in slices
        h.update(np.ascontiguousarray(flat[s:s + 256]).tobytes())
    return h.hexdigest()


class FrameCache:
    def __init__(self, folder: str, model, teacher, pairs: list[tuple[int, float]],
                 batch_size: int = 64, log=print):
        """Compute (or find) the log frames of `teacher`'s copies (a teacher.cache.TeacherCache) through
        `model`'s frozen front end at each (f_in, declared rate) of `pairs` (Hz)."""
        self.pairs = pairs
        os.makedirs(folder, exist_ok=True)
        key = fingerprint(model, teacher.copies, pairs)
        meta_path = os.path.join(folder, "meta.json")
        stored = None
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                stored = json.load(f).get("fingerprint")
        if stored != key:
            for f in os.listdir(folder):
                if f.startswith("frames-"):
                    os.remove(os.path.join(folder, f))
            with open(meta_path, "w") as f:
                json.dump({"fingerprint": key, "pairs": [list(r) for r in pairs]}, f)
        self.frames = []
        for i, (f_in, declared) in enumerate(pairs):
            path = os.path.join(folder, f"frames-{i}.npy")
            if not os.path.exists(path):
                t0 = time.time()
                self._compute(path, model, teacher, f_in, declared, batch_size)
                log(f"frame cache: pair {i + 1}/{len(pairs)} ({f_in} Hz as {declared:.0f}) "
                    f"in {time.time() - t0:.0f}s")
            self.frames.append(np.load(path, mmap_mode="r"))

    @staticmethod
    def _compute(path, model, teacher, f_in, declared, batch_size):
        C, K, _ = teacher.copies.shape
        step_scale = model.cfg.sample_rate / declared
        was_training = model.training
        model.eval()      # the pooling norm is applied later, live: eval mode changes nothing here
        out = flat_out = None
        flat = teacher.copies.reshape(C * K, -1)
        with torch.no_grad():
            for s in range(0, C * K, batch_size):
                x = torch.from_numpy(flat[s:s + batch_size].astype(np.float32) / 32768.0)
                z = model.log_frames(resample(x, SAMPLE_RATE, f_in), step_scale).numpy()
                if out is None:
                    out = np.lib.format.open_memmap(path + ".part", mode="w+", dtype=np.float16,
                                                    shape=(C, K) + z.shape[1:])
                    flat_out = out.reshape(C * K, *z.shape[1:])
                flat_out[s:s + len(z)] = z
        out.flush()
        del out, flat_out
        os.replace(path + ".part", path)     # whole or absent: a stopped run computes it again
        model.train(was_training)

    def batch(self, pair: int, idx: torch.Tensor, which: torch.Tensor) -> torch.Tensor:
        """Clips idx, copies which[idx], at pair `pair` -> log frames [B, H0, F] float32."""
        i, k = idx.numpy(), which[idx].numpy()
        return torch.from_numpy(self.frames[pair][i, k].astype(np.float32))
