"""What a clip phase (loop.py) and a stream phase (stream_loop.py) keep alike: the phase's
folder and seeds, its checkpoint (OUT_DIR/last.pt, resumed if there), the best weights so far
(OUT_DIR/best.safetensors, rewritten whenever an epoch improves on them) and, at the end, the
model file of the best weights with OUT_DIR/metrics.json. The two differ only in the
validation score they keep the best by (PhaseBook's score_key, score_label, best_epoch) and in
how the final model file is written (its export).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from collections.abc import Callable

import numpy as np
import torch

from s4train.checkpoint import load_checkpoint, require_same_run, save_checkpoint
from s4train.evaluate import count_parameters
from s4train.export import export_model


def log(msg: str) -> None:
    print(f"{msg} [{time.strftime('%H:%M:%S', time.gmtime())}]", flush=True)


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state(mask_gen: torch.Generator) -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "mask": mask_gen.get_state()}


def set_rng_state(state: dict, mask_gen: torch.Generator) -> None:
    mask_gen.set_state(state["mask"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def write_model(model, path: str, trained_on: dict, metrics: dict) -> None:
    """`model` as a model file, written beside `path` and renamed (atomically)."""
    export_model(model, path + ".tmp", trained_on=trained_on, metrics=metrics)
    os.replace(path + ".tmp", path)


def export_weights(model, state, path: str, trained_on: dict, metrics: dict) -> None:
    """Write `state` as a model file (atomically), the model's own weights kept."""
    current = {k: v.detach().clone() for k, v in model.state_dict().items()}
    was_training = model.training
    model.load_state_dict(state)
    model.eval()
    write_model(model, path, trained_on, metrics)
    model.load_state_dict(current)
    model.train(was_training)


def open_phase(recipe, phase, what: str = "phase") -> tuple[torch.device, str]:
    """Seed the generators, set the thread count, make the phase's folder: (device, folder)."""
    run = recipe.run
    seed_all(recipe.data.seed)
    if run.threads:
        torch.set_num_threads(run.threads)
    device = torch.device(run.device)
    out_dir = recipe.in_runs(phase.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    log(f"{what} {phase.name}: {out_dir}")
    return device, out_dir


@dataclasses.dataclass
class PhaseBook:
    """The checkpoint and model files of one phase in `out_dir`. `trained_on` is kept by
    reference: what the phase adds to it later is written too."""
    out_dir: str
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    mask_gen: torch.Generator
    learns: dict                            # what resuming must match (require_same_run)
    trained_on: dict
    score_key: str                          # the score's name in the metrics, e.g. "val_mean_acc"
    score_label: str                        # and in the log, e.g. "val mean"
    best_epoch: Callable[[list], dict]      # the history's entry of the best score
    export: Callable                        # writes the final model file: (model, path, trained_on, metrics)

    @property
    def ckpt_path(self) -> str:
        return os.path.join(self.out_dir, "last.pt")

    @property
    def best_path(self) -> str:
        return os.path.join(self.out_dir, "best.safetensors")

    def resume(self, device, fresh_best: float) -> tuple[int, int, float, dict | None, list]:
        """(start epoch, step, best score, best weights, history): the checkpoint's, model,
        optimiser, scheduler and generators restored from it, if there is one (of this run
        only); else those of a fresh start, whose best score is `fresh_best`."""
        if not os.path.exists(self.ckpt_path):
            return 0, 0, fresh_best, None, []
        ck = load_checkpoint(self.ckpt_path, device)
        require_same_run(self.ckpt_path, ck.get("learns", {}), self.learns)
        self.model.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"], self.mask_gen)
        log(f"resumed from {self.ckpt_path} at epoch {ck['epoch']}, step {ck['step']}")
        return ck["epoch"], ck["step"], ck["best_val"], ck["best_model"], ck["history"]

    def end_epoch(self, epoch: int, step: int, best: float, best_state, history: list,
                  improved: bool) -> None:
        """After epoch `epoch` (0-based): the checkpoint, and the best weights' file if they improved."""
        model = self.model
        save_checkpoint(self.ckpt_path, model=model.state_dict(), optimizer=self.opt.state_dict(),
                        scheduler=self.sched.state_dict(), epoch=epoch + 1, step=step, best_val=best,
                        best_model=best_state, history=history, model_config=model.cfg.to_dict(),
                        learns=self.learns, trained_on=self.trained_on, rng=rng_state(self.mask_gen))
        if improved:
            h = self.best_epoch(history)
            export_weights(model, best_state, self.best_path, self.trained_on,
                           {self.score_key: best, "epoch": h["epoch"], "val": h["val"],
                            "parameters": count_parameters(model)})
            log(f"exported {self.best_path} ({self.score_label} {best:.4f})")

    def finish(self, out: str, epochs: int, best: float, best_state, history: list) -> dict:
        """The best weights as the model file `out`, the metrics and history in metrics.json;
        returns the metrics. The model is left on the CPU with the best weights, in eval mode."""
        model = self.model
        model.load_state_dict(best_state)
        model.eval()
        metrics = {self.score_key: best, "epochs": epochs, "parameters": count_parameters(model),
                   "val": self.best_epoch(history)["val"]}
        self.export(model.cpu(), out, self.trained_on, metrics)
        with open(os.path.join(self.out_dir, "metrics.json"), "w") as f:
            json.dump({"metrics": metrics, "history": history}, f, indent=1)
        log(f"exported {out}")
        return metrics
