"""The streaming head (`head.pooling: "frame"`): logits at every frame, causal (a frame's logits
do not depend on later samples), exported with its labels and read back; the clip head keeps
its metadata."""

import numpy as np
import pytest
import torch

from s4train.export import export_model, load_model, read_metadata
from s4train.fixtures import test_signal as signal_at
from test_stages import tiny_stages

LABELS = ["a", "b", "_nothing_"]


def test_a_frame_head_gives_logits_every_frame_equal_in_both_modes():
    m = tiny_stages(labels=LABELS, head_pooling="frame", clip_seconds=0.2)
    x = torch.from_numpy(signal_at(np.arange(3200) / 16000))[None]
    with torch.no_grad():
        conv, feats = m(x, return_features=True)
        rec = m(x, recurrent=True)
        clip = m.decoder(feats["final_norm"].mean(1))
    assert conv.shape == (1, 20, 3) and (conv - rec).abs().max() < 1e-10
    assert (conv.mean(1) - clip).abs().max() < 1e-12      # the clip head is the mean of these
    with torch.no_grad():                                 # causal: later samples change nothing before
        changed = x.clone()
        changed[:, 1600:] = 0
        assert (m(changed)[:, :10] - conv[:, :10]).abs().max() < 1e-12


def test_frame_head_export_round_trip(tmp_path):
    m = tiny_stages(labels=LABELS, head_pooling="frame")
    path = str(tmp_path / "frame.safetensors")
    export_model(m, path)
    meta = read_metadata(path)
    assert meta["head"]["pooling"] == "frame" and meta["labels"] == LABELS and meta["head"]["window_frames"] == 1
    m2, _ = load_model(path)
    assert m2.cfg.head_pooling == "frame"
    x = torch.randn(2, 1600, dtype=torch.float64) * 0.1
    with torch.no_grad():
        assert (m(x) - m2(x)).abs().max() < 1e-4
    clip = str(tmp_path / "clip.safetensors")
    export_model(tiny_stages(), clip)
    assert read_metadata(clip)["head"]["pooling"] == "mean" and load_model(clip)[0].cfg.head_pooling == "mean"


def test_a_windowed_frame_head_is_the_mean_of_the_last_frames(tmp_path):
    each = tiny_stages(labels=LABELS, head_pooling="frame", clip_seconds=0.2)
    windowed = tiny_stages(labels=LABELS, head_pooling="frame", clip_seconds=0.2, head_window_frames=4)
    windowed.load_state_dict(each.state_dict())
    x = torch.from_numpy(signal_at(np.arange(3200) / 16000))[None]
    with torch.no_grad():
        z, w = each(x), windowed(x)
        assert (windowed(x, recurrent=True) - w).abs().max() < 1e-10
    expected = torch.stack([z[:, max(0, f - 3):f + 1].mean(1) for f in range(z.shape[1])], 1)
    assert (w - expected).abs().max() < 1e-12 and torch.equal(w[:, 0], z[:, 0])
    path = str(tmp_path / "windowed.safetensors")
    export_model(windowed, path)
    assert read_metadata(path)["head"]["window_frames"] == 4 and load_model(path)[0].cfg.head_window_frames == 4
    with pytest.raises(ValueError, match="1 for a clip head"):
        tiny_stages(head_window_frames=4)
    with pytest.raises(ValueError, match="1 to 1000"):
        tiny_stages(labels=LABELS, head_pooling="frame", head_window_frames=0)


def test_a_frame_head_without_a_no_command_label_is_not_written(tmp_path):
    with pytest.raises(ValueError, match="no-command label"):
        export_model(tiny_stages(head_pooling="frame"), str(tmp_path / "m.safetensors"))
    with pytest.raises(ValueError, match="head pooling"):
        tiny_stages(head_pooling="max")
