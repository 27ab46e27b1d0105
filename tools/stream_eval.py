#!/usr/bin/env python3
"""Streaming benchmark for s4listen (make stream-eval): the released binary on long streams, scored
against what was said. A product that fires on ordinary speech is unusable whatever its clip
accuracy, so false alarms are measured per hour on real audio without any command word.

Streams (streams.py builds them, from the split's audio only):
- the command scene: MINUTES (30) of the split's speakers' commands and unknown words with pauses
  over background noise (levels in streams.py; the measured speech and noise levels are printed);
- negative speech and negative sounds (../shared/data/negatives): all of the split's files one
  after another, plain and over background noise at --snr-db (10 dB under the stream's RMS).
Every stream runs through `listen --all` from a file at each rate (16 and 48 kHz), and the scene
also through a pipe and ALSA without --all: their events must be those of the file run filtered
at the threshold in force (the same binary, three sources, and --all exact offline). Scores at
the threshold in force: matched / wrong / missed % of the command words, median latency and
false alarms per hour on each stream; over thresholds, the DET curve (det_curve.py).

Splits: `test` (test speakers, negatives' test folders) is for reporting only; `validation`
(the speakers the training recipe held out, make val-clips, and the validation carve of the
negatives' train folders, recipes/negatives-validation.txt) is where thresholds are chosen: it
prints the rule's threshold (s4train.stream_scoring.choose_threshold), and with --write stores it
in the model file as `detection_threshold` (its tensors untouched), which `listen`, `classify` and
`serve` use when no --threshold is given; the figures are then reported at it.

Output: a table, the DET curve (OUT/det.png, OUT/det.json), the events and the truth in OUT, and
as the last line one JSON object (also OUT/summary.json). Needs numpy, matplotlib, sox and a built s4listen.
"""
import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from det_curve import THRESHOLDS, write_det
from s4train.data.negatives import read_negatives, split_train
from s4train.stream_scoring import THRESHOLD_RULE, choose_threshold, det_rows, reported, same_events, score
from streams import (
    HERE,
    RATE,
    build_scene,
    check_split,
    dbfs,
    levels,
    model_info,
    negative_stream,
    resample,
    run_listen,
    write_wav,
)

SHARED = HERE.parent / "shared/data"
NEGATIVE_KINDS = {"speech": "speech", "sounds": "sound"}


def negative_files(split, negatives_dir):
    """{"speech": paths, "sounds": paths} of the split: test's folders, or the validation carve
    of train's."""
    items = read_negatives(str(negatives_dir), "test") if split == "test" else split_train(str(negatives_dir))[1]
    return {name: [item.path for item in items if item.kind == kind] for name, kind in NEGATIVE_KINDS.items()}


def build_streams(args, work):
    """Writes every stream at 16 kHz under work; returns {name: (wav, seconds, truth or None)}
    and the scene's measured levels."""
    scene, truth = build_scene(Path(args.clips), Path(args.noise), args.minutes, args.seed)
    write_wav(work / "scene.wav", scene, RATE)
    streams = {"scene": (work / "scene.wav", len(scene) / RATE, truth)}
    scene_levels = levels(scene, truth)
    del scene
    stream_levels = {}
    for name, files in negative_files(args.split, Path(args.negatives)).items():
        for suffix, snr in (("", None), ("_noisy", args.snr_db)):
            samples = negative_stream(files, Path(args.noise), snr, args.seed)
            write_wav(work / f"{name}{suffix}.wav", samples, RATE)
            streams[name + suffix] = (work / f"{name}{suffix}.wav", len(samples) / RATE, None)
            stream_levels[name + suffix] = dbfs(samples)
    return streams, scene_levels, stream_levels


def run_all(args, streams, work, rates, sources):
    """{(stream, source, rate): events}: every stream from a file with --all, the scene also
    through the other sources at the threshold in force; --jobs runs at once."""
    runs = []
    for rate in rates:
        for name, (wav16, seconds, _) in streams.items():
            wav = resample(wav16, rate, work / f"{name}_{rate}.wav")
            for source in (sources if name == "scene" else ["file"]):
                runs.append((name, source, rate, wav, seconds))

    def one(run):
        name, source, rate, wav, seconds = run
        extra = ["--all"] if source == "file" else []
        started = time.monotonic()
        events = run_listen(args.binary, args.model, source, wav, rate, seconds, work, extra)
        print(f"  {name} {source} {rate} Hz: {len(events)} events, {time.monotonic() - started:.0f} s", flush=True)
        return events

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(one, runs))
    for rate in rates:
        for name in streams:
            if name != "scene":
                (work / f"{name}_{rate}.wav").unlink(missing_ok=True)
    return {(name, source, rate): events for (name, source, rate, _, _), events in zip(runs, results)}


