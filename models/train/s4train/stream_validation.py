"""Validation of a streaming head on fixed streams (validation speakers, the negatives' carve):
frame figures and event figures per input rate, and the one score that picks weights.

Frame figures: the max-pooling loss, the share of _nothing_ frames taken for _nothing_, the share
of spans whose best frame names the command. Event figures: the rule of events.py at the
recipe's threshold, counted against the words placed (matched, wrong, missed), false alarms,
and false alarms per hour of the streams.

The score, (matched - wrong - false alarms) / words, counts every wrong or unwanted event as
much as a found word is worth: a cheap stand-in for the DET curve make stream-eval draws, at one
threshold, that moves the same way.
"""

from __future__ import annotations

import numpy as np
import torch

from s4train.data.streams import make_batch
from s4train.events import EventRule, detect, score_events
from s4train.stream_loss import max_pool_loss
from s4train.vocabulary import NOTHING, STREAM_LABELS


@torch.no_grad()
def evaluate_streams(model, streams, rates, cfg, device, batch_size: int = 8) -> dict:
    """{str(rate): figures} for `streams` (data.streams.Stream, one length, 16 kHz) heard at each
    rate (declared as heard: no speed change)."""
    model.eval()
    nothing = STREAM_LABELS.index(NOTHING)
    tau = model.cfg.frame_seconds
    rule = EventRule(cfg.threshold, cfg.smoothing_s, cfg.activity_floor, cfg.peak_hold_s, cfg.release_s)
    out = {}
    for f_in in rates:
        counts = {"matched": 0, "wrong": 0, "missed": 0, "false_alarms": 0}
        loss, n_batches, nothing_ok, nothing_n, spans_ok, spans_n = 0.0, 0, 0, 0, 0, 0
        for i in range(0, len(streams), batch_size):
            batch = make_batch(streams[i:i + batch_size], f_in, float(f_in), tau, cfg)
            logits = model(batch.x.to(device), step_scale=model.cfg.sample_rate / f_in).cpu()
            value, _ = max_pool_loss(logits, batch.labels, batch.spans, nothing, cfg.nothing_weight)
            loss, n_batches = loss + float(value), n_batches + 1
            guess = logits.argmax(-1)
            is_nothing = (batch.labels == nothing) & (batch.spans < 0)
            nothing_ok += int((guess[is_nothing] == nothing).sum())
            nothing_n += int(is_nothing.sum())
            post = torch.softmax(logits.double(), -1).numpy()
            for b, stream in enumerate(batch.streams):
                for s in np.unique(batch.spans[b][batch.spans[b] >= 0].numpy()):
                    at = (batch.spans[b] == int(s)).nonzero().squeeze(1)
                    label = int(batch.labels[b, at[0]])
                    best = at[int(np.argmax(post[b, at.numpy(), label]))]
                    spans_ok += int(guess[b, best] == label)
                    spans_n += 1
                events = detect(post[b], nothing, rule, tau)
                for k, v in score_events(events, stream.words, tau, cfg.match_after_s).items():
                    counts[k] += v
        hours = sum(len(s.wave) for s in streams) / 16000 / 3600
        words = max(1, counts["matched"] + counts["wrong"] + counts["missed"])
        out[str(f_in)] = {**counts, "words": words, "loss": loss / max(1, n_batches),
                          "false_alarms_per_hour": counts["false_alarms"] / max(hours, 1e-9),
                          "nothing_accuracy": nothing_ok / max(1, nothing_n),
                          "span_accuracy": spans_ok / max(1, spans_n),
                          "score": (counts["matched"] - counts["wrong"] - counts["false_alarms"]) / words}
    return out


def stream_score(figures: dict) -> float:
    """The mean over the rates of evaluate_streams' score: the one number that picks weights."""
    return float(np.mean([v["score"] for v in figures.values()]))


def best_stream_epoch(history: list[dict]) -> dict:
    """The history's entry with the best stream score (the earliest of equals)."""
    return max(history, key=lambda h: stream_score(h["val"]))
