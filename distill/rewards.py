"""Rollout-level rewards for GRPO: MENTOR's teacher-guided composite and the sparse baseline.

MENTOR (spec section 5)::

    not finished (no end-of-sequence)   -> 0
    finished, no final answer           -> 0.1
    otherwise  0.7 * correct + 0.3 * match * (1 if correct else 0.2) + 0.1 * nohall

On tool tasks, :func:`mentor_tool_reward` computes exactly what the official
reward (MENTOR-RL ``mentor.py`` and its ablation files) computes on the same
trajectory: per-call tool names read from the ``<tool_call>`` blocks of the
whole sample, the end-of-sequence gate over the sample as the official rollout
builds it (its ``max_turns`` counts every model turn), the answer extracted and
checked as the official does (:mod:`envs.tooluse.mentor_judge`), the reference from
the teacher's successful episodes (none: a flat 0.1), and the variants ``exact``
(mentor.py), ``overlap`` (ablation 2, no hallucination term), ``f1`` (ablation
4) and ``none`` (ablation 3, no reference needed). Outside tool tasks,
:func:`mentor_reward` is the project's generalisation: action types stand for
tools and an action the env did not understand for a hallucination.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envs.tooluse.mentor_judge import boxed_content, last_boxed

__all__ = [
    "ANSWER_TOOL",
    "DEFAULT_MENTOR_WEIGHTS",
    "MATCH_VARIANTS",
    "MentorRewardConfig",
    "ReferenceEpisode",
    "ToolUsage",
    "mentor_reward",
    "mentor_tool_reward",
    "official_sample",
    "reference_tools",
    "sparse_reward",
    "tool_set_match",
    "tool_usage",
    "turn_calls",
]

MATCH_VARIANTS: tuple[str, ...] = ("exact", "overlap", "f1", "none")

#: The published weights; ``mentor_reward(weights=...)`` overrides any of them.
DEFAULT_MENTOR_WEIGHTS: dict[str, float] = {
    "correct": 0.7,  # weight of the outcome
    "match": 0.3,  # weight of the tool-set match
    "wrong_match_scale": 0.2,  # the match term's scale when the outcome is wrong
    "no_hallucination": 0.1,  # weight of calling only existing tools
    "unanswered": 0.1,  # reward of a finished rollout with no final answer
    "no_reference": 0.1,  # reward of an answered rollout whose task has no reference tools
}


def _weights(weights: Mapping[str, float] | None) -> dict[str, float]:
    w = {**DEFAULT_MENTOR_WEIGHTS, **(weights or {})}
    unknown = set(w) - set(DEFAULT_MENTOR_WEIGHTS)
    if unknown:
        raise ValueError(
            f"unknown reward weights {sorted(unknown)}; known: {sorted(DEFAULT_MENTOR_WEIGHTS)}"
        )
    return w


def tool_set_match(student: Iterable[str], teacher: Iterable[str], variant: str = "exact") -> float:
    """How well the student's tool set matches the teacher's, in [0, 1].

    ``exact``: 1 if the sets are equal; ``overlap``: 1 if they share a name;
    ``f1``: F1 of the sets (precision |S&T|/|S|, recall |S&T|/|T|; two empty
    sets match fully); ``none``: 0, which drops the term.
    """
    if variant not in MATCH_VARIANTS:
        raise ValueError(f"unknown match variant {variant!r}; choose one of {list(MATCH_VARIANTS)}")
    s, t = set(student), set(teacher)
    if variant == "none":
        return 0.0
    if variant == "exact":
        return float(s == t)
    if variant == "overlap":
        return float(bool(s & t))
    if not s and not t:
        return 1.0
    common = len(s & t)
    if common == 0:
        return 0.0
    precision, recall = common / len(s), common / len(t)
    return 2 * precision * recall / (precision + recall)


def mentor_reward(
    *,
    finished: bool,
    answered: bool,
    correct: bool | float,
    student_tools: Iterable[str],
    teacher_tools: Iterable[str],
    valid_tools: Iterable[str],
    variant: str = "exact",
    weights: Mapping[str, float] | None = None,
) -> float:
    """MENTOR's composite reward of one student rollout (see the module docstring).

    ``correct`` is the success flag, or a graded score in [0, 1] where an env
    offers one (ScienceWorld, WebShop) and the config asks for it.
    """
    w = _weights(weights)
    if not finished:
        return 0.0
    if not answered:
        return float(w["unanswered"])
    outcome = float(correct)
    if not 0.0 <= outcome <= 1.0:
        raise ValueError(f"correct must be a flag or a score in [0, 1], got {correct}")
    student_tools = list(student_tools)
    match = tool_set_match(student_tools, teacher_tools, variant)
    valid = set(valid_tools)
    no_hallucination = float(all(tool in valid for tool in student_tools))
    match_scale = 1.0 if outcome >= 1.0 else w["wrong_match_scale"]
    return float(
        w["correct"] * outcome
        + w["match"] * match * match_scale
        + w["no_hallucination"] * no_hallucination
    )


def sparse_reward(*, finished: bool, answered: bool, correct: bool | float) -> float:
    """The "standard RL" baseline: 1 if correct, 0.1 if it ended properly but is wrong
    or unanswered, 0 without an end-of-sequence."""
    if not finished:
        return 0.0
    if answered and float(correct) >= 1.0:
        return 1.0
    return 0.1


# -- the official reward on tool tasks -----------------------------------------------------

ANSWER_TOOL = "answer"
_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_TURN_BLOCK = re.compile(r"<tool_call>((?:(?!</tool_call>).)*)</tool_call>", re.DOTALL)
# The official fallback pattern for unreadable calls, as written there (it needs a backslash).
_NAME_FALLBACK = re.compile(r'"name":\\s*"([^"]+)"')


@dataclass(frozen=True)
class MentorRewardConfig:
    """Settings of :func:`mentor_tool_reward`; the defaults are the official run's.

    ``variant``: ``exact`` (mentor.py), ``overlap`` (ablation 2), ``f1``
    (ablation 4), ``none`` (ablation 3). ``max_turns``: model turns in a sample
    (MENTOR's ``max_turns=5``: 4 tool turns and the answer). ``weights``: see
    ``DEFAULT_MENTOR_WEIGHTS``.
    """

    variant: str = "exact"
    max_turns: int = 5
    weights: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.variant not in MATCH_VARIANTS:
            raise ValueError(
                f"unknown match variant {self.variant!r}; choose one of {list(MATCH_VARIANTS)}"
            )
        if not isinstance(self.max_turns, int) or self.max_turns < 1:
            raise ValueError(f"max_turns must be a positive integer, not {self.max_turns!r}")
        _weights(self.weights)


@dataclass(frozen=True)
class ReferenceEpisode:
    """One reference (teacher or expert) episode of a task: did it succeed, what it wrote."""

    won: bool
    completions: tuple[str, ...]

    @classmethod
    def from_rollout(cls, rollout: Any, actor: str | None = None) -> ReferenceEpisode:
        turns = [t for t in rollout.turns if actor is None or t.actor == actor]
        return cls(bool(rollout.won), tuple(t.completion for t in turns))


@dataclass
class ToolUsage:
    """Tool names of a text, one per readable ``<tool_call>`` block, split by validity."""

    used: list[str]
    invalid: list[str]


def tool_usage(text: str, tools: Iterable[str]) -> ToolUsage:
    """The official ``extract_tool_usage`` over ``text``, with ``tools`` the names the env offers.

    Every ``<tool_call>`` block whose JSON has a ``name`` gives one name (a turn
    of two calls gives two); names not offered are hallucinations; blocks that do
    not parse are ignored. Calls of the project's ``answer`` tool count as
    neither where the env offers it (FunctionCall-v0, SearchQA-v0).
    """
    offered = set(tools)
    usage = ToolUsage([], [])
    for block in _BLOCK.findall(text):
        name: Any = None
        try:
            data = json.loads(block.strip())
            if "name" in data:
                name = data["name"]
        except Exception:  # noqa: BLE001 - as the official code: any failure falls back
            match = _NAME_FALLBACK.search(block)
            name = match.group(1) if match else None
        if not name or (name == ANSWER_TOOL and ANSWER_TOOL in offered):
            continue
        if isinstance(name, str) and name in offered:
            usage.used.append(name)
        else:  # unknown, or not a string (the official code raises on an unhashable one)
            usage.invalid.append(name if isinstance(name, str) else repr(name))
    return usage


def turn_calls(completion: str) -> list[str]:
    """The official rollout's tool calls of one turn: none when the ``<tool_call>`` and
    ``</tool_call>`` tags do not pair up, else the stripped block contents."""
    opens = [m.start() for m in re.finditer("<tool_call>", completion)]
    closes = [m.start() for m in re.finditer("</tool_call>", completion)]
    if len(opens) != len(closes) or any(o >= c for o, c in zip(opens, closes)):
        return []
    return [block.strip() for block in _TURN_BLOCK.findall(completion)]


def _continues(completion: str, answer_tool: bool) -> bool:
    """Whether the official rollout runs tools after this turn (a final ``answer`` call,
    where the env offers that tool, does not)."""
    calls = turn_calls(completion)
    if answer_tool:
        return any(_called_name(call) != ANSWER_TOOL for call in calls)
    return bool(calls)


def _called_name(call: str) -> Any:
    try:
        data = json.loads(call)
    except ValueError:
        return None
    return data.get("name") if isinstance(data, dict) else None


def official_sample(
    rollout: Any, max_turns: int = 5, *, answer_tool: bool = False
) -> tuple[str, bool]:
    """The text of the official sample of ``rollout`` and whether it ends with end-of-sequence.

    The official rollout generates at most ``max_turns`` model turns; a turn cut
    for length ends the sample (no end-of-sequence), a turn without tool calls
    ends it properly, and a turn with calls gets the tool responses and a new
    prompt, so a sample whose last turn called tools has no end-of-sequence.
    The text is the first observation (the prompt's question) followed by the
    turns and the tool responses of the sample. ``answer_tool``: the env offers
    the ``answer`` tool, whose call ends an episode as a final answer does.
    """
    state = getattr(rollout, "state", None)
    steps = getattr(state, "steps", None) or []
    parts = [steps[0].observation] if steps else []
    for number, turn in enumerate(rollout.turns, 1):
        parts.append(turn.completion)
        if not turn.finished:
            return "\n".join(parts), False
        if not _continues(turn.completion, answer_tool):
            return "\n".join(parts), True
        parts.append(turn.observation)
        if number >= max_turns:
            break
    return "\n".join(parts), False


def reference_tools(references: Sequence[ReferenceEpisode], tools: Iterable[str]) -> list[str]:
    """Per-call tool names (valid ones) of the first successful reference episode; [] if none."""
    tools = list(tools)
    for episode in references:
        if episode.won:
            return tool_usage("\n".join(episode.completions), tools).used
    return []


def mentor_tool_reward(
    student: Any,
    references: Sequence[ReferenceEpisode],
    tools: Sequence[str],
    config: MentorRewardConfig,
    *,
    ground_truth: Sequence[str],
    judge: Callable[[str, Sequence[str]], bool],
) -> float:
    """The official MENTOR reward of one student rollout of a tool task (module docstring).

    ``references`` are the task's reference episodes, ``tools`` the tool names
    the env offered, ``ground_truth`` the gold answers and ``judge(answer,
    ground_truth)`` the official answer check (``envs.tooluse.mentor_judge``).
    """
    w = _weights(config.weights)
    text, finished = official_sample(student, config.max_turns, answer_tool=ANSWER_TOOL in tools)
    if not finished:
        return 0.0
    if ANSWER_TOOL in tools:
        # The project's envs with an answer tool: the env judged that answer (no boxed text).
        if not any(t.action_type == ANSWER_TOOL for t in student.turns[: config.max_turns]):
            return float(w["unanswered"])
        correct = bool(student.won)
    else:
        boxed = last_boxed(text)
        if boxed is None:
            return float(w["unanswered"])
        try:
            answer = boxed_content(boxed)
        except ValueError:
            return float(w["unanswered"])
        if not answer.strip():
            return float(w["unanswered"])
        correct = bool(judge(answer, ground_truth))
    correctness = w["correct"] if correct else 0.0
    usage = tool_usage(text, tools)
    no_hallucination = w["no_hallucination"] if not usage.invalid else 0.0
    if config.variant == "none":
        return correctness + no_hallucination
    teacher = reference_tools(references, tools)
    if not teacher:
        return float(w["no_reference"])
    student_set, teacher_set = set(usage.used), set(teacher)
    if not usage.used:
        matching = 0.0
    elif config.variant == "exact":
        matching = w["match"] if student_set == teacher_set else 0.0
    elif config.variant == "overlap":
        matching = w["match"] if student_set & teacher_set else 0.0
    else:
        matching = w["match"] * tool_set_match(student_set, teacher_set, "f1")
    if config.variant == "overlap":  # ablation 2 has no hallucination term
        no_hallucination = 0.0
        if correct:
            return correctness + matching
        return correctness + matching * w["wrong_match_scale"]
    if correct:
        return correctness + (matching + no_hallucination)
    return correctness + (matching * w["wrong_match_scale"] + no_hallucination)