def report(args, streams, events, rates, sources, threshold):
    """Prints the table; returns the JSON summary's figures and whether the sources agree."""
    truth, scene_seconds = streams["scene"][2], streams["scene"][1]
    runs, identical = {}, True
    print(f"{'stream':13} {'source':6} {'rate':>6} {'matched':>8} {'wrong':>6} {'missed':>7} {'FA/h':>7} "
          f"{'events':>7} {'latency':>8}")
    for rate in rates:
        at_threshold = reported(events[("scene", "file", rate)], threshold)
        for source in sources:
            got = at_threshold if source == "file" else events[("scene", source, rate)]
            if source != "file" and not same_events(got, at_threshold):
                identical = False
                print(f"  {source} at {rate} Hz: {len(got)} events, not those of the file "
                      f"({len(at_threshold)})", file=sys.stderr)
            result = score(got, truth, scene_seconds)
            runs[f"scene/{source}@{rate}"] = result
            latency = f"{result['median_latency_s']:.2f}s" if result["median_latency_s"] is not None else "-"
            print(f"{'scene':13} {source:6} {rate:6d} {100 * result['matched']:7.1f}% {100 * result['wrong']:5.1f}% "
                  f"{100 * result['missed']:6.1f}% {result['false_alarms_per_hour']:7.1f} {result['events']:7d} "
                  f"{latency:>8}")
        for name, (_, seconds, _) in streams.items():
            if name == "scene":
                continue
            count = len(reported(events[(name, "file", rate)], threshold))
            runs[f"{name}/file@{rate}"] = {"false_alarms_per_hour": count / (seconds / 3600), "events": count,
                                           "hours": seconds / 3600}
            print(f"{name:13} {'file':6} {rate:6d} {'':8} {'':6} {'':7} {count / (seconds / 3600):7.1f} {count:7d}")
    return runs, identical


