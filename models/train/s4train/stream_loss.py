"""The streaming head's loss: max-pooling over each command's span, cross-entropy to _nothing_
elsewhere (Sun et al., 2016, "Max-pooling loss training of long short-term memory networks for
small-footprint keyword spotting").

A frame-wise cross-entropy on every span frame would ask the model to be sure of the command at
the very frame the word ends, and at every frame after, wherever its evidence happens to come;
max-pooling asks for one frame of the span only, the one where the model is already surest of
the command (so the gradient reaches that frame alone and the model chooses when to fire), while
every frame that is neither a span nor ignored is pushed to _nothing_, which is what keeps the
false alarms down on speech that holds no command.

That mean is over every _nothing_ frame, most of them pauses and noise the model already knows:
the few frames of running speech that look like a command, the ones a false alarm fires on, weigh
little in it. The hardest-frames term is the negative side's max-pooling: per stream, the
`hardest_frames` _nothing_ frames of lowest _nothing_ posterior, where an event would fire, get a
cross-entropy of their own (weight `hardest_weight`; 0 leaves it out).

No distillation from the teacher here: its sliding-window posteriors on the streams would need
the embedding model run on every stream (as slow as a step); left for later.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def max_pool_loss(logits: torch.Tensor, labels: torch.Tensor, spans: torch.Tensor, nothing: int,
                  nothing_weight: float = 1.0, hardest_weight: float = 0.0,
                  hardest_frames: int = 10) -> tuple[torch.Tensor, dict]:
    """logits [B, F, K]; labels [B, F] (a class, or any negative value: ignored); spans [B, F]
    (a span's number, -1 outside spans; a span's frames share one label). Returns

        mean over spans of CE(logits at the span's best frame, its command)
        + nothing_weight * mean over the _nothing_ frames of CE(logits, _nothing_)
        + hardest_weight * mean over streams of the mean CE(logits, _nothing_) of the stream's
          `hardest_frames` _nothing_ frames of highest CE (all of them where it has fewer),

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
    parts = {"span": span_loss.item(), "nothing": nothing_loss.item(), "spans": len(span_terms)}
    if hardest_weight > 0:
        hardest = hardest_nothing_loss(logp[..., nothing], (labels == nothing) & (spans < 0), hardest_frames)
        loss = loss + hardest_weight * hardest
        parts["hardest"] = hardest.item()
    return loss, parts


def hardest_nothing_loss(logp_nothing: torch.Tensor, is_nothing: torch.Tensor, frames: int) -> torch.Tensor:
    """logp_nothing, is_nothing [B, F]: the mean over streams with _nothing_ frames of the mean
    -log p(_nothing_) of their `frames` lowest-p(_nothing_) _nothing_ frames."""
    ce = torch.where(is_nothing, -logp_nothing, torch.full_like(logp_nothing, -1.0))
    k = min(frames, ce.shape[1])
    top, _ = ce.topk(k, dim=1)
    counted = top >= 0
    per_stream = (top * counted).sum(1) / counted.sum(1).clamp(min=1)
    has = is_nothing.any(1)
    return per_stream[has].mean() if bool(has.any()) else logp_nothing.sum() * 0.0
