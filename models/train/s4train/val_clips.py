"""The validation speakers' clips (those a recipe holds out of train/) linked into a folder laid
out like test/: <label>/<file> and a manifest.csv, so that tools/stream_eval.py chooses the detection
threshold without touching test/.

    python -m s4train val-clips recipes/default.toml OUT_DIR
"""

from __future__ import annotations

import csv
import json
import os

from s4train.data.clips import speaker_split


def link_val_clips(recipe, out_dir: str) -> int:
    """Links the validation clips of `recipe` under out_dir and writes split.json (which speakers
    these are, for stream_eval.py's check); returns their count."""
    data = recipe.data
    train_dir = os.path.join(recipe.data_dir, "train")
    _, val = speaker_split(recipe.data_dir, data)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "manifest.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker"])
        for item in val:
            relative = os.path.relpath(item.path, train_dir)
            link = os.path.join(out_dir, relative)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(os.path.abspath(item.path), link)
            writer.writerow([relative, item.label, item.speaker])
    with open(os.path.join(out_dir, "split.json"), "w") as f:
        json.dump({"seed": data.seed, "val_fraction": data.val_fraction}, f)
    return len(val)
