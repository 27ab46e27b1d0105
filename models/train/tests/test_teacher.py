"""The speech-embedding teacher: framing, the file check and fetch, the head, the cache, and
the whole build on stand-in models."""

import glob
import hashlib
import json
import os
import zipfile

import numpy as np
import pytest
import torch

from s4train.data.clips import read_manifest, split_by_speaker
from s4train.teacher import cache as C
from s4train.teacher import embedding as E
from s4train.teacher import head as H
from s4train.teacher.build import build_teacher
from s4train.vocabulary import LABELS

REAL_WORK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs", "oww")
REAL_MODELS = os.path.join(REAL_WORK, "models")


# ---------------------------------------------------------------------------
# Stand-ins for the two ONNX models
# ---------------------------------------------------------------------------

def index_mel(x):
    """[1, n] -> [1, 1, frames, 32] whose frame f holds 10 * f (so mel/10 + 2 = f + 2)."""
    assert x.ndim == 2 and x.dtype == np.float32
    T = E.mel_frames(x.shape[1])
    return np.broadcast_to((10.0 * np.arange(T, dtype=np.float32))[None, None, :, None],
                           (x.shape[0], 1, T, 32)).copy()


def first_frame_emb(w):
    """[N, 76, 32, 1] -> [N, 1, 1, 96] holding each window's first value."""
    assert w.shape[1:] == (76, 32, 1) and w.dtype == np.float32
    return np.repeat(w[:, 0, 0, 0][:, None], 96, 1).reshape(-1, 1, 1, 96)


# ---------------------------------------------------------------------------
# Framing
# ---------------------------------------------------------------------------

def test_mel_frames_and_embedding_windows():
    assert E.mel_frames(16000) == 97 and E.mel_frames(32000) == 197
    assert E.mel_frames(1600) == 7 and E.mel_frames(1631) == 7 and E.mel_frames(1632) == 8
    assert E.mel_frames(512) == 1 and E.mel_frames(671) == 1 and E.mel_frames(511) == 0
    assert E.n_windows(16000) == 3                     # a bare 1-s clip: (97 - 76) // 8 + 1
    assert E.n_windows(32000) == 16                    # 500 ms of zeros each side
    assert E.n_windows(48000) == 28
    assert list(E.window_starts(197)) == list(range(0, 121, 8))
    assert len(E.window_starts(75)) == 0 and list(E.window_starts(76)) == [0]
    assert list(E.window_starts(84)) == [0, 8] and list(E.window_starts(83)) == [0]


def test_window_times_cover_the_clip():
    t = E.window_times(500.0)
    assert t.shape == (16, 2)
    assert t[0, 0] == pytest.approx(-0.5) and t[0, 1] == pytest.approx(-0.5 + (75 * 160 + 512) / 16000)
    assert np.allclose(np.diff(t[:, 0]), 0.08)
    assert t[-1, 0] == pytest.approx(0.7) and t[-1, 1] > 1.0   # the last window holds the tail


def test_embedder_windows_start_every_eight_frames_and_transform_mel():
    e = E.SpeechEmbedding(index_mel, first_frame_emb, pad=8000)
    x = np.zeros((3, 16000), np.float32)
    out = e(x)
    assert out.shape == (3, 16, 96) and out.dtype == np.float32
    # window i starts at mel frame 8 i, whose transformed value is 10 * 8i / 10 + 2
    assert np.allclose(out[:, :, 0], (8 * np.arange(16) + 2)[None, :])
    spec = e.mel(np.zeros((2, 32000), np.float32))
    assert spec.shape == (2, 197, 32) and spec[0, 3, 0] == pytest.approx(3 + 2)


def test_mel_model_is_called_one_clip_at_a_time():
    shapes = []

    def mel(x):
        shapes.append(x.shape)
        return index_mel(x)

    E.SpeechEmbedding(mel, first_frame_emb, pad=4000)(np.zeros((5, 16000), np.float32))
    assert shapes == [(1, 24000)] * 5


def test_a_mel_model_with_other_framing_is_refused():
    bad = E.SpeechEmbedding(lambda x: np.zeros((1, 1, 10, 32), np.float32), first_frame_emb)
    with pytest.raises(RuntimeError, match="frames"):
        bad(np.zeros((1, 16000), np.float32))


@pytest.mark.skipif(not all(os.path.exists(os.path.join(REAL_MODELS, n)) for n in E.MODEL_FILES),
                    reason="the openwakeword 0.5.1 ONNX files are not in runs/oww/models")
def test_real_models_framing():
    paths = E.fetch_models(REAL_WORK)     # no download: both files are there and checked
    e = E.SpeechEmbedding.from_onnx(paths, threads=1, pad=8000)
    rng = np.random.default_rng(0)
    for n in (512, 1280, 1631, 1632, 16000, 32000):
        spec = e.mel(rng.uniform(-3000, 3000, (1, n)).astype(np.float32))
        assert spec.shape == (1, E.mel_frames(n), 32)
    x = (rng.standard_normal((2, 16000)) * 2000).astype(np.float32)
    x[1] *= 0.1
    out = e(x)
    assert out.shape == (2, 16, 96) and np.isfinite(out).all()
    # each clip's embeddings are its own (the mel model's dB floor is per input tensor)
    assert np.array_equal(out[1:], e(x[1:]))


