"""hint.py and train.py --kd-hint: each teacher window is matched to the frame where the student
has heard it, the loss reaches zero on a perfect prediction, and a tiny run trains the map without
exporting it."""

import json
import os

import numpy as np
import pytest
import torch
from test_data_train import _make_dataset
from test_train_stages import _fake_cache

import train
from export import load_model
from hint import EmbeddingHint
from oww_teacher import window_times


def test_each_window_goes_to_the_first_frame_that_heard_it_all():
    hint = EmbeddingHint(4, [0.282, 0.922, 1.002, 1.082], np.zeros(3), np.ones(3), 0.01)
    windows, frames = hint.frame_of_window(1.0, 100)
    # 0.282 s is heard by frame 28 (0.28-0.29 s); 1.002 s lies in the frame after the last: kept
    assert windows.tolist() == [0, 1, 2] and frames.tolist() == [28, 92, 99]
    # played 1/0.9 times as fast: 0.9 s heard as 90 frames, every end 0.9 times as late
    windows, frames = hint.frame_of_window(0.9, 90)
    assert windows.tolist() == [0, 1, 2] and frames.tolist() == [25, 82, 89]
    windows, frames = hint.frame_of_window(1.1, 110)     # slower: the last window is not heard
    assert windows.tolist() == [0, 1, 2] and frames.tolist() == [31, 101, 109]


def test_the_loss_is_zero_only_when_the_right_frames_predict_the_embeddings():
    torch.manual_seed(0)
    ends = window_times(500.0)[:, 1]
    B, n_frames, H, E = 3, 100, 5, 4
    emb = torch.randn(B, len(ends), E) * 3 + 2
    mean, std = emb.reshape(-1, E).mean(0).numpy(), emb.reshape(-1, E).std(0).numpy()
    hint = EmbeddingHint(H, ends, mean, std, 0.01)
    with torch.no_grad():                  # proj: the first E features, unchanged
        hint.proj.weight.zero_()
        hint.proj.weight[:, :E] = torch.eye(E)
        hint.proj.bias.zero_()
    windows, frames = hint.frame_of_window(1.0, n_frames)
    assert len(windows) == 10              # the windows ending by 1.01 s
    feats = torch.randn(B, n_frames, H) * 5
    feats[:, frames, :E] = (emb[:, windows] - torch.as_tensor(mean)) / torch.as_tensor(std)
    assert hint(feats, emb, 1.0).item() == pytest.approx(0.0, abs=1e-10)
    shifted = torch.roll(feats, 1, dims=1)  # the same features one frame late
    assert hint(shifted, emb, 1.0).item() > 1.0
    feats.requires_grad_(True)
    hint(feats + 0.1, emb, 1.0).backward()
    assert feats.grad[:, frames].abs().sum() > 0 and feats.grad[:, 0].abs().sum() == 0


def test_statistics_come_from_the_embeddings():
    e = np.random.default_rng(0).normal(4.0, 2.0, (50, 3, 16, 6)).astype(np.float16)
    hint = EmbeddingHint.from_embeddings(8, window_times(500.0)[:, 1], e, 0.01)
    flat = e.astype(np.float32).reshape(-1, 6)
    assert np.allclose(hint.mean.numpy(), flat.mean(0), atol=1e-4)
    assert np.allclose(hint.std.numpy(), flat.std(0), atol=1e-4)


def _add_embeddings(cache, pad_ms=500.0, W=16, E=96):
    """What oww_teacher.py adds to a cache for hints: embeddings.npy and the teacher's padding."""
    copies = np.load(os.path.join(cache, "copies.npy"), mmap_mode="r")
    rng = np.random.default_rng(1)
    np.save(os.path.join(cache, "embeddings.npy"),
            rng.standard_normal(copies.shape[:2] + (W, E)).astype(np.float16))
    with open(os.path.join(cache, "meta.json")) as f:
        meta = json.load(f)
    meta["teacher"] = {"pad_ms": pad_ms}
    with open(os.path.join(cache, "meta.json"), "w") as f:
        json.dump(meta, f)


def test_a_run_with_hints_trains_the_map_resumes_and_exports_only_the_model(tmp_path):
    root, cache = str(tmp_path / "sc"), str(tmp_path / "cache")
    _make_dataset(root)
    _fake_cache(root, cache, seed=1112, val_fraction=0.25)
    out = str(tmp_path / "run")
    common = ["--tiny", "--arch", "stages", "--data", root, "--out-dir", out, "--val-fraction", "0.25",
              "--device", "cpu", "--eval-rates", "16000", "--teacher-cache", cache,
              "--multirate-prob", "1", "--speed-min", "0.9", "--speed-max", "1.1",
              "--batch-size", "4", "--kd-hint", "1.0"]
    with pytest.raises(SystemExit, match="embeddings"):
        train.main(common + ["--epochs", "1"])
    _add_embeddings(cache)
    train.main(common + ["--epochs", "1"])
    first = torch.load(os.path.join(out, "last.pt"), weights_only=False)["hint"]
    train.main(common + ["--epochs", "2", "--resume", "auto"])
    ck = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert ck["epoch"] == 2 and ck["trained_on"]["teacher_cache"]["hint_weight"] == 1.0
    assert not torch.equal(ck["hint"]["proj.weight"], first["proj.weight"])   # the map trained
    assert torch.equal(ck["hint"]["mean"], first["mean"])
    model, _ = load_model(os.path.join(out, "model.safetensors"))
    assert set(model.state_dict()) == set(ck["model"])        # nothing of the map is exported
    assert not any(k.startswith("proj") for k in ck["model"])
    # the stored-frames path takes hints too
    frozen = str(tmp_path / "frozen")
    train.main([a if a != out else frozen for a in common] +
               ["--epochs", "1", "--frozen-frames", "2", "--freeze-front-end-epochs", "1"])
    assert torch.load(os.path.join(frozen, "last.pt"), weights_only=False)["hint"] is not None
    # resuming a run without hints with them is refused; hints without a cache too
    train.main(common[:-2] + ["--out-dir", str(tmp_path / "plain"), "--epochs", "1"])
    with pytest.raises(SystemExit, match="other flags .kd_hint: 0.0 there, 1.0 now"):
        train.main([a if a != out else str(tmp_path / "plain") for a in common] +
                   ["--epochs", "2", "--resume", "auto"])
    with pytest.raises(SystemExit):
        train.parse_args(["--arch", "stages", "--kd-hint", "1"])
