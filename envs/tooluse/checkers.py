"""Answer checkers: math answers (math-verify), QA answers (exact match, token F1), calls (AST).

* :func:`check_math` compares a final answer with the gold one using
  `math-verify <https://github.com/huggingface/Math-Verify>`_, which reads
  ``\\boxed{1,200}``, ``1200.0``, ``$1200$`` or ``\\frac{2400}{2}`` alike. It
  parses model text with sympy, so the environments run it inside the tool
  sandbox (``make_checkers``) where a pathological answer cannot hang them.
* :func:`normalize_answer`, :func:`exact_match` and :func:`token_f1` are the
  SQuAD/HotpotQA answer metrics (lower-case, no punctuation, no articles).
* :func:`match_calls` judges function calls against BFCL-style possible
  answers ``[{"name": {"param": [accepted values]}}]``: names, argument types
  and values must match; calls of one turn may come in any order; ``""`` among a
  parameter's accepted values means it may be left out.
"""

from __future__ import annotations

import logging
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envs.tooluse.schema import normalize_tool_name, type_error

__all__ = [
    "CallMatch",
    "check_math",
    "exact_match",
    "make_checkers",
    "match_calls",
    "normalize_answer",
    "qa_scores",
    "token_f1",
]


# -- math -----------------------------------------------------------------------


def check_math(candidate: str, gold: str) -> bool:
    """Whether the answer text ``candidate`` equals the gold answer ``gold`` (math-verify).

    ``candidate`` is what the model wrote as its answer (the contents of
    ``\\boxed{}`` or of ``<answer>``); a number with thousands separators or
    trailing zeros counts, as does an equivalent expression. Floats are
    compared after rounding to 6 decimal places (math-verify's default).
    """
    from math_verify import parse, verify

    # Timeouts are the sandbox's job: math-verify's own use signal alarms (main thread only).
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    gold_parsed = parse(f"${gold}$", parsing_timeout=None)
    if not gold_parsed:
        raise ValueError(f"the gold answer {gold!r} cannot be parsed")
    # A sentence's full stop and a plain-word unit ("1,200 crates.") are not part of the number.
    candidate = _TRAILING_WORDS.sub("", candidate.strip().rstrip(".").strip())
    if not candidate:
        return False
    # Wrapped in \boxed so that math-verify reads the whole answer, not the last number in it.
    answer_parsed = parse(f"\\boxed{{{candidate}}}", parsing_timeout=None)
    return bool(answer_parsed) and bool(verify(gold_parsed, answer_parsed, timeout_seconds=None))


_TRAILING_WORDS = re.compile(r"(?<=[\d}])\s+[A-Za-z][A-Za-z ]*$")


def make_checkers() -> dict[str, Callable[..., Any]]:
    """The checkers that run inside the tool sandbox (its toolset factory)."""
    import math_verify  # noqa: F401  (imported now, while the worker may still read its files)

    return {"check_math": check_math}


