"""TCOD: on-policy distillation with a temporal curriculum over the horizon (pace eta).

Rollouts, at global step s:

    F2B (front to back): the student's episode is cut after
        k = min(1 + floor(s / eta), T_max) turns;
    B2F (back to front): the first max(0, L - 1 - floor(s / eta)) actions of a
        successful reference episode of length L (the expert's or the teacher's,
        collected once per task) are replayed with no loss, then the student acts
        until the episode ends or the turn cap; a task without a successful
        reference gets a whole student episode.

Evaluation always uses the full horizon. Loss: OPD's, on the student's tokens
(distill/methods/opd.py); replayed turns are never trained.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distill.batching import Example
from distill.config import setting
from distill.methods import opd
from distill.methods.common import (
    collect,
    reference_rollouts,
    rollout_metrics,
    scored,
    turn_examples,
)
from distill.methods.opd import OPDConfig
from envs.multiagent.selectors import FixedSelector, PrefixSelector


@dataclass
class TCODConfig(OPDConfig):
    """TCOD: temporal curricula over the horizon."""

    method: str = setting("tcod", "the algorithm")
    variant: str = setting(
        "f2b", "f2b (front to back) or b2f (back to front)", choices=("f2b", "b2f")
    )
    pace: int = setting(2, "eta: steps per turn of curriculum", minimum=1)
    reference: str = setting(
        "expert", "b2f's reference trajectories: expert or teacher", choices=("expert", "teacher")
    )


NEEDS_TEACHER = True
NEEDS_SHARED_VOCAB = True


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    config = ctx.config
    cap = config.turn_cap()
    tasks = ctx.sample_tasks(step, config.rollouts_per_step)
    metrics: dict[str, float] = {}
    if config.variant == "f2b":
        horizon = min(1 + step // config.pace, cap)
        rollouts = collect(ctx, step, tasks, lambda _i: FixedSelector("student"), max_turns=horizon)
        metrics["horizon"] = float(horizon)
    elif config.variant == "b2f":
        references = reference_rollouts(ctx, tasks, config.reference)
        replay, prefixes = [], []
        for task in tasks:
            reference = references[task]
            if reference["won"]:
                length = len(reference["actions"])
                prefixes.append(max(0, length - 1 - step // config.pace))
                replay.append(reference["actions"])
            else:
                prefixes.append(0)
                replay.append(None)
        rollouts = collect(
            ctx,
            step,
            tasks,
            lambda i: PrefixSelector(prefixes[i], agents=("replay", "student")),
            replay=replay,
        )
        metrics["replayed_turns"] = sum(prefixes) / max(len(prefixes), 1)
    else:
        raise ValueError(f"unknown TCOD variant {config.variant!r}; choose f2b or b2f")
    scoring = scored(ctx, rollouts)
    examples = turn_examples(rollouts, ["student"])
    return examples, {**rollout_metrics(rollouts), **metrics, "time_scoring_s": scoring}


#: TCOD's tokens get OPD's loss: the curriculum changes the rollouts, not the objective.
loss = opd.loss


Config = TCODConfig
