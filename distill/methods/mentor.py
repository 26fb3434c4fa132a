"""MENTOR (spec section 5): GRPO with the teacher-guided composite reward.

The teacher (or the expert) plays each task ``reference_attempts`` times; its
successful episodes are the reference, cached for the run. On tool tasks a
student rollout's reward is the official MENTOR reward
(:func:`distill.rewards.mentor_tool_reward`): correctness of the boxed answer
by the official checkers, the match of its per-call tool names with the
reference (``exact``, ``overlap``, ``f1`` or ``none``) and the absence of
hallucinated tools, behind the end-of-sequence and final-answer gates. On text
envs the project's generalisation (:func:`distill.rewards.mentor_reward`) uses
action types for tools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distill.batching import Example
from distill.config import ConfigError, setting
from distill.methods import grpo
from distill.methods.common import reference_rollouts
from distill.methods.grpo import GRPOConfig
from distill.rewards import (
    ANSWER_TOOL,
    MentorRewardConfig,
    ReferenceEpisode,
    mentor_reward,
    mentor_tool_reward,
)
from distill.rollout import Rollout


@dataclass
class MentorConfig(GRPOConfig):
    """MENTOR: GRPO with the teacher-guided composite reward."""

    method: str = setting("mentor", "the algorithm")
    match: str = setting(
        "exact",
        "tool-set match: exact, overlap, f1 or none",
        choices=("exact", "overlap", "f1", "none"),
    )
    reference: str = setting(
        "teacher",
        "whose episodes give the reference tool set: teacher or expert",
        choices=("teacher", "expert"),
    )
    reward_weights: dict[str, float] = setting(
        factory=dict, help="overrides of the 0.7 / 0.3 / 0.2 / 0.1 reward weights"
    )
    reference_attempts: int = setting(
        1, "reference episodes per task; the first successful one counts", minimum=1
    )
    epochs: int = setting(2, "optimiser passes over each step's rollouts (MENTOR: 2)", minimum=1)

    def check(self) -> None:
        super().check()
        from distill.rewards import DEFAULT_MENTOR_WEIGHTS

        unknown = sorted(set(self.reward_weights) - set(DEFAULT_MENTOR_WEIGHTS))
        if unknown:
            raise ConfigError(
                f"reward_weights: unknown {unknown}; known: {sorted(DEFAULT_MENTOR_WEIGHTS)}"
            )
        if self.reference == "teacher" and not self.teacher:
            raise ConfigError(
                "teacher: mentor with reference: teacher needs a teacher (or set reference: expert)"
            )


NEEDS_TEACHER = False  # an expert reference needs none
NEEDS_REFERENCE_MODEL = True

#: MENTOR's ``max_turns``: every model turn counts (4 tool turns and the answer).
OFFICIAL_MAX_TURNS = 5

_JUDGE: Any = None


def answer_judge() -> Any:
    """The official answer check, run in its own sandbox process (one per trainer process)."""
    global _JUDGE
    if _JUDGE is None:
        from envs.tooluse.mentor_judge import AnswerJudge

        _JUDGE = AnswerJudge()
    return _JUDGE


def ground_truths(ctx: Any, tasks: Sequence[str]) -> dict[str, list[str]]:
    """The gold answers of tool tasks, read once from the env and cached in ``ctx.cache``."""
    cache = ctx.cache.setdefault("ground_truth", {})
    if any(task not in cache for task in tasks):
        known = ctx.collector.pool.get_attr("tasks")[0]
        for task in tasks:
            cache[task] = list(known[task].answer)
    return {task: cache[task] for task in tasks}


def composite_rewards(ctx: Any, rollouts: Sequence[Rollout]) -> list[float]:
    config = ctx.config
    task_ids = [r.task_id for r in rollouts]
    references = reference_rollouts(
        ctx, task_ids, config.reference, attempts=getattr(config, "reference_attempts", 1)
    )
    reward_config = MentorRewardConfig(
        variant=config.match,
        max_turns=config.max_turns if config.max_turns is not None else OFFICIAL_MAX_TURNS,
        weights=dict(config.reward_weights or {}),
    )
    boxed = [r.task_id for r in rollouts if r.tools and ANSWER_TOOL not in r.tools]
    golds = ground_truths(ctx, boxed) if boxed else {}
    rewards = []
    for rollout in rollouts:
        reference = references[rollout.task_id]
        if rollout.tools:
            episodes = [
                ReferenceEpisode(bool(e["won"]), tuple(e["completions"]))
                for e in reference["episodes"]
            ]
            rewards.append(
                mentor_tool_reward(
                    rollout,
                    episodes,
                    rollout.tools,
                    reward_config,
                    ground_truth=golds.get(rollout.task_id, ()),
                    judge=answer_judge(),
                )
            )
            continue
        finished, answered, correct = grpo.outcome(rollout, config.graded)
        student_tools = rollout.action_types_of("student")
        teacher_tools = [t for t in reference["action_types"] if t != "invalid"]
        # Text envs: an action the env did not understand is the hallucination.
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


Config = MentorConfig
