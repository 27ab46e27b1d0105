"""The streaming head's loss: max-pooling over each command's span, cross-entropy to _nothing_
elsewhere (Sun et al., 2016, "Max-pooling loss training of long short-term memory networks for
small-footprint keyword spotting").

A frame-wise cross-entropy on every span frame would ask the model to be sure of the command at
the very frame the word ends, and at every frame after, wherever its evidence happens to come;
max-pooling asks for one frame of the span only, the one where the model is already surest of
the command (so the gradient reaches that frame alone and the model chooses when to fire), while
every frame that is neither a span nor ignored is pushed to _nothing_, which is what keeps the
false alarms down on speech that holds no command.

No distillation from the teacher here: its sliding-window posteriors on the streams would need
the embedding model run on every stream (as slow as a step); left for later.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_pool_loss(logits: torch.Tensor, labels: torch.Tensor, spans: torch.Tensor, nothing: int,
                  nothing_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """logits [B, F, K]; labels [B, F] (a class, or any negative value: ignored); spans [B, F]
    (a span's number, -1 outside spans; a span's frames share one label). Returns

        mean over spans of CE(logits at the span's best frame, its command)
        + nothing_weight * mean over the _nothing_ frames of CE(logits, _nothing_),

    the best frame being the one with the highest log-posterior of the span's command, and the
    parts (floats) for the log."""
    logp = F.log_softmax(logits, dim=-1)
    span_terms = []
    flat_logp, flat_labels, flat_spans = logp.reshape(-1, logp.shape[-1]), labels.reshape(-1), spans.reshape(-1)
    for s in torch.unique(flat_spans[flat_spans >= 0]).tolist():
        at = torch.nonzero(flat_spans == s).squeeze(1)
        label = int(flat_labels[at[0]])
        span_terms.append(-flat_logp[at, label].max())
    is_nothing = (flat_labels == nothing) & (flat_spans < 0)
    zero = logits.sum() * 0.0
    span_loss = torch.stack(span_terms).mean() if span_terms else zero
    nothing_loss = -flat_logp[is_nothing, nothing].mean() if bool(is_nothing.any()) else zero
    loss = span_loss + nothing_weight * nothing_loss
    return loss, {"span": span_loss.item(), "nothing": nothing_loss.item(), "spans": len(span_terms)}
