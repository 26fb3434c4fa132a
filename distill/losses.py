"""Token-level losses of the distillation methods (spec sections 1, 2, 3, 5).

All tensors are ``[batch, tokens]`` and aligned on completion tokens:
``logp`` are the current student's log-probs of the sampled tokens (with
gradient), ``logp_old`` the sampling student's (recorded at generation time),
``logp_teacher`` the teacher's and ``logp_ref`` the frozen initial student's.
``mask`` is 1 on tokens a loss is computed on (completion tokens of the
turns it applies to) and 0 elsewhere (prompt, observation and tool-response
tokens, padding).

Aggregation: ``"token-mean"`` averages over every masked-in token of the
batch; ``"seq-mean-token-mean"`` averages each row's token mean over the rows
that have any masked-in token.
"""

from __future__ import annotations

import torch

__all__ = [
    "AGGREGATIONS",
    "aggregate",
    "full_vocab_reverse_kl",
    "grpo_advantages",
    "grpo_loss",
    "kl_k3",
    "nll_loss",
    "opd_loss",
    "ppo_clip_surrogate",
    "reverse_kl_per_position",
]

AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean")


def aggregate(values: torch.Tensor, mask: torch.Tensor, how: str = "token-mean") -> torch.Tensor:
    """Mean of ``values`` over ``mask`` (see the module docstring); 0 when nothing is masked in."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}; choose one of {list(AGGREGATIONS)}")
    mask = mask.to(values.dtype)
    if how == "token-mean":
        return (values * mask).sum() / mask.sum().clamp(min=1.0)
    per_row = mask.sum(dim=-1)
    row_means = (values * mask).sum(dim=-1) / per_row.clamp(min=1.0)
    rows = (per_row > 0).to(values.dtype)
    return (row_means * rows).sum() / rows.sum().clamp(min=1.0)


def ppo_clip_surrogate(
    logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, clip: float = 0.2
) -> torch.Tensor:
    """Per-token ``-min(r A, clip(r, 1-eps, 1+eps) A)`` with ``r = exp(logp - logp_old)``."""
    ratio = torch.exp(logp - logp_old)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    return -torch.minimum(unclipped, clipped)


def opd_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    logp_teacher: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    aggregation: str = "token-mean",
) -> torch.Tensor:
    """On-policy distillation (spec section 2): PPO-clip with ``A_t = log pi_T - log pi_old``.

    The advantage is neither normalised nor differentiated; there is no KL
    to a reference model. With one optimiser step per rollout (``logp ==
    logp_old`` in value) its gradient is that of the sampled-token reverse KL.
    """
    advantages = (logp_teacher - logp_old).detach()
    losses = ppo_clip_surrogate(logp, logp_old.detach(), advantages, clip)
    return aggregate(losses, mask, aggregation)


def nll_loss(
    logp: torch.Tensor, mask: torch.Tensor, aggregation: str = "token-mean"
) -> torch.Tensor:
    """Negative log-likelihood of the masked-in tokens.

    SFT's loss, and Guided-OPD's forward-KL term on teacher turns: with the
    teacher's sampled tokens, forward KL reduces to their NLL under the student.
    """
    return aggregate(-logp, mask, aggregation)


def full_vocab_reverse_kl(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str = "token-mean",
) -> torch.Tensor:
    """Exact reverse KL(pi_S || pi_T) over the whole vocabulary at each masked-in position.

    ``*_logits`` are ``[batch, tokens, vocab]`` at the positions that predict the
    completion tokens; the teacher's are treated as constants. Needs a shared
    vocabulary and a local teacher; its expected gradient equals OPD's.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"student and teacher logits differ in shape: {tuple(student_logits.shape)} vs "
            f"{tuple(teacher_logits.shape)} (the vocabularies must be the same)"
        )
    return aggregate(reverse_kl_per_position(student_logits, teacher_logits), mask, aggregation)


def reverse_kl_per_position(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor
) -> torch.Tensor:
    """``sum_v pi_S(v) (log pi_S(v) - log pi_T(v))`` at each position (teacher held constant)."""
    log_student = torch.log_softmax(student_logits.float(), dim=-1)
    log_teacher = torch.log_softmax(teacher_logits.detach().float(), dim=-1)
    return (log_student.exp() * (log_student - log_teacher)).sum(dim=-1)


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """Per-token low-variance KL estimator ``exp(ref - logp) - (ref - logp) - 1`` (>= 0)."""
    delta = logp_ref - logp
    return torch.exp(delta) - delta - 1.0


def grpo_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, eps: float = 1e-6, unbiased_std: bool = True
) -> torch.Tensor:
    """Per-rollout advantage ``(R_i - mean(R_group)) / (std(R_group) + eps)``.

    ``rewards`` and ``group_ids`` are ``[rollouts]``; rollouts of the same task
    share a group id. The standard deviation is the unbiased one by default
    (as verl computes it); a group of one rollout gets advantage 0.
    """
    rewards = rewards.float()
    advantages = torch.zeros_like(rewards)
    for group in torch.unique(group_ids):
        members = group_ids == group
        values = rewards[members]
        if values.numel() < 2:
            continue
        std = values.std(unbiased=unbiased_std)
        advantages[members] = (values - values.mean()) / (std + eps)
    return advantages


def grpo_loss(
    logp: torch.Tensor,
    logp_old: torch.Tensor,
    logp_ref: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    kl_coef: float = 0.001,
    aggregation: str = "token-mean",
) -> torch.Tensor:
    """GRPO (spec section 5): PPO-clip with each rollout's advantage on all its tokens,
    plus ``kl_coef`` times the k3 KL to the reference model.

    ``advantages`` is ``[batch]`` (one per row) or already ``[batch, tokens]``.
    """
    if advantages.dim() == 1:
        advantages = advantages[:, None].expand_as(logp)
    surrogate = ppo_clip_surrogate(logp, logp_old.detach(), advantages.detach(), clip)
    penalty = kl_k3(logp, logp_ref.detach())
    return aggregate(surrogate + kl_coef * penalty, mask, aggregation)
