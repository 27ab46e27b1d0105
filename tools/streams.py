"""The audio streams s4listen is measured on: the scene and negative streams of tools/stream_eval.py
(the benchmark, and on validation streams the threshold); their events are scored by
s4train.stream_scoring.

- The command scene: background noise from _background_noise_ in 5-20 s stretches, each at
  NOISE_DBFS (RMS, drawn per stretch); every 2-5 s an item: a command word (most), an unknown word
  (_unknown_ clips) or nothing, each clip at its recorded level lowered by 0-6 dB. The true span of
  each word inside its one-second clip is found by energy, for latency. `levels` measures what
  that gives (the recordings' own levels vary), so that the benchmark can state it.
- A negative stream: files one after another (negative speech or sounds), plain or over
  background noise at a stated SNR. Every event on it is a false alarm.

Higher rates are made from the 16 kHz stream with sox, without dither, so that reruns agree (the
model then runs with its step size rescaled). Needs numpy, sox and a built s4listen.
"""
import json
import os
import random
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np

from s4train.data.words import word_span
from s4train.vocabulary import COMMANDS, read_manifest

RATE = 16000
HERE = Path(__file__).resolve().parent.parent
# The scene's background: each stretch's RMS level, dBFS, drawn uniformly in this range.
NOISE_DBFS = (-55.0, -35.0)
# The scene's words: each clip's recorded level lowered by a gain drawn in this range, dB.
SPEECH_GAIN_DB = (-6.0, 0.0)


def load_clip(path):
    """A FLAC/WAV file as float32 at 16 kHz mono, through sox."""
    raw = subprocess.run(["sox", str(path), "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1",
                          "-r", str(RATE), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype=np.float32).copy()


def dbfs(samples):
    """RMS level in dB relative to full scale (a full-scale square wave is 0 dBFS)."""
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-20))


def write_wav(path, samples, rate):
    pcm = np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())


def resample(wav16, rate, out):
    """The 16 kHz WAV at `rate` (sox, no dither), or the file itself at 16 kHz."""
    if rate == RATE:
        return wav16
    subprocess.run(["sox", "-D", str(wav16), "-r", str(rate), str(out)], check=True)
    return out


def noise_bed(noises, total, rng, level_dbfs):
    """`total` samples of consecutive 5-20 s stretches of one noise each, each stretch scaled to
    the RMS level level_dbfs() draws (dBFS)."""
    bed = np.zeros(total, dtype=np.float64)
    position = 0
    while position < total:
        noise = rng.choice(noises)
        length = min(total - position, rng.randint(5 * RATE, 20 * RATE), len(noise))
        start = rng.randrange(0, len(noise) - length + 1)
        piece = noise[start:start + length].astype(np.float64)
        piece *= 10 ** (level_dbfs() / 20) / (np.sqrt(np.mean(piece ** 2)) + 1e-12)
        bed[position:position + length] += piece
        position += length
    return bed


def load_noises(noise_dir):
    return [load_clip(p) for p in sorted(Path(noise_dir).glob("*.flac"))]


def build_scene(clips_dir, noise_dir, minutes, seed):
    """(samples at 16 kHz, truth): a list of {kind, label, file, start, end, dbfs} per word."""
    rng = random.Random(seed)
    manifest = read_manifest(str(clips_dir))
    commands = [Path(p) for p, label, _ in manifest if label in COMMANDS]
    unknown = [Path(p) for p, label, _ in manifest if label == "_unknown_"]
    if not commands:
        sys.exit(f"{clips_dir}: no clips of the ten commands in manifest.csv")
    total = int(minutes * 60 * RATE)
    scene = noise_bed(load_noises(noise_dir), total, rng, lambda: rng.uniform(*NOISE_DBFS))
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
            clip *= 10 ** (rng.uniform(*SPEECH_GAIN_DB) / 20)  # speaker level varies
            a, b = word_span(clip)
            scene[cursor:cursor + len(clip)] += clip
            truth.append({"kind": kind, "label": path.parent.name, "file": str(path),
                          "start": (cursor + a) / RATE, "end": (cursor + b) / RATE, "dbfs": dbfs(clip[a:b])})
        cursor += RATE + rng.randint(int(1.0 * RATE), int(4.0 * RATE))
    return np.clip(scene, -1, 1), truth


