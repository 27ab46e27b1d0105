"""A training phase: the stages network distilled from the teacher cache, validated at the
recipe's rates after every epoch, checkpointed (resumable), exported at the end.

Each epoch every training clip draws one of its cached copies; the student hears it at a drawn
input rate and speed (data.augment), or, with `frozen_frames`, as the frozen bank's stored log
frames at one of N drawn (rate, speed) pairs (frame_cache.py). Validation speakers are carved
out of train/ (never test/); the weights with the best mean validation accuracy over the rates
are kept and exported.
"""

from __future__ import annotations

import json
import math
import os
import time

import torch

from s4train.checkpoint import starting_weights
from s4train.data.augment import Augmenter, FrameMask
from s4train.data.clips import SAMPLE_RATE, input_stats, load_clips, speaker_split, subsample
from s4train.distill import distillation_loss
from s4train.evaluate import best_epoch, count_parameters, evaluate, mean_accuracy
from s4train.export import export_model
from s4train.frame_cache import FrameCache, draw_pairs
from s4train.models.stages import StagesConfig, StagesModel, param_groups
from s4train.phase_book import PhaseBook, log, open_phase
from s4train.teacher.cache import TeacherCache
from s4train.vocabulary import LABELS


def cosine_warmup(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / max(1, warmup)
    p = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


def train_phase(recipe, phase) -> dict:
    """Run (or resume, or only export, if finished) `phase` of `recipe`; returns its metrics."""
    data, run, seed = recipe.data, recipe.run, recipe.data.seed
    device, out_dir = open_phase(recipe, phase)
    t0 = time.time()
    tr_items, va_items = speaker_split(recipe.data_dir, data)
    va_items = subsample(va_items, data.max_val, seed + 1)
    xva, yva = load_clips(va_items, LABELS)
    mean, std = input_stats(load_clips(tr_items, LABELS)[0])
    log(f"data: {len(tr_items)} train / {len(xva)} val clips, mean {mean:.3g} std {std:.3g} "
        f"({time.time() - t0:.1f}s)")

    cfg = StagesConfig.from_dict({**recipe.model.to_dict(), "labels": list(LABELS),
                                  "sample_rate": SAMPLE_RATE, "clip_seconds": 1.0,
                                  "input_mean": mean, "input_std": std})
    init = None
    if phase.init_from:
        source = os.path.join(recipe.in_runs(recipe.phase(phase.init_from).out_dir), "last.pt")
        cfg, init_state, init_val, init_trained_on = starting_weights(source, data, recipe.model.dropout)
        init = {"phase": phase.init_from, "val_mean_acc": init_val, "trained_on": init_trained_on}
    model = StagesModel(cfg, seed=seed).to(device)
    if init is not None:
        model.load_state_dict(init_state)
        log(f"initialised from the best weights of phase {phase.init_from} (val {init_val:.4f})")
    opt = torch.optim.AdamW(param_groups(model, phase.lr, phase.weight_decay, phase.ssm_lr),
                            lr=phase.lr, weight_decay=phase.weight_decay)
    cache_dir = recipe.in_runs(recipe.teacher.cache_dir)
    cache = TeacherCache(cache_dir)
    cache.check(data, LABELS, va_items)
    log(f"teacher cache {cache_dir}: {cache.clips} clips x {cache.n_copies} copies, alpha "
        f"{phase.kd_alpha}, T {phase.kd_temperature}")
    steps_per_epoch = max(1, cache.clips // phase.batch_size)
    total_steps = steps_per_epoch * phase.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: cosine_warmup(s, phase.warmup_steps, total_steps))
    log(f"model: {count_parameters(model)} parameters, {json.dumps(cfg.to_dict())}")
    mask_gen = torch.Generator().manual_seed(seed + 13)
    model.frame_mask = FrameMask(recipe.augment, mask_gen)

    trained_on = {"dataset": "speech-commands (shared/data)", "licence": "Speech Commands, Pete Warden, CC BY 4.0",
                  "seed": seed, "val_fraction": data.val_fraction, "train_clips": cache.clips,
                  "val_clips": len(xva), "phase": phase.name, "recipe_file": os.path.basename(recipe.path),
                  "recipe": recipe.to_dict(),
                  "teacher_cache": {"path": recipe.teacher.cache_dir, "copies": cache.n_copies,
                                    "clips": cache.clips, "teacher": cache.meta.get("teacher", "")}}
    if init is not None:       # the model file tells every phase that made it
        trained_on["init_from"] = init
    learns = {"recipe": recipe.learns(phase), "teacher_cache": trained_on["teacher_cache"],
              "init_from": init}

    book = PhaseBook(out_dir, model, opt, sched, mask_gen, learns, trained_on,
                     "val_mean_acc", "val mean", best_epoch, export_model)
    start_epoch, step, best, best_state, history = book.resume(device, fresh_best=-1.0)

    aug_gen = torch.Generator().manual_seed(seed + 7 + start_epoch)
    augment = Augmenter(recipe.augment, [], LABELS.index("_silence_"), device, aug_gen)
    frames = None
    if phase.frozen_frames:
        model.set_front_end_trainable(False)
        frames = FrameCache(os.path.join(out_dir, "frames"), model, cache,
                            draw_pairs(recipe.augment, phase.frozen_frames, seed + 29), log=log)
        trained_on["frozen_frames"] = [list(r) for r in frames.pairs]

    for epoch in range(start_epoch, phase.epochs):
        model.train()
        model.set_front_end_trainable(epoch >= phase.freeze_front_end_epochs)
        perm = torch.randperm(cache.clips)
        which = torch.randint(cache.n_copies, (cache.clips,))
        t_ep, run_loss, run_n = time.time(), 0.0, 0
        for b in range(steps_per_epoch):
            idx = perm[b * phase.batch_size:(b + 1) * phase.batch_size]
            if frames is not None:          # the stored log frames of a copy at a drawn pair
                pair = int(torch.randint(len(frames.pairs), (1,), generator=aug_gen))
                f_in, declared_rate = frames.pairs[pair]
                soft, yb = (t.to(device) for t in cache.targets(idx, which))
                logits = model.classify_log_frames(frames.batch(pair, idx, which).to(device))
            else:                           # a copy at a drawn rate, declared at a drawn speed
                xb, soft, yb = (t.to(device) for t in cache.batch(idx, which))
                xb, declared_rate = augment.to_rate(xb)
                f_in = xb.shape[-1]
                logits = model(xb, step_scale=cfg.sample_rate / declared_rate)
            loss = distillation_loss(logits, soft, yb, phase.kd_alpha, phase.kd_temperature,
                                     phase.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            run_loss += loss.item() * len(yb)
            run_n += len(yb)
            if not math.isfinite(loss.item()):
                raise SystemExit(f"non-finite loss at step {step}")
            if step % run.log_every == 0:
                log(f"epoch {epoch + 1} step {step} loss {run_loss / run_n:.4f} lr "
                    f"{sched.get_last_lr()[0]:.2e} rate {f_in} (as {declared_rate:.0f}) "
                    f"{(time.time() - t_ep) / (b + 1):.2f}s/step")
        t_train, t_ev = time.time() - t_ep, time.time()
        val = evaluate(model, xva, yva, run.eval_rates, device, run.eval_batch_size)
        t_eval = time.time() - t_ev
        history.append({"epoch": epoch + 1, "train_loss": run_loss / max(1, run_n), "val": val,
                        "steps": steps_per_epoch, "train_s": t_train, "eval_s": t_eval})
        improved = mean_accuracy(val) > best
        if improved:
            best = mean_accuracy(val)
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        log(f"epoch {epoch + 1}/{phase.epochs} train_loss {run_loss / max(1, run_n):.4f} val "
            + " ".join(f"{r}:{v['acc']:.4f}" for r, v in val.items())
            + f" best {best:.4f} (train {t_train:.1f}s = {t_train / steps_per_epoch:.2f}s/step, val {t_eval:.1f}s)")
        book.end_epoch(epoch, step, best, best_state, history, improved)

    return book.finish(recipe.export_path(phase), phase.epochs, best, best_state, history)
