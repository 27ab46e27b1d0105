"""The max-pooling loss (a span's best frame alone carries its cross-entropy; _nothing_ frames
are pushed to _nothing_; ignored frames get nothing) and the event rule of validation."""

import numpy as np
import torch
import torch.nn.functional as F

from s4train.data.streams import IGNORE, Word
from s4train.events import Event, EventRule, detect, score_events
from s4train.stream_loss import max_pool_loss

NOTHING = 3


def test_the_gradient_reaches_only_the_best_frame_of_a_span():
    torch.manual_seed(0)
    logits = torch.randn(1, 8, 4, dtype=torch.float64)
    logits[0, 4, 1] = 5.0                    # frame 4: the span's most confident of class 1
    logits.requires_grad_(True)
    labels = torch.tensor([[NOTHING, IGNORE, IGNORE, 1, 1, 1, NOTHING, NOTHING]])
    spans = torch.tensor([[-1, -1, -1, 0, 0, 0, -1, -1]])
    loss, parts = max_pool_loss(logits, labels, spans, NOTHING, nothing_weight=0.5)
    loss.backward()
    g = logits.grad[0]
    assert parts["spans"] == 1
    assert torch.all(g[[1, 2, 3, 5]] == 0)                      # ignored frames, the span's others
    assert g[4, 1] < 0 and torch.all(g[4, [0, 2, 3]] > 0)        # towards the command
    for f in (0, 6, 7):                                          # towards _nothing_
        assert g[f, NOTHING] < 0 and torch.all(g[f, :NOTHING] > 0)
    lp = F.log_softmax(logits.detach(), -1)[0]
    want = -lp[4, 1] + 0.5 * -lp[[0, 6, 7], NOTHING].mean()
    assert abs(loss.item() - want.item()) < 1e-12


def test_spans_are_averaged_and_streams_without_words_still_learn():
    logits = torch.zeros(2, 5, 4, requires_grad=True)
    labels = torch.tensor([[0, 0, NOTHING, 2, 2], [NOTHING] * 5])
    spans = torch.tensor([[0, 0, -1, 1, 1], [-1] * 5])
    loss, parts = max_pool_loss(logits, labels, spans, NOTHING)
    assert parts["spans"] == 2 and abs(loss.item() - 2 * np.log(4)) < 1e-6
    loss, parts = max_pool_loss(logits[1:], labels[1:], spans[1:], NOTHING)
    loss.backward()
    assert parts["spans"] == 0 and logits.grad[1].abs().sum() > 0


def test_the_hardest_term_reaches_only_each_streams_hardest_nothing_frames():
    torch.manual_seed(1)
    logits = torch.randn(2, 6, 4, dtype=torch.float64)
    logits[0, 2, 0] = logits[1, 4, 2] = 6.0          # the frames a false alarm would fire on
    logits[0, 0, 1] = 6.0                            # a span's frame: never a hardest one
    logits.requires_grad_(True)
    labels = torch.tensor([[1, NOTHING, NOTHING, NOTHING, IGNORE, NOTHING], [NOTHING] * 6])
    spans = torch.tensor([[0, -1, -1, -1, -1, -1], [-1] * 6])
    base, _ = max_pool_loss(logits, labels, spans, NOTHING)
    loss, parts = max_pool_loss(logits, labels, spans, NOTHING, hardest_weight=2.0, hardest_frames=1)
    lp = F.log_softmax(logits.detach(), -1)
    want = -(lp[0, 2, NOTHING] + lp[1, 4, NOTHING]) / 2
    assert abs(parts["hardest"] - want.item()) < 1e-12
    assert abs(loss.item() - (base.item() + 2.0 * want.item())) < 1e-12
    (loss - base).backward()
    g = logits.grad
    assert g[0, 2, NOTHING] < 0 and g[1, 4, NOTHING] < 0
    assert torch.all(g[0, [0, 1, 3, 4, 5]] == 0) and torch.all(g[1, [0, 1, 2, 3, 5]] == 0)
    # More frames asked for than a stream has: all of its _nothing_ frames, none of the others.
    _, parts = max_pool_loss(logits, labels, spans, NOTHING, hardest_weight=1.0, hardest_frames=6)
    want = (-lp[0, [1, 2, 3, 5], NOTHING].mean() - lp[1, :, NOTHING].mean()) / 2
    assert abs(parts["hardest"] - want.item()) < 1e-12


def test_one_event_per_word_and_the_refractory_time():
    """The engine's rule (FrameEventRule.swift and its tests): a group per word, decided at its
    peak once it has stood for the hold time; words closer than the release time are one group."""
    rule = EventRule(threshold=0.5, smoothing_s=0.01, activity_floor=0.2, peak_hold_s=0.05, release_s=0.2)
    post = np.full((100, 3), [0.0, 0.0, 1.0])
    post[10:12], post[12:14], post[14] = [0.3, 0, 0.7], [0.6, 0, 0.4], [0.9, 0, 0.1]
    post[15:25], post[25:28], post[28:34] = [0.6, 0, 0.4], [0.25, 0, 0.75], [0.5, 0, 0.5]
    events = detect(post, 2, rule, 0.01)
    assert [(e.label, e.frame) for e in events] == [(0, 19)]    # the peak at 14, held 5 frames
    assert abs(events[0].score - 0.9) < 1e-9
    apart = np.full((100, 3), [0.0, 0.0, 1.0])
    apart[10:20], apart[45:55] = [0.9, 0, 0.1], [0, 0.9, 0.1]
    assert [e.label for e in detect(apart, 2, rule, 0.01)] == [0, 1]
    close = np.full((100, 3), [0.0, 0.0, 1.0])
    close[10:20], close[25:35] = [0.9, 0, 0.1], [0, 0.9, 0.1]
    assert [e.label for e in detect(close, 2, rule, 0.01)] == [0]
    # A threshold only filters what a lower one gives.
    low = detect(apart, 2, EventRule(threshold=0.2, smoothing_s=0.05), 0.01)
    high = detect(apart, 2, EventRule(threshold=0.85, smoothing_s=0.05), 0.01)
    assert [(e.label, e.frame) for e in high] == [(e.label, e.frame) for e in low if e.score >= 0.85]


def test_events_scored_against_words():
    words = [Word(0, 0.1, 0.3), Word(1, 1.0, 1.2), Word(2, 2.0, 2.2)]
    events = [Event(0, 39, 0.9), Event(2, 129, 0.9), Event(1, 299, 0.9)]   # times 0.4, 1.3, 3.0 s
    assert score_events(events, words, 0.01, 0.6) == {"matched": 1, "wrong": 1, "missed": 1, "false_alarms": 1}
