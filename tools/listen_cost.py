#!/usr/bin/env python3
"""What `listen` costs on a continuous stream (make listen-cost): its CPU time per audio second
against `bench`'s chunked figure for the same model and rate, and its resident memory over the
run, which must stay flat (one recurrent state, whatever the stream's length).

The stream: --hours of the negatives' test speech and sounds one after another (looped to
length) over background noise 10 dB under them, so that the detector has speech to listen to all
along, written as a WAV at --rate and read by `listen --input`. Its CPU time (user + system, from
wait4) is compared with the best of three `bench --json` runs in chunks of LISTEN_CHUNK samples
(what the streaming detector takes at once from a file's reads); its RSS is read from /proc every
second.

    python3 tools/listen_cost.py [--model M] [--hours 1] [--rate 16000]
"""
import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from s4train.data.negatives import read_negatives
from streams import HERE, RATE, negative_stream, resample, write_wav

NOISE_SNR_DB = 10
# StreamingDetector's largest piece: a file is read in larger blocks, fed in pieces of this size.
LISTEN_CHUNK = 1024


def build_stream(negatives, noise, hours, rate, work):
    """The WAV of `hours` of negative audio at `rate` (16 kHz material resampled by sox)."""
    files = [item.path for item in read_negatives(str(negatives), "test")]
    piece = negative_stream(files, noise, NOISE_SNR_DB, seed=1)
    total = int(hours * 3600 * RATE)
    stream = np.resize(piece, total)   # repeated to length
    wav16 = work / "stream_16000.wav"
    write_wav(wav16, stream, RATE)
    return resample(wav16, rate, work / f"stream_{rate}.wav"), total / RATE


def rss_mib(pid):
    """The process's resident set (MiB), None once it has no memory to report."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:")), None)
    except OSError:
        return None


def run_listen(binary, model, wav):
    """(CPU seconds, [(wall seconds, RSS MiB)], events) of one `listen --input wav` run."""
    command = [binary, "listen", "--input", str(wav)] + (["--model", model] if model else [])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        started, samples = time.monotonic(), []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)   # reaped here: its rusage
            if pid:
                break
            samples.append((time.monotonic() - started, rss_mib(proc.pid)))
            time.sleep(1.0)
        if os.waitstatus_to_exitcode(status) != 0:
            err.seek(0)
            raise SystemExit(f"listen failed: {err.read().decode()[-2000:]}")
        out.seek(0)
        events = sum(1 for line in out if line.strip())
    return usage.ru_utime + usage.ru_stime, [s for s in samples if s[1] is not None], events


def best_bench(binary, model, rate):
    """The best of three `bench --json` chunked figures (seconds per audio second) in chunks of
    LISTEN_CHUNK samples."""
    command = [binary, "bench", "--json", "--rate", str(rate), "--chunk-milliseconds",
               str(1000 * LISTEN_CHUNK / rate)] + (["--model", model] if model else [])
    runs = [json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return min(r["chunked"]["seconds_per_audio_second"] for r in runs), runs[0]["chunk_samples"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=str(HERE / ".build/release/s4listen"))
    parser.add_argument("--model", default=None)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=16000)
    parser.add_argument("--negatives", default=str(HERE.parent / "shared/data/negatives"))
    parser.add_argument("--noise", default=str(HERE.parent / "shared/data/speech-commands/_background_noise_"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="s4cost-") as tmp:
        wav, seconds = build_stream(Path(args.negatives), Path(args.noise), args.hours, args.rate, Path(tmp))
        cpu, rss, events = run_listen(args.binary, args.model, wav)
    if not rss:
        raise SystemExit("listen ended before its memory could be read once: give it more --hours")
    bench, chunk = best_bench(args.binary, args.model, args.rate)
    listen = cpu / seconds
    settled = [m for t, m in rss if t >= 0.05 * rss[-1][0]] or [m for _, m in rss]
    half = [(t, m) for t, m in rss if t >= rss[-1][0] / 2]
    slope = float(np.polyfit(*zip(*half), 1)[0]) * 3600 if len(half) > 2 else 0.0
    summary = {"model": args.model, "rate": args.rate, "audio_seconds": seconds, "events": events,
               "listen_cpu_seconds_per_audio_second": listen, "bench_chunked_seconds_per_audio_second": bench,
               "bench_chunk_samples": chunk, "ratio": listen / bench, "rss_mib_first": settled[0],
               "rss_mib_last": settled[-1], "rss_mib_max": max(m for _, m in rss),
               "rss_mib_per_wall_hour_second_half": slope, "rss_samples": len(rss)}
    print(f"listen: {cpu:.1f} s of CPU for {seconds / 3600:.2f} h at {args.rate} Hz = {listen:.5f} s/s "
          f"({1 / listen:.0f}x real time), {events} events; bench chunked ({chunk} samples) best of 3: "
          f"{bench:.5f} s/s; ratio {listen / bench:.2f}")
    print(f"memory: RSS {settled[0]:.1f} MiB after 5% of the run, {settled[-1]:.1f} MiB at the end, "
          f"max {summary['rss_mib_max']:.1f} MiB; over the second half {slope:+.2f} MiB per hour of running")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
