"""Vanilla on-policy distillation (OPD): the student acts alone and the teacher grades
every token it sampled.

Rollouts: ``rollouts_per_step`` episodes, the student acting every turn at the
training temperature; the teacher then scores the student's tokens (one pass,
or one server request, per trajectory).

Loss, per completion token y_t of a student turn, with pi_old the student that
sampled it (its log-probs recorded at generation) and pi_S the student being
trained:

    A_t = log pi_T(y_t | ctx_t) - log pi_old(y_t | ctx_t)       (not normalised)
    r_t = exp(log pi_S(y_t | ctx_t) - log pi_old(y_t | ctx_t))
    L_t = -min(r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t)           (eps = clip, 0.2)

With one optimiser step per rollout r_t = 1 and the gradient is that of the
sampled-token reverse KL(pi_S || pi_T). ``reverse_kl: full_vocab`` replaces L_t
by the exact reverse KL over the shared vocabulary at that position (an
in-process teacher), whose expected gradient is the same. There is no KL to a
reference model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from distill.batching import Batch, Example, completion_logprobs
from distill.config import ConfigError, TrainConfig, setting
from distill.losses import ppo_clip_surrogate, reverse_kl_per_position, tally
from distill.methods.common import collect, rollout_metrics, scored, turn_examples
from envs.multiagent.selectors import FixedSelector


@dataclass
class OPDConfig(TrainConfig):
    """Vanilla on-policy distillation."""

    method: str = setting("opd", "the algorithm")
    reverse_kl: str = setting(
        "sampled",
        "sampled (PPO-clip surrogate on sampled tokens) or full_vocab (exact; in-process teacher)",
        choices=("sampled", "full_vocab"),
    )

    def check(self) -> None:
        super().check()
        if not self.teacher:
            raise ConfigError(
                f"teacher: {self.method} needs a teacher (a size, a folder, hf:<name>, "
                "openai:<base-url>#<model>, or recipe)"
            )
        if self.reverse_kl == "full_vocab" and self.served_teacher:
            raise ConfigError(
                "reverse_kl: full_vocab needs the teacher's whole distribution at every position; "
                "a served teacher returns sampled-token log-probs only (use sampled)"
            )


NEEDS_TEACHER = True
NEEDS_SHARED_VOCAB = True


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    tasks = ctx.sample_tasks(step, ctx.config.rollouts_per_step)
    rollouts = collect(ctx, step, tasks, lambda _i: FixedSelector("student"))
    scoring = scored(ctx, rollouts)
    examples = turn_examples(rollouts, ["student"])
    return examples, {**rollout_metrics(rollouts), "time_scoring_s": scoring}


def reverse_kl(
    logp: torch.Tensor, logits: torch.Tensor | None, batch: Batch, ctx: Any
) -> torch.Tensor:
    """The per-token reverse-KL term on every row of ``batch`` (the caller masks the turns
    it applies to): the clipped surrogate with A = log pi_T - log pi_old, or with
    ``reverse_kl: full_vocab`` the exact KL against the in-process teacher's logits."""
    if ctx.config.reverse_kl == "full_vocab":
        with torch.no_grad():
            _, teacher_logits = completion_logprobs(
                ctx.teacher_model, batch, pad_id=ctx.pad_id, return_logits=True
            )
        return reverse_kl_per_position(logits, teacher_logits)
    logp_old = batch.old_logprobs(logp)
    advantage = batch.logp_teacher.to(logp.device) - logp_old
    return ppo_clip_surrogate(logp, logp_old, advantage, ctx.config.clip)


def student_logprobs(model: Any, batch: Batch, ctx: Any) -> tuple[torch.Tensor, Any]:
    """The student's log-probs of the batch's tokens, and its logits where the exact KL
    needs them."""
    full = ctx.config.reverse_kl == "full_vocab"
    return completion_logprobs(model, batch, pad_id=ctx.pad_id, return_logits=full)


def sampled_kl(logp: torch.Tensor, batch: Batch, turns: torch.Tensor) -> tuple[float, float]:
    """The sampled estimate of KL(pi_S || pi_T) on ``turns`` (what the curves show)."""
    return tally(logp.detach() - batch.logp_teacher.to(logp.device), turns)


def loss(model: Any, batch: Batch, ctx: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per-token loss: the reverse-KL term on the student's tokens."""
    logp, logits = student_logprobs(model, batch, ctx)
    student = batch.actor_mask("student").to(logp.device)
    per_token = reverse_kl(logp, logits, batch, ctx) * student
    return per_token, {"reverse_kl": sampled_kl(logp, batch, student)}


Config = OPDConfig
