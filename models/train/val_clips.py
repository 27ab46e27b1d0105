"""Links the validation speakers' clips (the speakers train.py holds out of train/) into a folder
laid out like test/: <label>/<file> and a manifest.csv, so tools/scene_eval.py and
tools/model_eval.py can tune the detection threshold without touching test/.

    python3 val_clips.py OUT_DIR [--data DIR] [--seed N] [--val-fraction F]

The seed and fraction must be those of the training run; the defaults are train.py's.
"""

import argparse
import csv
import json
import os

import data as D


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    D.add_split_args(ap, training=False)   # train.py's flags and defaults
    args = ap.parse_args(argv)
    train_dir = os.path.join(args.data, "train")
    _, val = D.speaker_split(args)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "manifest.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "speaker"])
        for item in val:
            relative = os.path.relpath(item.path, train_dir)
            link = os.path.join(args.out_dir, relative)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if os.path.lexists(link):
                os.remove(link)
            os.symlink(os.path.abspath(item.path), link)
            writer.writerow([relative, item.label, item.speaker])
    with open(os.path.join(args.out_dir, "split.json"), "w") as f:   # which speakers these are
        json.dump({"seed": args.seed, "val_fraction": args.val_fraction}, f)
    print(f"{len(val)} validation clips linked under {args.out_dir}")


if __name__ == "__main__":
    main()
