"""Guided-OPD: teacher and student turns mixed within each rollout, the teacher fading out.

Rollouts: at every turn of a training episode a fresh coin Z_t ~ Bernoulli(beta_s)
decides who writes the whole turn (reasoning and action): the teacher if
Z_t = 1, else the student. Both condition on the same shared history and the
action is executed either way. beta depends only on the global step s; the
paper's schedule is a cosine from beta_start = 1 to beta_end = 0, reached at
beta_ratio = 0.8 of the total steps N and kept:

    beta(s) = beta_end + (beta_start - beta_end) * 0.5 * (1 + cos(pi * min(s / (rho N), 1)))

(``schedule``: linear, exponential and constant are the options; constant is
the paper's ablation). Evaluations use beta = 0, the student alone. The
teacher then scores the student's tokens.

Loss, per completion token, by who wrote the turn:

    student turns:  OPD's reverse-KL term (distill/methods/opd.py): the PPO-clip
                    surrogate with A_t = log pi_T - log pi_old
    teacher turns:  teacher_weight * -log pi_S(y_t | ctx_t), the forward KL with the
                    teacher's sampled tokens, i.e. SFT on that turn

The ablations are the per-actor options: both actors reverse KL
(``teacher_turn_loss: reverse_kl``; a teacher turn's pi_old is then the
current student), roles swapped (``student_turn_loss: forward_kl``,
``teacher_turn_loss: reverse_kl``), and teacher turns masked out
(``teacher_turn_loss: none``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from distill.batching import Batch, Example
from distill.config import setting
from distill.losses import tally
from distill.methods import opd
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
    trained = [
        actor
        for actor, kind in (
            ("student", config.student_turn_loss),
            ("teacher", config.teacher_turn_loss),
        )
        if kind != "none"
    ]
    examples = turn_examples(rollouts, trained)
    return examples, {**rollout_metrics(rollouts), "beta": beta, "time_scoring_s": scoring}


def loss(model: Any, batch: Batch, ctx: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per-token loss: each actor's turns get the term its option names (module docstring)."""
    config = ctx.config
    logp, logits = opd.student_logprobs(model, batch, ctx)
    terms = {"student": (config.student_turn_loss, 1.0)}
    terms["teacher"] = (config.teacher_turn_loss, config.teacher_weight)
    reverse = None
    if "reverse_kl" in (config.student_turn_loss, config.teacher_turn_loss):
        reverse = opd.reverse_kl(logp, logits, batch, ctx)
    per_token = torch.zeros_like(logp)
    for actor, (kind, weight) in terms.items():
        turns = batch.actor_mask(actor).to(logp.device)
        if kind == "reverse_kl":
            per_token = per_token + weight * reverse * turns
        elif kind == "forward_kl":
            per_token = per_token + weight * -logp * turns
    stats = {
        "reverse_kl": opd.sampled_kl(logp, batch, batch.actor_mask("student").to(logp.device)),
        "nll": tally(-logp, batch.actor_mask("teacher").to(logp.device)),
    }
    return per_token, stats


Config = GuidedOPDConfig
