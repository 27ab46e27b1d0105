"""train.py --arch stages: a tiny run from a fake cached teacher, resume, export, refusals."""

import argparse
import json
import os

import numpy as np
import pytest
import torch
from test_data_train import _make_dataset

import data as D
import stages as S
import train
from export import load_model, read_metadata
from model import SPEECH_COMMANDS_LABELS


def _fake_cache(root, out, seed, val_fraction, K=2):
    """What the pretrained-embedding teacher writes: K noisy copies per training clip and logits."""
    args = argparse.Namespace(data=root, seed=seed, val_fraction=val_fraction, max_train=0)
    items, _ = D.speaker_split(args)
    x, y = D.load_clips(items)
    rng = np.random.default_rng(0)
    copies = np.stack([x.numpy() + 0.01 * rng.standard_normal(x.shape) for _ in range(K)], axis=1)
    os.makedirs(out)
    np.save(os.path.join(out, "copies.npy"), np.round(np.clip(copies, -1, 1) * 32767).astype(np.int16))
    logits = rng.standard_normal((len(items), K, 12)).astype(np.float32)
    logits[np.arange(len(items)), :, y.numpy()] += 4.0
    np.save(os.path.join(out, "logits.npy"), logits)
    np.save(os.path.join(out, "labels.npy"), y.numpy())
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump({"seed": seed, "val_fraction": val_fraction, "items": [it.path for it in items],
                   "teacher": "fake"}, f)
    return len(items)


def test_stages_training_from_a_teacher_cache_and_resume(tmp_path, monkeypatch):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    cache = str(tmp_path / "cache")
    C = _fake_cache(root, cache, seed=1112, val_fraction=0.25)
    out = str(tmp_path / "run")
    common = ["--tiny", "--arch", "stages", "--data", root, "--out-dir", out, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000,8000,11025", "--teacher-cache", cache,
              "--kd-alpha", "0.5", "--kd-temperature", "2", "--multirate-prob", "1",
              "--speed-min", "0.9", "--speed-max", "1.1", "--freeze-front-end-epochs", "1",
              "--batch-size", "4", "--student-shift-ms", "50", "--student-reverb", "0.5"]
    seen, shifts, rooms = [], [], []
    shift, reverberate = D.shift, D.reverberate

    def recording_shift(x, most_ms, generator=None):
        shifts.append(most_ms)
        return shift(x, most_ms, generator)

    def recording_reverberate(x, prob, generator=None):
        rooms.append(prob)
        return reverberate(x, prob, generator)

    monkeypatch.setattr(D, "shift", recording_shift)
    monkeypatch.setattr(D, "reverberate", recording_reverberate)
    forward = S.StagesModel.forward

    def recording_forward(self, x, rate=1.0, *a, **kw):
        if self.training:
            f_hz = self.input_hz(rate)
            seen.append((x.shape[-1], round(f_hz, 6), self.front_end_trainable()))
        return forward(self, x, rate, *a, **kw)

    monkeypatch.setattr(S.StagesModel, "forward", recording_forward)
    train.main(common + ["--epochs", "1"])
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 1 and ck["arch"] == "stages"
    assert len(seen) == C // 4 and not any(t for _, _, t in seen)        # frozen in epoch 1
    assert shifts == [50] * len(seen) and rooms == [0.5] * len(seen)   # the student's own, every batch
    for n, f, _ in seen:      # training rates and declared rates on the 100 Hz grid
        assert n % 100 == 0 and 8000 <= n <= 48000 and f % 100 == 0, (n, f)
    seen.clear()
    train.main(common + ["--epochs", "2", "--resume", "auto"])
    assert seen and all(t for _, _, t in seen)                            # trained in epoch 2
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 2 and len(ck["history"]) == 2
    assert set(ck["history"][-1]["val"]) == {"16000", "8000", "11025"}
    path = os.path.join(out, "model.safetensors")
    meta = read_metadata(path)
    assert meta["format"] == 2 and meta["labels"] == SPEECH_COMMANDS_LABELS
    assert meta["stages"][0]["bank"] and meta["stages"][1]["d_model"] == 8
    assert meta["trained_on"]["teacher_cache"]["copies"] == 2 and meta["trained_on"]["arch"] == "stages"
    assert meta["trained_on"]["student_shift_ms"] == 50 and meta["trained_on"]["student_reverb"] == 0.5
    assert os.path.exists(os.path.join(out, "best.safetensors"))
    m, _ = load_model(path)
    assert isinstance(m, S.StagesModel)
    with torch.no_grad():
        assert m(torch.zeros(1, 44100, dtype=torch.float64), rate=16000 / 44100).shape == (1, 12)
    # a checkpoint saved by other flags, or from another teacher's logits, is not resumed
    with pytest.raises(SystemExit, match="other flags .kd_alpha: 0.5 there, 0.9 now"):
        train.main(common + ["--epochs", "3", "--resume", "auto", "--kd-alpha", "0.9"])
    with open(os.path.join(cache, "meta.json")) as f:
        meta_c = json.load(f)
    with open(os.path.join(cache, "meta.json"), "w") as f:
        json.dump({**meta_c, "teacher": "a retrained head"}, f)
    with pytest.raises(SystemExit, match="other data or teacher .teacher_cache"):
        train.main(common + ["--epochs", "3", "--resume", "auto"])
    assert torch.load(os.path.join(out, "last.pt"), weights_only=False)["epoch"] == 2
    # a cache made for other validation speakers is refused
    other = str(tmp_path / "other")
    _fake_cache(root, other, seed=5, val_fraction=0.25)
    with pytest.raises(SystemExit, match="validation speakers"):
        train.main(common + ["--teacher-cache", other, "--out-dir", str(tmp_path / "x")])
    # and so is one holding a validation clip
    with open(os.path.join(cache, "meta.json")) as f:
        meta_c = json.load(f)
    _, val = D.speaker_split(argparse.Namespace(data=root, seed=1112, val_fraction=0.25, max_train=0))
    meta_c["items"][0] = val[0].path
    with open(os.path.join(cache, "meta.json"), "w") as f:
        json.dump(meta_c, f)
    with pytest.raises(SystemExit, match="validation clips"):
        train.main(common + ["--out-dir", str(tmp_path / "y")])


def test_stages_training_without_a_teacher_and_init_from(tmp_path):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    common = ["--tiny", "--arch", "stages", "--data", root, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000"]
    first = str(tmp_path / "first")
    train.main(common + ["--out-dir", first])
    second = str(tmp_path / "second")
    train.main(common + ["--out-dir", second, "--init-from", os.path.join(first, "model.safetensors"),
                         "--lr", "0", "--ssm-lr", "0"])
    want = load_model(os.path.join(first, "model.safetensors"), torch.float32)[0].state_dict()
    ck = torch.load(os.path.join(second, "last.pt"), weights_only=False)
    for name, value in want.items():
        if "running" in name or "num_batches" in name:
            continue      # the norms' statistics move in training even at lr 0
        assert torch.equal(ck["model"][name], value), name
    # --dropout applies to a further stage whether it starts from a model file or a checkpoint
    assert ck["model_config"]["dropout"] == 0.1
    third = str(tmp_path / "third")
    train.main(common + ["--out-dir", third, "--init-from", os.path.join(second, "last.pt"),
                         "--dropout", "0.3"])
    assert torch.load(os.path.join(third, "last.pt"), weights_only=False)["model_config"]["dropout"] == 0.3
    with pytest.raises(SystemExit):
        train.parse_args(["--arch", "stages", "--teacher-cache", "x", "--teacher", "y"])
