"""Negative audio (../shared/data/negatives, its README): read speech without any command word and
household sounds, where every event is a false alarm. Without torch, for the tools too.

Its train/ audio is split once into a part for training and a validation carve for choosing
thresholds; the carve is a committed list (recipes/negatives-validation.txt, which says how it
was drawn), so the training code and the benchmark cannot disagree on it. test/ is for reported
figures only and has no carve.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

VALIDATION_CARVE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "recipes", "negatives-validation.txt")


@dataclass(frozen=True)
class Negative:
    path: str       # joined to the negatives folder
    kind: str       # "speech" or "sound"
    group: str      # the speaker (speech) or the ESC-50 category (sound)
    seconds: float


def read_negatives(negatives_dir: str, split: str) -> list[Negative]:
    """Every file of negatives_dir/manifest-<split>.csv (split: train or test), in its order."""
    with open(os.path.join(negatives_dir, f"manifest-{split}.csv"), newline="") as f:
        return [Negative(os.path.join(negatives_dir, row["path"]), row["kind"], row["speaker_or_category"],
                         float(row["seconds"])) for row in csv.DictReader(f)]


def read_carve(path: str = VALIDATION_CARVE) -> list[str]:
    """The carve's entries: paths relative to the negatives folder, a folder's ending in "/"."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("#")]


def in_carve(relative_path: str, carve: list[str]) -> bool:
    """Whether a file (relative to the negatives folder) is one of the carve's or in one of its folders."""
    return any(relative_path == entry or (entry.endswith("/") and relative_path.startswith(entry)) for entry in carve)


def split_train(negatives_dir: str, carve_path: str = VALIDATION_CARVE) -> tuple[list[Negative], list[Negative]]:
    """(for training, validation) of negatives_dir's train files. Fails when an entry of the carve
    names nothing: a renamed file or speaker would otherwise slip back into training unnoticed."""
    items = read_negatives(negatives_dir, "train")
    carve = read_carve(carve_path)
    relative = [os.path.relpath(item.path, negatives_dir) for item in items]
    unmatched = [entry for entry in carve if not any(in_carve(r, [entry]) for r in relative)]
    if unmatched:
        raise ValueError(f"{carve_path}: no file of {negatives_dir}/manifest-train.csv under {', '.join(unmatched)}")
    validation = [item for item, r in zip(items, relative) if in_carve(r, carve)]
    training = [item for item, r in zip(items, relative) if not in_carve(r, carve)]
    return training, validation
