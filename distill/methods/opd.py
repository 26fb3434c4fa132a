"""Vanilla on-policy distillation (spec section 2): the student alone acts; each of its
tokens gets A = log pi_T - log pi_old under the PPO-clip surrogate."""

from __future__ import annotations

from typing import Any

from distill.batching import Example
from distill.methods.common import collect, rollout_metrics, scored, turn_examples
from envs.multiagent.selectors import FixedSelector

NEEDS_TEACHER = True
NEEDS_SHARED_VOCAB = True


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    tasks = ctx.sample_tasks(step, ctx.config.rollouts_per_step)
    rollouts = collect(ctx, step, tasks, lambda _i: FixedSelector("student"))
    scoring = scored(ctx, rollouts)
    examples = turn_examples(rollouts, {"student": ("reverse_kl", 1.0)})
    return examples, {**rollout_metrics(rollouts), "time_scoring_s": scoring}
