"""The distillation loss."""

import torch
import torch.nn.functional as F

from s4train.distill import distillation_loss


def test_distillation_loss_parts():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 12, generator=g), torch.randn(8, 12, generator=g)
    y = torch.randint(12, (8,), generator=g)
    ce = F.cross_entropy(s, y, label_smoothing=0.1)
    # the student's own distribution as the teacher's: the soft term is zero
    assert torch.allclose(distillation_loss(s, s.clone(), y, 0.7, 2.0, 0.1), 0.3 * ce, atol=1e-6)
    ce0 = F.cross_entropy(s, y)
    kl_ts = F.kl_div(F.log_softmax(s / 3, -1), F.softmax(t / 3, -1), reduction="batchmean")
    assert torch.allclose(distillation_loss(s, t, y, 0.4, 3.0), 0.6 * ce0 + 0.4 * 9 * kl_ts, atol=1e-6)
    # the teacher is a target: no gradient reaches it
    s1, t1 = s.clone().requires_grad_(), t.clone().requires_grad_()
    distillation_loss(s1, t1.detach(), y, 1.0, 3.0).backward()
    assert s1.grad is not None and t1.grad is None
