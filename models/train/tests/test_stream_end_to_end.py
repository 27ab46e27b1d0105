"""tests/recipes/tiny_stream.toml through `python -m s4train train`: a stream phase from a clip
model file (its head replaced by a frame head), no teacher built, validation figures, the model
file, a hard-negative phase from the first one's weights, a rerun that finds both finished, and
the refusals of a stream phase's settings."""

import os

import pytest
import torch

from s4train.__main__ import main
from s4train.export import export_model, load_model, read_metadata
from s4train.models.stages import StagesConfig, StagesModel
from s4train.recipe import Recipe
from s4train.vocabulary import LABELS, STREAM_LABELS

TINY_STREAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "recipes", "tiny_stream.toml")


def clip_model_file(path: str, recipe: Recipe) -> StagesModel:
    """A tiny clip model as a clip phase would leave it (the recipe's network and split)."""
    cfg = StagesConfig.from_dict({**recipe.model.to_dict(), "labels": list(LABELS)})
    model = StagesModel(cfg, seed=3).eval()
    export_model(model, path, trained_on={"seed": recipe.data.seed, "val_fraction": recipe.data.val_fraction})
    return model


def test_the_tiny_stream_recipe_runs_end_to_end(tmp_path, speech_commands, negatives, capsys):
    folder, carve = negatives
    sets = [f'data.clips="{speech_commands}"', f'run.runs="{tmp_path / "runs"}"',
            f'stream.negatives="{folder}"', f'stream.carve="{carve}"',
            f'phases.0.init_model="{tmp_path / "clip.safetensors"}"']
    clip = clip_model_file(str(tmp_path / "clip.safetensors"), Recipe.load(TINY_STREAM, sets))
    argv = ["train", TINY_STREAM] + [a for s in sets for a in ("--set", s)]
    main(argv)
    out = capsys.readouterr().out
    assert "teacher" not in out and "nothing-acc" in out
    first, hard = out.split("stream phase hard")
    assert "hardest" not in first and "hardest" in hard        # only the second phase's loss has it
    path = str(tmp_path / "runs" / "stream" / "model.safetensors")
    meta = read_metadata(path)
    assert meta["head"]["pooling"] == "frame" and meta["labels"] == STREAM_LABELS
    assert meta["head"]["window_frames"] == 5                  # the recipe's [stream] window
    assert meta["trained_on"]["kind"] == "stream" and meta["trained_on"]["negatives_val"] == 5
    assert set(meta["metrics"]["val"]) == {"16000", "8000"}
    assert {"matched", "false_alarms_per_hour", "nothing_accuracy", "score"} <= set(meta["metrics"]["val"]["8000"])
    model, _ = load_model(path)
    with torch.no_grad():
        assert model(torch.zeros(1, 16000, dtype=torch.float64), step_scale=2.0).shape == (1, 200, 11)   # 2 s at 8 kHz
    ck = torch.load(str(tmp_path / "runs" / "stream" / "last.pt"), weights_only=False)
    assert ck["epoch"] == 2 and ck["step"] == 4
    start = ck["history"][0]
    assert start["steps"] == 2
    bank = "stages.0.layers.0.ssm.log_dt"            # frozen in epoch 1 of 2, trained in epoch 2
    assert not torch.equal(ck["model"][bank], clip.state_dict()[bank].float())
    before = os.path.getmtime(str(tmp_path / "runs" / "stream" / "last.pt"))
    main(argv)                                       # finished: nothing trained again
    assert os.path.getmtime(str(tmp_path / "runs" / "stream" / "last.pt")) == before
    assert capsys.readouterr().out.count("resumed from") == 2
    hard_meta = read_metadata(str(tmp_path / "runs" / "hard" / "model.safetensors"))
    assert hard_meta["trained_on"]["init_from"]["phase"] == "stream"
    assert hard_meta["trained_on"]["recipe"]["phases"][1]["hardest_weight"] == 1.0
    again = str(tmp_path / "again.safetensors")                # the export command on its checkpoint
    main(["export", str(tmp_path / "runs" / "stream" / "last.pt"), again])
    assert read_metadata(again)["head"]["pooling"] == "frame" and "val_stream_score" in read_metadata(again)["metrics"]


def test_the_frame_head_starts_from_the_clip_heads_rows(tmp_path, speech_commands):
    from s4train.stream_loop import frame_head
    recipe = Recipe.load(TINY_STREAM, [f'data.clips="{speech_commands}"'])
    clip = clip_model_file(str(tmp_path / "clip.safetensors"), recipe)
    model = frame_head(clip.cfg, clip.state_dict(), 0.1, 7)
    w, old = model.decoder.weight.detach(), clip.decoder.weight.detach()
    assert model.cfg.head_pooling == "frame" and model.cfg.labels == STREAM_LABELS
    assert model.cfg.head_window_frames == 7
    assert torch.equal(w[:10], old[:10]) and torch.allclose(w[10], old[10:12].mean(0))
    assert torch.equal(model.stages[1].encoder.weight, clip.stages[1].encoder.weight)


@pytest.mark.parametrize("sets,message", [
    (["phases.0.steps_per_epoch=0"], "steps_per_epoch > 0"),
    (["phases.0.kind=\"video\""], "is not \"clip\" or \"stream\""),
    (["phases.0.kind=\"clip\""], "a clip phase starts from a clip phase"),
    (["stream.pause_min=0.1"], "span_after"),
    (["phases.1.hardest_weight=-1.0"], "hardest_weight"),
    (["phases.1.hardest_frames=0"], "hardest_frames"),
])
def test_stream_phase_settings_refused(sets, message):
    with pytest.raises(SystemExit, match=message):
        Recipe.load(TINY_STREAM, sets)
