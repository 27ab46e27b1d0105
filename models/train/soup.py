"""A model soup (Wortsman et al., ICML 2022): the mean of the weights of several model files that
one recipe trained from the same starting weights with different draws (`train.py --init-from X
--draw-seed S`), one model file of the same size and cost as each of them.

Runs fine-tuned from one point tend to stay in one basin of the loss, where the mean of their
weights is itself a good network, often better on new speakers than any of them. Networks started
apart are not (their units are permuted against each other), so the members must share
`--init-from` and the validation speakers. Each member and the soup are scored on those speakers
at the eval rates; the soup is written whether or not it wins (the caller decides, on validation).

    python soup.py OUT.safetensors RUN_A/model.safetensors RUN_B/model.safetensors [...]
"""

from __future__ import annotations

import argparse
import json

import torch

import data as D
from export import export_model, load_model
from model import SPEECH_COMMANDS_LABELS, count_parameters
from train import WeightAverage, evaluate, mean_accuracy, require_same_held_out


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a = ap.add_argument
    a("out", help="the soup's model file")
    a("members", nargs="+", help="model files of one recipe drawn with different --draw-seed")
    D.add_split_args(ap, training=False)
    a("--eval-rates", default="16000,8000", help="comma-separated input rates for validation")
    a("--threads", type=int, default=0, help="torch CPU threads (0: leave default)")
    args = ap.parse_args(argv)
    if len(args.members) < 2:
        ap.error("a soup needs at least two model files")
    return args


def load_members(paths: list[str], args):
    """The members' networks and metadata, refused unless they can be averaged."""
    models, metas = [], []
    for path in paths:
        model, meta = load_model(path, dtype=torch.float32)
        trained_on = meta.get("trained_on", {})
        require_same_held_out(path, trained_on, args)
        models.append(model)
        metas.append(meta)
    config = models[0].cfg.to_dict()
    start = metas[0].get("trained_on", {}).get("init_from", {}).get("path")
    for path, model, meta in zip(paths, models, metas):
        if model.cfg.to_dict() != config:
            raise SystemExit(f"{path} is another network than {paths[0]}: a soup averages one network")
        if not start or meta.get("trained_on", {}).get("init_from", {}).get("path") != start:
            raise SystemExit(f"{path} did not start from the weights the others started from "
                             f"(train.py --init-from {start or '?'}): only those can be averaged")
    return models, metas


def main(argv=None):
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    models, metas = load_members(args.members, args)
    rates = [int(r) for r in args.eval_rates.split(",") if r]
    _, va_items = D.speaker_split(args)        # every validation clip
    xva, yva = D.load_clips(va_items, list(SPEECH_COMMANDS_LABELS))

    def score(model):
        val = evaluate(model, xva, yva, rates, "cpu")
        return val, mean_accuracy(val)

    members = []
    for path, model, meta in zip(args.members, models, metas):
        val, mean = score(model)
        members.append({"path": path, "val_mean_acc": mean,
                        "draw_seed": meta.get("trained_on", {}).get("draw_seed")})
        print(f"member {path}: " + json.dumps({r: round(v["acc"], 4) for r, v in val.items()})
              + f" mean {mean:.4f}", flush=True)
    average = WeightAverage()   # BatchNorm's running statistics averaged too
    for model in models:
        average.update(model)
    soup = models[0]
    soup.load_state_dict(average.state)
    soup.eval()
    val, mean = score(soup)
    print(f"soup of {len(models)}: " + json.dumps({r: round(v["acc"], 4) for r, v in val.items()})
          + f" mean {mean:.4f}", flush=True)
    trained_on = dict(metas[0].get("trained_on", {}))
    trained_on.pop("draw_seed", None)
    trained_on["soup_of"] = members
    export_model(soup, args.out, trained_on=trained_on,
                 metrics={"val_mean_acc": mean, "val": val, "parameters": count_parameters(soup)})
    print(f"exported {args.out}", flush=True)
    return mean


if __name__ == "__main__":
    main()
