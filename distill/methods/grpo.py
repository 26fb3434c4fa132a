"""GRPO with the sparse reward: the "standard RL" baseline of MENTOR.

Rollouts: ``rollouts_per_step // group_size`` tasks per step, each played by
the student ``group_size`` (G) times from the same reset; each rollout i gets
a scalar reward R_i, here the sparse one (1 if correct, 0.1 if wrong but the
sample ended properly with an answer, 0 without an end of sequence);
``make_examples(..., rollout_rewards=)`` is the hook MENTOR's reward replaces.

Advantage of every completion token of rollout i, within its group:

    A_i = (R_i - mean_group(R)) / (std_group(R) + 1e-6)        (unbiased std, as verl)

Loss, per completion token y_t of the student, with pi_ref the frozen initial
student and k3 the low-variance KL estimator:

    r_t = exp(log pi_S(y_t) - log pi_old(y_t))
    L_t = -min(r_t A_i, clip(r_t, 1 - eps, 1 + eps) A_i) + kl_coef * k3(pi_S, pi_ref)
    k3  = exp(log pi_ref - log pi_S) - (log pi_ref - log pi_S) - 1

``epochs`` optimiser passes are made over each step's rollouts (1, for GRPO
and MENTOR alike: MENTOR's paper trains "2 epochs", which are passes over its
training set, verl's ``total_epochs``, not passes over each batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from distill.batching import Batch, Example, completion_logprobs
from distill.config import ConfigError, TrainConfig, setting
from distill.losses import kl_k3, ppo_clip_surrogate, tally
from distill.methods.common import collect, rollout_metrics, turn_examples
from distill.rewards import sparse_reward
from distill.rollout import Rollout
from envs.multiagent.selectors import FixedSelector


@dataclass
class GRPOConfig(TrainConfig):
    """GRPO with the sparse reward: the "standard RL" baseline."""

    method: str = setting("grpo", "the algorithm")
    group_size: int = setting(5, "G, rollouts per task (MENTOR: 5 to 10)", minimum=2)
    kl_coef: float = setting(0.001, "coefficient of the k3 KL to the initial student", minimum=0)
    epochs: int = setting(
        1,
        "optimiser passes over each step's rollouts (GRPO and MENTOR alike; the MENTOR "
        "paper's 2 epochs are passes over its training set)",
        minimum=1,
    )
    graded: bool = setting(False, "use the env's graded score as `correct` where it has one")

    def check(self) -> None:
        super().check()
        if self.rollouts_per_step < self.group_size:
            raise ConfigError(
                f"rollouts_per_step: {self.rollouts_per_step} is less than one group "
                f"(group_size {self.group_size})"
            )


NEEDS_TEACHER = False
NEEDS_REFERENCE_MODEL = True


def outcome(rollout: Rollout, graded: bool = False) -> tuple[bool, bool, float]:
    """(finished, answered, correct) of a rollout, for any env family."""
    last = rollout.turns[-1] if rollout.turns else None
    finished = bool(last is not None and last.finished)
    if rollout.tools:  # tool tasks: a final answer is an `answer` action
        answered = any(t.action_type == "answer" for t in rollout.turns)
    else:  # text envs: the episode ended by itself rather than at the turn cap
        answered = rollout.terminated
    correct = rollout.score if graded else float(rollout.won)
    return finished, answered, correct


def sparse_rewards(ctx: Any, rollouts: Sequence[Rollout]) -> list[float]:
    rewards = []
    for rollout in rollouts:
        finished, answered, correct = outcome(rollout, ctx.config.graded)
        rewards.append(sparse_reward(finished=finished, answered=answered, correct=correct))
    return rewards


def group_advantages(
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


def make_examples(
    ctx: Any, step: int, rollout_rewards: Any = sparse_rewards
) -> tuple[list[Example], dict[str, float]]:
    config = ctx.config
    groups_count = max(1, config.rollouts_per_step // config.group_size)
    tasks = ctx.sample_tasks(step, groups_count)  # this rank's share of the step's groups
    expanded = [task for task in tasks for _ in range(config.group_size)]
    groups = [g for g in range(len(tasks)) for _ in range(config.group_size)]
    rollouts = collect(ctx, step, expanded, lambda _i: FixedSelector("student"), groups=groups)
    rewards = rollout_rewards(ctx, rollouts)
    advantages = group_advantages(torch.tensor(rewards), torch.tensor(groups))
    examples = turn_examples(rollouts, ["student"], advantages=advantages.tolist())
    return examples, {
        **rollout_metrics(rollouts),
        "reward": float(sum(rewards) / max(len(rewards), 1)),
    }


def loss(model: Any, batch: Batch, ctx: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """The student's and the reference's log-probs of the batch, then ``token_loss``."""
    logp, _ = completion_logprobs(model, batch, pad_id=ctx.pad_id)
    logp_ref = None
    if ctx.config.kl_coef > 0:
        with torch.no_grad():
            logp_ref, _ = completion_logprobs(ctx.ref_model, batch, pad_id=ctx.pad_id)
    return token_loss(logp, logp_ref, batch, ctx.config)


def token_loss(
    logp: torch.Tensor, logp_ref: torch.Tensor | None, batch: Batch, config: Any
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per-token loss: the clipped surrogate with the rollout's advantage, plus ``kl_coef``
    times the k3 KL to the initial student, on the student's tokens."""
    student = batch.actor_mask("student").to(logp.device)
    advantage = batch.advantages.to(logp.device)[:, None].expand_as(logp)
    per_token = ppo_clip_surrogate(logp, batch.old_logprobs(logp), advantage, config.clip)
    stats: dict[str, Any] = {}
    if logp_ref is not None:
        penalty = kl_k3(logp, logp_ref)
        per_token = per_token + config.kl_coef * penalty
        stats["kl_ref"] = tally(penalty, student)
    return per_token * student, stats


Config = GRPOConfig
