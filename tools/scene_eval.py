#!/usr/bin/env python3
"""Streaming benchmark for s4listen: build a long scene of labelled clips over background noise,
run `s4listen listen` over it through a file, a pipe and ALSA at several sampling rates, and score
the events against the ground truth.

Scene: about ten minutes at 16 kHz. Background noise from _background_noise_ at random levels;
every 2-5 s an item: a command word (most), an unknown word (_unknown_ clips) or nothing. The true
span of each word inside its one-second clip is found by energy, for latency. Higher rates are
made from the 16 kHz scene with sox, without dither so that reruns agree (the model then runs
with its step size rescaled).

Scores per source and rate: matched % (right label), wrong-label %, missed % of the command
words; false alarms per hour of non-command audio (events not on any command word); median
latency from the true end of a word to its event (stream time, so a pipe or a file read faster
than real time measures the same). The last line printed is one JSON object with the worst of
each figure over all sources and rates, and the per-run figures.

Needs numpy, sox and a built s4listen. Usage:
  python3 tools/scene_eval.py [--clips DIR] [--seed N] [--minutes 10] [--rates 16000,48000]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

from s4train.vocabulary import COMMANDS, read_manifest

RATE = 16000
HERE = Path(__file__).resolve().parent.parent


def load_clip(path):
    """A FLAC/WAV file as float32 at 16 kHz mono, through sox."""
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
                          "-r", str(RATE), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def word_span(clip):
    """(start, end) in samples of the loud part of a clip: 10 ms frames above peak − 25 dB."""
    frames = clip[: len(clip) // 160 * 160].reshape(-1, 160)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = np.nonzero(level > level.max() - 25)[0]
    return int(loud[0] * 160), int((loud[-1] + 1) * 160)


def write_wav(path, samples, rate):
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def build_scene(clips_dir, noise_dir, minutes, seed):
    rng = random.Random(seed)
    manifest = read_manifest(str(clips_dir))
    commands = [Path(p) for p, label, _ in manifest if label in COMMANDS]
    unknown = [Path(p) for p, label, _ in manifest if label == "_unknown_"]
    if not commands:
        sys.exit(f"{clips_dir}: no clips of the ten commands in manifest.csv")
    noises = [load_clip(p) for p in sorted(noise_dir.glob("*.flac"))]
    total = int(minutes * 60 * RATE)
    scene = np.zeros(total, dtype=np.float64)
    # Background: consecutive 5-20 s stretches of one noise at −55…−35 dBFS RMS.
    position = 0
    while position < total:
        noise = rng.choice(noises)
        length = min(total - position, rng.randint(5 * RATE, 20 * RATE), len(noise))
        start = rng.randrange(0, len(noise) - length + 1)
        piece = noise[start:start + length].astype(np.float64)
        piece *= 10 ** (rng.uniform(-55, -35) / 20) / (np.sqrt(np.mean(piece ** 2)) + 1e-12)
        scene[position:position + length] += piece
        position += length
    truth = []
    cursor = 2 * RATE
    # Each kind draws its clips in a shuffled order and, once all are used, in a new one: the
    # scene is filled to its end however few clips the folder has.
    pools = {"command": commands, "unknown": unknown}
    queues = {"command": [], "unknown": []}
    while cursor + RATE < total - 2 * RATE:
        kind = rng.choices(["command", "unknown", "nothing"], weights=[7, 2 if unknown else 0, 1])[0]
        if kind != "nothing":
            if not queues[kind]:
                queues[kind] = rng.sample(pools[kind], len(pools[kind]))
            path = queues[kind].pop()
            clip = load_clip(path).astype(np.float64)
            clip *= 10 ** (rng.uniform(-6, 0) / 20)  # speaker level varies
            a, b = word_span(clip)
            scene[cursor:cursor + len(clip)] += clip
            truth.append({"kind": kind, "label": path.parent.name, "file": str(path),
                          "start": (cursor + a) / RATE, "end": (cursor + b) / RATE})
        cursor += RATE + rng.randint(int(1.0 * RATE), int(4.0 * RATE))
    return np.clip(scene, -1, 1), truth


def run_listen(binary, model, source, wav, rate, seconds, workdir, extra):
    base = [binary, "listen"] + extra + (["--model", model] if model else [])
    env = dict(os.environ)
    if source == "file":
        command, stdin = base + ["--input", str(wav)], subprocess.DEVNULL
    elif source == "pipe":
        command, stdin = base + ["--input", "-"], open(wav, "rb")
    else:  # ALSA through the file plugin: a PCM that plays the scene back, defined in a private HOME
        raw = workdir / f"scene_{rate}.raw"
        subprocess.run(["sox", str(wav), "-t", "raw", "-e", "signed", "-b", "16", str(raw)], check=True)
        home = workdir / f"home_{rate}"
        home.mkdir(exist_ok=True)
        (home / ".asoundrc").write_text(
            'pcm.s4scene {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
            f'  infile "{raw}"\n  format "raw"\n}}\n')
        env["HOME"] = str(home)
        command = base + ["--device", "s4scene", "--rate", str(rate), "--channels", "1", "--seconds", str(seconds)]
        stdin = subprocess.DEVNULL
    result = subprocess.run(command, stdin=stdin, capture_output=True, text=True, env=env, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"s4listen failed ({source}, {rate} Hz): {result.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def score(events, truth, seconds):
    commands = [t for t in truth if t["kind"] == "command"]
    used = set()
    matched = wrong = 0
    latencies = []
    for t in commands:
        hits = [i for i, e in enumerate(events) if i not in used
                and e["start"] <= t["end"] + 0.3 and e["end"] >= t["start"] - 0.3]
        if not hits:
            continue
        i = hits[0]
        used.add(i)
        if events[i]["label"] == t["label"]:
            matched += 1
            latencies.append(events[i]["end"] + events[i]["latency"] - t["end"])
        else:
            wrong += 1
    false_alarms = len(events) - len(used)
    command_seconds = sum(t["end"] - t["start"] for t in commands)
    hours = max(seconds - command_seconds, 1) / 3600
    n = max(len(commands), 1)
    return {"matched": matched / n, "wrong": wrong / n, "missed": (n - matched - wrong) / n,
            "false_alarms_per_hour": false_alarms / hours,
            "median_latency_s": float(np.median(latencies)) if latencies else None, "commands": len(commands),
            "events": len(events)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=str(HERE.parent / "shared/data/speech-commands/test"))
    parser.add_argument("--noise", default=None, help="default: CLIPS/../_background_noise_")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rates", default="16000,48000")
    parser.add_argument("--sources", default="file,pipe,alsa")
    parser.add_argument("--binary", default=str(HERE / ".build/release/s4listen"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--keep", default=None, help="keep the scene, truth and events in this folder")
    parser.add_argument("--listen-args", default="", help="more options for s4listen listen, e.g. --listen-args=--all to "
                        "score the segmentation alone (matched + wrong = words found)")
    args = parser.parse_args()
    clips = Path(args.clips)
    noise = Path(args.noise) if args.noise else clips.parent / "_background_noise_"
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="s4scene-"))
    work.mkdir(parents=True, exist_ok=True)
    scene, truth = build_scene(clips, noise, args.minutes, args.seed)
    seconds = len(scene) / RATE
    (work / "truth.json").write_text(json.dumps(truth, indent=1))
    write_wav(work / "scene_16000.wav", scene, RATE)
    print(f"scene: {seconds / 60:.1f} min, {sum(t['kind'] == 'command' for t in truth)} commands, "
          f"{sum(t['kind'] == 'unknown' for t in truth)} unknown words, seed {args.seed}, clips {clips}")
    runs = {}
    print(f"{'source':6} {'rate':>6} {'matched':>8} {'wrong':>6} {'missed':>7} {'FA/h':>6} {'latency':>8}")
    for rate in [int(r) for r in args.rates.split(",")]:
        wav = work / f"scene_{rate}.wav"
        if rate != RATE:
            subprocess.run(["sox", "-D", str(work / "scene_16000.wav"), "-r", str(rate), str(wav)], check=True)
        for source in args.sources.split(","):
            events = run_listen(args.binary, args.model, source, wav, rate, seconds, work, args.listen_args.split())
            (work / f"events_{source}_{rate}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
            result = score(events, truth, seconds)
            runs[f"{source}@{rate}"] = result
            latency = f"{result['median_latency_s']:.2f}s" if result["median_latency_s"] is not None else "-"
            print(f"{source:6} {rate:6d} {100 * result['matched']:7.1f}% {100 * result['wrong']:5.1f}% "
                  f"{100 * result['missed']:6.1f}% {result['false_alarms_per_hour']:6.1f} {latency:>8}")
    worst = {
        "matched": min(r["matched"] for r in runs.values()),
        "wrong": max(r["wrong"] for r in runs.values()),
        "missed": max(r["missed"] for r in runs.values()),
        "false_alarms_per_hour": max(r["false_alarms_per_hour"] for r in runs.values()),
        "median_latency_s": max((r["median_latency_s"] for r in runs.values() if r["median_latency_s"] is not None),
                                default=None),
    }
    print(json.dumps({**worst, "runs": runs, "seed": args.seed, "clips": str(clips)}))


if __name__ == "__main__":
    main()
