"""frame_cache.py: stored log frames equal the front end's and are reused or recomputed as they
should be (a phase on them: test_loop.py)."""

import os

import numpy as np
import torch

from s4train import frame_cache as FC
from s4train.data.augment import AugmentConfig
from s4train.data.clips import SAMPLE_RATE
from s4train.data.resample import resample
from s4train.models.stages import StagesConfig, StagesModel
from s4train.teacher.cache import TeacherCache


def test_stored_frames_are_the_front_ends_and_are_reused(tmp_path, tiny_recipe, fake_cache):
    recipe = tiny_recipe()
    fake_cache(recipe)
    teacher = TeacherCache(recipe.in_runs(recipe.teacher.cache_dir))
    model = StagesModel(StagesConfig.from_dict({**recipe.model.to_dict(), "input_std": 0.1}), seed=0)
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
            want = model.log_frames(resample(x, SAMPLE_RATE, f_in), model.cfg.sample_rate / declared)
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
    cfg = AugmentConfig(multirate_prob=0.5, min_rate=8000, max_rate=48000, speed_min=0.9,
                          speed_max=1.1, rate_grid=100)
    pairs = FC.draw_pairs(cfg, 200, seed=3)
    assert pairs == FC.draw_pairs(cfg, 200, seed=3)
    assert any(f == 16000 for f, _ in pairs) and any(f != 16000 for f, _ in pairs)
    for f_in, declared in pairs:
        assert 8000 <= f_in <= 48000 and f_in % 100 == 0 and declared % 100 == 0
        assert 0.89 <= declared / f_in <= 1.11
