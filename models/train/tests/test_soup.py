"""soup.py: the mean of the weights of one recipe drawn twice (train.py --draw-seed), refusals."""

import os

import pytest
import torch
from test_data_train import _make_dataset
from test_train_stages import _fake_cache

import soup
import train
from export import load_model, read_metadata


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny phase 1, then two phase-2 runs from it that differ only in --draw-seed."""
    tmp = tmp_path_factory.mktemp("soup")
    root = str(tmp / "sc")
    _make_dataset(root)
    cache = str(tmp / "cache")
    _fake_cache(root, cache, seed=1112, val_fraction=0.25)
    common = ["--tiny", "--arch", "stages", "--data", root, "--val-fraction", "0.25", "--device", "cpu",
              "--teacher-cache", cache, "--batch-size", "4", "--epochs", "1"]
    train.main(common + ["--out-dir", str(tmp / "p1")])
    members = []
    for draw in (5, 6):
        out = str(tmp / f"p2-{draw}")
        train.main(common + ["--out-dir", out, "--init-from", str(tmp / "p1" / "last.pt"),
                             "--draw-seed", str(draw)])
        members.append(os.path.join(out, "model.safetensors"))
    return {"root": root, "tmp": tmp, "members": members, "p1": str(tmp / "p1" / "model.safetensors")}


def test_the_soup_is_the_mean_of_its_members(runs):
    out = str(runs["tmp"] / "soup.safetensors")
    soup.main([out, *runs["members"], "--data", runs["root"], "--val-fraction", "0.25"])
    a, b = (load_model(p, dtype=torch.float64)[0].state_dict() for p in runs["members"])
    s = load_model(out, dtype=torch.float64)[0].state_dict()
    differ = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k])]
    assert differ, "two draws trained the same weights: --draw-seed changed nothing"
    for k in differ:   # averaged and exported in float32: a few roundings of float32
        torch.testing.assert_close(s[k], (a[k] + b[k]) / 2, rtol=1e-6, atol=1e-7)
    meta = read_metadata(out)
    assert [m["draw_seed"] for m in meta["trained_on"]["soup_of"]] == [5, 6]
    assert meta["trained_on"]["seed"] == 1112 and "draw_seed" not in meta["trained_on"]
    assert 0.0 <= meta["metrics"]["val_mean_acc"] <= 1.0


def test_members_that_started_apart_or_held_out_others_are_refused(runs):
    out = str(runs["tmp"] / "refused.safetensors")
    base = ["--data", runs["root"], "--val-fraction", "0.25"]
    with pytest.raises(SystemExit, match="did not start from the weights"):
        soup.main([out, runs["members"][0], runs["p1"], *base])
    with pytest.raises(SystemExit, match="held out the validation speakers"):
        soup.main([out, *runs["members"], "--data", runs["root"], "--val-fraction", "0.5"])
    with pytest.raises(SystemExit):
        soup.main([out, runs["members"][0], *base])
    assert not os.path.exists(out)
