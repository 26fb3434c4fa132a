"""What GRPO-family rewards read off a rollout, as the official MENTOR code reads it.

MENTOR's composite reward itself is written in ``distill/methods/mentor.py``;
this module holds its parts and the sparse baseline:

* ``sparse_reward``: 1 if correct, 0.1 if wrong or unanswered but finished, 0
  without an end of sequence (GRPO's "standard RL" reward);
* ``official_sample``: a tool rollout's sample as the official rollout builds
  it (its ``max_turns`` counts every model turn; a turn cut for length or a
  turn without calls ends it) and whether it ended with end-of-sequence;
* ``tool_usage`` / ``turn_calls`` / ``reference_tools``: per-call tool names
  read from ``<tool_call>`` blocks (an unreadable block ignored, a failed call
  of an offered tool still counted, an unknown name a hallucination), and the
  reference names from the first successful reference episode;
* ``tool_set_match``: the ``exact`` / ``overlap`` / ``f1`` / ``none`` match of two
  tool sets; ``DEFAULT_MENTOR_WEIGHTS``: the published weights.

The answer extraction and the official three-checker answer check live in
``envs.tooluse.mentor_judge`` (run in the tool sandbox).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ANSWER_TOOL",
    "DEFAULT_MENTOR_WEIGHTS",
    "MATCH_VARIANTS",
    "MentorRewardConfig",
    "ReferenceEpisode",
    "ToolUsage",
    "mentor_weights",
    "official_sample",
    "reference_tools",
    "sparse_reward",
    "tool_set_match",
    "tool_usage",
    "turn_calls",
]

MATCH_VARIANTS: tuple[str, ...] = ("exact", "overlap", "f1", "none")

#: The published weights; a config's ``reward_weights`` overrides any of them.
DEFAULT_MENTOR_WEIGHTS: dict[str, float] = {
    "correct": 0.7,  # weight of the outcome
    "match": 0.3,  # weight of the tool-set match
    "wrong_match_scale": 0.2,  # the match term's scale when the outcome is wrong
    "no_hallucination": 0.1,  # weight of calling only existing tools
    "unanswered": 0.1,  # reward of a finished rollout with no final answer
    "no_reference": 0.1,  # reward of an answered rollout whose task has no reference tools
}


def mentor_weights(weights: Mapping[str, float] | None) -> dict[str, float]:
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
        mentor_weights(self.weights)


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
