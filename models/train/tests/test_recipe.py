"""Recipes: the shipped one resolves to exactly what the Makefile's train-model flags did
before recipes existed (parity), overrides, refusals, the dry run."""

import dataclasses
import json
import os

import pytest

from s4train.__main__ import main
from s4train.models.stages import FrameStageConfig, StagesConfig
from s4train.recipe import Recipe

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.path.dirname(HERE)                 # models/train, where the Makefile ran the scripts
DEFAULT = os.path.join(PROJECT, "recipes", "default.toml")

with open(os.path.join(HERE, "data", "makefile_train_model.json")) as f:
    MAKEFILE = json.load(f)

# Flags of the old train.py that no recipe uses any more, at the values the Makefile left them:
# off, so retiring them changed nothing the shipped recipe did.
RETIRED_STUDENT = {"arch": "stages", "teacher": "", "kd_hint": 0.0, "unknown_weight": 1.0,
                   "student_shift_ms": 0.0, "student_reverb": 0.0, "average_from": 0, "add_layers": 0,
                   "compile": False, "draw_seed": None, "extra_train": [], "grad_clip": 0.0,
                   "no_augment": False, "stop_at": "", "time_schedule": False, "test_at_end": False,
                   "tiny": False, "first_init": None, "export_best": "", "resume": "auto"}
RETIRED_TEACHER = {"folds": 1, "heads": 1, "retrain_head": False, "score_test": False,
                   "extra_train": [], "max_train": 0}


def old_model_config(a: dict) -> StagesConfig:
    """The network the old train.py built from its flags (its model_config, stages branch)."""
    frame = FrameStageConfig(d_model=a["d_model"], n_layers=a["n_layers"], d_state=a["d_state"],
                             kernel=a["kernel"], discretization=a["disc"], rank=a["rank"],
                             init=a["init"], b_clip=a["b_clip"] if a["b_clip"] > 0 else None,
                             dt_min=a["dt_min"], dt_max=a["dt_max"], norm=a["norm"], output=a["output"])
    dplr = a["front_kernel"] == "dplr"
    return StagesConfig(front_width=a["front_width"], front_state=a["front_state"],
                        front_kernel=a["front_kernel"], front_discretization="bilinear" if dplr else "zoh",
                        front_init="legs" if dplr else "filterbank", front_f_max=a["front_f_max"],
                        frame_seconds=a["frame_seconds"], rectifier=a["rectifier"],
                        log_floor=a["log_floor"], frame_stages=[frame], dropout=a["dropout"])


def from_project(path: str) -> str:
    return os.path.normpath(os.path.join(PROJECT, path))


@pytest.mark.parametrize("index,old", [(0, "phase1"), (1, "phase2")])
def test_the_default_recipe_is_the_makefiles_train_model(index, old):
    recipe, a = Recipe.load(DEFAULT), MAKEFILE[old]
    phase = recipe.phases[index]
    assert {k: a[k] for k in RETIRED_STUDENT} == RETIRED_STUDENT
    run = recipe.run
    assert (run.threads, run.device, run.eval_batch_size, run.log_every) == \
        (a["threads"], a["device"], a["eval_batch_size"], a["log_every"])
    assert run.eval_rates == [int(r) for r in a["eval_rates"].split(",")]
    assert dataclasses.asdict(recipe.data) | {"clips": None} == \
        {"clips": None, "seed": a["seed"], "val_fraction": a["val_fraction"],
         "max_train": a["max_train"], "max_val": a["max_val"]}
    assert recipe.data_dir == os.path.normpath(os.path.join(PROJECT, "..", "..", "..", "shared", "data",
                                                            "speech-commands"))
    augment = dataclasses.asdict(recipe.augment)
    assert augment.pop("silence_noise_max") == 0.1          # a constant then, not a flag
    assert augment == {k: a[k] for k in augment}
    model = dataclasses.replace(recipe.model)
    assert model == old_model_config(a)
    # the phase as recorded (to_dict, learns: a clip phase leaves out the stream phases' settings,
    # at their defaults here, so checkpoints from before those settings existed still resume)
    assert (phase.kind, phase.init_model, phase.steps_per_epoch) == ("clip", "", 0)
    assert "stream" not in recipe.learns(phase)
    assert {k: v for k, v in recipe.to_dict()["phases"][index].items()
            if k not in ("name", "out_dir", "init_from", "export")} == \
        {k: a[k] for k in ("epochs", "lr", "ssm_lr", "weight_decay", "warmup_steps", "label_smoothing",
                           "batch_size", "kd_alpha", "kd_temperature", "freeze_front_end_epochs",
                           "frozen_frames")}
    assert recipe.in_runs(recipe.teacher.cache_dir) == from_project(a["teacher_cache"])
    assert recipe.in_runs(phase.out_dir) == from_project(a["out_dir"])
    if a["init_from"]:
        source = recipe.phase(phase.init_from)
        assert os.path.join(recipe.in_runs(source.out_dir), "last.pt") == from_project(a["init_from"])
    else:
        assert not phase.init_from
    if a["export"]:   # the clip classifier the Makefile shipped: now the stream phases' start
        assert recipe.export_path(phase) == os.path.join(recipe.in_runs(phase.out_dir), "model.safetensors")
        assert recipe.export_path(recipe.phases[-1]) == from_project(a["export"])
    assert [p.kind for p in recipe.phases] == ["clip", "clip", "stream", "stream"]


