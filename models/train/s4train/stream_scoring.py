"""How the events of one `s4listen listen --all` run are scored against a stream's truth: what a
threshold reports, the scene's figures and the DET rows over thresholds. Torch-free: the
evaluation tools (tools/stream_eval.py, tools/threshold_sweep.py) and their tests use it.
"""

from __future__ import annotations

import numpy as np

from s4train.vocabulary import is_command


def reported(events, threshold):
    """What `listen --threshold threshold` prints of an `--all` run (up to the printed precision
    of the scores): commands, not `_unknown_` or `_silence_`, scoring at least the threshold. A
    decision does not depend on the threshold (the detector's second look is asked for below a
    fixed score, `secondLookBelow`, not below the threshold), only whether it is reported."""
    return [e for e in events if is_command(e["label"]) and e["score"] >= threshold]


def score(events, truth, seconds):
    """Matched (right label), wrong-label and missed shares of the command words, false alarms
    per hour of non-command audio (events on no command word) and the median latency from a
    word's true end to its event (stream time)."""
    commands = [t for t in truth if t["kind"] == "command"]
    used = set()
    matched = wrong = 0
    latencies = []
    for t in commands:
        hits = [i for i, e in enumerate(events) if i not in used
                and e["start"] <= t["end"] + 0.3 and e["end"] >= t["start"] - 0.3]
        if not hits:
            continue
        i = hits[0]
        used.add(i)
        if events[i]["label"] == t["label"]:
            matched += 1
            latencies.append(events[i]["end"] + events[i]["latency"] - t["end"])
        else:
            wrong += 1
    false_alarms = len(events) - len(used)
    command_seconds = sum(t["end"] - t["start"] for t in commands)
    hours = max(seconds - command_seconds, 1) / 3600
    n = max(len(commands), 1)
    return {"matched": matched / n, "wrong": wrong / n, "missed": (n - matched - wrong) / n,
            "false_alarms_per_hour": false_alarms / hours,
            "median_latency_s": float(np.median(latencies)) if latencies else None, "commands": len(commands),
            "events": len(events)}


def det_rows(scene, negatives, thresholds):
    """One row per threshold: the scene's miss rate (no event of the word's own label), wrong and
    matched shares and false alarms per hour, and the false alarms per hour of every negative
    stream. scene: (events of --all, truth, seconds); negatives: {name: (events of --all, seconds)}."""
    rows = []
    for t in thresholds:
        s = score(reported(scene[0], t), scene[1], scene[2])
        row = {"threshold": t, "miss": 1 - s["matched"], "matched": s["matched"], "wrong": s["wrong"],
               "false_alarms_per_hour": {"scene": s["false_alarms_per_hour"]}}
        for name, (events, seconds) in negatives.items():
            row["false_alarms_per_hour"][name] = len(reported(events, t)) / (seconds / 3600)
        rows.append(row)
    return rows
