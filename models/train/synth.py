"""Synthetic speakers: Debian's espeak-ng and flite voices saying the command words.

Speech Commands' training folder here has about 3,300 clips from a few hundred people; a
synthetic speaker adds a voice the model has not heard, with its own pitch and speaking rate,
saying every command once (as a real contributor did) and a few other words for `_unknown_`.
The clips are laid out like shared/data/speech-commands/<split>/: <label>/<name>.flac, 16 kHz
mono, one second, and a manifest.csv (path,label,speaker) whose speakers start with "synth".

    python synth.py OUT_DIR [--speakers 150] [--unknown-per-speaker 3] [--seed 0]

and train with them: `python train.py --extra-train OUT_DIR …` (training only: the validation
speakers stay real people). Deterministic for a given seed and the same voice packages.
Needs the espeak-ng and flite programs (`apt-get install espeak-ng flite`).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf
import torch

import data as D
from vocabulary import COMMANDS

# Speech Commands' other words, the ones behind its _unknown_ class.
UNKNOWN_WORDS = ["bed", "bird", "cat", "dog", "eight", "five", "four", "happy", "house", "marvin",
                 "nine", "one", "seven", "sheila", "six", "three", "tree", "two", "wow", "zero",
                 "backward", "follow", "forward", "learn", "visual"]

ESPEAK_ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc"]
ESPEAK_VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4"]
# flite's general-domain voices whose pitch can be set, and the range of their mean pitch (Hz)
# that still sounds human (rms ignores int_f0_target_mean, so it is left out).
FLITE_VOICES = {"kal16": (85, 135), "awb": (85, 135), "slt": (150, 230)}
FLITE_SHARE = 0.2


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an engine, a voice and its pitch and speed settings."""
    engine: str      # "espeak-ng" or "flite"
    name: str        # espeak-ng "accent+variant", or a flite voice
    pitch: float     # espeak-ng -p (0–99), or flite's mean F0 in Hz
    speed: float     # espeak-ng words per minute, or flite's duration stretch (> 1 is slower)

    @property
    def speaker(self) -> str:
        return f"synth-{self.engine}-{self.name}-p{self.pitch:g}-s{self.speed:g}"

    def command(self, word: str, wav: str) -> list[str]:
        if self.engine == "espeak-ng":
            return ["espeak-ng", "-v", self.name, "-p", f"{self.pitch:g}", "-s", f"{self.speed:g}",
                    "-w", wav, word]
        return ["flite", "-voice", self.name, "--setf", f"duration_stretch={self.speed:g}",
                "--setf", f"int_f0_target_mean={self.pitch:g}", "-t", word, "-o", wav]


def make_voices(n: int, rng: np.random.Generator) -> list[Voice]:
    voices = []
    for _ in range(n):
        if rng.random() < FLITE_SHARE:
            name = str(rng.choice(sorted(FLITE_VOICES)))
            lo, hi = FLITE_VOICES[name]
            voices.append(Voice("flite", name, float(rng.integers(lo, hi + 1)), round(float(rng.uniform(0.8, 1.3)), 2)))
        else:
            name = f"{rng.choice(ESPEAK_ACCENTS)}+{rng.choice(ESPEAK_VARIANTS)}"
            voices.append(Voice("espeak-ng", name, float(rng.integers(25, 76)), float(rng.integers(120, 201))))
    return voices


def speak(voice: Voice, word: str) -> np.ndarray:
    """The voice saying the word, as float samples at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "word.wav")
        done = subprocess.run(voice.command(word, wav), capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(wav):
            raise RuntimeError(f"{voice.engine} failed for {word!r} ({voice.name}): {done.stderr.strip()}")
        x, rate = sf.read(wav, dtype="float64", always_2d=True)
    return D.resample(torch.from_numpy(x.mean(axis=1)), rate, D.SAMPLE_RATE).numpy()


def trim(x: np.ndarray, below_peak_db: float = 40.0) -> np.ndarray:
    """The word without the engine's leading and trailing silence (10 ms frames quieter than the
    loudest frame by `below_peak_db`)."""
    frame = D.SAMPLE_RATE // 100
    n = len(x) // frame
    if n == 0:
        return x
    energy = (x[:n * frame].reshape(n, frame) ** 2).mean(axis=1)
    if energy.max() == 0:
        raise ValueError("the engine wrote silence")
    loud = np.flatnonzero(energy > energy.max() * 10 ** (-below_peak_db / 10))
    return x[loud[0] * frame:(loud[-1] + 1) * frame]


def place(word: np.ndarray, rng: np.random.Generator, clip_samples: int = D.SAMPLE_RATE) -> np.ndarray:
    """A one-second clip with the word at a random position and a random peak level
    (0.1–0.9; gain and noise come later, in training's augmentation)."""
    word = word[:clip_samples]
    clip = np.zeros(clip_samples)
    start = int(rng.integers(0, clip_samples - len(word) + 1))
    peak = np.abs(word).max()
    level = float(rng.uniform(0.1, 0.9))
    clip[start:start + len(word)] = word * (level / peak if peak > 0 else 0.0)
    return clip


def synthesise(out_dir: str, speakers: int, unknown_per_speaker: int, seed: int,
               commands: list[str] = COMMANDS, unknown_words: list[str] = UNKNOWN_WORDS) -> int:
    """Writes the clips and manifest.csv; returns the number of clips."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, voice in enumerate(make_voices(speakers, rng)):
        extra = rng.choice(unknown_words, size=min(unknown_per_speaker, len(unknown_words)), replace=False)
        for word in list(commands) + [str(w) for w in extra]:
            label = word if word in commands else "_unknown_"
            name = f"synth{k:04d}_{word}.flac"
            os.makedirs(os.path.join(out_dir, label), exist_ok=True)
            clip = place(trim(speak(voice, word)), rng)
            sf.write(os.path.join(out_dir, label, name), clip.astype(np.float32), D.SAMPLE_RATE,
                     subtype="PCM_16")
            rows.append((f"{label}/{name}", label, voice.speaker))
    with open(os.path.join(out_dir, "manifest.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "speaker"])
        w.writerows(rows)
    return len(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--speakers", type=int, default=150)
    ap.add_argument("--unknown-per-speaker", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if os.path.exists(os.path.join(args.out_dir, "manifest.csv")):
        sys.exit(f"{args.out_dir} already holds a manifest.csv: remove it first")
    n = synthesise(args.out_dir, args.speakers, args.unknown_per_speaker, args.seed)
    print(f"wrote {n} clips from {args.speakers} synthetic speakers to {args.out_dir}")


if __name__ == "__main__":
    main()