def levels(scene, truth):
    """The scene's speech and noise as measured: the words' RMS over their spans and the
    background's RMS over 1 s stretches without a word (dBFS; median and 5-95% range), and
    the words' SNR against the background around them."""
    word = np.zeros(len(scene), dtype=bool)
    for t in truth:
        word[int(t["start"] * RATE):int(t["end"] * RATE)] = True
    quiet = [dbfs(scene[i:i + RATE]) for i in range(0, len(scene) - RATE, RATE) if not word[i:i + RATE].any()]
    speech = [t["dbfs"] for t in truth]
    snr = []
    for t in truth:
        around = scene[max(0, int(t["start"] * RATE) - RATE // 2):int(t["start"] * RATE)]
        if len(around):
            snr.append(t["dbfs"] - dbfs(around))

    def summary(values):
        return {"median": float(np.median(values)), "p5": float(np.percentile(values, 5)),
                "p95": float(np.percentile(values, 95))} if values else None
    return {"speech_dbfs": summary(speech), "noise_dbfs": summary(quiet), "snr_db": summary(snr)}


def negative_stream(files, noise_dir, snr_db, seed):
    """The files one after another at 16 kHz (float32) and, with snr_db, over background noise
    whose RMS is the whole stream's RMS minus snr_db (stretches as in the scene)."""
    stream = np.concatenate([load_clip(p) for p in files]).astype(np.float32)
    if snr_db is None:
        return stream
    level = dbfs(stream) - snr_db
    bed = noise_bed(load_noises(noise_dir), len(stream), random.Random(seed), lambda: level)
    return np.clip(stream + bed.astype(np.float32), -1, 1)


def run_listen(binary, model, source, wav, rate, seconds, workdir, extra):
    """The events of `s4listen listen` on a WAV file, read through a file, a pipe or ALSA."""
    base = [binary, "listen"] + extra + (["--model", model] if model else [])
    env = dict(os.environ)
    if source == "file":
        command, stdin = base + ["--input", str(wav)], subprocess.DEVNULL
    elif source == "pipe":
        command, stdin = base + ["--input", "-"], open(wav, "rb")
    else:  # ALSA through the file plugin: a PCM that plays the scene back, defined in a private HOME
        raw = workdir / f"{Path(wav).stem}.raw"
        subprocess.run(["sox", str(wav), "-t", "raw", "-e", "signed", "-b", "16", str(raw)], check=True)
        home = workdir / f"home_{Path(wav).stem}"
        home.mkdir(exist_ok=True)
        (home / ".asoundrc").write_text(
            'pcm.s4scene {\n  type file\n  slave.pcm { type null }\n  file "/dev/null"\n'
            f'  infile "{raw}"\n  format "raw"\n}}\n')
        env["HOME"] = str(home)
        command = base + ["--device", "s4scene", "--rate", str(rate), "--channels", "1", "--seconds", str(seconds)]
        stdin = subprocess.DEVNULL
    result = subprocess.run(command, stdin=stdin, capture_output=True, text=True, env=env, timeout=3600)
    if source == "alsa":
        raw.unlink()
    if result.returncode != 0:
        sys.exit(f"s4listen failed ({source}, {rate} Hz): {result.stderr.strip()[-2000:]}")
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def model_info(binary, model):
    """`s4listen info` of the model (its metadata and the threshold in force)."""
    command = [binary, "info"] + ([model] if model else [])
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def check_split(binary, model, clips):
    """The clips must be the speakers the model held out (val_clips.py writes split.json), or a
    threshold would be tuned on speakers it was trained on."""
    trained_on = model_info(binary, model).get("metadata", {}).get("trained_on", {})
    held_out = {k: trained_on.get(k) for k in ("seed", "val_fraction")}
    split = json.loads((Path(clips) / "split.json").read_text())
    if held_out != split:
        sys.exit(f"{clips} holds the validation speakers of {split}, the model held out those of "
                 f"{held_out}: make them with val_clips.py --seed/--val-fraction of the model's run")
