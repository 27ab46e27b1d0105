"""python -m s4train COMMAND ...

    train RECIPE [--set KEY=VALUE ...] [--dry-run] [--only STEP]
                      the teacher (if a clip phase needs it), then each phase in order, clip
                      or stream (each resumable: a rerun reuses what is finished); --dry-run
                      prints the resolved settings and stops; --only teacher or --only PHASE
                      runs one step
    val-clips RECIPE OUT_DIR [--set ...]
                      link the recipe's validation speakers' clips (for the detection threshold)
    fixtures [--out DIR] [--only NAMES]
                      the Swift engine's test fixtures (Tests/S4CoreTests/Fixtures)
    export CHECKPOINT OUT [--use-last]
                      a phase's checkpoint (its best weights) as a model file
"""

from __future__ import annotations

import argparse
import json
import sys


def _recipe(args):
    from s4train.recipe import Recipe
    return Recipe.load(args.recipe, args.set)


def train(args) -> None:
    recipe = _recipe(args)
    steps = ["teacher"] + [p.name for p in recipe.phases]
    if args.only and args.only not in steps:
        raise SystemExit(f"--only {args.only}: the steps are {', '.join(steps)}")
    if args.dry_run:
        print(json.dumps(recipe.to_dict(), indent=1))
        print(f"paths: data {recipe.data_dir}, runs {recipe.runs_dir}, teacher cache "
              f"{recipe.in_runs(recipe.teacher.cache_dir)}; model files "
              + ", ".join(f"{p.name} -> {recipe.export_path(p)}" for p in recipe.phases))
        return
    from s4train.loop import train_phase
    from s4train.stream_loop import train_stream_phase
    from s4train.teacher.build import build_teacher
    from s4train.teacher.embedding import TeacherFileError
    # The teacher's cache feeds clip phases only: a recipe of stream phases builds none unless asked.
    if args.only == "teacher" or (not args.only and any(p.kind == "clip" for p in recipe.phases)):
        try:
            build_teacher(recipe)
        except TeacherFileError as e:
            raise SystemExit(f"teacher: {e}") from e
    for phase in recipe.phases:
        if args.only in ("", phase.name):
            (train_stream_phase if phase.kind == "stream" else train_phase)(recipe, phase)


def val_clips(args) -> None:
    from s4train.val_clips import link_val_clips
    n = link_val_clips(_recipe(args), args.out_dir)
    print(f"{n} validation clips linked under {args.out_dir}")


def fixtures(args) -> None:
    from s4train.fixtures import DEFAULT_OUT, SEED, make_all
    make_all(args.out or DEFAULT_OUT, SEED, set(args.only.split(",")) - {""})


def export(args) -> None:
    from s4train.checkpoint import load_checkpoint, model_from_checkpoint
    from s4train.export import export_model
    ck = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(ck, args.use_last)
    score = "val_stream_score" if model.cfg.head_pooling == "frame" else "val_mean_acc"
    meta = export_model(model, args.out, ck.get("trained_on"), {score: ck["best_val"]})
    print(json.dumps({k: v for k, v in meta.items() if k != "trained_on"}, indent=1))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m s4train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)

    def with_recipe(p):
        p.add_argument("recipe", help="a recipe file, e.g. recipes/default.toml")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override one setting (dotted key, TOML value), e.g. phases.1.epochs=3")
        return p

    p = with_recipe(sub.add_parser("train", help="the teacher, then every phase"))
    p.add_argument("--dry-run", action="store_true", help="print the resolved settings and stop")
    p.add_argument("--only", default="", metavar="STEP", help="'teacher' or a phase's name")
    p.set_defaults(run=train)
    p = with_recipe(sub.add_parser("val-clips", help="link the validation speakers' clips"))
    p.add_argument("out_dir")
    p.set_defaults(run=val_clips)
    p = sub.add_parser("fixtures", help="the Swift test fixtures")
    p.add_argument("--out", default="")
    p.add_argument("--only", default="", help="comma-separated fixture names (default: all)")
    p.set_defaults(run=fixtures)
    p = sub.add_parser("export", help="a checkpoint as a model file")
    p.add_argument("checkpoint")
    p.add_argument("out")
    p.add_argument("--use-last", action="store_true", help="the last weights, not the best")
    p.set_defaults(run=export)
    args = ap.parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
