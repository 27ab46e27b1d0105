#!/usr/bin/env python3
"""Test-folder accuracy of a model, measured by the Swift engine (`s4listen classify`).

For each rate the clips are resampled with sox (the *input* changes rate; s4listen rescales
Δ = Δ_train · f_train / f_in inside and never resamples), then classified one JSON line per
file. Two figures, as in the model card:
  ten-word accuracy: over the clips of the ten command words, the share labelled with their
                     own word (labelling one `_unknown_` or `_silence_` counts as wrong);
  12-class accuracy: over all clips, ten words plus `_unknown_` and `_silence_` (a streaming
                     model's `_nothing_` is the right answer for both).
Prints a Markdown table, then one JSON line with every figure (fractions 0–1).

    python3 tools/model_eval.py --model models/default.safetensors \
        --clips ../shared/data/speech-commands/test --rates 16000,8000,48000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from s4train.vocabulary import COMMANDS, NOTHING, read_manifest

DEFAULT_RATES = "8000,11025,16000,22050,44100,48000"


def resampled_copy(items, rate: int, cache: str, jobs: int) -> list[tuple[str, str]]:
    """The clips as 16-bit WAV at `rate` (sox's high-quality resampler, without dither: sox's
    default dither is random, so two runs would differ by a clip or so)."""
    out = []
    todo = []
    for i, (path, label) in enumerate(items):
        # A folder of its own, so that copies a --cache holds from a dithered run are not reused.
        dst = os.path.join(cache, f"{rate}-undithered", f"{i:05d}_{label}.wav")
        out.append((dst, label))
        if not os.path.exists(dst):
            todo.append((path, dst))
    os.makedirs(os.path.join(cache, f"{rate}-undithered"), exist_ok=True)

    def convert(job):
        src, dst = job
        tmp = dst + ".part.wav"
        subprocess.run(["sox", "-D", "-G", src, "-b", "16", tmp, "rate", "-h", str(rate)], check=True)
        os.replace(tmp, dst)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        list(pool.map(convert, todo))
    return out


def classify(binary: str, model: str, items, jobs: int, mode: str) -> dict[str, str]:
    """file -> predicted label, from one `s4listen classify` run over all files."""
    cmd = [binary, "classify", "--model", model, "--jobs", str(jobs), "--mode", mode]
    cmd += [p for p, _ in items]
    res = subprocess.run(cmd, capture_output=True, text=True)
    labels = {}
    for line in res.stdout.splitlines():
        obj = json.loads(line)
        if "error" in obj:
            raise SystemExit(f"model_eval: {obj['file']}: {obj['error']}")
        labels[obj["file"]] = obj["label"]
    if len(labels) != len(items):
        raise SystemExit(f"model_eval: classify gave {len(labels)} results for {len(items)} files:\n"
                         + res.stderr[-2000:])
    return labels


def score(items, predicted: dict[str, str]) -> dict:
    words = [(p, l) for p, l in items if l in COMMANDS]

    def right(path, label):
        return predicted[path] == label or (label not in COMMANDS and predicted[path] == NOTHING)

    ten = sum(right(p, l) for p, l in words) / max(1, len(words))
    twelve = sum(right(p, l) for p, l in items) / max(1, len(items))
    return {"ten_word": ten, "twelve_class": twelve, "word_clips": len(words), "clips": len(items)}


def main(argv=None) -> int:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(root, "models", "default.safetensors"))
    ap.add_argument("--clips", default=os.path.join(root, "..", "shared", "data", "speech-commands", "test"))
    ap.add_argument("--rates", default=DEFAULT_RATES, help="comma-separated input rates (Hz)")
    ap.add_argument("--binary", default=os.path.join(root, ".build", "release", "s4listen"))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--mode", default="recurrent", choices=["recurrent", "convolution"])
    ap.add_argument("--cache", default="", help="folder for the resampled clips (default: a temporary one)")
    args = ap.parse_args(argv)

    items = [(path, label) for path, label, _ in read_manifest(args.clips)]
    rates = [int(r) for r in args.rates.split(",") if r]
    cache_ctx = tempfile.TemporaryDirectory(prefix="s4listen-eval-") if not args.cache else None
    cache = args.cache or cache_ctx.name
    results = {}
    try:
        for rate in rates:
            t0 = time.time()
            clips = resampled_copy(items, rate, cache, args.jobs)
            results[str(rate)] = score(clips, classify(args.binary, args.model, clips, args.jobs, args.mode))
            results[str(rate)]["seconds"] = round(time.time() - t0, 1)
            r = results[str(rate)]
            print(f"{rate} Hz: ten-word {100 * r['ten_word']:.1f}%, 12-class {100 * r['twelve_class']:.1f}% "
                  f"({r['clips']} clips, {r['seconds']} s)", file=sys.stderr, flush=True)
    finally:
        if cache_ctx is not None:
            cache_ctx.cleanup()

    print("| input rate (Hz) | ten-word accuracy | 12-class accuracy |")
    print("|---|---|---|")
    for rate, r in results.items():
        print(f"| {rate} | {100 * r['ten_word']:.1f}% ({r['word_clips']} clips) | "
              f"{100 * r['twelve_class']:.1f}% ({r['clips']} clips) |")
    print(json.dumps({"model": os.path.basename(args.model), "mode": args.mode, "rates": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
