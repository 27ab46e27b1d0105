"""Data pipeline and an end-to-end tiny training run on a synthetic dataset."""

import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf
import torch

import data as D
import train
from export import load_model, read_metadata
from model import SPEECH_COMMANDS_LABELS


def test_resample_band_limited_sine():
    t16 = np.arange(16000) / 16000
    x = torch.from_numpy(np.sin(2 * np.pi * 440 * t16))[None]
    for f in (8000, 11025, 44100, 48000):
        y = D.resample(x, 16000, f)[0].numpy()
        assert len(y) == f
        t = np.arange(f) / f
        mid = slice(f // 10, -f // 10)
        assert np.abs(y[mid] - np.sin(2 * np.pi * 440 * t)[mid]).max() < 2e-3, f
    # content above the new Nyquist is removed
    z = torch.from_numpy(np.sin(2 * np.pi * 6000 * t16))[None]
    assert D.resample(z, 16000, 8000).abs()[0, 1000:-1000].max() < 2e-2


def test_split_is_speaker_disjoint():
    items = [D.Item(f"/x/{i}.flac", "yes", f"spk{i % 37}") for i in range(500)]
    items += [D.Item(f"/x/s{i}.flac", "_silence_", "") for i in range(50)]
    tr, va = D.split_by_speaker(items, 0.2, seed=1)
    assert len(tr) + len(va) == len(items) and va and tr
    assert not ({i.speaker for i in tr if i.speaker} & {i.speaker for i in va if i.speaker})
    assert any(i.label == "_silence_" for i in va)


def test_augmenter_shapes_and_rate():
    g = torch.Generator().manual_seed(0)
    noise = [torch.randn(40000) * 0.1]
    cfg = D.AugmentConfig(multirate_prob=1.0)
    aug = D.Augmenter(cfg, noise, 11, "cpu", g)
    x = torch.randn(4, 16000) * 0.1
    y = torch.tensor([0, 1, 11, 3])
    for _ in range(5):
        xa, f = aug(x, y)
        assert 8000 <= f <= 48000 and xa.shape == (4, int(round(16000 * f / 16000)))
        assert xa.abs().max() <= 1.0


def test_speed_perturbation_changes_only_the_declared_rate():
    x = torch.randn(4, 16000) * 0.1
    y = torch.tensor([0, 1, 11, 3])
    fixed = D.Augmenter(D.AugmentConfig(multirate_prob=0.0, speed_min=1.25, speed_max=1.25,
                                        noise_prob=0.0, gain_db=0.0, shift_ms=0.0), [], 11, "cpu")
    xa, f = fixed(x, y)
    assert torch.equal(xa, x) and f == pytest.approx(20000)
    g = torch.Generator().manual_seed(1)
    ranged = D.Augmenter(D.AugmentConfig(multirate_prob=0.0, speed_min=0.9, speed_max=1.1), [], 11, "cpu", g)
    rates = [ranged(x, y)[1] for _ in range(200)]
    assert 14400 <= min(rates) < 15000 and 17000 < max(rates) <= 17600
    off = D.Augmenter(D.AugmentConfig(multirate_prob=0.0), [], 11, "cpu", g)
    assert all(off(x, y)[1] == 16000 for _ in range(5))


def test_shift_moves_each_row_by_at_most_the_bound_with_zero_fill():
    x = torch.arange(1, 101, dtype=torch.float32).repeat(64, 1)
    t = torch.arange(100)

    def moved_by(k):
        return torch.roll(x[0], k) * ((t - k >= 0) & (t - k < 100))

    offsets = []
    for row in D.shift(x, 5 * 1000 / 16000, torch.Generator().manual_seed(3)):   # ±5 samples
        matches = [k for k in range(-5, 6) if torch.equal(row, moved_by(k))]
        assert len(matches) == 1
        offsets += matches
    assert len(set(offsets)) > 5                    # each row draws its own offset
    assert torch.equal(D.shift(x, 0), x)


def test_reverberation_is_a_causal_room_of_the_drawn_size_at_the_same_level():
    x = torch.zeros(8, 16000, dtype=torch.float64)
    x[:, 12000:12160] = torch.randn(8, 160, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    wet = D.reverberate(x, 1.0, torch.Generator().manual_seed(2))
    assert wet.shape == x.shape
    assert torch.allclose(wet.pow(2).mean(1), x.pow(2).mean(1), rtol=1e-9)
    assert wet[:, :12000].abs().max() < 1e-12       # nothing before the sound, nothing wrapped round
    # The room itself, heard through an impulse: its direct-to-reverberant ratio and decay time
    # fall in the drawn ranges (RT60 from the Schroeder curve's fall from -5 to -25 dB, times 3).
    impulse = torch.zeros(64, 16000, dtype=torch.float64)
    impulse[:, 100] = 1
    rooms = D.reverberate(impulse, 1.0, torch.Generator().manual_seed(4))
    h = rooms[:, 100:] / rooms[:, 100:101]
    drr = 10 * torch.log10(1 / h[:, 1:].pow(2).sum(1))
    assert (drr >= D.ROOM_DRR_DB[0] - 1e-6).all() and (drr <= D.ROOM_DRR_DB[1] + 1e-6).all()
    assert drr.max() - drr.min() > 6                # drawn per row
    energy = h[:, 1:].pow(2).flip(1).cumsum(1).flip(1)
    level = 10 * torch.log10(energy / energy[:, :1])
    fall = ((level > -25).sum(1) - (level > -5).sum(1)).double() / 16000
    rt60 = 3 * fall
    assert (rt60 > 0.8 * D.ROOM_RT60_S[0]).all() and (rt60 < 1.1 * D.ROOM_RT60_S[1]).all()
    assert torch.equal(D.reverberate(x, 0.0), x)
    some = D.reverberate(x, 0.5, torch.Generator().manual_seed(3))
    dry = [torch.equal(a, b) for a, b in zip(some, x)]
    assert any(dry) and not all(dry)                # each row draws its own room or none


def test_student_augmentations_need_a_teacher_cache_on_raw_audio():
    for flag in ("--student-shift-ms", "--student-reverb"):
        for bad in ([flag, "-1"], [flag, "0.5"], [flag, "0.5", "--teacher-cache", "x", "--frozen-frames", "4"]):
            with pytest.raises(SystemExit):
                train.parse_args(["--tiny", "--arch", "stages"] + bad)
    with pytest.raises(SystemExit):                 # the hint's windows would miss their frames
        train.parse_args(["--tiny", "--arch", "stages", "--teacher-cache", "x", "--student-shift-ms", "50",
                          "--kd-hint", "1"])
    ok = train.parse_args(["--tiny", "--student-shift-ms", "50", "--student-reverb", "0.5", "--teacher-cache", "x"])
    assert ok.student_shift_ms == 50 and ok.student_reverb == 0.5


def test_bad_speed_ranges_are_refused():
    for bad in (["--speed-min", "0"], ["--speed-min", "1.2", "--speed-max", "1.1"]):
        with pytest.raises(SystemExit):
            train.parse_args(["--tiny"] + bad)


def _make_dataset(root):
    rng = np.random.default_rng(0)
    for split in ("train",):
        rows = []
        for li, label in enumerate(SPEECH_COMMANDS_LABELS):
            d = os.path.join(root, split, label)
            os.makedirs(d)
            for k in range(4):
                t = np.arange(rng.integers(12000, 16001)) / 16000
                x = 0.3 * np.sin(2 * np.pi * (200 + 150 * li) * t) + 0.01 * rng.standard_normal(len(t))
                name = f"s{k}_nohash_{li}.flac"
                sf.write(os.path.join(d, name), x.astype(np.float32), 16000, subtype="PCM_16")
                rows.append((f"{label}/{name}", label, "" if label == "_silence_" else f"s{k}"))
        with open(os.path.join(root, split, "manifest.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label", "speaker"])
            w.writerows(rows)
    os.makedirs(os.path.join(root, "_background_noise_"))
    sf.write(os.path.join(root, "_background_noise_", "white.flac"),
             (0.1 * rng.standard_normal(40000)).astype(np.float32), 16000, subtype="PCM_16")


def test_tiny_training_run_and_resume(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    out = str(tmp_path / "run")
    common = ["--tiny", "--data", root, "--out-dir", out, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000,8000"]
    train.main(common + ["--epochs", "1"])
    assert os.path.exists(os.path.join(out, "last.pt"))
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 1
    train.main(common + ["--epochs", "2", "--resume", "auto"])
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 2 and len(ck["history"]) == 2
    path = os.path.join(out, "model.safetensors")
    meta = read_metadata(path)
    assert meta["labels"] == SPEECH_COMMANDS_LABELS and meta["sample_rate"] == 16000
    assert meta["metrics"]["epochs"] == 2 and "val" in meta["metrics"]
    m, _ = load_model(path)
    with torch.no_grad():
        assert m(torch.zeros(1, 8000, dtype=torch.float64), rate=2.0).shape == (1, 12)


def test_extra_training_clips_join_training_only(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    extra = str(tmp_path / "synthetic")
    os.makedirs(os.path.join(extra, "yes"))
    rows = []
    for k in range(5):
        sf.write(os.path.join(extra, "yes", f"{k}.flac"), np.zeros(16000, np.float32) + 0.1, 16000)
        rows.append((f"yes/{k}.flac", "yes", f"synth-{k}"))
    with open(os.path.join(extra, "manifest.csv"), "w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "speaker")] + rows)
    common = ["--tiny", "--data", root, "--val-fraction", "0.25", "--device", "cpu",
              "--eval-rates", "16000", "--max-train", "0", "--max-val", "0"]
    train.main(common + ["--out-dir", str(tmp_path / "plain")])
    train.main(common + ["--out-dir", str(tmp_path / "more"), "--extra-train", extra])
    plain = read_metadata(str(tmp_path / "plain" / "model.safetensors"))["trained_on"]
    more = read_metadata(str(tmp_path / "more" / "model.safetensors"))["trained_on"]
    assert more["train_clips"] == plain["train_clips"] + 5 and more["val_clips"] == plain["val_clips"]
    assert more["extra_train"] == {extra: 5} and plain["extra_train"] == {}
    # The input normalisation follows the real clips only.
    assert read_metadata(str(tmp_path / "more" / "model.safetensors"))["input_std"] == \
        read_metadata(str(tmp_path / "plain" / "model.safetensors"))["input_std"]


def test_second_stage_starts_from_the_best_weights(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    common = ["--tiny", "--data", root, "--val-fraction", "0.25", "--device", "cpu",
              "--eval-rates", "16000"]
    first = str(tmp_path / "first")
    train.main(common + ["--out-dir", first])
    source = torch.load(os.path.join(first, "last.pt"), weights_only=False)
    # One epoch leaves the best weights equal to the last: shift the best ones so that starting
    # from the last weights would be seen.
    source["best_model"] = {name: value + 0.01 if value.is_floating_point() else value
                            for name, value in source["best_model"].items()}
    torch.save(source, os.path.join(first, "shifted.pt"))
    # With both learning rates at zero the second stage leaves its starting weights as they are;
    # the checkpoint's model config wins over the (different) --d-model given here.
    second = str(tmp_path / "second")
    train.main(common + ["--out-dir", second, "--init-from", os.path.join(first, "shifted.pt"),
                         "--d-model", "12", "--lr", "0", "--ssm-lr", "0"])
    ck = torch.load(os.path.join(second, "last.pt"), weights_only=False)
    assert ck["model_config"] == source["model_config"]
    assert ck["model"].keys() == source["best_model"].keys()
    for name, value in source["best_model"].items():
        assert torch.equal(ck["model"][name], value), name
    # The model file tells the phase it started from.
    init = read_metadata(os.path.join(second, "model.safetensors"))["trained_on"]["init_from"]
    assert init["path"].endswith("shifted.pt") and init["val_mean_acc"] == source["best_val"]
    assert init["trained_on"] == source["trained_on"]
    # A checkpoint that held out other validation speakers is refused: training would see them.
    with pytest.raises(SystemExit, match="validation speakers"):
        train.main(common + ["--out-dir", str(tmp_path / "third"), "--init-from",
                             os.path.join(first, "shifted.pt"), "--seed", "5"])


def test_val_clips_links_exactly_the_validation_speakers(tmp_path):
    import val_clips
    root = str(tmp_path / "sc")
    _make_dataset(root)
    out = str(tmp_path / "val")
    val_clips.main([out, "--data", root, "--val-fraction", "0.25", "--seed", "3"])
    _, expected = D.split_by_speaker(D.read_manifest(os.path.join(root, "train")), 0.25, seed=3)
    linked = D.read_manifest(out)
    assert expected and [(i.label, i.speaker) for i in linked] == [(i.label, i.speaker) for i in expected]
    for item, want in zip(linked, expected):
        assert os.path.realpath(item.path) == os.path.realpath(want.path)
    with open(os.path.join(out, "split.json")) as f:   # for make threshold-sweep's check
        assert json.load(f) == {"seed": 3, "val_fraction": 0.25}


def test_a_further_stage_starts_from_a_model_file(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    common = ["--tiny", "--data", root, "--val-fraction", "0.25", "--device", "cpu",
              "--eval-rates", "16000", "--dropout", "0.1"]
    first = str(tmp_path / "first")
    train.main(common + ["--out-dir", first])
    model_file = os.path.join(first, "model.safetensors")
    # With both learning rates at zero the stage keeps the file's weights (float32, exactly) and
    # takes this run's dropout (a model file does not store one).
    second = str(tmp_path / "second")
    train.main(common + ["--out-dir", second, "--init-from", model_file, "--lr", "0", "--ssm-lr", "0"])
    ck = torch.load(os.path.join(second, "last.pt"), weights_only=False)
    assert ck["model_config"]["dropout"] == 0.1
    from export import load_model
    want = load_model(model_file, dtype=torch.float32)[0].state_dict()
    assert ck["model"].keys() == want.keys()
    for name, value in want.items():
        assert torch.equal(ck["model"][name], value), name
    # A file that held out other validation speakers is refused: training would see them.
    with pytest.raises(SystemExit, match="validation speakers"):
        train.main(common + ["--out-dir", str(tmp_path / "third"), "--init-from", model_file,
                             "--seed", "5"])


def test_weight_average_is_the_mean_of_the_epochs_weights():
    m = torch.nn.BatchNorm1d(3)
    avg = train.WeightAverage()
    for value, batches in [(1.0, 4), (2.0, 5), (6.0, 7)]:
        with torch.no_grad():
            m.weight.fill_(value)
        m.num_batches_tracked.fill_(batches)
        avg.update(m)
    assert avg.count == 3 and torch.allclose(avg.state["weight"], torch.full((3,), 3.0))
    assert avg.state["num_batches_tracked"].item() == 7       # an integer buffer: the latest


def test_averaged_weights_are_validated_and_survive_a_resume(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    out = str(tmp_path / "run")
    common = ["--tiny", "--data", root, "--out-dir", out, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000", "--average-from", "1"]
    train.main(common + ["--epochs", "2"])
    train.main(common + ["--epochs", "3", "--resume", "auto"])
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["average_count"] == 3
    assert [h["averaged_epochs"] for h in ck["history"]] == [1, 2, 3]
    assert all(h["val_average"]["16000"]["acc"] >= 0 for h in ck["history"])
    # one epoch's average is that epoch's weights: the same validation
    assert ck["history"][0]["val_average"] == ck["history"][0]["val"]
    assert train.best_epoch(ck["history"])["averaged"] in (0, 1, 2, 3)
