"""GRPO with the sparse reward, the "standard RL" baseline (spec section 5).

For each task, ``group_size`` student rollouts; each rollout's reward R_i
(1 if correct, 0.1 if it ended properly but is wrong, 0 without an end of
sequence); every completion token of rollout i gets the advantage
(R_i - mean R) / (std R + 1e-6) under the PPO-clip surrogate, plus a k3 KL
to the initial student (coefficient 0.001). ``rollout_rewards`` is the hook
MENTOR replaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from distill.batching import Example
from distill.config import ConfigError, TrainConfig, setting
from distill.losses import grpo_advantages
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
    epochs: int = setting(1, "optimiser passes over each step's rollouts", minimum=1)
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
    advantages = grpo_advantages(torch.tensor(rewards), torch.tensor(groups))
    examples = turn_examples(
        rollouts, {"student": ("policy_gradient", 1.0)}, advantages=advantages.tolist()
    )
    return examples, {
        **rollout_metrics(rollouts),
        "reward": float(sum(rewards) / max(len(rewards), 1)),
    }


Config = GRPOConfig
