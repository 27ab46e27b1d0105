"""Training streams: seconds of a home's audio with commands in it, and a target for every frame.

The clip model heard one-second clips from a zero state; the streaming head runs one state
through everything a microphone hears. So it learns from streams like that (issue 31): at
16 kHz, a stream of drawn length holds items placed one after another with drawn pauses between
them, each drawn among

- a command word (a Speech Commands clip of a training speaker),
- an unknown word (an _unknown_ clip),
- a piece of running read speech without any command word (negatives/speech/train, less the
  validation carve), cut anywhere in an utterance,
- a piece of a household sound (negatives/sounds/train, less the carve);

at a talker level drawn per stream and a level per item around it (measured on the item's loud
part, data/words.py, not on the silence around it), the items optionally in a synthetic room,
under background noise (_background_noise_) at a drawn SNR below the talker. The batch is then
heard at a drawn rate and speed (data/augment.py, as the clip training draws them).

Targets, per frame (`frame_targets`), with a word's start and end from its energy:
- the command's class from `span_before` before the word's end to `span_after` after it: the
  word is complete there (0.1 s before the end, since the energy end runs a frame or two past
  what the ear hears as the end; up to 0.3 s after, the detection latency we allow), and the
  loss takes the span's best frame only (stream_loss.py), so the model may fire anywhere in it;
- ignored inside the word before that span: a causal model cannot yet know "left" from "leg";
- "_nothing_" everywhere else, unknown words and negative speech included.

Every draw comes from a numpy Generator seeded by (seed, batch index, stream index): a batch is
the same whenever it is made, so a resumed phase sees the streams an uninterrupted one would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch

from s4train.data.augment import AugmentConfig, Augmenter, reverberate
from s4train.data.clips import SAMPLE_RATE, Item, load_audio
from s4train.data.resample import resample
from s4train.data.words import word_span
from s4train.ops.frames import frame_bounds
from s4train.vocabulary import COMMANDS, NOTHING, STREAM_LABELS

IGNORE = -100           # a frame the loss leaves out (cross_entropy's ignore_index)
KINDS = ("command", "unknown", "speech", "sound")


@dataclass
class StreamConfig:
    """The [stream] table of a recipe: the streams, their targets, the loss's weights and the
    event rule of validation (events.py)."""
    negatives: str = "../../../../shared/data/negatives"   # relative to the recipe
    carve: str = ""                  # the negatives' validation carve ("": the committed one)
    seconds_min: float = 6.0         # a batch's streams all last one drawn length
    seconds_max: float = 10.0
    lead_max: float = 1.0            # background only before the first item, 0..this (s)
    pause_min: float = 0.4           # between items (s); at least span_after
    pause_max: float = 1.5
    kinds: dict = field(default_factory=lambda: {"command": 0.4, "unknown": 0.15, "speech": 0.3,
                                                 "sound": 0.15})   # draw weights of the items
    piece_min: float = 0.8           # pieces cut from negative speech and sounds (s)
    piece_max: float = 4.0
    level_min_db: float = -35.0      # the talker's level per stream, dBFS RMS of the loud part
    level_max_db: float = -15.0
    item_db: float = 4.0             # each item +-this around it
    sound_db: float = 8.0            # a sound +-this around it
    noise_prob: float = 0.9          # background noise in a stream
    snr_min: float = 0.0             # its level, dB below the talker's
    snr_max: float = 25.0
    room_prob: float = 0.3           # the items in a synthetic room (augment.reverberate)
    span_before: float = 0.1         # the target span around a command's energy end (s)
    span_after: float = 0.3
    nothing_weight: float = 1.0      # the loss: weight of the _nothing_ frames' mean cross-entropy
    head_window_frames: int = 1      # the frame head's logits: the mean of the last this many frames'
    val_streams: int = 48            # validation: fixed streams of validation speakers and carve
    val_seconds: float = 10.0
    val_batch_size: int = 8          # validation streams a forward pass (a clip batch is larger)
    threshold: float = 0.5           # events: the engine's rule (events.py, EventRule)
    smoothing_s: float = 0.05
    activity_floor: float = 0.2
    peak_hold_s: float = 0.1
    release_s: float = 0.3
    match_after_s: float = 0.6       # an event matches a word from its start to end + this

    def __post_init__(self):
        if set(self.kinds) - set(KINDS) or not any(v > 0 for v in self.kinds.values()):
            raise ValueError(f"stream.kinds: weights of {', '.join(KINDS)}, some positive")
        if not 0 < self.seconds_min <= self.seconds_max or not 0 < self.piece_min <= self.piece_max:
            raise ValueError("stream: need 0 < seconds_min <= seconds_max and 0 < piece_min <= piece_max")
        if self.pause_min < self.span_after or self.pause_max < self.pause_min:
            raise ValueError("stream: need span_after <= pause_min <= pause_max (spans end before the next item)")


@dataclass
class Clip:
    audio: np.ndarray    # float32 at 16 kHz
    path: str
    label: int = -1      # index in STREAM_LABELS of a command, else -1


@dataclass
class StreamSources:
    """What streams are made of, in memory: the ten commands' clips, unknown words, negative
    utterances and sounds, background noises."""
    commands: list[Clip]
    unknown: list[Clip]
    speech: list[Clip]
    sounds: list[Clip]
    noise: list[np.ndarray]

    def pool(self, kind: str) -> list[Clip]:
        return {"command": self.commands, "unknown": self.unknown, "speech": self.speech,
                "sound": self.sounds}[kind]

    def paths(self) -> set[str]:
        return {c.path for k in KINDS for c in self.pool(k)}


def load_sources(items: list[Item], speech_paths: list[str], sound_paths: list[str],
                 noise_dir: str) -> StreamSources:
    """Speech Commands `items` (commands and _unknown_; _silence_ left out: the background is the
    noise files) and the negatives' files, read once."""
    def clips(paths, label=-1):
        return [Clip(load_audio(p), p, label) for p in paths]

    commands = [Clip(load_audio(it.path), it.path, STREAM_LABELS.index(it.label))
                for it in items if it.label in COMMANDS]
    unknown = clips([it.path for it in items if it.label == "_unknown_"])
    noise = []
    if os.path.isdir(noise_dir):
        noise = [load_audio(os.path.join(noise_dir, f)) for f in sorted(os.listdir(noise_dir))
                 if f.endswith((".flac", ".wav"))]
    return StreamSources(commands, unknown, clips(speech_paths), clips(sound_paths), noise)


