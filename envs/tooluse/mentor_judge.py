"""MENTOR's answer extraction and answer check, as its official reward computes them.

The official reward (MENTOR-RL, ``verl/utils/reward_score/mentor*.py``) reads
the answer from the **whole decoded sample**, prompt included:

* :func:`last_boxed` finds the last ``\\boxed`` (or, without one, ``\\fbox``)
  and its balanced braces; when ``"\\boxed "`` (with a space) occurs anywhere,
  the answer is instead everything after its last occurrence up to a ``$``;
* :func:`boxed_content` strips ``\\boxed{...}`` or ``\\boxed `` and refuses
  anything else (an ``\\fbox{...}`` or ``\\boxedx``), which the reward scores
  like a missing answer;
* :func:`unified_judge` ORs three checkers: math-verify's metric (gold in
  ``\\boxed{}``, the answer read as an expression or LaTeX), math-verify's
  ``parse``/``verify``, and MathRuler's ``grade_answer`` (PRM800K's grader;
  ``pip install mathruler pylatexenc``). Like the official code, a checker that
  is not installed or raises counts as "not equal".

Model text can make sympy run for ever, so :class:`AnswerJudge` runs the check
in the tool sandbox (a separate, confined process) with a wall-clock limit; an
answer that hits it is judged wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

__all__ = [
    "AnswerJudge",
    "boxed_content",
    "last_boxed",
    "make_judges",
    "shared_judge",
    "unified_judge",
]


def last_boxed(text: str) -> str | None:
    """The official ``last_boxed_only_string``: the last ``\\boxed{...}`` of ``text``, or None."""
    if "\\boxed " in text:
        return "\\boxed " + text.split("\\boxed ")[-1].split("$")[0]
    start = text.rfind("\\boxed")
    if start < 0:
        start = text.rfind("\\fbox")
        if start < 0:
            return None
    depth = 0
    for index in range(start, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[start : index + 1]
    return None


def boxed_content(boxed: str) -> str:
    """The answer inside a :func:`last_boxed` string; ValueError when it is not ``\\boxed``."""
    if "\\boxed " in boxed:
        if not boxed.startswith("\\boxed "):
            raise ValueError(f"not a boxed answer: {boxed[:40]!r}")
        return boxed[len("\\boxed ") :]
    if not boxed.startswith("\\boxed{") or not boxed.endswith("}"):
        raise ValueError(f"not a boxed answer: {boxed[:40]!r}")
    return boxed[len("\\boxed{") : -1]


def _clean_gold(gold: str) -> str:
    if "\\boxed{" not in gold:
        return gold
    boxed = last_boxed(gold)
    return boxed_content(boxed) if boxed is not None else gold


_METRIC: Any = None


def _metric() -> Any:
    global _METRIC
    if _METRIC is None:
        from math_verify.metric import math_metric
        from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig

        _METRIC = math_metric(
            gold_extraction_target=(LatexExtractionConfig(),),
            pred_extraction_target=(ExprExtractionConfig(), LatexExtractionConfig()),
        )
    return _METRIC


def _mathruler_grade(prediction: str, golds: Sequence[str]) -> bool:
    try:
        from mathruler.grader import grade_answer
    except ImportError:
        return False
    try:
        return any(grade_answer(prediction, gold) for gold in golds)
    except Exception:  # noqa: BLE001 - the official check counts any failure as "not equal"
        return False


def unified_judge(prediction: str, ground_truth: str | Sequence[str]) -> bool:
    """Whether ``prediction`` (the boxed answer's content) equals a gold answer, officially.

    True when any of math-verify's metric, math-verify's parse/verify or
    MathRuler's grader says so (module docstring).
    """
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    golds = [ground_truth] if isinstance(ground_truth, str) else list(ground_truth)
    clean = [_clean_gold(gold) for gold in golds]
    for gold in clean:
        try:
            score, _ = _metric()([f"\\boxed{{{gold}}}"], [prediction])
            if float(score) > 0:
                return True
        except Exception:  # noqa: BLE001, S112 - as the official check: a failure is "not equal"
            continue
    try:
        parsed = parse(prediction)
        if any(verify(parse(gold), parsed) for gold in clean):
            return True
    except Exception:  # noqa: BLE001
        pass
    return _mathruler_grade(prediction, golds)


def make_judges() -> dict[str, Any]:
    """The sandbox toolset: ``unified_judge`` (imports its checkers while the worker starts)."""
    import math_verify  # noqa: F401

    try:
        import mathruler.grader  # noqa: F401
    except ImportError:
        pass
    _metric()
    return {"unified_judge": unified_judge}


class AnswerJudge:
    """:func:`unified_judge` run in the tool sandbox, with a wall-clock limit and a cache.

    ``judge(prediction, ground_truth)`` is True or False; an answer whose check
    exceeds ``timeout_s`` (math-verify's own limits are 5 s) is judged wrong.
    """

    def __init__(self, timeout_s: float = 30.0) -> None:
        from envs.tooluse.sandbox import Sandbox, SandboxLimits, Toolset

        self.toolset = Toolset("envs.tooluse.mentor_judge:make_judges")
        limits = SandboxLimits(
            wall_time_s=timeout_s, cpu_time_s=max(1, int(timeout_s)), memory_mb=2048
        )
        self.sandbox = Sandbox(limits, preload=(self.toolset,))
        self.cache: dict[tuple[str, tuple[str, ...]], bool] = {}

    def __call__(self, prediction: str, ground_truth: Sequence[str]) -> bool:
        key = (prediction, tuple(ground_truth))
        if key not in self.cache:
            outcome = self.sandbox.call(
                self.toolset,
                "unified_judge",
                {"prediction": prediction, "ground_truth": list(ground_truth)},
            )
            self.cache[key] = outcome.ok and outcome.content.strip() == "true"
        return self.cache[key]

    def close(self) -> None:
        self.sandbox.close()


_SHARED: AnswerJudge | None = None


def shared_judge() -> AnswerJudge:
    """One sandboxed judge per process, started on first use (a trainer's MENTOR reward)."""
    global _SHARED
    if _SHARED is None:
        _SHARED = AnswerJudge()
    return _SHARED