def test_the_default_recipes_stream_phases_start_from_the_clip_classifier():
    recipe = Recipe.load(DEFAULT)
    stream, hard = recipe.phases[2:]
    assert (stream.init_from, hard.init_from) == ("everything", "stream")
    assert stream.hardest_weight == 0 and hard.hardest_weight > 0      # words first, then silence
    assert all(p.freeze_front_end_epochs >= p.epochs for p in (stream, hard))
    assert recipe.export_path(hard) == os.path.normpath(os.path.join(PROJECT, "..", "default.safetensors"))
    assert recipe.to_dict()["stream"]["span_after"] == 0.3


def test_the_default_recipes_teacher_is_the_makefiles():
    recipe, a = Recipe.load(DEFAULT), MAKEFILE["teacher"]
    assert {k: a[k] for k in RETIRED_TEACHER} == RETIRED_TEACHER
    t = dataclasses.asdict(recipe.teacher)
    assert (t.pop("work_dir"), t.pop("cache_dir")) == ("oww", "oww-cache")   # runs/oww, runs/oww-cache
    assert t == {k: a[k] for k in t}
    assert (recipe.data.seed, recipe.data.val_fraction) == (a["seed"], a["val_fraction"])
    # The teacher's copies had AugmentConfig's defaults: the recipe's waveform settings are those.
    from s4train.data.augment import AugmentConfig
    from s4train.teacher.build import WAVEFORM_AUGMENT
    assert all(getattr(recipe.augment, k) == getattr(AugmentConfig(), k) for k in WAVEFORM_AUGMENT)


def test_overrides_reach_the_settings():
    recipe = Recipe.load(DEFAULT, ["phases.1.epochs=3", "model.frame_stages.0.d_model=128",
                                   "teacher.mixup=0", "run.eval_rates=[16000]", 'data.clips="/x"'])
    assert recipe.phases[1].epochs == 3 and recipe.model.frame_stages[0].d_model == 128
    assert recipe.teacher.mixup == 0 and recipe.run.eval_rates == [16000] and recipe.data_dir == "/x"
    assert recipe.phases[0].epochs == 80                    # the others as written


@pytest.mark.parametrize("override,message", [
    ("model.d_model=128", "unknown setting"),
    ("phases.0.kd_alpha=0", "kd_alpha"),
    ("phases.0.freeze_front_end_epochs=10", "frozen_frames needs"),
    ("phases.1.init_from=\"everything\"", "not an earlier phase"),
    ("augment.speed_min=1.2", "speed_min"),
    ("model.labels=[\"a\"]", "not a choice"),
    ("phases.5.epochs=1", "no item"),
])
def test_settings_that_cannot_describe_a_run_are_refused(override, message):
    with pytest.raises(SystemExit, match=message):
        Recipe.load(DEFAULT, [override])


def test_the_dry_run_prints_every_setting(capsys):
    main(["train", DEFAULT, "--dry-run", "--set", "phases.0.epochs=2"])
    out = capsys.readouterr().out
    printed = json.loads(out[:out.rindex("}") + 1])
    assert printed == Recipe.load(DEFAULT, ["phases.0.epochs=2"]).to_dict()
    assert printed["phases"][0]["epochs"] == 2 and "default.safetensors" in out