@dataclass
class Word:
    label: int           # index in STREAM_LABELS
    start: float         # s, its loud part (word_span)
    end: float


@dataclass
class Placed:
    kind: str
    start: int           # samples at 16 kHz
    end: int
    path: str


@dataclass
class Stream:
    wave: np.ndarray     # float32 at 16 kHz
    words: list[Word]    # the commands, in order
    placed: list[Placed]


def _level(x: np.ndarray) -> float:
    a, b = word_span(x)
    return float(np.sqrt(np.mean(np.square(x[a:b], dtype=np.float64)) + 1e-12))


def _piece(audio: np.ndarray, cfg: StreamConfig, rng: np.random.Generator) -> np.ndarray:
    """A cut of piece_min..piece_max s anywhere in `audio`, 10 ms fades (no clicks at the cuts)."""
    n = min(len(audio), int(rng.uniform(cfg.piece_min, cfg.piece_max) * SAMPLE_RATE))
    o = int(rng.integers(0, len(audio) - n + 1))
    x = audio[o:o + n].astype(np.float64)
    fade = min(160, n // 2)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    x[:fade] *= ramp
    x[n - fade:] *= ramp[::-1]
    return x


def _noise(noise: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    """n samples of one drawn noise from a drawn offset (repeated if shorter), unit RMS."""
    x = noise[int(rng.integers(len(noise)))].astype(np.float64)
    x = np.tile(x, -(-n // len(x)) + 1)
    o = int(rng.integers(0, len(x) - n + 1))
    x = x[o:o + n]
    return x / max(float(np.sqrt(np.mean(x ** 2))), 1e-6)


def synthesise(src: StreamSources, cfg: StreamConfig, rng: np.random.Generator, seconds: float) -> Stream:
    """One stream of `seconds` at 16 kHz (the module's doc says how)."""
    L = int(round(seconds * SAMPLE_RATE))
    kinds = [k for k in KINDS if cfg.kinds.get(k, 0) > 0 and src.pool(k)]
    weights = np.array([cfg.kinds[k] for k in kinds], dtype=np.float64)
    talker = rng.uniform(cfg.level_min_db, cfg.level_max_db)
    track = np.zeros(L)
    words, placed = [], []
    t = int(rng.uniform(0, cfg.lead_max) * SAMPLE_RATE)
    while kinds:
        kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
        pool = src.pool(kind)
        clip = pool[int(rng.integers(len(pool)))]
        x = clip.audio.astype(np.float64) if kind in ("command", "unknown") else _piece(clip.audio, cfg, rng)
        if t + len(x) > L:
            break
        spread = cfg.sound_db if kind == "sound" else cfg.item_db
        gain = 10 ** ((talker + rng.uniform(-spread, spread)) / 20) / _level(x)
        track[t:t + len(x)] += gain * x
        placed.append(Placed(kind, t, t + len(x), clip.path))
        if kind == "command":
            a, b = word_span(x)
            words.append(Word(clip.label, (t + a) / SAMPLE_RATE, (t + b) / SAMPLE_RATE))
        t += len(x) + int(rng.uniform(cfg.pause_min, cfg.pause_max) * SAMPLE_RATE)
    if cfg.room_prob > 0:
        g = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
        track = reverberate(torch.from_numpy(track)[None], cfg.room_prob, g)[0].numpy()
    if src.noise and rng.random() < cfg.noise_prob:
        snr = rng.uniform(cfg.snr_min, cfg.snr_max)
        track = track + _noise(src.noise, L, rng) * 10 ** ((talker - snr) / 20)
    peak = float(np.abs(track).max()) if L else 0.0
    if peak > 0.99:                  # scaled, not clipped: the levels' ratios stay as drawn
        track *= 0.99 / peak
    return Stream(track.astype(np.float32), words, placed)


def frame_targets(words: list[Word], n_frames: int, seconds_per_frame: float,
                  cfg: StreamConfig) -> tuple[np.ndarray, np.ndarray]:
    """(labels, spans), int64 [n_frames]: per frame (its centre's time in the stream) the class
    (a command in its span, IGNORE earlier inside the word, _nothing_ elsewhere) and the span's
    number (the word's index in `words`, -1 outside spans)."""
    centre = (np.arange(n_frames) + 0.5) * seconds_per_frame
    labels = np.full(n_frames, STREAM_LABELS.index(NOTHING), dtype=np.int64)
    spans = np.full(n_frames, -1, dtype=np.int64)
    for i, w in enumerate(words):
        labels[(centre >= w.start) & (centre < w.end - cfg.span_before)] = IGNORE
        span = (centre >= w.end - cfg.span_before) & (centre < w.end + cfg.span_after)
        labels[span] = w.label
        spans[span] = i
    return labels, spans


@dataclass
class StreamBatch:
    x: torch.Tensor          # [B, L] float32 at f_in
    f_in: int
    declared: float          # the rate the model is told (speed perturbation)
    labels: torch.Tensor     # [B, F] int64
    spans: torch.Tensor      # [B, F] int64, numbered across the batch, -1 outside spans
    streams: list[Stream]


def make_batch(streams: list[Stream], f_in: int, declared: float, frame_seconds: float,
               cfg: StreamConfig) -> StreamBatch:
    """Streams of one length heard at f_in, declared at `declared`, with their frame targets. Frame
    k holds the declared time k*tau, that is the stream's time k*tau*declared/f_in."""
    x = resample(torch.from_numpy(np.stack([s.wave for s in streams])), SAMPLE_RATE, f_in)
    n_frames = len(frame_bounds(x.shape[-1], frame_seconds, declared)) - 1
    labels, spans, offset = [], [], 0
    for s in streams:
        lab, sp = frame_targets(s.words, n_frames, frame_seconds * declared / f_in, cfg)
        spans.append(np.where(sp >= 0, sp + offset, -1))
        labels.append(lab)
        offset += len(s.words)
    return StreamBatch(x, f_in, declared, torch.from_numpy(np.stack(labels)),
                       torch.from_numpy(np.stack(spans)), streams)


class StreamBatches:
    """Batch i of a phase, the same whenever it is made (the module's doc)."""

    def __init__(self, src: StreamSources, cfg: StreamConfig, augment: AugmentConfig,
                 frame_seconds: float, seed: int):
        self.src, self.cfg, self.augment, self.tau, self.seed = src, cfg, augment, frame_seconds, seed

    def batch(self, index: int, size: int) -> StreamBatch:
        rng = np.random.default_rng([self.seed, index])
        seconds = rng.uniform(self.cfg.seconds_min, self.cfg.seconds_max)
        streams = [synthesise(self.src, self.cfg, np.random.default_rng([self.seed, index, b]), seconds)
                   for b in range(size)]
        draws = Augmenter(self.augment, [], None, "cpu", torch.Generator().manual_seed(int(rng.integers(2 ** 62))))
        f_in, declared = draws.pick_rates()
        return make_batch(streams, f_in, declared, self.tau, self.cfg)


def validation_streams(src: StreamSources, cfg: StreamConfig, seed: int) -> list[Stream]:
    """The fixed validation streams (val_streams of val_seconds at 16 kHz), from validation
    speakers and the negatives' carve only (`src`)."""
    return [synthesise(src, cfg, np.random.default_rng([seed, 7919, i]), cfg.val_seconds)
            for i in range(cfg.val_streams)]
