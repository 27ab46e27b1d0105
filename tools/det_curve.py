"""The DET curve of make stream-eval: miss rate on the command scene against false alarms per hour
on negative speech, over thresholds (s4train.stream_scoring.det_rows, from one `listen --all` run
per stream, each threshold's events made exactly offline), as JSON and as a PNG with the threshold in force
marked. Why a curve: a single threshold hides whether a model is better or only set differently.
"""
import json

import numpy as np

# Every 0.01 up to 0.95, every 0.001 above, where a model sure of its commands puts its false alarms.
THRESHOLDS = sorted({round(t / 100, 2) for t in range(20, 95)} | {round(t / 1000, 3) for t in range(950, 1000)}
                    | {0.9995, 0.9999})


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
