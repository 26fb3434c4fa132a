"""MENTOR (spec section 5): GRPO with the teacher-guided composite reward.

The teacher (or the expert) plays each task once; its set of tool names (or,
outside tool tasks, action types) is the reference, cached for the run. A
student rollout's reward combines correctness, the tool-set match with the
reference (``exact``, ``overlap``, ``f1`` or ``none``) and the absence of
hallucinated tools, behind the end-of-sequence and final-answer gates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from distill.batching import Example
from distill.methods import grpo
from distill.methods.common import reference_rollouts
from distill.rewards import mentor_reward
from distill.rollout import Rollout

NEEDS_TEACHER = False  # an expert reference needs none
NEEDS_REFERENCE_MODEL = True


def composite_rewards(ctx: Any, rollouts: Sequence[Rollout]) -> list[float]:
    config = ctx.config
    references = reference_rollouts(ctx, [r.task_id for r in rollouts], config.reference)
    rewards = []
    for rollout in rollouts:
        finished, answered, correct = grpo.outcome(rollout, config.graded)
        student_tools = [t for t in rollout.action_types_of("student")]
        teacher_tools = [t for t in references[rollout.task_id]["action_types"] if t != "invalid"]
        if rollout.tools:
            valid = set(rollout.tools) | {"answer"}
        else:  # text envs: an action the env did not understand is the hallucination
            valid = {t.action_type for t in rollout.turns if not t.invalid_action}
        rewards.append(
            mentor_reward(
                finished=finished,
                answered=answered,
                correct=correct,
                student_tools=student_tools,
                teacher_tools=teacher_tools,
                valid_tools=valid,
                variant=config.match,
                weights=config.reward_weights or None,
            )
        )
    return rewards


def prepare(ctx: Any) -> None:
    if ctx.config.reference == "teacher" and ctx.teacher is None:
        raise ValueError("mentor with reference=teacher needs a teacher (or set reference: expert)")


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    return grpo.make_examples(ctx, step, rollout_rewards=composite_rewards)
