"""The Speech Commands vocabulary and clip lists, without torch: one definition for the training
code and the evaluation tools (tools/). The Swift side's copy is
Sources/S4Core/ModelFile/Vocabulary.swift.

A split folder (shared/data/speech-commands/<split>/, or one laid out like it) holds
manifest.csv with columns path,label,speaker: path relative to the folder, speaker empty for
_silence_.
"""

from __future__ import annotations

import csv
import os

# The ten command words.
COMMANDS = ["yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go"]
# A clip head's labels in the order of its logits: the commands, then the two that are not.
LABELS = COMMANDS + ["_unknown_", "_silence_"]
# A streaming (frame) head's: the commands, then the one label of every frame that ends none.
NOTHING = "_nothing_"
STREAM_LABELS = COMMANDS + [NOTHING]


def is_command(label: str) -> bool:
    """A label names a command unless it starts with "_" (_unknown_, _silence_)."""
    return not label.startswith("_")


def read_manifest(split_dir: str) -> list[tuple[str, str, str]]:
    """(path joined to split_dir, label, speaker) for every clip of split_dir/manifest.csv, in
    its order; speaker is "" where the manifest has none."""
    with open(os.path.join(split_dir, "manifest.csv"), newline="") as f:
        return [(os.path.join(split_dir, row["path"]), row["label"], row.get("speaker") or "")
                for row in csv.DictReader(f)]
