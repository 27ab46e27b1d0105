"""A training phase on a fake teacher cache: rates drawn, the bank frozen then training,
resume, export, a later phase from the best weights, and the refusals."""

import json
import os

import pytest
import torch

from s4train.checkpoint import starting_weights
from s4train.data.clips import speaker_split
from s4train.export import load_model, read_metadata
from s4train.loop import train_phase
from s4train.models.stages import StagesConfig, StagesModel
from s4train.vocabulary import LABELS

ONE_PHASE_ON_RAW_AUDIO = ("phases.0.frozen_frames=0", "phases.0.freeze_front_end_epochs=1")


def last(recipe, phase=0):
    return torch.load(os.path.join(recipe.in_runs(recipe.phases[phase].out_dir), "last.pt"), weights_only=False)


def test_a_phase_draws_rates_resumes_and_exports(tiny_recipe, fake_cache, monkeypatch):
    recipe = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO)
    clips = fake_cache(recipe)
    seen = []
    forward = StagesModel.forward

    def recording_forward(self, x, step_scale=1.0, *a, **kw):
        if self.training:
            seen.append((x.shape[-1], round(self.input_hz(step_scale), 6), self.front_end_trainable()))
        return forward(self, x, step_scale, *a, **kw)

    monkeypatch.setattr(StagesModel, "forward", recording_forward)
    train_phase(recipe, recipe.phases[0])
    ck = last(recipe)
    assert ck["epoch"] == 1 and len(seen) == clips // 4 and not any(t for _, _, t in seen)  # frozen
    for n, f, _ in seen:      # training rates and declared rates on the 100 Hz grid
        assert n % 100 == 0 and 8000 <= n <= 48000 and f % 100 == 0, (n, f)
    seen.clear()
    longer = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO, "phases.0.epochs=2")
    train_phase(longer, longer.phases[0])
    assert seen and all(t for _, _, t in seen)                                   # trained in epoch 2
    ck = last(longer)
    assert ck["epoch"] == 2 and len(ck["history"]) == 2
    assert set(ck["history"][-1]["val"]) == {"16000", "8000", "11025"}
    path = longer.export_path(longer.phases[0])
    meta = read_metadata(path)
    assert meta["format"] == 2 and meta["labels"] == LABELS and meta["stages"][1]["d_model"] == 8
    trained_on = meta["trained_on"]
    assert trained_on["teacher_cache"]["copies"] == 2 and trained_on["recipe"] == longer.to_dict()
    assert (trained_on["seed"], trained_on["val_fraction"]) == (1112, 0.25) and "CC BY 4.0" in trained_on["licence"]
    assert os.path.exists(os.path.join(os.path.dirname(path), "best.safetensors"))
    m, _ = load_model(path)
    with torch.no_grad():
        assert m(torch.zeros(1, 44100, dtype=torch.float64), step_scale=16000 / 44100).shape == (1, 12)


def test_a_checkpoint_of_other_settings_or_teacher_is_not_resumed(tiny_recipe, fake_cache):
    recipe = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO)
    fake_cache(recipe)
    train_phase(recipe, recipe.phases[0])
    other = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO, "phases.0.epochs=2", "phases.0.kd_alpha=0.9")
    with pytest.raises(SystemExit, match="other settings .recipe.phases.kd_alpha: 0.7 there, 0.9 now"):
        train_phase(other, other.phases[0])
    fake_cache(recipe, teacher="a retrained head")
    longer = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO, "phases.0.epochs=2")
    with pytest.raises(SystemExit, match="teacher_cache.teacher: 'fake' there, 'a retrained head' now"):
        train_phase(longer, longer.phases[0])
    assert last(recipe)["epoch"] == 1


def test_a_cache_of_other_speakers_or_holding_a_validation_clip_is_refused(tiny_recipe, fake_cache):
    recipe = tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO)
    fake_cache(tiny_recipe(*ONE_PHASE_ON_RAW_AUDIO, "data.seed=5"))
    with pytest.raises(SystemExit, match="validation speakers"):
        train_phase(recipe, recipe.phases[0])
    fake_cache(recipe)
    meta_path = os.path.join(recipe.in_runs(recipe.teacher.cache_dir), "meta.json")
    with open(meta_path) as f:
        meta = json.load(f)
    meta["items"][0] = speaker_split(recipe.data_dir, recipe.data)[1][0].path
    with open(meta_path, "w") as f:
        json.dump(meta, f)
    with pytest.raises(SystemExit, match="validation clips"):
        train_phase(recipe, recipe.phases[0])


def test_frozen_frames_then_a_phase_from_the_best_weights(tiny_recipe, fake_cache, monkeypatch):
    recipe = tiny_recipe("phases.1.lr=0", "phases.1.ssm_lr=0")
    fake_cache(recipe)
    raw = []
    forward = StagesModel.forward

    def recording_forward(self, x, *a, **kw):
        if self.training:
            raw.append(x.shape)
        return forward(self, x, *a, **kw)

    monkeypatch.setattr(StagesModel, "forward", recording_forward)
    train_phase(recipe, recipe.phases[0])
    assert not raw                                          # the frame stages alone, on stored frames
    first = last(recipe, 0)
    assert len(first["trained_on"]["frozen_frames"]) == 2
    folder = os.path.join(recipe.in_runs(recipe.phases[0].out_dir), "frames")
    assert sorted(os.listdir(folder)) == ["frames-0.npy", "frames-1.npy", "meta.json"]
    fresh = StagesModel(StagesConfig.from_dict(first["model_config"]), seed=1112)
    for name, value in fresh.state_dict().items():          # the bank is the one it started with
        if name.startswith("stages.0."):
            assert torch.equal(first["model"][name], value), name
    train_phase(recipe, recipe.phases[1])                   # both learning rates 0: weights kept
    second = last(recipe, 1)
    assert raw
    for name, value in first["best_model"].items():
        if "running" not in name and "num_batches" not in name:   # norm statistics move at lr 0
            assert torch.equal(second["model"][name], value), name
    init = read_metadata(recipe.export_path(recipe.phases[1]))["trained_on"]["init_from"]
    assert init["phase"] == "frozen-bank" and init["val_mean_acc"] == first["best_val"]
    source = os.path.join(recipe.in_runs(recipe.phases[0].out_dir), "last.pt")
    with pytest.raises(SystemExit, match="validation speakers"):
        starting_weights(source, tiny_recipe("data.seed=5").data, 0.1)
