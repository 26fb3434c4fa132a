"""Loss building blocks more than one method uses, and the one aggregation.

Each method writes its own per-token loss in its file (``distill/methods/``)
from these pieces. All tensors are ``[batch, tokens]`` and aligned on
completion tokens: ``logp`` are the current student's log-probs of the
sampled tokens (with gradient), ``logp_old`` the sampling student's,
``logp_ref`` a frozen reference model's.

``aggregate`` turns a method's per-token loss into the scalar the trainer
backpropagates. A step's examples may be split into micro-batches; each
micro-batch's scalar is its share of the mean over the whole step (the masked
sum divided by the step's token count, or by its sequence count), so the
summed loss and gradient are those of the whole step however it is split.
"""

from __future__ import annotations

import torch

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "kl_k3",
    "ppo_clip_surrogate",
    "reverse_kl_per_position",
    "tally",
]

#: ``token-mean``: the mean over every trained token of the step; ``seq-mean-token-mean``:
#: each sequence's token mean, averaged over the step's sequences.
AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean")


def aggregate(
    per_token: torch.Tensor,
    mask: torch.Tensor,
    how: str = "token-mean",
    *,
    tokens: float | None = None,
    sequences: float | None = None,
) -> torch.Tensor:
    """This micro-batch's share of the step's mean of ``per_token`` over ``mask``.

    ``tokens`` / ``sequences``: the step's trained tokens and sequences (rows with
    any trained token), over every micro-batch (and, under DDP, divided by the
    number of ranks, whose gradients are averaged); None: this batch's own, so that
    the result is this batch's mean. A batch with nothing masked in gives 0.
    """
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {list(AGGREGATIONS)}")
    mask = mask.to(per_token.dtype)
    if how == "token-mean":
        denominator = tokens if tokens is not None else float(mask.sum())
        return (per_token * mask).sum() / max(denominator, 1.0)
    per_row = mask.sum(dim=-1)
    row_means = (per_token * mask).sum(dim=-1) / per_row.clamp(min=1.0)
    denominator = sequences if sequences is not None else float((per_row > 0).sum())
    return row_means.sum() / max(denominator, 1.0)


def ppo_clip_surrogate(
    logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip: float = 0.2
) -> torch.Tensor:
    """Per-token ``-min(r A, clip(r, 1-eps, 1+eps) A)`` with ``r = exp(logp - logp_old)``.

    ``logp_old`` and ``advantages`` are constants (detached here): only ``logp``
    carries gradient.
    """
    ratio = torch.exp(logp - logp_old.detach())
    advantages = advantages.detach()
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.minimum(unclipped, clipped)


def reverse_kl_per_position(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    """``sum_v pi_S(v) (log pi_S(v) - log pi_T(v))`` at each position (teacher held constant).

    The exact reverse KL over a shared vocabulary; its expected gradient equals the
    sampled-token surrogate's.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)} (the vocabularies must be the same)"
        )
    log_student = torch.log_softmax(student_logits.float(), dim=-1)
    log_teacher = torch.log_softmax(teacher_logits.detach().float(), dim=-1)
    return (log_student.exp() * (log_student - log_teacher)).sum(dim=-1)


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token low-variance KL estimator ``exp(ref - logp) - (ref - logp) - 1`` (>= 0)."""
    delta = logp_ref.detach() - logp
    return torch.exp(delta) - delta - 1.0


def tally(values: torch.Tensor, mask: torch.Tensor) -> tuple[float, float]:
    """(sum over ``mask``, count) of ``values``: a statistic the trainer averages over a
    step's micro-batches by adding sums and counts."""
    mask = mask.to(values.dtype)
    return float((values.detach() * mask).sum()), float(mask.sum())
