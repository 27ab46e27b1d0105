"""How the events of one `s4listen listen --all` run are scored against a stream's truth: what a
threshold reports, the scene's figures, the DET rows over thresholds, the rule that chooses
a threshold from validation streams, and whether two sources gave the same events. Torch-free:
tools/stream_eval.py and the tests use it.
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


# Event fields that name the run rather than the audio: the wall-clock time and the source.
RUN_FIELDS = ("time", "source")


# Numbers of two sources' events may differ by this much, relative: a read of several frames goes
# through the frame stack as one matrix product, which BLAS sums in another order than a frame
# alone (docs/numerics.md: 1e-5 of the logits), so a file's 4096-sample reads and ALSA's 20 ms
# periods can print a posterior's last digit differently. Labels and times must be equal.
SOURCE_TOLERANCE = 1e-5


def same_events(a, b):
    """Whether two event lists are the same, field by field as printed but for RUN_FIELDS, their
    numbers within SOURCE_TOLERANCE."""
    def same(x, y):
        if isinstance(x, dict) and isinstance(y, dict):
            return x.keys() == y.keys() and all(same(x[k], y[k]) for k in x)
        if isinstance(x, float) or isinstance(y, float):
            return isinstance(x, (int, float)) and isinstance(y, (int, float)) and \
                abs(x - y) <= SOURCE_TOLERANCE * max(abs(x), abs(y), 1e-30)
        return x == y

    def strip(events):
        return [{k: v for k, v in e.items() if k not in RUN_FIELDS} for e in events]
    return len(a) == len(b) and all(same(x, y) for x, y in zip(strip(a), strip(b)))


# The validation rule's limits: false alarms per hour on the plain negative speech, the plain
# sounds and the command scene, and the scene's share of wrong labels (the detection issue's
# targets, so that a threshold is chosen for the false alarms a user would hear).
THRESHOLD_RULE = {"speech": 2.0, "sounds": 1.0, "scene": 3.0, "wrong": 0.02}


def choose_threshold(curves, limits=THRESHOLD_RULE):
    """The lowest threshold whose rows meet `limits` in every curve (det_rows of one rate each,
    over the same thresholds); None when none does. The lowest: of the thresholds quiet enough,
    the one that misses fewest commands."""
    curves = list(curves)

    def meets(row):
        fa = row["false_alarms_per_hour"]
        return row["wrong"] <= limits["wrong"] and all(fa[k] <= v for k, v in limits.items() if k != "wrong")

    ok = [rows[0]["threshold"] for rows in zip(*curves) if all(meets(r) for r in rows)]
    return min(ok, default=None)
