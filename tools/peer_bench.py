#!/usr/bin/env python3
"""Speed against the peer (make peer-bench): openWakeWord's streaming front end and `s4listen
bench` on the same length of 16 kHz noise, 80 ms chunks, one thread, in one run.

The peer is what openWakeWord computes for every 80 ms of a live stream before any wake-word
head: melspectrogram.onnx over the new 1280 samples and the 480 before them (8 mel frames), then
embedding_model.onnx over the last 76 mel frames (one 96-dim embedding), as its
AudioFeatures._streaming_features does. Both ONNX files come from the openwakeword 0.5.1 wheel the
teacher uses, found (and checked) by s4train.teacher.embedding.fetch_models; onnxruntime runs
with one intra-op and one inter-op thread. s4listen's figure is `bench`'s chunked mode at the
same chunk length: the whole network and head. Times are CPU seconds of the computing thread, the
best of --repeats runs each, so a busy machine slows neither side's figure by its waiting.
Prints one line per side and the ratio; the last line is one JSON object.
"""
import argparse
import json
import subprocess
import time
from pathlib import Path

import numpy as np

from s4train.recipe import Recipe
from s4train.teacher.embedding import (
    EMBED_DIM,
    HOP,
    INT16_SCALE,
    MEL_BINS,
    MEL_HOP,
    WINDOW,
    SpeechEmbedding,
    fetch_models,
)

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
CHUNK = HOP * MEL_HOP  # 1280 samples, 80 ms: one embedding per chunk
CONTEXT = 3 * MEL_HOP  # samples before a chunk its mel pass also reads: (1760 − 512) // 160 + 1 = 8 frames


def peer_seconds(embedding: SpeechEmbedding, audio: np.ndarray) -> float:
    """CPU seconds of one streaming pass of the front end over `audio` (int16 scale)."""
    mel = np.ones((WINDOW, MEL_BINS), dtype=np.float32)  # openWakeWord's initial buffer
    start = time.thread_time()
    for end in range(CHUNK, len(audio) + 1, CHUNK):
        x = audio[max(0, end - CHUNK - CONTEXT):end][None, :]
        frames = np.asarray(embedding.mel_fn(x), dtype=np.float32).reshape(-1, MEL_BINS) / 10.0 + 2.0
        mel = np.concatenate([mel, frames])[-WINDOW:]
        out = embedding.emb_fn(mel[None, :, :, None])
        assert np.asarray(out).size == EMBED_DIM
    return time.thread_time() - start


def s4listen_seconds(binary: str, model: str, seconds: float, repeats: int) -> dict:
    """`s4listen bench` at 80 ms chunks: its chunked figures and the FMA peak it measured."""
    line = subprocess.run(
        [binary, "bench", "--model", model, "--rate", str(RATE), "--seconds", str(seconds),
         "--chunk-milliseconds", str(1000 * CHUNK / RATE), "--repeats", str(repeats), "--json"],
        check=True, capture_output=True, text=True).stdout
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="audio length for both sides")
    parser.add_argument("--repeats", type=int, default=3, help="runs per side; the fastest counts")
    parser.add_argument("--binary", default=str(ROOT / ".build/release/s4listen"))
    parser.add_argument("--model", default=str(ROOT / "models/default.safetensors"))
    parser.add_argument("--recipe", default=str(ROOT / "models/train/recipes/default.toml"),
                        help="the recipe whose teacher work directory holds the wheel")
    args = parser.parse_args()

    recipe = Recipe.load(args.recipe)
    paths = fetch_models(recipe.in_runs(recipe.teacher.work_dir))
    embedding = SpeechEmbedding.from_onnx(paths, threads=1)
    rng = np.random.default_rng(7)
    samples = int(args.seconds * RATE) // CHUNK * CHUNK
    audio = (0.1 * INT16_SCALE * rng.standard_normal(samples)).astype(np.float32)
    peer = min(peer_seconds(embedding, audio) for _ in range(args.repeats))
    ours = s4listen_seconds(args.binary, args.model, samples / RATE, args.repeats)

    audio_seconds = samples / RATE
    peer_speed = audio_seconds / peer
    our_speed = ours["chunked"]["times_real_time"]
    print(f"{audio_seconds:.2f} s of 16 kHz noise in 80 ms chunks, one thread, best of {args.repeats}")
    print(f"openWakeWord front end (mel + embedding, onnxruntime): {peer / audio_seconds:.4f} s/s, "
          f"{peer_speed:.1f}x real time")
    print(f"s4listen ({Path(args.model).name}): {1 / our_speed:.4f} s/s, {our_speed:.1f}x real time, "
          f"{ours['chunked']['gflops']:.1f} GFLOP/s ({100 * ours['chunked']['peak_share']:.0f}% of "
          f"{ours['fma_peak_gflops']:.0f})")
    print(f"ratio: s4listen is {our_speed / peer_speed:.2f}x faster")
    print(json.dumps({"audio_seconds": audio_seconds, "chunk_samples": CHUNK, "repeats": args.repeats,
                      "peer_times_real_time": peer_speed, "s4listen_times_real_time": our_speed,
                      "ratio": our_speed / peer_speed}))


if __name__ == "__main__":
    main()
