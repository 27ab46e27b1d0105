"""The teacher, built for a recipe (training only; never shipped): Google's speech_embedding
(embedding.py) and a head trained on the training speakers' embeddings (head.py), whose logits
on augmented copies of every training clip are cached for the student (cache.py).

Steps, each resumable (a rerun with the same settings reuses what is on disk, under
<teacher.work_dir>/stage-<fingerprint of the clips, copies, augmentation and files>):
  1. models: the two ONNX files, fetched from the openwakeword 0.5.1 wheel and checked;
  2. copies: K augmented copies of each training clip at 16 kHz (data.augment.Augmenter's
     waveform augmentation: shift, gain, background noise), int16 [C, K, 16000];
  3. embeddings of every copy, and of the validation speakers' clean clips, saved in chunks;
  4. the head (the epoch with the best validation accuracy);
  5. the cache at <teacher.cache_dir>.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

import numpy as np
import torch

from s4train.data.augment import Augmenter
from s4train.data.clips import load_clips, load_noise, speaker_split
from s4train.teacher import embedding as E
from s4train.teacher.cache import write_cache
from s4train.teacher.head import Head, accuracy, predict, train_head
from s4train.vocabulary import LABELS

# The AugmentConfig fields Augmenter.waveform uses (16 kHz only: no rate or speed change).
WAVEFORM_AUGMENT = ("shift_ms", "gain_db", "noise_prob", "snr_min", "snr_max", "silence_noise_max")


def fingerprint(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def make_copies(recipe, items, stage: str, log) -> np.ndarray:
    """The augmented copies of `items` (int16 [C, K, 16000]), made once per stage folder."""
    path = os.path.join(stage, "copies.npy")
    if os.path.exists(path):
        log(f"copies: reusing {path}")
        return np.load(path, mmap_mode="r")
    t = recipe.teacher
    x, y = load_clips(items, LABELS)
    g = torch.Generator().manual_seed(recipe.data.seed + 23)
    augment = Augmenter(recipe.augment, load_noise(recipe.data_dir), LABELS.index("_silence_"), "cpu", g)
    copies = np.zeros((len(x), t.copies, E.CLIP), dtype=np.int16)
    for k in range(t.copies):
        for s in range(0, len(x), 256):
            copies[s:s + 256, k] = E.to_int16(augment.waveform(x[s:s + 256], y[s:s + 256]))
    E.save_npy(path, copies)
    return copies


def trained_head(recipe, e_tr, y_tr, e_va, y_va, stage: str, setting: dict, log):
    """The head for these embeddings and the recipe's settings (trained once per settings)."""
    t = recipe.teacher
    hp = {"epochs": t.epochs, "batch_size": t.batch_size, "lr": t.lr, "weight_decay": t.weight_decay,
          "channels": t.channels, "dropout": t.dropout, "seed": recipe.data.seed}
    if t.mixup > 0:      # absent at 0, so that heads trained before mixup existed are found again
        hp["mixup"] = t.mixup
    path = os.path.join(stage, "head-" + fingerprint(hp) + ".pt")
    if os.path.exists(path):
        ck = torch.load(path, weights_only=False)
        head = Head(**ck["record"]["config"])
        head.load_state_dict(ck["model"])
        log(f"head: reusing {path}")
        return head.eval(), ck["record"], hp
    head, record = train_head(e_tr, y_tr, e_va, y_va, log=log, **hp)
    torch.save({"model": head.state_dict(), "record": record, "setting": fingerprint(setting),
                "seed": recipe.data.seed, "val_fraction": recipe.data.val_fraction}, path)
    return head, record, hp


