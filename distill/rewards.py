"""Rollout-level rewards for GRPO: MENTOR's teacher-guided composite and the sparse baseline.

MENTOR (spec section 5)::

    not finished (no end-of-sequence)   -> 0
    finished, no final answer           -> 0.1
    otherwise  0.7 * correct + 0.3 * match * (1 if correct else 0.2) + 0.1 * nohall

``match`` compares the set of tools (or, outside tool tasks, action types)
the student used with the teacher's reference set; ``nohall`` is 1 when the
student called nothing outside ``valid_tools``. The weights are options.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "DEFAULT_MENTOR_WEIGHTS",
    "MATCH_VARIANTS",
    "mentor_reward",
    "sparse_reward",
    "tool_set_match",
]

MATCH_VARIANTS: tuple[str, ...] = ("exact", "overlap", "f1", "none")

#: The published weights; ``mentor_reward(weights=...)`` overrides any of them.
DEFAULT_MENTOR_WEIGHTS: dict[str, float] = {
    "correct": 0.7,  # weight of the outcome
    "match": 0.3,  # weight of the tool-set match
    "wrong_match_scale": 0.2,  # the match term's scale when the outcome is wrong
    "no_hallucination": 0.1,  # weight of calling only existing tools
    "unanswered": 0.1,  # reward of a finished rollout with no final answer
}


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
    w = {**DEFAULT_MENTOR_WEIGHTS, **(weights or {})}
    unknown = set(w) - set(DEFAULT_MENTOR_WEIGHTS)
    if unknown:
        raise ValueError(
            f"unknown reward weights {sorted(unknown)}; known: {sorted(DEFAULT_MENTOR_WEIGHTS)}"
        )
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
