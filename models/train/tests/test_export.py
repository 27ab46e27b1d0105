"""Model file round trip and the committed Swift fixtures."""

import glob
import json
import os

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

from s4train.export import export_model, load_model, read_header, read_metadata, set_metadata
from s4train.fixtures import DEFAULT_OUT, reference
from test_model import tiny

KEYS = ["format", "labels", "sample_rate", "input_mean", "input_std", "clip_seconds", "d_model",
        "n_layers", "d_state", "kernel", "discretization", "norm", "norm_eps", "activation",
        "output", "pooling", "trained_on", "metrics"]


@pytest.mark.parametrize("kind", ["dplr", "diag"])
def test_export_round_trip(kind, tmp_path):
    m = tiny(kind)
    path = str(tmp_path / "m.safetensors")
    export_model(m, path, trained_on={"x": 1}, metrics={"acc": 0.5})
    hdr = read_header(path)
    meta = json.loads(hdr["__metadata__"]["s4"])
    assert list(hdr["__metadata__"]) == ["s4"]
    for k in KEYS:
        assert k in meta, k
    assert ("rank" in meta) == (kind == "dplr")
    assert meta["format"] == 1 and meta["labels"] == ["a", "b", "c"]
    assert meta["input_mean"] == 0.01 and meta["input_std"] == 0.2
    assert meta["activation"] == "gelu" and meta["pooling"] == "mean"
    assert meta["trained_on"] == {"x": 1} and meta["metrics"] == {"acc": 0.5}
    H, M, K, r = 4, 4, 3, 1
    O = 2 * H if kind == "dplr" else H
    want = {"encoder.weight": [H, 1], "encoder.bias": [H], "final_norm.weight": [H],
            "final_norm.bias": [H], "decoder.weight": [K, H], "decoder.bias": [K]}
    for i in range(2):
        p = f"layers.{i}"
        want.update({f"{p}.norm.weight": [H], f"{p}.norm.bias": [H], f"{p}.ssm.log_dt": [H],
                     f"{p}.ssm.d": [H], f"{p}.out.weight": [O, H], f"{p}.out.bias": [O]})
        for n in ("lambda", "b", "c"):
            want[f"{p}.ssm.{n}_re"] = want[f"{p}.ssm.{n}_im"] = [H, M]
        if kind == "dplr":
            want[f"{p}.ssm.p_re"] = want[f"{p}.ssm.p_im"] = [r, H, M]
        else:
            want[f"{p}.norm.running_mean"] = want[f"{p}.norm.running_var"] = [H]
    if kind != "dplr":
        want["final_norm.running_mean"] = want["final_norm.running_var"] = [H]
    got = {k: v["shape"] for k, v in hdr.items() if k != "__metadata__"}
    assert got == want
    assert all(v["dtype"] == "F32" for k, v in hdr.items() if k != "__metadata__")
    t = load_file(path)
    s = m.layers[1].ssm
    assert np.array_equal(t["layers.1.ssm.c_re"], s.c_re.detach().numpy().astype(np.float32))
    assert np.array_equal(t["layers.1.ssm.c_im"], s.c_im.detach().numpy().astype(np.float32))
    lam = s.Lam.detach().numpy()
    assert np.array_equal(t["layers.1.ssm.lambda_re"], lam.real.astype(np.float32))
    assert np.all(t["layers.1.ssm.lambda_re"] < 0)
    assert np.array_equal(t["layers.1.ssm.log_dt"], s.log_dt.detach().numpy().astype(np.float32))
    m2, meta2 = load_model(path)
    assert meta2 == meta
    x = torch.randn(2, m.window_length(), dtype=torch.float64)
    with torch.no_grad():
        assert (m(x) - m2(x)).abs().max() < 1e-4


FIXTURES = sorted(glob.glob(os.path.join(DEFAULT_OUT, "*.reference.safetensors")))


def test_set_metadata_keeps_the_tensors(tmp_path):
    """stream_eval.py --write: one key added to the s4 metadata, the tensors' bytes and the
    other keys unchanged, the data still 8-byte aligned, and the file still loads."""
    path = str(tmp_path / "m.safetensors")
    export_model(tiny("diag"), path, trained_on={"x": 1})
    before, tensors = read_metadata(path), load_file(path)

    def split(path):
        """(header length, the tensors' bytes)"""
        with open(path, "rb") as f:
            raw = f.read()
        n = int.from_bytes(raw[:8], "little")
        return n, raw[8 + n:]

    data_before = split(path)[1]
    set_metadata(path, detection_threshold=0.83)
    assert read_metadata(path) == {**before, "detection_threshold": 0.83}
    n, data_after = split(path)
    assert n % 8 == 0 and data_after == data_before
    assert all(np.array_equal(load_file(path)[k], v) for k, v in tensors.items())
    load_model(path)
    set_metadata(path, detection_threshold=0.9)  # written again: replaced, not added
    assert read_metadata(path)["detection_threshold"] == 0.9
    assert not os.path.exists(path + ".tmp")


@pytest.mark.skipif(not FIXTURES, reason="fixtures not generated")
@pytest.mark.parametrize("ref_path", FIXTURES, ids=os.path.basename)
def test_committed_fixtures_reproduce(ref_path):
    model_path = ref_path.replace(".reference.safetensors", ".safetensors")
    m, meta = load_model(model_path)
    want = load_file(ref_path)
    got = reference(m)
    assert set(got) == set(want)
    for k in want:
        assert want[k].dtype == np.float64
        assert np.abs(got[k] - want[k]).max() < 1e-9, k
    total = sum(os.path.getsize(p) for p in glob.glob(os.path.join(DEFAULT_OUT, "*")))
    assert total < 3.6e6