def det_curves(streams, events, rates, threshold):
    """{rate: det_rows} over THRESHOLDS and `threshold`, from the file runs."""
    truth, scene_seconds = streams["scene"][2], streams["scene"][1]
    negatives = {rate: {name: (events[(name, "file", rate)], seconds) for name, (_, seconds, _) in streams.items()
                        if name != "scene"} for rate in rates}
    thresholds = sorted(set(THRESHOLDS) | {threshold})
    return {str(rate): det_rows((events[("scene", "file", rate)], truth, scene_seconds), negatives[rate], thresholds)
            for rate in rates}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=["test", "validation"], default="test")
    parser.add_argument("--clips", default=None, help="the scene's clips (default: speech-commands/test, or "
                        "models/train/runs/val-clips for validation: make val-clips)")
    parser.add_argument("--noise", default=str(SHARED / "speech-commands/_background_noise_"))
    parser.add_argument("--negatives", default=str(SHARED / "negatives"))
    parser.add_argument("--minutes", type=float, default=30, help="length of the command scene")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--snr-db", type=float, default=10, help="the noisy negatives' SNR (stream RMS over noise RMS)")
    parser.add_argument("--rates", default="16000,48000")
    parser.add_argument("--sources", default=None, help="the scene's sources (default: file,pipe,alsa on test, file "
                        "on validation; the negatives always run from a file)")
    parser.add_argument("--binary", default=str(HERE / ".build/release/s4listen"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="s4listen runs at once (each one thread)")
    parser.add_argument("--out", default=None, help="default: models/train/runs/stream-eval/SPLIT")
    parser.add_argument("--keep", action="store_true", help="keep the 16 kHz streams in OUT/audio")
    parser.add_argument("--write", action="store_true", help="validation: store the rule's threshold in --model")
    args = parser.parse_args()
    started = time.monotonic()
    if args.clips is None:
        args.clips = str(SHARED / "speech-commands/test" if args.split == "test" else HERE / "models/train/runs/val-clips")
    sources = (args.sources or ("file,pipe,alsa" if args.split == "test" else "file")).split(",")
    if "file" not in sources:
        parser.error("--sources must include file (the --all run the others are checked against)")
    sources = ["file"] + [s for s in sources if s != "file"]
    rates = [int(r) for r in args.rates.split(",")]
    out = Path(args.out or HERE / "models/train/runs/stream-eval" / args.split)
    out.mkdir(parents=True, exist_ok=True)
    if args.write and (args.split != "validation" or not args.model):
        parser.error("--write needs --split validation and --model (the file the threshold goes into)")
    if args.write:  # before the runs: a missing package fails at once, not after them
        from s4train.export import set_metadata
    if args.split == "validation":
        check_split(args.binary, args.model, args.clips)
    threshold = float(model_info(args.binary, args.model)["threshold"])
    work = Path(tempfile.mkdtemp(prefix="s4streams-"))
    try:
        streams, scene_levels, stream_levels = build_streams(args, work)
        truth = streams["scene"][2]
        print(f"{args.split}: scene {streams['scene'][1] / 60:.1f} min from {args.clips} (seed {args.seed}), "
              f"{sum(t['kind'] == 'command' for t in truth)} commands, {sum(t['kind'] == 'unknown' for t in truth)} "
              f"unknown words; words {scene_levels['speech_dbfs']['median']:.1f} dBFS "
              f"(5-95%: {scene_levels['speech_dbfs']['p5']:.1f} to {scene_levels['speech_dbfs']['p95']:.1f}), "
              f"background {scene_levels['noise_dbfs']['median']:.1f} dBFS "
              f"({scene_levels['noise_dbfs']['p5']:.1f} to {scene_levels['noise_dbfs']['p95']:.1f}), "
              f"SNR {scene_levels['snr_db']['median']:.1f} dB ({scene_levels['snr_db']['p5']:.1f} to "
              f"{scene_levels['snr_db']['p95']:.1f})")
        print("negatives: " + ", ".join(f"{name} {streams[name][1] / 3600:.2f} h at {level:.1f} dBFS"
                                        for name, level in stream_levels.items())
              + f" (noisy: background {args.snr_db:g} dB under the stream's RMS)")
        print(f"model {args.model or 'default'}, threshold in force {threshold:g}; running s4listen "
              f"({args.jobs} at once):", flush=True)
        events = run_all(args, streams, work, rates, sources)
        if args.keep:
            shutil.copytree(work, out / "audio", dirs_exist_ok=True, ignore=shutil.ignore_patterns("home_*"))
    finally:
        shutil.rmtree(work)
    (out / "truth.json").write_text(json.dumps(truth, indent=1))
    for (name, source, rate), evs in events.items():
        (out / f"events_{name}_{source}_{rate}.jsonl").write_text("".join(json.dumps(e) + "\n" for e in evs))
    chosen = None
    if args.split == "validation":
        chosen = choose_threshold(det_curves(streams, events, rates, threshold).values())
        print("rule (" + ", ".join(f"{k} <= {v:g}" for k, v in THRESHOLD_RULE.items()) + " at every rate): "
              + (f"threshold {chosen:g}" if chosen is not None else "no threshold meets it"))
        if args.write and chosen is not None:
            set_metadata(args.model, detection_threshold=chosen)
            threshold = chosen
            print(f"{args.model}: detection_threshold {chosen:g} written; the figures below are at it")
    runs, identical = report(args, streams, events, rates, sources, threshold)
    curves = det_curves(streams, events, rates, threshold)
    write_det(str(out / "det"), curves, threshold,
              f"{args.split}: {Path(args.model or 'default model').name}, scene {args.minutes:g} min (seed {args.seed})")
    print(f"sources {', '.join(sources)}: {'identical events' if identical else 'DIFFERENT EVENTS'}; "
          f"DET curve: {out / 'det.png'}, {out / 'det.json'}; {time.monotonic() - started:.0f} s, "
          f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime:.0f} s of CPU in s4listen and sox")
    worst = {}
    for key, prefix in (("scene", "scene/"), ("speech", "speech/"), ("speech_noisy", "speech_noisy/"),
                        ("sounds", "sounds/"), ("sounds_noisy", "sounds_noisy/")):
        worst[f"false_alarms_per_hour_{key}"] = max(r["false_alarms_per_hour"] for k, r in runs.items()
                                                    if k.startswith(prefix))
    scene_runs = [r for k, r in runs.items() if k.startswith("scene/")]
    latencies = [r["median_latency_s"] for r in scene_runs if r["median_latency_s"] is not None]
    worst.update(matched=min(r["matched"] for r in scene_runs), wrong=max(r["wrong"] for r in scene_runs),
                 missed=max(r["missed"] for r in scene_runs), median_latency_s=max(latencies, default=None))
    summary = {"split": args.split, **worst, "identical_sources": identical, "threshold": threshold,
               "rule_threshold": chosen,
               "model": args.model, "levels": {"scene": scene_levels, "negatives_dbfs": stream_levels,
                                               "noisy_negatives_snr_db": args.snr_db},
               "det": str(out / "det.json"), "runs": runs, "seed": args.seed, "minutes": args.minutes,
               "seconds": round(time.monotonic() - started),
               "cpu_seconds": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime), "clips": args.clips}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
