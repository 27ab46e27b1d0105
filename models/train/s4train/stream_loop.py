"""A stream phase (`kind = "stream"`): the streaming head trained on synthesised streams.

It starts from given weights, an earlier phase's best (`init_from`) or a model file
(`init_model`, e.g. the shipped clip model): everything but the head is kept, and a clip head's
decoder becomes a frame head over the stream labels (the ten commands, then _nothing_). Each
step is a batch of fresh streams (data/streams.py, drawn from the step's number: a resumed
phase sees the batches an uninterrupted one would), the loss max-pooling over command spans and
_nothing_ elsewhere (stream_loss.py). After each epoch the weights are scored on fixed
validation streams of the validation speakers and the negatives' validation carve (stream_validation.py);
the best are kept and exported, checkpoints and resume as in a clip phase (phase_book.py).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time

import torch

from s4train.checkpoint import starting_weights
from s4train.data.augment import FrameMask
from s4train.data.clips import SAMPLE_RATE, input_stats, load_clips, require_same_held_out, speaker_split
from s4train.data.negatives import VALIDATION_CARVE, split_train
from s4train.data.streams import StreamBatches, load_sources, validation_streams
from s4train.evaluate import count_parameters
from s4train.export import load_model
from s4train.loop import cosine_warmup
from s4train.models.stages import StagesConfig, StagesModel, param_groups
from s4train.phase_book import PhaseBook, log, open_phase, write_model
from s4train.stream_loss import max_pool_loss
from s4train.stream_validation import best_stream_epoch, evaluate_streams, stream_score
from s4train.vocabulary import LABELS, NOTHING, STREAM_LABELS

NEGATIVES_SOURCES = ("speechocean762 (Zhang et al., 2021; OpenSLR 101), "
                     "ESC-50 (Piczak, 2015; CC0 / CC BY clips)")


def frame_head(cfg: StagesConfig, state: dict, dropout: float, window: int) -> StagesModel:
    """A network with `state`'s weights and a frame head over STREAM_LABELS, its logits the mean
    of the last `window` frames' (StagesConfig.head_window_frames). A clip head's decoder
    rows of the ten commands are kept (the clip logits were the mean of exactly these per frame,
    so the start is the clip model's evidence, frame by frame), _nothing_ starts as the mean of
    its _unknown_ and _silence_ rows; a frame head's is kept whole."""
    new = dataclasses.replace(cfg, head_pooling="frame", labels=list(STREAM_LABELS), dropout=dropout,
                              head_window_frames=window)
    model = StagesModel(new)
    if cfg.head_pooling == "frame" and list(cfg.labels) == STREAM_LABELS:
        model.load_state_dict(state)
        return model
    body = {k: v for k, v in state.items() if not k.startswith("decoder.")}
    model.load_state_dict(body, strict=False)
    old = list(cfg.labels)
    rest = [old.index(lab) for lab in ("_unknown_", "_silence_") if lab in old]
    with torch.no_grad():
        for i, lab in enumerate(STREAM_LABELS):
            rows = [old.index(lab)] if lab in old else rest
            if rows:
                model.decoder.weight[i] = state["decoder.weight"][rows].mean(0)
                model.decoder.bias[i] = state["decoder.bias"][rows].mean(0)
    return model


def starting_model(recipe, phase) -> tuple[StagesModel, dict | None]:
    """The phase's network before training, and where its weights came from (None: fresh)."""
    data, dropout, window = recipe.data, recipe.model.dropout, recipe.stream.head_window_frames
    if phase.init_from:
        source = os.path.join(recipe.in_runs(recipe.phase(phase.init_from).out_dir), "last.pt")
        cfg, state, val, trained_on = starting_weights(source, data, dropout)
        return frame_head(cfg, state, dropout, window), {"phase": phase.init_from, "val": val, "trained_on": trained_on}
    if phase.init_model:
        path = recipe.from_recipe(phase.init_model)
        m, meta = load_model(path, torch.float32)
        require_same_held_out(path, meta.get("trained_on", {}), data)
        return (frame_head(m.cfg, m.state_dict(), dropout, window),
                {"model_file": phase.init_model, "metrics": meta.get("metrics", {}),
                 "trained_on": meta.get("trained_on", {})})
    return None, None


def load_stream_sources(recipe):
    """(training sources, validation sources, the clip split's input statistics, counts)."""
    s, data = recipe.stream, recipe.data
    tr_items, va_items = speaker_split(recipe.data_dir, data)
    carve = recipe.from_recipe(s.carve) if s.carve else VALIDATION_CARVE
    neg_train, neg_val = split_train(recipe.from_recipe(s.negatives), carve)

    def of(negs, kind):
        return [n.path for n in negs if n.kind == kind]

    noise = os.path.join(recipe.data_dir, "_background_noise_")
    train = load_sources(tr_items, of(neg_train, "speech"), of(neg_train, "sound"), noise)
    val = load_sources(va_items, of(neg_val, "speech"), of(neg_val, "sound"), noise)
    counts = {"train_items": len(tr_items), "val_items": len(va_items), "negatives_train": len(neg_train),
              "negatives_val": len(neg_val), "carve": os.path.relpath(carve, recipe.from_recipe("."))}
    return train, val, tr_items, counts


def train_stream_phase(recipe, phase) -> dict:
    """Run (or resume, or only export, if finished) the stream phase `phase`; returns its metrics."""
    data, run, seed, s = recipe.data, recipe.run, recipe.data.seed, recipe.stream
    device, out_dir = open_phase(recipe, phase, "stream phase")
    t0 = time.time()
    train_src, val_src, tr_items, counts = load_stream_sources(recipe)
    val = validation_streams(val_src, s, seed)
    log(f"streams from {len(train_src.commands)} commands, {len(train_src.unknown)} unknown, "
        f"{len(train_src.speech)} utterances, {len(train_src.sounds)} sounds; validation "
        f"{len(val)} x {s.val_seconds:g} s ({time.time() - t0:.1f}s)")

    model, init = starting_model(recipe, phase)
    if model is None:
        mean, std = input_stats(load_clips(tr_items, LABELS)[0])
        cfg = StagesConfig.from_dict({**recipe.model.to_dict(), "labels": list(STREAM_LABELS),
                                      "sample_rate": SAMPLE_RATE, "clip_seconds": 1.0,
                                      "input_mean": mean, "input_std": std, "head_pooling": "frame",
                                      "head_window_frames": s.head_window_frames})
        model = StagesModel(cfg, seed=seed)
    cfg = model.cfg
    model.to(device)
    opt = torch.optim.AdamW(param_groups(model, phase.lr, phase.weight_decay, phase.ssm_lr),
                            lr=phase.lr, weight_decay=phase.weight_decay)
    total_steps = phase.steps_per_epoch * phase.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: cosine_warmup(i, phase.warmup_steps, total_steps))
    mask_gen = torch.Generator().manual_seed(seed + 13)
    model.frame_mask = FrameMask(recipe.augment, mask_gen)
    log(f"model: {count_parameters(model)} parameters, head {cfg.head_pooling} over "
        f"{cfg.head_window_frames} frames, labels {cfg.labels}")

    trained_on = {"dataset": "speech-commands (shared/data) and negatives (shared/data)",
                  "licence": "Speech Commands, Pete Warden, CC BY 4.0; negatives: " + NEGATIVES_SOURCES,
                  "seed": seed, "val_fraction": data.val_fraction, "phase": phase.name, "kind": "stream",
                  "recipe_file": os.path.basename(recipe.path), "recipe": recipe.to_dict(), **counts}
    if init is not None:
        trained_on["init_from"] = init
    learns = {"recipe": recipe.learns(phase), "init_from": init}

    book = PhaseBook(out_dir, model, opt, sched, mask_gen, learns, trained_on,
                     "val_stream_score", "val score", best_stream_epoch, write_model)
    start_epoch, step, best, best_state, history = book.resume(device, fresh_best=-math.inf)

    batches = StreamBatches(train_src, s, recipe.augment, cfg.frame_seconds, seed + 101)
    nothing = STREAM_LABELS.index(NOTHING)
    for epoch in range(start_epoch, phase.epochs):
        model.train()
        model.set_front_end_trainable(epoch >= phase.freeze_front_end_epochs)
        t_ep, run_loss = time.time(), 0.0
        for b in range(phase.steps_per_epoch):
            batch = batches.batch(step, phase.batch_size)
            logits = model(batch.x.to(device), step_scale=cfg.sample_rate / batch.declared)
            loss, parts = max_pool_loss(logits, batch.labels.to(device), batch.spans.to(device), nothing,
                                        s.nothing_weight, phase.hardest_weight, phase.hardest_frames)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if not math.isfinite(loss.item()):
                raise SystemExit(f"non-finite loss at step {step}")
            run_loss += loss.item()
            if step % run.log_every == 0:
                log(f"epoch {epoch + 1} step {step} loss {run_loss / (b + 1):.4f} (span {parts['span']:.3f} "
                    f"x{parts['spans']}, nothing {parts['nothing']:.3f}"
                    + (f", hardest {parts['hardest']:.3f}" if "hardest" in parts else "")
                    + f") lr {sched.get_last_lr()[0]:.2e} "
                    f"rate {batch.f_in} (as {batch.declared:.0f}) {(time.time() - t_ep) / (b + 1):.2f}s/step")
        t_train, t_ev = time.time() - t_ep, time.time()
        figures = evaluate_streams(model, val, run.eval_rates, s, device, s.val_batch_size)
        t_eval = time.time() - t_ev
        history.append({"epoch": epoch + 1, "train_loss": run_loss / phase.steps_per_epoch, "val": figures,
                        "steps": phase.steps_per_epoch, "train_s": t_train, "eval_s": t_eval})
        improved = stream_score(figures) > best
        if improved:
            best = stream_score(figures)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        log(f"epoch {epoch + 1}/{phase.epochs} train_loss {run_loss / phase.steps_per_epoch:.4f} val "
            + " ".join(f"{r}: score {v['score']:.3f} matched {v['matched']} wrong {v['wrong']} missed "
                       f"{v['missed']} fa/h {v['false_alarms_per_hour']:.1f} nothing-acc {v['nothing_accuracy']:.3f}"
                       for r, v in figures.items())
            + f" best {best:.4f} (train {t_train:.0f}s, val {t_eval:.0f}s)")
        book.end_epoch(epoch, step, best, best_state, history, improved)

    return book.finish(recipe.export_path(phase), phase.epochs, best, best_state, history)
