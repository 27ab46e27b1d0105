"""The tiny recipe through `python -m s4train train`: the teacher (on stand-in embedding models),
a phase on stored frames, a phase from its best weights, the model file, and a rerun that
finds everything finished."""

import os

import torch

from s4train.__main__ import main
from s4train.export import load_model, read_metadata
from s4train.models.stages import StagesModel

TINY_RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes", "tiny.toml")


def test_the_tiny_recipe_runs_end_to_end(tmp_path, speech_commands, fake_embedding, capsys):
    sets = ["--set", f'data.clips="{speech_commands}"', "--set", f'run.runs="{tmp_path / "runs"}"']
    main(["train", TINY_RECIPE, *sets])
    path = str(tmp_path / "runs" / "everything" / "model.safetensors")
    meta = read_metadata(path)
    assert meta["trained_on"]["phase"] == "everything"
    assert meta["trained_on"]["init_from"]["phase"] == "frozen-bank"
    assert meta["trained_on"]["recipe"]["teacher"]["mixup"] == 0.4
    assert 0 <= meta["metrics"]["val_mean_acc"] <= 1 and set(meta["metrics"]["val"]) == {"16000", "8000", "11025"}
    model, _ = load_model(path)
    assert isinstance(model, StagesModel)
    with torch.no_grad():
        assert model(torch.zeros(1, 8000, dtype=torch.float64), step_scale=2.0).shape == (1, 12)
    before = os.path.getmtime(str(tmp_path / "runs" / "frozen" / "last.pt"))
    embedded = fake_embedding["mel"]
    capsys.readouterr()
    main(["train", TINY_RECIPE, *sets])                     # finished: nothing trained again
    assert fake_embedding["mel"] == embedded
    assert os.path.getmtime(str(tmp_path / "runs" / "frozen" / "last.pt")) == before
    assert "resumed from" in capsys.readouterr().out
