"""Guided-OPD (spec section 3): teacher and student turns mixed within each rollout.

Each turn the teacher acts with probability beta(s) (a fresh Bernoulli draw
per turn, the same history for both); beta decays with the global step by
the configured schedule (cosine from 1 to 0 by 0.8 N). Student turns get the
OPD loss (reverse KL on student tokens), teacher turns the NLL of the
teacher's tokens (forward KL), weighted ``teacher_weight`` per token. The
ablations are the per-actor loss options (both reverse KL; roles swapped;
teacher turns masked out) and a constant schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distill.batching import Example
from distill.config import setting
from distill.methods.common import collect, rollout_metrics, scored, turn_examples
from distill.methods.opd import OPDConfig
from distill.schedules import intervention_prob
from envs.multiagent.selectors import BernoulliSelector


@dataclass
class GuidedOPDConfig(OPDConfig):
    """Guided-OPD: teacher and student turns mixed within a rollout."""

    method: str = setting("guided_opd", "the algorithm")
    schedule: str = setting(
        "cosine",
        "how the teacher's probability decays: cosine, linear, exponential or constant",
        choices=("cosine", "linear", "exponential", "constant"),
    )
    beta_start: float = setting(1.0, "the teacher's probability at step 0", minimum=0, maximum=1)
    beta_end: float = setting(0.0, "the teacher's probability at the end", minimum=0, maximum=1)
    beta_ratio: float = setting(
        0.8, "fraction of total_steps at which beta reaches beta_end", above=0, maximum=1
    )
    student_turn_loss: str = setting(
        "reverse_kl",
        "student turns: reverse_kl, forward_kl or none",
        choices=("reverse_kl", "forward_kl", "none"),
    )
    teacher_turn_loss: str = setting(
        "forward_kl",
        "teacher turns: forward_kl, reverse_kl or none",
        choices=("forward_kl", "reverse_kl", "none"),
    )
    teacher_weight: float = setting(
        1.0, "weight of a teacher-turn token (our default: equal weight)", minimum=0
    )


NEEDS_TEACHER = True
NEEDS_SHARED_VOCAB = True


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    config = ctx.config
    beta = intervention_prob(
        step,
        config.total_steps,
        kind=config.schedule,
        start=config.beta_start,
        end=config.beta_end,
        ratio=config.beta_ratio,
    )
    tasks = ctx.sample_tasks(step, config.rollouts_per_step)
    rollouts = collect(
        ctx,
        step,
        tasks,
        lambda i: BernoulliSelector(
            beta,
            agents=("teacher", "student"),
            seed=ctx.rollout_seed(step, 10_000 + ctx.global_index(i)),
        ),
    )
    scoring = scored(ctx, rollouts)
    losses = {
        "student": (config.student_turn_loss, 1.0),
        "teacher": (config.teacher_turn_loss, config.teacher_weight),
    }
    examples = turn_examples(rollouts, losses)
    return examples, {**rollout_metrics(rollouts), "beta": beta, "time_scoring_s": scoring}


Config = GuidedOPDConfig
