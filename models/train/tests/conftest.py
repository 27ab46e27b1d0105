"""Shared test material: a tiny Speech Commands folder, a fake teacher cache, stand-ins for the
speech_embedding ONNX models, and the tiny recipe. One torch thread: the tests share the
machine with other builds."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

from s4train.data.clips import load_clips, speaker_split
from s4train.recipe import Recipe
from s4train.teacher import embedding as E
from s4train.vocabulary import LABELS

torch.set_num_threads(1)

TINY_RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes", "tiny.toml")


def make_dataset(root: str, speakers: int = 6, seed: int = 0) -> str:
    """train/ of `speakers` speakers saying every label (a tone per label, silence as noise)
    and one background noise file, laid out like shared/data/speech-commands."""
    rng = np.random.default_rng(seed)
    rows = []
    for li, label in enumerate(LABELS):
        os.makedirs(os.path.join(root, "train", label))
        for k in range(speakers):
            t = np.arange(rng.integers(12000, 16001)) / 16000
            x = 0.3 * np.sin(2 * np.pi * (200 + 150 * li) * t) + 0.01 * rng.standard_normal(len(t))
            if label == "_silence_":
                x = 0.01 * rng.standard_normal(len(t))
            name = f"s{k}_nohash_{li}.flac"
            sf.write(os.path.join(root, "train", label, name), x.astype(np.float32), 16000, subtype="PCM_16")
            rows.append((f"{label}/{name}", label, "" if label == "_silence_" else f"s{k}"))
    with open(os.path.join(root, "train", "manifest.csv"), "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "speaker")] + rows)
    os.makedirs(os.path.join(root, "_background_noise_"))
    sf.write(os.path.join(root, "_background_noise_", "white.flac"),
             (0.1 * rng.standard_normal(40000)).astype(np.float32), 16000, subtype="PCM_16")
    return root


@pytest.fixture
def speech_commands(tmp_path) -> str:
    return make_dataset(str(tmp_path / "sc"))


@pytest.fixture
def tiny_recipe(tmp_path, speech_commands):
    """(*overrides) -> tests/recipes/tiny.toml on the tiny clips, its runs under tmp_path/runs."""
    def load(*overrides: str) -> Recipe:
        return Recipe.load(TINY_RECIPE, [f'data.clips="{speech_commands}"',
                                         f'run.runs="{tmp_path / "runs"}"', *overrides])
    return load


@pytest.fixture
def fake_cache():
    return write_fake_cache


def write_fake_cache(recipe: Recipe, K: int = 2, teacher="fake") -> int:
    """What the teacher writes for `recipe` (K noisy copies of each training clip, logits that
    favour the label), without it; returns the number of clips."""
    items, _ = speaker_split(recipe.data_dir, recipe.data)
    x, y = load_clips(items)
    rng = np.random.default_rng(0)
    copies = np.stack([x.numpy() + 0.01 * rng.standard_normal(x.shape) for _ in range(K)], axis=1)
    out = recipe.in_runs(recipe.teacher.cache_dir)
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, "copies.npy"), np.round(np.clip(copies, -1, 1) * 32767).astype(np.int16))
    logits = rng.standard_normal((len(items), K, 12)).astype(np.float32)
    logits[np.arange(len(items)), :, y.numpy()] += 4.0
    np.save(os.path.join(out, "logits.npy"), logits)
    np.save(os.path.join(out, "labels.npy"), y.numpy())
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"seed": recipe.data.seed, "val_fraction": recipe.data.val_fraction,
                   "items": [it.path for it in items], "teacher": teacher}, f)
    return len(items)


def toy_mel(x):
    """A crude log band energy per 10 ms frame: [1, n] -> [1, 1, frames, 32]."""
    T = E.mel_frames(x.shape[1])
    out = np.zeros((x.shape[0], 1, T, 32), np.float32)
    for b in range(x.shape[0]):
        for f in range(T):
            seg = x[b, 160 * f:160 * f + 512]
            p = np.abs(np.fft.rfft(seg, 512))[:256].reshape(32, 8).mean(1)
            out[b, 0, f] = 20 * np.log10(p + 1.0)
    return out


_PROJ = np.random.default_rng(5).standard_normal((32, 96)).astype(np.float32) / 8


def toy_emb(w):
    return np.tanh(w[..., 0].mean(1) @ _PROJ).reshape(-1, 1, 1, 96)


@pytest.fixture
def fake_embedding(monkeypatch):
    """The teacher's ONNX models replaced by toy functions (nothing fetched); counts mel calls."""
    calls = {"mel": 0}

    def mel(x):
        calls["mel"] += 1
        return toy_mel(x)

    monkeypatch.setattr(E, "fetch_models", lambda work_dir: {n: "/nonexistent/" + n for n in E.MODEL_FILES})
    monkeypatch.setattr(E.SpeechEmbedding, "from_onnx",
                        classmethod(lambda cls, paths, threads=1, pad=8000: cls(mel, toy_emb, pad)))
    return calls


def make_negatives(root: str, speakers: int = 4, categories: int = 3, seed: int = 1) -> tuple[str, str]:
    """A negatives folder laid out like shared/data/negatives (speech/train/<speaker>/, sounds/train/
    <category>/, manifest-train.csv): chirps for speech, noise bursts for sounds, and a carve file
    holding out the first speaker and each category's first sound. Returns (folder, carve file)."""
    rng = np.random.default_rng(seed)
    rows, carve = [], []
    for k in range(speakers):
        for u in range(2):
            t = np.arange(int(16000 * rng.uniform(2.0, 3.0))) / 16000
            x = 0.2 * np.sin(2 * np.pi * (300 + 200 * t + 40 * k) * t) + 0.01 * rng.standard_normal(len(t))
            rel = f"speech/train/n{k}/u{u}.flac"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            sf.write(os.path.join(root, rel), x.astype(np.float32), 16000, subtype="PCM_16")
            rows.append(("speech", rel, f"n{k}", f"{len(t) / 16000:.3f}", "A SENTENCE"))
    carve.append("speech/train/n0/")
    for c in range(categories):
        for j in range(2):
            x = 0.3 * rng.standard_normal(16000 * 2) * np.exp(-np.arange(32000) / 4000.0)
            rel = f"sounds/train/cat{c}/s{j}.flac"
            os.makedirs(os.path.dirname(os.path.join(root, rel)), exist_ok=True)
            sf.write(os.path.join(root, rel), x.astype(np.float32), 16000, subtype="PCM_16")
            rows.append(("sound", rel, f"cat{c}", "2.000", ""))
        carve.append(f"sounds/train/cat{c}/s0.flac")
    with open(os.path.join(root, "manifest-train.csv"), "w", newline="") as f:
        csv.writer(f).writerows([("kind", "path", "speaker_or_category", "seconds", "transcript")] + rows)
    carve_path = os.path.join(root, "carve.txt")
    with open(carve_path, "w") as f:
        f.write("# the tests' carve\n" + "\n".join(carve) + "\n")
    return root, carve_path


@pytest.fixture
def negatives(tmp_path) -> tuple[str, str]:
    return make_negatives(str(tmp_path / "negatives"))
