"""MENTOR: GRPO (distill/methods/grpo.py) with a teacher-guided composite reward.

Rollouts, advantages, loss and optimiser passes are GRPO's; only each
rollout's reward R_i differs. The teacher (or the expert) plays each task
``reference_attempts`` times, once per run; the tool names of its first
successful episode are the task's reference (a task it never solves has
none). A student rollout then gets, with the published weights:

    the sample did not end with end-of-sequence                 R = 0
    it ended, but gave no final answer                          R = 0.1
    the task has no reference tools (any variant but none)      R = 0.1
    otherwise   R = 0.7 correct + 0.3 match (x 0.2 if wrong) + 0.1 nohall

where ``match`` compares the student's set of called tool names with the
reference set (``exact``: equal sets, and the student called some; ``overlap``:
any shared name, and no ``nohall`` term; ``f1``: the F1 of the two sets;
``none``: no match term and no reference needed), and ``nohall`` is 1 when
the student called no tool the env does not offer.

On tool tasks this is what the official reward files compute on the same
trajectory (:func:`tool_reward`; the sample, tool names, answer extraction and
the three ORed answer checkers as the official code reads them, from
``distill.rewards`` and ``envs.tooluse.mentor_judge``). On text envs, which
have no tools, MENTOR here means (:func:`text_reward`): the action types
(``go to``, ``open``, ``search`` ...) stand for tool names, an action the env
did not understand is the hallucination, "answered" is an episode that ended
by itself rather than at the turn cap, and "correct" is the env's success
flag (or its graded score with ``graded``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from distill.batching import Example
from distill.config import ConfigError, setting
from distill.methods import grpo
from distill.methods.common import reference_rollouts, task_answers
from distill.methods.grpo import GRPOConfig
from distill.rewards import (
    ANSWER_TOOL,
    DEFAULT_MENTOR_WEIGHTS,
    MATCH_VARIANTS,
    MentorRewardConfig,
    ReferenceEpisode,
    mentor_weights,
    official_sample,
    reference_tools,
    tool_set_match,
    tool_usage,
)
from distill.rollout import Rollout
from envs.tooluse.mentor_judge import boxed_content, last_boxed, shared_judge


@dataclass
class MentorConfig(GRPOConfig):
    """MENTOR: GRPO with the teacher-guided composite reward."""

    method: str = setting("mentor", "the algorithm")
    match: str = setting(
        "exact", "tool-set match: exact, overlap, f1 or none", choices=MATCH_VARIANTS
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

    def check(self) -> None:
        super().check()
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

#: The official ``max_turns``: every model turn counts (4 tool turns and the answer).
OFFICIAL_MAX_TURNS = 5


def tool_reward(
    student: Rollout,
    references: Sequence[ReferenceEpisode],
    tools: Sequence[str],
    settings: MentorRewardConfig,
    *,
    ground_truth: Sequence[str],
    judge: Callable[[str, Sequence[str]], bool],
) -> float:
    """The official MENTOR reward of one student rollout of a tool task (module docstring).

    ``judge(answer, ground_truth)`` is the official answer check. On envs with an
    ``answer`` tool (FunctionCall, SearchQA) the answer is that call and the env's
    verdict its correctness (the project's extension: those tasks have no boxed answer).
    """
    w = mentor_weights(settings.weights)
    text, finished = official_sample(student, settings.max_turns, answer_tool=ANSWER_TOOL in tools)
    if not finished:
        return 0.0
    if ANSWER_TOOL in tools:
        if not any(t.action_type == ANSWER_TOOL for t in student.turns[: settings.max_turns]):
            return w["unanswered"]
        correct = bool(student.won)
    else:
        boxed = last_boxed(text)
        try:
            answer = boxed_content(boxed) if boxed is not None else ""
        except ValueError:
            answer = ""
        if not answer.strip():
            return w["unanswered"]
        correct = bool(judge(answer, ground_truth))
    correctness = w["correct"] if correct else 0.0
    usage = tool_usage(text, tools)
    no_hallucination = w["no_hallucination"] if not usage.invalid else 0.0
    if settings.variant == "none":  # ablation 3
        return correctness + no_hallucination
    teacher = set(reference_tools(references, tools))
    if not teacher:
        return w["no_reference"]
    student_set = set(usage.used)
    if not student_set:
        match = 0.0
    elif settings.variant == "f1":  # ablation 4
        match = tool_set_match(student_set, teacher, "f1")
    else:  # exact (mentor.py) or overlap (ablation 2)
        match = tool_set_match(student_set, teacher, settings.variant)
    if settings.variant == "overlap":  # ablation 2 has no hallucination term
        no_hallucination = 0.0
    scale = 1.0 if correct else w["wrong_match_scale"]
    return correctness + (w["match"] * match * scale + no_hallucination)


def text_reward(
    student: Rollout,
    reference_types: Iterable[str],
    settings: MentorRewardConfig,
    *,
    graded: bool = False,
) -> float:
    """MENTOR on an env without tools (module docstring): action types for tool names."""
    w = mentor_weights(settings.weights)
    finished, answered, correct = grpo.outcome(student, graded)
    if not finished:
        return 0.0
    if not answered:
        return w["unanswered"]
    outcome = float(correct)
    student_types = student.action_types_of("student")
    understood = {t.action_type for t in student.turns if not t.invalid_action}
    no_hallucination = float(all(kind in understood for kind in student_types))
    teacher = [kind for kind in reference_types if kind != "invalid"]
    match = tool_set_match(student_types, teacher, settings.variant)
    scale = 1.0 if outcome >= 1.0 else w["wrong_match_scale"]
    return (
        w["correct"] * outcome
        + w["match"] * match * scale
        + w["no_hallucination"] * no_hallucination
    )


def composite_rewards(ctx: Any, rollouts: Sequence[Rollout]) -> list[float]:
    """Each rollout's reward (module docstring): the official one on tool tasks."""
    config = ctx.config
    task_ids = [r.task_id for r in rollouts]
    references = reference_rollouts(
        ctx, task_ids, config.reference, attempts=getattr(config, "reference_attempts", 1)
    )
    settings = MentorRewardConfig(
        variant=config.match,
        max_turns=config.max_turns if config.max_turns is not None else OFFICIAL_MAX_TURNS,
        weights=dict(config.reward_weights or {}),
    )
    boxed = [r.task_id for r in rollouts if r.tools and ANSWER_TOOL not in r.tools]
    golds = task_answers(ctx, boxed) if boxed else {}
    rewards = []
    for rollout in rollouts:
        reference = references[rollout.task_id]
        if rollout.tools:
            episodes = [
                ReferenceEpisode(bool(e["won"]), tuple(e["completions"]))
                for e in reference["episodes"]
            ]
            reward = tool_reward(
                rollout,
                episodes,
                rollout.tools,
                settings,
                ground_truth=golds.get(rollout.task_id, ()),
                judge=shared_judge(),
            )
        else:
            reward = text_reward(rollout, reference["action_types"], settings, graded=config.graded)
        rewards.append(reward)
    return rewards


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    return grpo.make_examples(ctx, step, rollout_rewards=composite_rewards)


#: MENTOR's tokens get GRPO's loss: the composite reward changes the advantages only.
loss = grpo.loss


Config = MentorConfig
