"""frame_cache.py and train.py --frozen-frames: stored log frames equal the front end's, are
reused or recomputed as they should be, and a tiny run trains the frame stages on them alone."""

import os

import numpy as np
import pytest
import torch
from test_data_train import _make_dataset
from test_train_stages import _fake_cache

import data as D
import frame_cache as FC
import stages as S
import train


def _setup(tmp_path):
    """A tiny dataset (its folder) and a fake teacher cache of it (its folder)."""
    root, cache = str(tmp_path / "sc"), str(tmp_path / "cache")
    _make_dataset(root)
    _fake_cache(root, cache, seed=1112, val_fraction=0.25)
    return root, cache


def test_stored_frames_are_the_front_ends_and_are_reused(tmp_path):
    teacher = train.TeacherCache(_setup(tmp_path)[1])
    model = train.build_model(train.model_config(train.parse_args(
        ["--tiny", "--arch", "stages"]), list(train.SPEECH_COMMANDS_LABELS), 0.0, 0.1), seed=0)
    model.set_front_end_trainable(False)
    pairs = [(8000, 8800.0), (16000, 16000.0), (22050, 20000.0)]
    folder = str(tmp_path / "frames")
    frames = FC.FrameCache(folder, model, teacher, pairs, batch_size=5, log=lambda m: None)
    idx, which = torch.tensor([0, 3, 7]), torch.randint(teacher.n_copies, (teacher.clips,))
    x, _, _ = teacher.batch(idx, which)
    model.eval()
    for pair, (f_in, declared) in enumerate(pairs):
        got = frames.batch(pair, idx, which)
        with torch.no_grad():
            want = model.log_frames(D.resample(x, D.SAMPLE_RATE, f_in), model.cfg.sample_rate / declared)
        assert got.shape == want.shape
        # float16 storage: half a unit in the 11th bit of log energies of magnitude < 32
        assert torch.allclose(got, want, atol=0.02, rtol=1e-3), (pair, (got - want).abs().max())
    # the frame count follows the declared rate: 1 s declared at 20 kHz of 22.05 kHz samples
    assert frames.batch(2, idx, which).shape[-1] > frames.batch(1, idx, which).shape[-1]

    # the same front end, copies and pairs: nothing is computed again
    before = {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder)}
    FC.FrameCache(folder, model, teacher, pairs, log=lambda m: None)
    assert {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder)} == before
    # a new teacher head on the same copies (other logits and provenance): still nothing
    teacher.meta["head_val_accuracy"], teacher.logits = 0.5, teacher.logits * 2
    FC.FrameCache(folder, model, teacher, pairs, log=lambda m: None)
    assert {f: os.path.getmtime(os.path.join(folder, f)) for f in os.listdir(folder)} == before
    # other copies (one sample moved): every pair again
    copies = np.array(teacher.copies)
    copies[5, 0, 100] += 1
    teacher.copies = copies
    FC.FrameCache(folder, model, teacher, pairs, log=lambda m: None)
    assert all(os.path.getmtime(os.path.join(folder, f)) != before[f]
               for f in before if f.startswith("frames-"))
    # another front end: every pair is computed again, and the new frames are that front end's
    with torch.no_grad():
        model.front_end.ssm.c_re.mul_(2.0)
    frames = FC.FrameCache(folder, model, teacher, pairs[:2], log=lambda m: None)
    assert sorted(f for f in os.listdir(folder) if f.startswith("frames-")) == ["frames-0.npy", "frames-1.npy"]
    with torch.no_grad():
        want = model.log_frames(x, 1.0)
    assert torch.allclose(frames.batch(1, idx, which), want, atol=0.02, rtol=1e-3)


def test_pairs_are_drawn_as_the_augmentation_draws():
    cfg = D.AugmentConfig(multirate_prob=0.5, min_rate=8000, max_rate=48000, speed_min=0.9,
                          speed_max=1.1, rate_grid=100)
    pairs = FC.draw_pairs(cfg, 200, seed=3)
    assert pairs == FC.draw_pairs(cfg, 200, seed=3)
    assert any(f == 16000 for f, _ in pairs) and any(f != 16000 for f, _ in pairs)
    for f_in, declared in pairs:
        assert 8000 <= f_in <= 48000 and f_in % 100 == 0 and declared % 100 == 0
        assert 0.89 <= declared / f_in <= 1.11


def test_a_run_on_frozen_frames_trains_only_the_frame_stages(tmp_path, monkeypatch):
    root, cache = _setup(tmp_path)
    out = str(tmp_path / "run")
    common = ["--tiny", "--arch", "stages", "--data", root, "--out-dir", out, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000,8000", "--teacher-cache", cache,
              "--multirate-prob", "1", "--speed-min", "0.9", "--speed-max", "1.1",
              "--batch-size", "4", "--frozen-frames", "3"]
    trained_on_raw = []
    forward = S.StagesModel.forward

    def recording_forward(self, x, *a, **kw):
        if self.training:
            trained_on_raw.append(x.shape)
        return forward(self, x, *a, **kw)

    monkeypatch.setattr(S.StagesModel, "forward", recording_forward)
    with pytest.raises(SystemExit, match="--frozen-frames needs"):
        train.main(common + ["--epochs", "2", "--freeze-front-end-epochs", "1"])
    train.main(common + ["--epochs", "1", "--freeze-front-end-epochs", "2"])
    train.main(common + ["--epochs", "2", "--freeze-front-end-epochs", "2", "--resume", "auto"])
    assert not trained_on_raw
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 2 and len(ck["history"]) == 2
    assert len(ck["trained_on"]["frozen_frames"]) == 3
    assert sorted(os.listdir(os.path.join(out, "frames"))) == \
        ["frames-0.npy", "frames-1.npy", "frames-2.npy", "meta.json"]
    # the bank is the one it started with; the frame stages moved
    fresh = train.build_model(train.config_from_dict("stages", ck["model_config"]), seed=1112)
    for name, value in fresh.state_dict().items():
        if name.startswith("stages.0."):
            assert torch.equal(ck["model"][name], value), name
    assert any(not torch.equal(ck["model"][n], v) for n, v in fresh.state_dict().items()
               if n.startswith("stages.1."))