# -- question answering -----------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, squeeze whitespace (SQuAD)."""
    text = text.lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, gold: str) -> bool:
    """Normalised exact match."""
    return normalize_answer(prediction) == normalize_answer(gold)


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 of the normalised strings (HotpotQA's definition, yes/no/noanswer kept whole)."""
    predicted, expected = normalize_answer(prediction), normalize_answer(gold)
    special = ("yes", "no", "noanswer")
    if (predicted in special or expected in special) and predicted != expected:
        return 0.0
    predicted_tokens, expected_tokens = predicted.split(), expected.split()
    common = Counter(predicted_tokens) & Counter(expected_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted_tokens)
    recall = overlap / len(expected_tokens)
    return 2 * precision * recall / (precision + recall)


def qa_scores(prediction: str, golds: list[str] | tuple[str, ...]) -> tuple[bool, float]:
    """Best exact match and best token F1 of ``prediction`` over the gold aliases."""
    if not golds:
        raise ValueError("qa_scores needs at least one gold answer")
    em = any(exact_match(prediction, gold) for gold in golds)
    f1 = max(token_f1(prediction, gold) for gold in golds)
    return em, (1.0 if em else f1)


# -- function calls (BFCL's AST checker, re-stated) ---------------------------------

# BFCL's string standardisation: case, spaces and these marks do not matter.
_STRING_NOISE = re.compile(r"[\s,./\-_*^]")


def _standard_string(text: str) -> str:
    return _STRING_NOISE.sub("", text.lower())


def _same_value(value: Any, accepted: Any) -> bool:
    """Whether a model's argument value equals one accepted value (recursively)."""
    if isinstance(accepted, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(accepted, bool) and value == accepted
    if isinstance(accepted, int | float) and isinstance(value, int | float):
        return float(value) == float(accepted)
    if isinstance(accepted, str) and isinstance(value, str):
        return _standard_string(value) == _standard_string(accepted)
    if isinstance(accepted, list) and isinstance(value, list):
        return len(value) == len(accepted) and all(map(_same_value, value, accepted))
    if isinstance(accepted, dict) and isinstance(value, dict):
        # BFCL writes nested dicts with a list of accepted values per key.
        for key, options in accepted.items():
            options = options if isinstance(options, list) else [options]
            if key not in value:
                if "" not in options:
                    return False
                continue
            if not any(_same_value(value[key], option) for option in options if option != ""):
                return False
        return all(key in accepted for key in value)
    return value == accepted


def _call_problem(
    call: dict[str, Any], gold_name: str, gold_params: dict[str, list[Any]], schema: dict | None
) -> str | None:
    """Why ``call`` does not match the gold call (None when it does)."""
    if normalize_tool_name(call.get("name") or "") != normalize_tool_name(gold_name):
        return f"expected a call to {gold_name!r}, got {call.get('name')!r}"
    arguments = call.get("arguments")
    if not isinstance(arguments, dict):
        return f"{gold_name}: the call could not be read"
    properties = (schema or {}).get("properties") or {}
    for key, value in arguments.items():
        if key not in gold_params:
            return f"{gold_name}: unexpected argument {key!r}"
        kind = (properties.get(key) or {}).get("type")
        problem = type_error(value, kind) if isinstance(kind, str) else None
        if problem:
            return f"{gold_name}: argument {key!r} {problem}"
        options = gold_params[key]
        options = options if isinstance(options, list) else [options]
        if not any(_same_value(value, option) for option in options if option != ""):
            return f"{gold_name}: argument {key!r}={value!r} is not an accepted value"
    for key, options in gold_params.items():
        options = options if isinstance(options, list) else [options]
        if key not in arguments and "" not in options:
            return f"{gold_name}: missing argument {key!r}"
    return None


@dataclass
class CallMatch:
    """How a list of calls compares with the gold calls: ``correct`` only when every one matches."""

    correct: bool
    matched: int
    expected: int
    made: int
    problems: list[str] = field(default_factory=list)


def match_calls(
    calls: list[dict[str, Any]],
    gold: list[dict[str, dict[str, list[Any]]]],
    schemas: dict[str, dict[str, Any]] | None = None,
) -> CallMatch:
    """Judge ``calls`` (``{"name", "arguments"}``) against ``gold``, in any order, one to one.

    ``schemas`` maps tool names to their ``parameters`` object, for type checks.
    Extra calls, missing calls and any mismatched argument make the result wrong.
    """
    schemas = schemas or {}
    expected = []
    for entry in gold:
        if not isinstance(entry, dict) or len(entry) != 1:
            raise ValueError(
                f"a gold call must be a one-key object {{name: {{param: [values]}}}}: {entry!r}"
            )
        ((name, params),) = entry.items()
        expected.append((name, params))
    # compatible[i] = gold calls that calls[i] matches; then find a one-to-one assignment.
    compatible = []
    problems = []
    for call in calls:
        fits = []
        reasons = []
        for index, (name, params) in enumerate(expected):
            schema = schemas.get(normalize_tool_name(name))
            problem = _call_problem(call, name, params, schema)
            if problem is None:
                fits.append(index)
            else:
                reasons.append(problem)
        compatible.append(fits)
        if not fits:
            same_name = [r for r in reasons if not r.startswith("expected a call")]
            problems.append(
                same_name[0] if same_name else f"unexpected call to {call.get('name')!r}"
            )
    owner: dict[int, int] = {}

    def assign(call_index: int, seen: set[int]) -> bool:
        for gold_index in compatible[call_index]:
            if gold_index in seen:
                continue
            seen.add(gold_index)
            if gold_index not in owner or assign(owner[gold_index], seen):
                owner[gold_index] = call_index
                return True
        return False

    matched = sum(assign(i, set()) for i in range(len(calls)))
    if len(calls) < len(expected):
        problems.append(f"{len(expected) - matched} expected call(s) not made")
    correct = matched == len(expected) == len(calls)
    return CallMatch(correct, matched, len(expected), len(calls), problems)
