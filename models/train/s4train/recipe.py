"""A recipe: every choice of a training run, in one TOML file (recipes/default.toml is the
shipped model's).

    [run]        how the run is carried out: threads, device, validation rates, logging, and
                 `runs`, the folder that holds the run folders
    [data]       the clips, the seed (it picks the validation speakers and seeds every draw),
                 the share of speakers held out, subsets for small runs
    [teacher]    the speech-embedding teacher: its copies of the clips and its head
    [augment]    data.augment.AugmentConfig: what the clips go through, the drawn rates and
                 speeds, the masks on the log frames
    [model]      models.stages.StagesConfig, with [[model.frame_stages]] tables
    [stream]     data.streams.StreamConfig: the training streams of `kind = "stream"` phases,
                 their targets and loss weights, the validation streams and event rule
    [training]   what every phase shares unless it says otherwise
    [[phases]]   the phases in order, each a PhaseSettings; `init_from` names an earlier phase,
                 whose best weights it starts from; `kind` says what it trains: "clip" (the clip
                 head on the teacher's clips, loop.py) or "stream" (a frame head on synthesised
                 streams, stream_loop.py)

A relative path is relative to the recipe's folder, except the teacher's folders and a phase's
`out_dir`, which are relative to `run.runs`. Omitted settings take the defaults below; unknown
ones are refused. `--set KEY=VALUE` (a dotted key, e.g. `phases.1.epochs=3` or
`model.frame_stages.0.d_model=128`; VALUE in TOML syntax) overrides one setting for an
experiment. The model file records the resolved recipe (`trained_on.recipe`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field

from s4train.data.augment import AugmentConfig
from s4train.data.streams import StreamConfig
from s4train.models.stages import FrameStageConfig, StagesConfig

# What the data and the phase's kind decide (a stream phase's head is a frame head with the
# stream labels, its window the [stream] table's), not the recipe.
DERIVED_MODEL_FIELDS = ("labels", "sample_rate", "clip_seconds", "input_mean", "input_std", "head_pooling",
                        "head_window_frames")


@dataclass
class RunSettings:
    runs: str = "../runs"
    threads: int = 0                  # torch CPU threads (0: PyTorch's default)
    device: str = "cpu"
    eval_rates: list = field(default_factory=lambda: [16000, 8000])
    eval_batch_size: int = 64
    log_every: int = 50


@dataclass
class DataSettings:
    clips: str = "../../../../shared/data/speech-commands"
    seed: int = 1112
    val_fraction: float = 0.1
    max_train: int = 0                # at most this many training clips (0: all)
    max_val: int = 0                  # at most this many validation clips (0: all)


@dataclass
class TeacherSettings:
    work_dir: str = "oww"             # the wheel, the ONNX files, the embeddings, the head
    cache_dir: str = "oww-cache"      # what the student reads (teacher/cache.py)
    copies: int = 3                   # augmented copies per training clip
    pad_ms: float = 500.0             # zeros added on each side of a clip
    threads: int = 1                  # onnxruntime intra-op and torch threads
    epochs: int = 40
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    channels: int = 128
    dropout: float = 0.3
    mixup: float = 0.0                # > 0: the head trains on mixed pairs, lambda ~ Beta(a, a)


@dataclass
class PhaseSettings:
    name: str
    out_dir: str
    epochs: int
    lr: float = 0.004
    ssm_lr: float = 0.001             # Lambda, B, log Delta (and the bank): no weight decay
    weight_decay: float = 0.05
    warmup_steps: int = 100
    label_smoothing: float = 0.1
    batch_size: int = 32
    kd_alpha: float = 0.7             # weight of the teacher's soft targets (0..1]
    kd_temperature: float = 2.0
    freeze_front_end_epochs: int = 0  # the bank frozen (not trained) for the first K epochs
    frozen_frames: int = 0            # N > 0: train on the frozen bank's stored log frames at N
                                      # drawn (rate, speed) pairs (frame_cache.py)
    init_from: str = ""               # an earlier phase: start from its best weights
    export: str = ""                  # model file written at the end ("": OUT_DIR/model.safetensors)
    kind: str = "clip"                # "clip" | "stream"
    init_model: str = ""              # stream: start from this model file (relative to the recipe)
    steps_per_epoch: int = 0          # stream: batches of fresh streams per epoch
    hardest_weight: float = 0.0       # stream: weight of each stream's hardest _nothing_ frames
    hardest_frames: int = 10          # (stream_loss.py): 0 while learning the words, > 0 after


# Settings only a stream phase reads: a clip phase's record leaves them out, so that what it
# learns from (and the checkpoints it resumes) did not change when stream phases came.
STREAM_ONLY = ("kind", "init_model", "steps_per_epoch", "hardest_weight", "hardest_frames")


# Phase settings a resumed phase may change: how long it runs and where it writes the result.
RESUME_MAY_CHANGE = ("epochs", "export")


def _build(cls, table: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - names)
    if unknown:
        raise SystemExit(f"recipe: unknown setting(s) in {where}: {', '.join(unknown)}")
    try:
        return cls(**table)
    except (TypeError, ValueError) as e:
        raise SystemExit(f"recipe: {where}: {e}") from e


def apply_override(tree: dict, assignment: str) -> None:
    """KEY=VALUE (dotted key, VALUE in TOML syntax, else a string) set in the recipe's tables."""
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise SystemExit(f"--set {assignment!r}: give KEY=VALUE")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    *path, last = key.strip().split(".")
    node = tree
    for part in path:
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise SystemExit(f"--set {key}: no item {part!r} (there are {len(node)})")
            node = node[int(part)]
        else:
            node = node.setdefault(part, {})
    if isinstance(node, list):
        raise SystemExit(f"--set {key}: a whole item cannot be replaced")
    node[last] = value