# ---------------------------------------------------------------------------
# The file check and the fetch
# ---------------------------------------------------------------------------

def _fake_files():
    return {"melspectrogram.onnx": b"mel" * 100, "embedding_model.onnx": b"emb" * 200}


def _expected(files):
    return {n: (len(b), hashlib.sha256(b).hexdigest()) for n, b in files.items()}


def _wheel_writer(files, calls):
    def download(wheel_dir):
        calls.append(wheel_dir)
        os.makedirs(wheel_dir, exist_ok=True)
        with zipfile.ZipFile(os.path.join(wheel_dir, "openwakeword-0.5.1-py3-none-any.whl"), "w") as z:
            for n, b in files.items():
                z.writestr(E.MEMBER_DIR + n, b)
            z.writestr("openwakeword/__init__.py", "")
    return download


def test_a_wrong_file_is_refused_naming_it(tmp_path):
    p = tmp_path / "melspectrogram.onnx"
    p.write_bytes(b"not the model")
    with pytest.raises(E.TeacherFileError) as e:
        E.check_file(str(p), "melspectrogram.onnx")
    msg = str(e.value)
    assert "melspectrogram.onnx" in msg and E.MODEL_FILES["melspectrogram.onnx"][1] in msg
    assert hashlib.sha256(b"not the model").hexdigest() in msg and "Refusing" in msg


def test_fetch_refuses_a_wheel_with_other_files(tmp_path):
    calls = []
    with pytest.raises(E.TeacherFileError, match="melspectrogram.onnx|embedding_model.onnx"):
        E.fetch_models(str(tmp_path), download=_wheel_writer(_fake_files(), calls))
    assert len(calls) == 1
    assert not [f for f in os.listdir(tmp_path / "models") if f.endswith(".onnx")]


def test_fetch_extracts_checks_and_then_reuses(tmp_path):
    files, calls = _fake_files(), []
    exp = _expected(files)
    paths = E.fetch_models(str(tmp_path), download=_wheel_writer(files, calls), expected=exp)
    assert len(calls) == 1
    for n, b in files.items():
        assert open(paths[n], "rb").read() == b
    E.fetch_models(str(tmp_path), download=_wheel_writer(files, calls), expected=exp)
    assert len(calls) == 1                    # neither downloaded nor extracted again
    # an extracted file changed afterwards is refused, not silently replaced
    with open(paths["embedding_model.onnx"], "ab") as f:
        f.write(b"x")
    with pytest.raises(E.TeacherFileError, match="embedding_model.onnx"):
        E.fetch_models(str(tmp_path), download=_wheel_writer(files, calls), expected=exp)


# ---------------------------------------------------------------------------
# The head
# ---------------------------------------------------------------------------

def _fake_embeddings(n_per_class, rng, W=16, dim=96):
    """Class c: a fixed pattern at a random time step over noise."""
    K = len(LABELS)
    patterns = rng.standard_normal((K, dim)).astype(np.float32) * 2
    e = rng.standard_normal((K * n_per_class, W, dim)).astype(np.float32) * 0.5
    y = np.repeat(np.arange(K), n_per_class)
    for i, c in enumerate(y):
        t = rng.integers(0, W - 1)
        e[i, t:t + 2] += patterns[c]
    return e, y, patterns


def _tiny_head_task():
    """12 training and 4 validation sets of embeddings per class; validation uses the training
    set's class patterns, at a fixed time step."""
    e, y, patterns = _fake_embeddings(12, np.random.default_rng(0))
    yv = np.repeat(np.arange(len(LABELS)), 4)
    ev = np.random.default_rng(2).standard_normal((len(yv),) + e.shape[1:]).astype(np.float32) * 0.5
    for i, c in enumerate(yv):
        ev[i, 5:7] += patterns[c]
    return e, y, ev, yv


def test_head_learns_a_tiny_embedding_set():
    e, y, ev, yv = _tiny_head_task()
    logs = []
    head, rec = H.train_head(e, y, ev, yv, epochs=15, batch_size=32, lr=3e-3, channels=32,
                             seed=0, log=logs.append)
    assert len(logs) == 15 and len(rec["history"]) == 15
    assert rec["val_acc"] >= 0.9 and rec["val_acc"] == max(h["val_acc"] for h in rec["history"])
    logits = H.predict(head, ev)
    assert logits.shape == (len(yv), 12)
    acc = H.accuracy(logits, yv)
    assert acc["twelve_class"] == pytest.approx(rec["val_acc"])
    assert acc["word_clips"] == 40 and acc["clips"] == 48
    assert not head.training


def test_a_mixup_head_learns_from_mixed_pairs():
    e, y, ev, yv = _tiny_head_task()
    kw = dict(epochs=15, batch_size=32, lr=3e-3, channels=32, seed=0, log=lambda m: None)
    plain, _ = H.train_head(e, y, ev, yv, **kw)
    mixed, rec = H.train_head(e, y, ev, yv, mixup=0.4, **kw)
    assert rec["mixup"] == 0.4 and rec["val_acc"] >= 0.9
    # the same seed and data, other batches: the mixing is what changed the weights
    assert not torch.equal(plain.out.weight, mixed.out.weight)


