"""Events from a streaming head's posteriors, and their score against the words of a stream: the
one rule training's validation uses (the engine has its own, Swift, to the same description).

    the posteriors averaged over the last `smooth_frames` frames (causal);
    an event when the largest command posterior reaches `threshold`, with that command's label;
    then none until it falls below the threshold again (one event per word) and `refractory`
    frames have passed since the last.

Scoring: a word is matched by the first event from its start to `match_after` seconds after its
end (the right label: matched, another: wrong); a word no event reaches is missed; an event that
matches no word is a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Event:
    label: int
    frame: int
    score: float


def detect(posteriors: np.ndarray, nothing: int, threshold: float, smooth_frames: int,
           refractory_frames: int) -> list[Event]:
    """posteriors [F, K] (softmax of one stream's logits) -> events, in order."""
    c = np.cumsum(np.vstack([np.zeros((1, posteriors.shape[1])), posteriors]), axis=0)
    k = np.arange(1, len(posteriors) + 1)
    lo = np.maximum(0, k - max(1, smooth_frames))
    smooth = (c[k] - c[lo]) / (k - lo)[:, None]
    commands = np.delete(np.arange(posteriors.shape[1]), nothing)
    best = commands[np.argmax(smooth[:, commands], axis=1)]
    score = smooth[np.arange(len(best)), best]
    events, armed, last = [], True, -refractory_frames - 1
    for f in range(len(score)):
        if score[f] < threshold:
            armed = True
        elif armed and f - last > refractory_frames:
            events.append(Event(int(best[f]), f, float(score[f])))
            armed, last = False, f
    return events


def score_events(events: list[Event], words, seconds_per_frame: float, match_after: float) -> dict:
    """Counts of matched, wrong, missed and false_alarms for one stream (`words`: label, start, end
    in seconds, in order)."""
    used = set()
    out = {"matched": 0, "wrong": 0, "missed": 0, "false_alarms": 0}
    for w in words:
        hit = next((i for i, e in enumerate(events) if i not in used
                    and w.start <= (e.frame + 1) * seconds_per_frame <= w.end + match_after), None)
        if hit is None:
            out["missed"] += 1
            continue
        used.add(hit)
        out["matched" if events[hit].label == w.label else "wrong"] += 1
    out["false_alarms"] = len(events) - len(used)
    return out