@dataclass
class Recipe:
    path: str
    run: RunSettings
    data: DataSettings
    teacher: TeacherSettings
    augment: AugmentConfig
    model: StagesConfig
    phases: list
    stream: StreamConfig = field(default_factory=StreamConfig)

    @classmethod
    def load(cls, path: str, overrides: list[str] = ()) -> Recipe:
        with open(path, "rb") as f:
            tree = tomllib.load(f)
        for assignment in overrides:
            apply_override(tree, assignment)
        return cls.from_tree(path, tree)

    @classmethod
    def from_tree(cls, path: str, tree: dict) -> Recipe:
        tree = dict(tree)
        sections = ("run", "data", "teacher", "augment", "model", "stream", "training", "phases")
        unknown = sorted(set(tree) - set(sections))
        if unknown:
            raise SystemExit(f"recipe {path}: unknown table(s) {', '.join(unknown)}")
        model = dict(tree.get("model", {}))
        derived = sorted(set(model) & set(DERIVED_MODEL_FIELDS))
        if derived:
            raise SystemExit(f"recipe {path}: model.{derived[0]} is not a choice (the data or the phase's kind decides it)")
        stages = [_build(FrameStageConfig, s, f"model.frame_stages.{i}")
                  for i, s in enumerate(model.pop("frame_stages", [{}]))]
        shared = tree.get("training", {})
        phases = [_build(PhaseSettings, {**shared, **p}, f"phases.{i}")
                  for i, p in enumerate(tree.get("phases", []))]
        recipe = cls(path=path, run=_build(RunSettings, tree.get("run", {}), "run"),
                     data=_build(DataSettings, tree.get("data", {}), "data"),
                     teacher=_build(TeacherSettings, tree.get("teacher", {}), "teacher"),
                     augment=_build(AugmentConfig, tree.get("augment", {}), "augment"),
                     stream=_build(StreamConfig, tree.get("stream", {}), "stream"),
                     model=_build(StagesConfig, {**model, "frame_stages": stages}, "model"),
                     phases=phases)
        recipe.check()
        return recipe

    def check(self) -> None:
        """Refuse settings that cannot describe a run."""
        a, names = self.augment, [p.name for p in self.phases]
        if not self.phases:
            raise SystemExit(f"recipe {self.path}: no [[phases]]")
        if len(set(names)) != len(names):
            raise SystemExit(f"recipe {self.path}: phase names repeat: {names}")
        if not 0 < a.speed_min <= a.speed_max:
            raise SystemExit(f"augment: need 0 < speed_min <= speed_max, got {a.speed_min}, {a.speed_max}")
        if not self.run.eval_rates:
            raise SystemExit("run.eval_rates: give at least one rate")
        if not self.teacher.mixup >= 0:
            raise SystemExit(f"teacher.mixup must be 0 (off) or positive, not {self.teacher.mixup}")
        kinds = {p.name: p.kind for p in self.phases}
        for i, p in enumerate(self.phases):
            if p.kind not in ("clip", "stream"):
                raise SystemExit(f"phase {p.name}: kind {p.kind!r} is not \"clip\" or \"stream\"")
            if p.kind == "clip" and (p.init_model or p.steps_per_epoch or kinds.get(p.init_from) == "stream"):
                raise SystemExit(f"phase {p.name}: a clip phase starts from a clip phase, and has no "
                                 f"init_model or steps_per_epoch")
            if p.kind == "stream" and (p.steps_per_epoch <= 0 or p.frozen_frames or (p.init_from and p.init_model)
                                       or p.hardest_weight < 0 or p.hardest_frames < 1):
                raise SystemExit(f"phase {p.name}: a stream phase needs steps_per_epoch > 0, no "
                                 f"frozen_frames, at most one of init_from and init_model, hardest_weight "
                                 f">= 0 and hardest_frames >= 1")
            if not 0 < p.kd_alpha <= 1 or p.kd_temperature <= 0:
                raise SystemExit(f"phase {p.name}: kd_alpha must be in (0, 1] and kd_temperature > 0, "
                                 f"got {p.kd_alpha}, {p.kd_temperature}")
            if p.frozen_frames and p.freeze_front_end_epochs < p.epochs:
                raise SystemExit(f"phase {p.name}: frozen_frames needs freeze_front_end_epochs at "
                                 f"least epochs (the stored frames are of a frozen bank)")
            if p.init_from and p.init_from not in names[:i]:
                raise SystemExit(f"phase {p.name}: init_from {p.init_from!r} is not an earlier phase")

    # ---- paths ----
    def from_recipe(self, path: str) -> str:
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.path)), path))

    @property
    def data_dir(self) -> str:
        return self.from_recipe(self.data.clips)

    @property
    def runs_dir(self) -> str:
        return self.from_recipe(self.run.runs)

    def in_runs(self, path: str) -> str:
        return os.path.normpath(os.path.join(self.runs_dir, path))

    def phase(self, name: str) -> PhaseSettings:
        return next(p for p in self.phases if p.name == name)

    def export_path(self, phase: PhaseSettings) -> str:
        if phase.export:
            return self.from_recipe(phase.export)
        return os.path.join(self.in_runs(phase.out_dir), "model.safetensors")

    # ---- records ----
    def to_dict(self) -> dict:
        """Every setting, defaults filled in (the recipe as a run reads it)."""
        model = dataclasses.asdict(self.model)
        for k in DERIVED_MODEL_FIELDS:
            model.pop(k)
        d = {"run": dataclasses.asdict(self.run), "data": dataclasses.asdict(self.data),
             "teacher": dataclasses.asdict(self.teacher),
             "augment": dataclasses.asdict(self.augment), "model": model,
             "phases": [self._phase_dict(p) for p in self.phases]}
        if any(p.kind == "stream" for p in self.phases):
            d["stream"] = dataclasses.asdict(self.stream)
        return d

    @staticmethod
    def _phase_dict(phase: PhaseSettings) -> dict:
        d = dataclasses.asdict(phase)
        return d if phase.kind == "stream" else {k: v for k, v in d.items() if k not in STREAM_ONLY}

    def learns(self, phase: PhaseSettings) -> dict:
        """What a phase learns from (a checkpoint of other such settings is not resumed):
        everything but how the run is carried out and the phase's length and output."""
        d = self.to_dict()
        d.pop("run")
        if phase.kind == "clip":
            d.pop("stream", None)
        d["phases"] = {k: v for k, v in self._phase_dict(phase).items() if k not in RESUME_MAY_CHANGE}
        return d