def test_accuracy_ten_word_counts_only_the_words():
    logits = torch.zeros(4, 12)
    logits[0, 0] = logits[1, 10] = logits[2, 10] = logits[3, 11] = 1
    a = H.accuracy(logits, np.array([0, 1, 10, 10]))
    assert a["twelve_class"] == pytest.approx(0.5) and a["ten_word"] == pytest.approx(0.5)


# ---------------------------------------------------------------------------
# The whole command and the cache, on a tiny fake dataset
# ---------------------------------------------------------------------------

def test_embedding_resumes_from_finished_chunks(tmp_path):
    calls = []

    def mel(x):
        calls.append(1)
        return index_mel(x)

    e = E.SpeechEmbedding(mel, first_frame_emb, pad=8000)
    audio = np.zeros((10, 16000), np.int16)
    stage = str(tmp_path)
    os.makedirs(tmp_path / "emb-chunks")
    np.save(tmp_path / "emb-chunks" / "00000.npy", np.full((4, 16, 96), 7, np.float32))
    out = E.embed_chunked(e, audio, stage, "emb", chunk=4)
    assert out.shape == (10, 16, 96) and len(calls) == 6          # the first chunk was on disk
    assert (out[:4] == 7).all() and np.allclose(out[4:, :, 0], 8 * np.arange(16) + 2)
    assert not os.path.exists(tmp_path / "emb-chunks")
    assert np.array_equal(E.embed_chunked(e, audio, stage, "emb", chunk=4), out) and len(calls) == 6


def test_write_cache_refuses_disagreeing_arrays(tmp_path):
    meta = {"copies": 2, "items": ["a", "b", "c"]}
    ok = (np.zeros((3, 2, 16000), np.int16), np.zeros((3, 2, 12), np.float32), np.zeros(3, np.int64))
    C.write_cache(str(tmp_path / "ok"), *ok, meta)
    assert json.load(open(tmp_path / "ok" / "meta.json")) == meta
    with pytest.raises(ValueError):
        C.write_cache(str(tmp_path / "bad"), np.zeros((3, 2, 8000), np.int16), ok[1], ok[2], meta)
    with pytest.raises(ValueError):
        C.write_cache(str(tmp_path / "bad"), ok[0], ok[1], ok[2], {"copies": 3, "items": ["a"] * 3})


def test_the_build_writes_the_cache_and_a_rerun_reuses_everything(tiny_recipe, fake_embedding):
    recipe = tiny_recipe("data.seed=3", "data.val_fraction=0.3")
    res = build_teacher(recipe, log=lambda m: None)
    tr_items, va_items = split_by_speaker(read_manifest(os.path.join(recipe.data_dir, "train")), 0.3, seed=3)
    assert tr_items and va_items
    n = len(tr_items)
    cache = recipe.in_runs(recipe.teacher.cache_dir)
    copies = np.load(os.path.join(cache, "copies.npy"))
    logits = np.load(os.path.join(cache, "logits.npy"))
    labels = np.load(os.path.join(cache, "labels.npy"))
    meta = json.load(open(os.path.join(cache, "meta.json")))
    assert copies.dtype == np.int16 and copies.shape == (n, 2, 16000)
    assert logits.dtype == np.float32 and logits.shape == (n, 2, 12) and np.isfinite(logits).all()
    assert labels.dtype == np.int64 and labels.shape == (n,)
    assert meta["items"] == [it.path for it in tr_items]
    assert [LABELS[i] for i in labels] == [it.label for it in tr_items]
    assert meta["seed"] == 3 and meta["val_fraction"] == 0.3 and meta["copies"] == 2
    assert meta["labels"] == LABELS and meta["teacher"]["wheel"] == "openwakeword==0.5.1"
    assert meta["teacher"]["sha256"] == {n: h for n, (_, h) in E.MODEL_FILES.items()}
    assert meta["teacher"]["head_train_hyper"]["mixup"] == 0.4
    assert meta["head_val_accuracy"] == pytest.approx(res["val"]["twelve_class"])
    assert not set(meta["items"]) & {it.path for it in va_items}
    assert len(glob.glob(os.path.join(recipe.in_runs(recipe.teacher.work_dir), "stage-*"))) == 1
    # the copies are augmented (two copies of a clip differ) but still the clip's audio
    assert np.abs(copies.astype(np.float32)).max() > 1000
    assert (copies[:, 0] != copies[:, 1]).any(axis=1).all()
    # rerun: nothing is embedded, augmented or trained again, the cache is the same
    first = fake_embedding["mel"]
    assert first == n * 2 + len(va_items)
    build_teacher(recipe, log=lambda m: None)
    assert fake_embedding["mel"] == first
    assert np.array_equal(np.load(os.path.join(cache, "copies.npy")), copies)
    assert np.array_equal(np.load(os.path.join(cache, "logits.npy")), logits)
