"""The log-mel CNN teacher and knowledge distillation (teacher.py, train.py --teacher)."""

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_data_train import _make_dataset

import teacher as T
import train
from export import read_metadata


def test_mel_filters_are_triangles_in_rising_order():
    fb = T.mel_filterbank(40, 512, 16000, 20.0, 8000.0).numpy()
    assert fb.shape == (40, 257) and fb.min() >= 0
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > peaks[0]
    assert np.all(fb.max(axis=1) > 0.5) and fb.max() <= 1.0


def test_log_mel_frames_and_a_tone_lands_in_its_band():
    lm = T.LogMel()
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    f = lm(tone)
    assert f.shape == (1, 40, 101)
    band = int(f[0, :, 20:80].mean(1).argmax())
    fb = T.mel_filterbank(40, 512, 16000, 20.0, 8000.0)
    assert abs(float(fb[band].argmax()) * 16000 / 512 - 1000) < 150


def test_spec_mask_covers_bands_and_can_be_off():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(8, 1, 40, 101)
    masked = T.SpecMask(max_t=10, max_f=5, count=2, generator=g)(f)
    changed = (masked != f).float().mean().item()
    assert 0 < changed < 0.5
    assert torch.equal(T.SpecMask(max_t=0, max_f=0, generator=g)(f), f)


def test_distillation_loss_parts():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(6, 12, generator=g), torch.randn(6, 12, generator=g)
    y = torch.randint(12, (6,), generator=g)
    ce = F.cross_entropy(s, y, label_smoothing=0.1)
    assert torch.allclose(T.distillation_loss(s, t, y, 0.0, 2.0, 0.1), ce)
    # the soft term vanishes when the student already matches the teacher
    assert torch.allclose(T.distillation_loss(s, s.clone(), y, 0.7, 2.0, 0.1), 0.3 * ce, atol=1e-6)
    # the soft term is KL(teacher ‖ student) at temperature T, scaled by T²
    pt = F.softmax(t / 3, -1)
    kl_ts = (pt * (pt.log() - F.log_softmax(s / 3, -1))).sum(-1).mean()
    ce0 = F.cross_entropy(s, y)
    assert torch.allclose(T.distillation_loss(s, t, y, 0.4, 3.0), 0.6 * ce0 + 0.4 * 9 * kl_ts, atol=1e-6)
    # and pulls the student towards the teacher: a gradient step lowers the KL
    s1 = s.clone().requires_grad_()
    T.distillation_loss(s1, t, y, 1.0, 3.0).backward()

    def kl(x):
        return F.kl_div(F.log_softmax(x / 3, -1), F.log_softmax(t / 3, -1), reduction="batchmean",
                        log_target=True)

    assert kl(s - 0.5 * s1.grad) < kl(s)


def test_class_weights_count_a_clip_several_times():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(5, 12, generator=g), torch.randn(5, 12, generator=g)
    y = torch.tensor([10, 0, 10, 3, 11])
    ones = torch.ones(12)
    for alpha in (0.0, 0.6):
        plain = T.distillation_loss(s, t, y, alpha, 2.0, 0.1)
        assert torch.allclose(T.distillation_loss(s, t, y, alpha, 2.0, 0.1, ones), plain)
    # `_unknown_` (10) counted three times = the batch with its two clips repeated thrice, scaled
    w = ones.clone()
    w[10] = 3.0
    rows = torch.tensor([0, 0, 0, 1, 2, 2, 2, 3, 4])
    want = T.distillation_loss(s[rows], t[rows], y[rows], 0.6, 2.0, 0.1) * len(rows) / len(y)
    assert torch.allclose(T.distillation_loss(s, t, y, 0.6, 2.0, 0.1, w), want, atol=1e-6)


def test_teacher_trains_and_a_student_distils_from_it(tmp_path, monkeypatch):
    root = str(tmp_path / "sc")
    _make_dataset(root)
    tdir = str(tmp_path / "teacher")
    T.main(["--data", root, "--out-dir", tdir, "--val-fraction", "0.25", "--epochs", "2",
            "--batch-size", "8", "--widths", "4,8"])
    path = os.path.join(tdir, "teacher.pt")
    net, ck = T.load_teacher(path, "cpu")
    assert ck["val_fraction"] == 0.25 and 0 <= ck["val_acc"] <= 1
    assert net(torch.zeros(2, 16000)).shape == (2, 12)
    common = ["--tiny", "--data", root, "--val-fraction", "0.25", "--device", "cpu",
              "--eval-rates", "16000", "--teacher", path]
    # every step's loss is the distillation loss, with the teacher's outputs on 16 kHz clips
    heard = []
    teacher_forward = T.LogMelCNN.forward

    def recording_forward(self, x, spec_mask=None):
        heard.append(x.shape[-1])
        return teacher_forward(self, x, spec_mask)

    calls = []

    def recording_loss(*args, **kwargs):
        calls.append((args[3], args[6] if len(args) > 6 else kwargs.get("class_weight")))
        return T.distillation_loss(*args, **kwargs)

    monkeypatch.setattr(T.LogMelCNN, "forward", recording_forward)
    monkeypatch.setattr(train, "distillation_loss", recording_loss)
    train.main(common + ["--out-dir", str(tmp_path / "student"), "--multirate-prob", "1"])
    assert calls and all(a == 0.7 and w is None for a, w in calls)
    assert set(heard) == {16000}        # while the student hears every batch at another rate
    meta = read_metadata(str(tmp_path / "student" / "model.safetensors"))
    assert meta["trained_on"]["teacher"]["alpha"] == 0.7
    # a teacher that held out other speakers has seen this run's validation clips
    with pytest.raises(SystemExit, match="validation speakers"):
        train.main(common + ["--out-dir", str(tmp_path / "other"), "--seed", "5"])
    student = str(tmp_path / "weighted")
    calls.clear()
    train.main(common + ["--out-dir", student, "--unknown-weight", "2"])
    want = torch.ones(12)
    want[10] = 2
    assert calls and all(torch.equal(w, want) for _, w in calls)
    assert read_metadata(os.path.join(student, "model.safetensors"))["trained_on"]["unknown_weight"] == 2
    for bad in (["--kd-alpha", "1.5"], ["--teacher", path, "--kd-alpha", "0"], ["--unknown-weight", "2"],
                ["--teacher", path, "--unknown-weight", "0"]):
        with pytest.raises(SystemExit):
            train.parse_args(["--tiny"] + bad)