def build_teacher(recipe, log=print) -> dict:
    """Steps 1-5 for `recipe`; returns the head's validation accuracy and the timing."""
    t, data = recipe.teacher, recipe.data
    work, cache_dir = recipe.in_runs(t.work_dir), recipe.in_runs(t.cache_dir)
    torch.set_num_threads(max(1, t.threads))
    os.makedirs(work, exist_ok=True)
    timing, t_all = {}, time.time()

    t0 = time.time()
    paths = E.fetch_models(work)
    hashes = {n: E.MODEL_FILES[n][1] for n in E.MODEL_FILES}
    pad = E.pad_samples(t.pad_ms)
    embedder = E.SpeechEmbedding.from_onnx(paths, t.threads, pad)
    W = E.n_windows(E.CLIP + 2 * pad)
    timing["models"] = time.time() - t0
    spans = E.window_times(t.pad_ms)
    log(f"models: checked {', '.join(E.MODEL_FILES)} ({timing['models']:.1f}s); {W} embeddings "
        f"per clip, windows from {spans[0, 0]:+.3f}s to {spans[-1, 1]:+.3f}s of the clip's start")

    t0 = time.time()
    tr_items, va_items = speaker_split(recipe.data_dir, data)
    aug_used = {k: getattr(recipe.augment, k) for k in WAVEFORM_AUGMENT}
    setting = {"items": [it.path for it in tr_items], "val": [it.path for it in va_items],
               "seed": data.seed, "copies": t.copies, "augment": aug_used, "pad": pad, "models": hashes}
    stage = os.path.join(work, "stage-" + fingerprint(setting))
    os.makedirs(stage, exist_ok=True)
    copies = make_copies(recipe, tr_items, stage, log)
    ytr = np.array([LABELS.index(it.label) for it in tr_items], dtype=np.int64)
    yva = np.array([LABELS.index(it.label) for it in va_items], dtype=np.int64)
    timing["copies"] = time.time() - t0
    C, K = copies.shape[:2]
    log(f"copies: {C} training clips x {K} copies, {len(va_items)} validation clips "
        f"({timing['copies']:.1f}s)")

    t0 = time.time()
    e_tr = E.embed_chunked(embedder, copies.reshape(C * K, E.CLIP), stage, "emb-train")
    va_path = os.path.join(stage, "val-int16.npy")
    if not os.path.exists(va_path):
        E.save_npy(va_path, E.to_int16(load_clips(va_items, LABELS)[0]))
    e_va = E.embed_chunked(embedder, np.load(va_path), stage, "emb-val")
    timing["embeddings"] = time.time() - t0
    log(f"embeddings: train {e_tr.shape}, val {e_va.shape} ({timing['embeddings']:.1f}s)")

    t0 = time.time()
    head, record, hp = trained_head(recipe, e_tr, np.repeat(ytr, K), e_va, yva, stage, setting, log)
    va_acc = accuracy(predict(head, e_va), yva)
    timing["head"] = time.time() - t0
    log(f"head: {sum(p.numel() for p in head.parameters())} parameters, best epoch {record['epoch']}, "
        f"validation 12-class {va_acc['twelve_class']:.4f}, ten-word {va_acc['ten_word']:.4f} "
        f"({timing['head']:.1f}s)")

    t0 = time.time()
    logits = predict(head, e_tr)
    tr_acc = accuracy(logits, np.repeat(ytr, K))["twelve_class"]
    p_max = float(logits.softmax(-1).amax(-1).mean())
    meta = {"seed": data.seed, "val_fraction": data.val_fraction, "copies": K,
            "items": [it.path for it in tr_items], "labels": LABELS, "data": recipe.data_dir,
            "max_train": data.max_train, "sample_rate": E.SAMPLE_RATE, "int16_scale": E.INT16_SCALE,
            "augment": aug_used, "augment_seed": data.seed + 23,
            "teacher": {"wheel": E.WHEEL, "sha256": hashes, "pad_ms": t.pad_ms,
                        "embeddings_per_clip": W, "head": record["config"],
                        "head_epochs": [record["epoch"]], "head_train_hyper": hp},
            "head_val_accuracy": va_acc["twelve_class"], "head_val_ten_word": va_acc["ten_word"],
            "head_train_copies_accuracy": tr_acc, "mean_max_probability": p_max,
            "licence": "speech_embedding: Apache-2.0 (TF Hub); openwakeword 0.5.1 wheel METADATA: "
                       "included pre-trained models CC BY-NC-SA 4.0"}
    write_cache(cache_dir, os.path.join(stage, "copies.npy"), logits.numpy().reshape(C, K, len(LABELS)),
                ytr, meta)
    timing["cache"] = time.time() - t0
    log(f"cache: {cache_dir} ({C} x {K}); teacher on its own training copies {tr_acc:.4f}, "
        f"mean max probability {p_max:.3f} ({timing['cache']:.1f}s)")
    timing["total"] = time.time() - t_all
    log("timing: " + ", ".join(f"{k} {v:.1f}s" for k, v in timing.items()))
    return {"val": va_acc, "train_copies_accuracy": tr_acc, "timing": timing}
