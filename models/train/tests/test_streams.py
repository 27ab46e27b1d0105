"""Stream synthesis: the targets sit where the words were placed (in the stream's time, at any
drawn rate and speed), batches are reproducible, and no validation speaker or carved negative
reaches a training stream."""

import os

import numpy as np
import pytest

from s4train.data.augment import AugmentConfig
from s4train.data.clips import speaker_split
from s4train.data.streams import (
    IGNORE,
    NOTHING,
    STREAM_LABELS,
    Clip,
    StreamBatches,
    StreamConfig,
    StreamSources,
    Word,
    frame_targets,
    synthesise,
)
from s4train.data.words import word_span
from s4train.recipe import Recipe
from s4train.stream_loop import load_stream_sources

TINY_STREAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes", "tiny_stream.toml")
AUGMENT = AugmentConfig(multirate_prob=1.0, speed_min=0.9, speed_max=1.1, rate_grid=100)


def tone_sources() -> StreamSources:
    """Commands as a 0.4 s tone inside a second of silence (word from 0.3 to 0.7 s)."""
    def word(label):
        x = np.zeros(16000, np.float32)
        x[4800:11200] = 0.3 * np.sin(2 * np.pi * (300 + 50 * label) * np.arange(6400) / 16000)
        return Clip(x, f"cmd{label}", label)

    rng = np.random.default_rng(0)
    noise = [0.1 * rng.standard_normal(40000).astype(np.float32)]
    speech = [Clip((0.1 * rng.standard_normal(40000)).astype(np.float32), "speech0")]
    return StreamSources([word(k) for k in range(10)], [], speech, [], noise)


def test_word_span_finds_the_loud_part():
    x = np.zeros(16000)
    x[4800:11200] = 0.5
    assert word_span(x) == (4800, 11200)
    assert word_span(np.ones(100)) == (0, 100)


def test_targets_line_up_with_the_placed_words():
    cfg = StreamConfig(room_prob=0.0, noise_prob=0.0, kinds={"command": 1.0, "speech": 1.0})
    stream = synthesise(tone_sources(), cfg, np.random.default_rng(3), 8.0)
    commands = [p for p in stream.placed if p.kind == "command"]
    assert commands and len(stream.words) == len(commands)
    for w, p in zip(stream.words, commands):    # the tone lies 0.3..0.7 s into its clip
        assert abs(w.start - (p.start / 16000 + 0.3)) < 0.011 and abs(w.end - (p.start / 16000 + 0.7)) < 0.011
        assert w.label == int(p.path[3:])
    for spf in (0.01, 0.01 * 44000 / 40000):    # as heard, and played 10% fast
        labels, spans = frame_targets(stream.words, int(8.0 / spf), spf, cfg)
        centre = (np.arange(len(labels)) + 0.5) * spf
        for i, w in enumerate(stream.words):
            span = spans == i
            assert np.all(labels[span] == w.label)
            assert np.allclose([centre[span].min(), centre[span].max()], [w.end - 0.1, w.end + 0.3], atol=spf)
            early = (centre >= w.start) & (centre < w.end - 0.1)
            assert np.all(labels[early] == IGNORE) and early.sum() >= 0.2 / spf
        outside = ~np.isin(labels, [IGNORE]) & (spans < 0)
        assert np.all(labels[outside] == STREAM_LABELS.index(NOTHING))


def test_a_span_in_a_batch_at_a_drawn_rate_and_speed():
    batches = StreamBatches(tone_sources(), StreamConfig(room_prob=0.0), AUGMENT, 0.01, seed=5)
    for i in range(4):
        b = batches.batch(i, 2)
        assert 8000 <= b.f_in <= 48000 and b.f_in % 100 == 0 and b.declared % 100 == 0
        seconds = len(b.streams[0].wave) / 16000
        assert abs(b.x.shape[-1] - seconds * b.f_in) <= 1
        assert b.labels.shape == b.spans.shape == (2, int(b.x.shape[-1] / (0.01 * b.declared)))
        spf = 0.01 * b.declared / b.f_in
        words = [w for s in b.streams for w in s.words]
        assert len(np.unique(b.spans[b.spans >= 0])) == len(words)
        for n, w in enumerate(words):           # numbered across the batch, in the stream's time
            frames = (b.spans == n).nonzero()[:, 1].numpy()
            assert abs((frames.min() + 0.5) * spf - (w.end - 0.1)) <= spf


def test_batches_are_the_same_whenever_made():
    a = StreamBatches(tone_sources(), StreamConfig(), AUGMENT, 0.01, seed=5)
    b = StreamBatches(tone_sources(), StreamConfig(), AUGMENT, 0.01, seed=5)
    x, y = b.batch(7, 2), a.batch(7, 2)
    assert x.f_in == y.f_in and np.array_equal(x.x.numpy(), y.x.numpy()) and np.array_equal(x.labels, y.labels)
    assert not np.array_equal(a.batch(8, 2).streams[0].wave[:1000], x.streams[0].wave[:1000])


def test_no_validation_speaker_or_carved_negative_reaches_training(tmp_path, speech_commands, negatives):
    folder, carve = negatives
    recipe = Recipe.load(TINY_STREAM, [f'data.clips="{speech_commands}"', f'stream.negatives="{folder}"',
                                       f'stream.carve="{carve}"', f'run.runs="{tmp_path / "runs"}"'])
    train, val, _, counts = load_stream_sources(recipe)
    _, va_items = speaker_split(recipe.data_dir, recipe.data)
    held = {it.path for it in va_items} | {os.path.join(folder, line.strip()) for line in open(carve)
                                           if line.strip() and not line.startswith("#")}
    assert train.paths() and val.paths() and counts["negatives_val"] == 2 + 3
    for path in train.paths():
        assert path not in held and not path.startswith(os.path.join(folder, "speech/train/n0/")), path
    assert any(p.startswith(os.path.join(folder, "speech/train/n0/")) for p in val.paths())
    batches = StreamBatches(train, recipe.stream, recipe.augment, 0.01, seed=1)
    placed = {p.path for i in range(6) for s in batches.batch(i, 2).streams for p in s.placed}
    assert placed and placed <= train.paths()


def test_settings_that_cannot_make_streams_are_refused():
    with pytest.raises(ValueError, match="span_after"):
        StreamConfig(pause_min=0.1)
    with pytest.raises(ValueError, match="kinds"):
        StreamConfig(kinds={"music": 1.0})


def test_a_stream_word_rule():
    labels, _ = frame_targets([Word(2, 1.0, 1.5)], 300, 0.01, StreamConfig())
    assert labels[99] == STREAM_LABELS.index(NOTHING) and labels[100] == IGNORE and labels[140] == 2
    assert labels[179] == 2 and labels[180] == STREAM_LABELS.index(NOTHING)
