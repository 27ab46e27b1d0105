"""Clips, the speaker split, augmentation and resampling; the validation clips folder."""

import json
import os

import numpy as np
import pytest
import torch

from s4train.data.augment import AugmentConfig, Augmenter, shift
from s4train.data.clips import Item, read_manifest, split_by_speaker
from s4train.data.resample import resample
from s4train.val_clips import link_val_clips


def test_resample_band_limited_sine():
    t16 = np.arange(16000) / 16000
    x = torch.from_numpy(np.sin(2 * np.pi * 440 * t16))[None]
    for f in (8000, 11025, 44100, 48000):
        y = resample(x, 16000, f)[0].numpy()
        assert len(y) == f
        t = np.arange(f) / f
        mid = slice(f // 10, -f // 10)
        assert np.abs(y[mid] - np.sin(2 * np.pi * 440 * t)[mid]).max() < 2e-3, f
    # content above the new Nyquist is removed
    z = torch.from_numpy(np.sin(2 * np.pi * 6000 * t16))[None]
    assert resample(z, 16000, 8000).abs()[0, 1000:-1000].max() < 2e-2


def test_split_is_speaker_disjoint():
    items = [Item(f"/x/{i}.flac", "yes", f"spk{i % 37}") for i in range(500)]
    items += [Item(f"/x/s{i}.flac", "_silence_", "") for i in range(50)]
    tr, va = split_by_speaker(items, 0.2, seed=1)
    assert len(tr) + len(va) == len(items) and va and tr
    assert not ({i.speaker for i in tr if i.speaker} & {i.speaker for i in va if i.speaker})
    assert any(i.label == "_silence_" for i in va)


def test_augmenter_shapes_and_rate():
    g = torch.Generator().manual_seed(0)
    noise = [torch.randn(40000) * 0.1]
    cfg = AugmentConfig(multirate_prob=1.0)
    aug = Augmenter(cfg, noise, 11, "cpu", g)
    x = torch.randn(4, 16000) * 0.1
    y = torch.tensor([0, 1, 11, 3])
    for _ in range(5):
        xa, f = aug.to_rate(aug.waveform(x, y))
        assert 8000 <= f <= 48000 and xa.shape == (4, int(round(16000 * f / 16000)))
        assert xa.abs().max() <= 1.0


def test_speed_perturbation_changes_only_the_declared_rate():
    x = torch.randn(4, 16000) * 0.1
    y = torch.tensor([0, 1, 11, 3])
    fixed = Augmenter(AugmentConfig(multirate_prob=0.0, speed_min=1.25, speed_max=1.25,
                                        noise_prob=0.0, gain_db=0.0, shift_ms=0.0), [], 11, "cpu")
    xa, f = fixed.to_rate(fixed.waveform(x, y))
    assert torch.equal(xa, x) and f == pytest.approx(20000)
    g = torch.Generator().manual_seed(1)
    ranged = Augmenter(AugmentConfig(multirate_prob=0.0, speed_min=0.9, speed_max=1.1), [], 11, "cpu", g)
    rates = [ranged.to_rate(x)[1] for _ in range(200)]
    assert 14400 <= min(rates) < 15000 and 17000 < max(rates) <= 17600
    off = Augmenter(AugmentConfig(multirate_prob=0.0), [], 11, "cpu", g)
    assert all(off.to_rate(x)[1] == 16000 for _ in range(5))


def test_shift_moves_each_row_by_at_most_the_bound_with_zero_fill():
    x = torch.arange(1, 101, dtype=torch.float32).repeat(64, 1)
    t = torch.arange(100)

    def moved_by(k):
        return torch.roll(x[0], k) * ((t - k >= 0) & (t - k < 100))

    offsets = []
    for row in shift(x, 5 * 1000 / 16000, torch.Generator().manual_seed(3)):   # ±5 samples
        matches = [k for k in range(-5, 6) if torch.equal(row, moved_by(k))]
        assert len(matches) == 1
        offsets += matches
    assert len(set(offsets)) > 5                    # each row draws its own offset
    assert torch.equal(shift(x, 0), x)


def test_val_clips_links_exactly_the_validation_speakers(tmp_path, speech_commands, tiny_recipe):
    out = str(tmp_path / "val")
    link_val_clips(tiny_recipe("data.seed=3"), out)
    _, expected = split_by_speaker(read_manifest(os.path.join(speech_commands, "train")), 0.25, seed=3)
    linked = read_manifest(out)
    assert expected and [(i.label, i.speaker) for i in linked] == [(i.label, i.speaker) for i in expected]
    for item, want in zip(linked, expected):
        assert os.path.realpath(item.path) == os.path.realpath(want.path)
    with open(os.path.join(out, "split.json")) as f:   # for make threshold-sweep's check
        assert json.load(f) == {"seed": 3, "val_fraction": 0.25}
