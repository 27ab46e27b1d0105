"""The DET curve of make stream-eval: miss rate on the command scene against false alarms per hour
on negative speech, over thresholds, from one `listen --all` run per stream (streams.reported
makes each threshold's events exactly, offline), as JSON and as a PNG with the threshold in force
marked. Why a curve: a single threshold hides whether a model is better or only set differently.
"""
import json

import numpy as np

from streams import reported, score

# Every 0.01 up to 0.95, every 0.001 above, where a model sure of its commands puts its false alarms.
THRESHOLDS = sorted({round(t / 100, 2) for t in range(20, 95)} | {round(t / 1000, 3) for t in range(950, 1000)}
                    | {0.9995, 0.9999})


def det_rows(scene, negatives, thresholds):
    """One row per threshold: the scene's miss rate (no event of the word's own label), wrong and
    matched shares and false alarms per hour, and the false alarms per hour of every negative
    stream. scene: (events of --all, truth, seconds); negatives: {name: (events of --all, seconds)}."""
    rows = []
    for t in thresholds:
        s = score(reported(scene[0], t), scene[1], scene[2])
        row = {"threshold": t, "miss": 1 - s["matched"], "matched": s["matched"], "wrong": s["wrong"],
               "false_alarms_per_hour": {"scene": s["false_alarms_per_hour"]}}
        for name, (events, seconds) in negatives.items():
            row["false_alarms_per_hour"][name] = len(reported(events, t)) / (seconds / 3600)
        rows.append(row)
    return rows


def write_det(path_stem, curves, threshold, title):
    """curves: {rate: rows of det_rows}. Writes path_stem.json and path_stem.png (miss rate against
    false alarms per hour on plain and noisy speech, one colour per rate, the threshold in force
    marked on each)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with open(f"{path_stem}.json", "w") as f:
        json.dump({"threshold_in_force": threshold, "x": "false alarms per hour on negative speech",
                   "y": "miss rate on the command scene (1 - matched)", "rates": curves}, f, indent=1)
    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for (rate, rows), colour in zip(curves.items(), ["tab:blue", "tab:orange", "tab:green", "tab:red"]):
        for stream, style in (("speech", "-"), ("speech_noisy", "--")):
            if stream not in rows[0]["false_alarms_per_hour"]:
                continue
            x = [r["false_alarms_per_hour"][stream] for r in rows]
            y = [100 * r["miss"] for r in rows]
            ax.plot(x, y, style, color=colour, label=f"{int(rate) / 1000:g} kHz, {stream.replace('_', ' ')}")
            mark = min(rows, key=lambda r: abs(r["threshold"] - threshold))
            ax.plot(mark["false_alarms_per_hour"][stream], 100 * mark["miss"], "o", color=colour)
    ax.annotate(f"o: threshold in force ({threshold:g})", xy=(0.02, 0.02), xycoords="axes fraction")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("false alarms per hour on negative speech")
    ax.set_ylabel("miss rate on the command scene (%)")
    ax.set_ylim(0, max(5, min(100, float(np.ceil(ax.get_ylim()[1])))))
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{path_stem}.png")
    plt.close(fig)
