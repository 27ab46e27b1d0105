"""Events from a streaming head's posteriors, and their score against the words of a stream: the
engine's rule (Sources/S4Detection/FrameEventRule.swift), written again for training's validation,
with the same settings (`EventRule`, the defaults of DetectorConfiguration):

    the posteriors averaged over the last `smoothing_s` (causal);
    frames where some command's smoothed posterior reaches `activity_floor` form a group, which
    ends after `release_s` without one (the refractory time);
    each group is decided once: when its peak (the highest command posterior) has stood for
    `peak_hold_s`, or when activity ends first; an event if the peak reaches `threshold`.

So a threshold only filters: the events at a threshold are those of a lower one whose score
reaches it. Scoring: a word is matched by the first event decided from its start to `match_after`
seconds after its end (the right label: matched, another: wrong); a word no event reaches is
missed; an event that matches no word is a false alarm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EventRule:
    threshold: float = 0.5
    smoothing_s: float = 0.05
    activity_floor: float = 0.2
    peak_hold_s: float = 0.1
    release_s: float = 0.3

    def frames(self, seconds: float, frame_s: float) -> int:
        """Seconds as whole frames, at least one (as the engine rounds them)."""
        return max(1, round(seconds / frame_s))


@dataclass
class Event:
    label: int
    frame: int      # the frame at whose end the event was decided
    score: float


def detect(posteriors: np.ndarray, nothing: int, rule: EventRule, frame_s: float) -> list[Event]:
    """posteriors [F, K] (softmax of one stream's logits) -> events, in order."""
    smooth_n = rule.frames(rule.smoothing_s, frame_s)
    hold, release = rule.frames(rule.peak_hold_s, frame_s), rule.frames(rule.release_s, frame_s)
    c = np.cumsum(np.vstack([np.zeros((1, posteriors.shape[1])), posteriors]), axis=0)
    k = np.arange(1, len(posteriors) + 1)
    lo = np.maximum(0, k - smooth_n)
    smooth = (c[k] - c[lo]) / (k - lo)[:, None]
    commands = np.delete(np.arange(posteriors.shape[1]), nothing)
    best = commands[np.argmax(smooth[:, commands], axis=1)]
    value = smooth[np.arange(len(best)), best]

    events: list[Event] = []
    group = None    # [peak label, peak value, frames since the peak, quiet frames, decided]

    def decide(f: int):
        group[4] = True
        if group[1] >= rule.threshold:
            events.append(Event(int(group[0]), f, float(group[1])))

    for f in range(len(value)):
        if group is None:
            if value[f] >= rule.activity_floor:
                group = [best[f], value[f], 0, 0, False]
            continue
        if value[f] >= rule.activity_floor:
            group[3] = 0
            if value[f] > group[1]:
                group[0], group[1], group[2] = best[f], value[f], 0
            else:
                group[2] += 1
            if not group[4] and group[2] >= hold:
                decide(f)
        else:
            group[3] += 1
            if not group[4]:
                decide(f)
        if group[3] >= release:
            group = None
    if group is not None and not group[4]:
        decide(len(value) - 1)
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
