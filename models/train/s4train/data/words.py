"""Where the spoken word lies in a clip, by energy: without torch, so that the evaluation tools
(tools/) and the stream synthesis place and time words by one rule.

A Speech Commands clip is one second with the word somewhere in it and silence or room noise
around; a stream's target "the word is complete" needs the word's end, and a level set on the
word, not on the second around it, needs its start too.
"""

from __future__ import annotations

import numpy as np

FRAME = 160            # 10 ms at 16 kHz
BELOW_PEAK_DB = 25.0   # a frame is part of the word if within this many dB of the loudest frame


def word_span(clip: np.ndarray, frame: int = FRAME, below_peak_db: float = BELOW_PEAK_DB) -> tuple[int, int]:
    """(start, end) in samples of the loud part of a clip: from the first to the end of the last
    `frame`-sample frame whose mean power is within `below_peak_db` dB of the loudest frame's. A
    clip shorter than a frame is all word."""
    clip = np.asarray(clip, dtype=np.float64)
    n = len(clip) // frame
    if n == 0:
        return 0, len(clip)
    frames = clip[:n * frame].reshape(n, frame)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    loud = np.nonzero(level > level.max() - below_peak_db)[0]
    return int(loud[0] * frame), int((loud[-1] + 1) * frame)
