"""Synthetic speakers (synth.py): real espeak-ng and flite runs, so `make py-test` installs them."""

import csv
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

import synth


@pytest.fixture(autouse=True, scope="module")
def engines():
    missing = [p for p in ("espeak-ng", "flite") if shutil.which(p) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (make py-test installs them)")


def _voice(engine):
    return synth.Voice("espeak-ng", "en-us+m3", 50, 160) if engine == "espeak-ng" \
        else synth.Voice("flite", "slt", 180, 1.0)


@pytest.mark.parametrize("engine", ["espeak-ng", "flite"])
def test_a_voice_says_a_word_at_16_khz(engine):
    x = synth.trim(synth.speak(_voice(engine), "stop"))
    assert 0.2 < len(x) / 16000 < 1.0
    assert np.sqrt(np.mean(x ** 2)) > 0.01


def _pitch(x):
    """F0 (Hz) of the loudest 50 ms of x, by autocorrelation over 60-400 Hz."""
    frames = x[:len(x) // 800 * 800].reshape(-1, 800)
    f = frames[np.argmax((frames ** 2).sum(axis=1))]
    f = f - f.mean()
    ac = np.correlate(f, f, "full")[799:]
    lo, hi = 16000 // 400, 16000 // 60
    return 16000 / (lo + np.argmax(ac[lo:hi]))


def test_speaking_rate_changes_the_length():
    slow = synth.trim(synth.speak(synth.Voice("espeak-ng", "en-gb+f2", 50, 110), "seven"))
    fast = synth.trim(synth.speak(synth.Voice("espeak-ng", "en-gb+f2", 50, 220), "seven"))
    assert len(slow) > 1.3 * len(fast)
    long = synth.trim(synth.speak(synth.Voice("flite", "awb", 110, 1.3), "seven"))
    short = synth.trim(synth.speak(synth.Voice("flite", "awb", 110, 0.8), "seven"))
    assert len(long) > 1.3 * len(short)


@pytest.mark.parametrize("voice", ["espeak-ng"] + sorted(synth.FLITE_VOICES))
def test_the_pitch_setting_moves_the_pitch(voice):
    if voice == "espeak-ng":
        low, high = (synth.Voice("espeak-ng", "en-us+m3", p, 160) for p in (25, 75))
    else:
        low, high = (synth.Voice("flite", voice, p, 1.0) for p in synth.FLITE_VOICES[voice])
    f_low, f_high = (_pitch(synth.trim(synth.speak(v, "go"))) for v in (low, high))
    assert f_high > 1.2 * f_low, (f_low, f_high)


def test_trim_keeps_the_loud_part_to_a_frame():
    x = np.zeros(16000)
    x[4000:9000] = np.sin(np.arange(5000) * 0.3)
    y = synth.trim(x)
    assert 5000 <= len(y) <= 5000 + 2 * 160 and np.abs(y).max() == np.abs(x).max()


def test_place_puts_the_word_whole_inside_one_second():
    rng = np.random.default_rng(0)
    word = np.full(6000, 0.5)
    for _ in range(20):
        clip = synth.place(word, rng)
        loud = np.flatnonzero(clip)
        assert len(clip) == 16000 and len(loud) == 6000 and loud[-1] - loud[0] == 5999
        assert 0.1 <= clip.max() <= 0.9


def test_voices_are_seeded_and_varied():
    a = synth.make_voices(40, np.random.default_rng(3))
    assert a == synth.make_voices(40, np.random.default_rng(3))
    assert len({v.speaker for v in a}) == 40
    assert {v.engine for v in a} == {"espeak-ng", "flite"}


def test_synthesise_writes_a_split_folder_deterministically(tmp_path):
    kwargs = dict(speakers=2, unknown_per_speaker=1, seed=7, commands=["yes", "stop"],
                  unknown_words=["bed", "cat"])
    one, two = str(tmp_path / "one"), str(tmp_path / "two")
    assert synth.synthesise(one, **kwargs) == 6
    synth.synthesise(two, **kwargs)
    with open(os.path.join(one, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["label"] for r in rows] == ["yes", "stop", "_unknown_"] * 2
    assert len({r["speaker"] for r in rows}) == 2 and all(r["speaker"].startswith("synth-") for r in rows)
    for r in rows:
        x, rate = sf.read(os.path.join(one, r["path"]))
        assert rate == 16000 and len(x) == 16000 and np.abs(x).max() > 0.09
        assert np.array_equal(x, sf.read(os.path.join(two, r["path"]))[0]), r["path"]
