"""make stream-eval's logic that is more than glue: the negatives' validation carve, and the offline
scoring of one `listen --all` run (what a threshold reports, the scene's score, the DET rows), and
the rule that chooses a threshold from them, and the comparison of two sources' events."""

import csv
import os

import pytest

from s4train.data.negatives import VALIDATION_CARVE, read_carve, split_train
from s4train.stream_scoring import choose_threshold, det_rows, reported, same_events, score

SHARED_NEGATIVES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "shared",
                                "data", "negatives")


def write_negatives(root, rows):
    """A negatives folder's manifest-train.csv of (kind, path, group) rows (the files themselves
    are not needed to split)."""
    with open(os.path.join(root, "manifest-train.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "path", "speaker_or_category", "seconds", "transcript"])
        writer.writerows([(kind, path, group, 2.0, "") for kind, path, group in rows])


def test_carve_splits_whole_speakers_and_named_sounds(tmp_path):
    write_negatives(tmp_path, [("speech", "speech/train/01/a.flac", "01"), ("speech", "speech/train/01/b.flac", "01"),
                               ("speech", "speech/train/012/c.flac", "012"), ("sound", "sounds/train/dog/1.flac", "dog"),
                               ("sound", "sounds/train/dog/2.flac", "dog")])
    carve = tmp_path / "carve.txt"
    carve.write_text("# comment\nspeech/train/01/\nsounds/train/dog/2.flac\n")
    training, validation = split_train(str(tmp_path), str(carve))
    names = lambda items: sorted(os.path.relpath(i.path, tmp_path) for i in items)  # noqa: E731
    # speaker 012 is not speaker 01: a folder entry ends in "/"
    assert names(validation) == ["sounds/train/dog/2.flac", "speech/train/01/a.flac", "speech/train/01/b.flac"]
    assert names(training) == ["sounds/train/dog/1.flac", "speech/train/012/c.flac"]


def test_carve_entry_naming_nothing_fails(tmp_path):
    write_negatives(tmp_path, [("speech", "speech/train/01/a.flac", "01")])
    carve = tmp_path / "carve.txt"
    carve.write_text("speech/train/02/\n")
    with pytest.raises(ValueError, match="speech/train/02/"):
        split_train(str(tmp_path), str(carve))


def test_committed_carve_is_train_only():
    carve = read_carve(VALIDATION_CARVE)
    assert sum(e.startswith("speech/train/") and e.endswith("/") for e in carve) == 10
    assert all(e.startswith(("speech/train/", "sounds/train/")) for e in carve)


@pytest.mark.skipif(not os.path.exists(os.path.join(SHARED_NEGATIVES, "manifest-train.csv")),
                    reason="shared negatives not here")
def test_committed_carve_matches_the_shared_manifest():
    training, validation = split_train(SHARED_NEGATIVES)
    assert {i.group for i in validation if i.kind == "speech"}.isdisjoint(
        {i.group for i in training if i.kind == "speech"})
    assert 0.15 < sum(i.kind == "sound" for i in validation) / sum(i.kind == "sound" for i in training + validation) < 0.25


def event(label, score_, start, end, latency=0.2):
    return {"type": "detection", "label": label, "score": score_, "start": start, "end": end, "latency": latency}


# A scene of two commands; --all gave a sure "yes" on the first, an unsure "no" on the second, an
# _unknown_ decision and a sure false alarm between them.
TRUTH = [{"kind": "command", "label": "yes", "start": 2.0, "end": 2.5},
         {"kind": "unknown", "label": "bed", "start": 5.0, "end": 5.4},
         {"kind": "command", "label": "no", "start": 8.0, "end": 8.6}]
ALL = [event("yes", 0.99, 1.9, 2.6), event("_unknown_", 0.9, 5.0, 5.4), event("go", 0.95, 6.0, 6.3),
       event("no", 0.6, 8.0, 8.7)]


def test_reported_keeps_commands_at_or_over_the_threshold():
    assert [e["label"] for e in reported(ALL, 0.6)] == ["yes", "go", "no"]
    assert [e["label"] for e in reported(ALL, 0.96)] == ["yes"]


def test_score_counts_matched_wrong_and_false_alarms():
    s = score(reported(ALL, 0.5), TRUTH, 3600 + 1.1)
    assert (s["matched"], s["wrong"], s["missed"]) == (1.0, 0.0, 0.0)
    assert s["false_alarms_per_hour"] == pytest.approx(1.0)  # "go" over the hour of non-command audio
    assert s["median_latency_s"] == pytest.approx(0.3)  # event end + latency - word end, median of 0.3 and 0.3


def test_det_rows_trade_misses_for_false_alarms():
    negative = [event("stop", 0.7, 1, 2), event("_unknown_", 0.99, 3, 4), event("up", 0.97, 5, 6)]
    rows = det_rows((ALL, TRUTH, 3600 + 1.1), {"speech": (negative, 1800)}, [0.5, 0.8, 0.98])
    assert [r["miss"] for r in rows] == [0.0, 0.5, 0.5]
    assert [r["false_alarms_per_hour"]["speech"] for r in rows] == [4.0, 2.0, 0.0]
    assert [r["false_alarms_per_hour"]["scene"] for r in rows] == pytest.approx([1.0, 1.0, 0.0])


def rule_row(threshold, speech, sounds=0.0, scene=0.0, wrong=0.0):
    return {"threshold": threshold, "wrong": wrong,
            "false_alarms_per_hour": {"speech": speech, "sounds": sounds, "scene": scene, "speech_noisy": 99.0}}


def test_the_rule_takes_the_lowest_threshold_quiet_enough_at_every_rate():
    at_16k = [rule_row(0.5, 9.0), rule_row(0.8, 2.0, wrong=0.03), rule_row(0.9, 2.0), rule_row(0.95, 0.0)]
    at_48k = [rule_row(0.5, 9.0), rule_row(0.8, 0.0), rule_row(0.9, 4.0), rule_row(0.95, 1.0)]
    assert choose_threshold([at_16k]) == 0.9              # 0.8 has too many wrong labels
    assert choose_threshold([at_16k, at_48k]) == 0.95     # 0.9 is too loud at 48 kHz (noisy speech: not ruled)
    loud = [rule_row(0.5, 0.0, sounds=2.0), rule_row(0.9, 0.0, scene=4.0)]
    assert choose_threshold([loud]) is None


def test_sources_agree_within_the_tolerance_but_not_on_labels_or_times():
    def heard(nothing, start=1.5, label="go", source="file"):
        return [{"type": "detection", "label": label, "score": 0.99, "start": start, "end": 1.8,
                 "scores": {label: 0.99, "_nothing_": nothing}, "source": source, "time": source}]
    file = heard(1.41256e-4)
    assert same_events(file, heard(1.41255e-4, source="ALSA device s4scene"))    # the last digit
    assert not same_events(file, heard(1.4e-4))                                   # more than that
    assert not same_events(file, heard(1.41256e-4, start=1.51))
    assert not same_events(file, heard(1.41256e-4, label="no"))
    assert not same_events(file, file + file)
