"""BFCL's AST verdict on BFCL-format data, re-stated: what FunctionCall-v0 judges BFCL tasks with.

The Berkeley Function Calling Leaderboard scores one model response per entry
("single shot"): the response is decoded into calls ``[{name: {param: value}}]``
and compared with the entry's possible answers ``[{name: {param: [accepted
values]}}]`` by its AST checker. :func:`check_calls` gives the same verdict as
that checker (gorilla ``bfcl_eval/eval_checker/ast_eval/ast_checker.py``, Python
categories) on the same inputs, including its deliberate leniencies and its
limits:

* strings compare after removing `` ,./-_*^`` (nothing else: a tab or a
  non-breaking space counts), lower-casing, and mapping ``'`` to ``"``; inside
  lists and dicts only the top level is normalised;
* a parameter's type comes from the function's schema (``float`` accepts an
  int), but a value typed like the first accepted gold value is taken as a
  "variable" and compared as it is (``null`` where the gold is ``["", null]``,
  ``2`` for a string whose gold is ``[2]``); list items are type-checked one
  level deep against the gold lists, skipped when the gold has a non-list option;
* every schema-required parameter must be given, even one the gold marks
  optional with ``""``; a parameter absent from the schema or the gold is
  unexpected; a gold parameter without ``""`` must be given; ``""`` and ``[]``
  pass where ``""`` is accepted;
* the call count must equal the gold's; ``parallel`` categories pair calls
  greedily in gold order (the first model call that passes takes the gold
  call), ``multiple`` checks the first call against the first gold call, and
  the rest (``simple``) the one call against the first function;
* function names: BFCL's ``underscore_to_dot`` model setting decides whether
  ``math.fact`` is expected as ``math_fact`` (function-calling APIs that allow
  no dots) or as ``math.fact``; exactly one form passes.

Where BFCL's checker raises on malformed possible answers (a number where a
list belongs, an unknown type name) the verdict is invalid with
``error_type="checker_error"``; real BFCL data never reaches those paths. A
schema without ``required`` is read as requiring nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envs.tooluse.calls import parse_completion

__all__ = [
    "AST_CATEGORIES",
    "BFCL_MODES",
    "RELEVANCE_CATEGORIES",
    "BfclVerdict",
    "bfcl_category",
    "check_calls",
    "check_relevance",
    "decode_calls",
    "standardize",
]

#: The model-mode option: ``fc`` is BFCL's ``underscore_to_dot=True`` (dots become
#: underscores, as function-calling APIs need), ``prompting`` is ``underscore_to_dot=False``.
BFCL_MODES: tuple[str, ...] = ("fc", "prompting")
#: Python AST categories (BFCL v3 and v4 names).
AST_CATEGORIES: tuple[str, ...] = (
    "simple",
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
)
#: Categories judged on whether any call decodes (no possible answers).
RELEVANCE_CATEGORIES: tuple[str, ...] = ("irrelevance", "live_irrelevance", "live_relevance")

_ID = re.compile(r"^(?P<category>.+?)_\d+(?:-\d+)*$")
# BFCL's type names of Python entries -> the Python type a decoded value must have.
_TYPES: dict[str, type] = {
    "string": str,
    "integer": int,
    "float": float,
    "boolean": bool,
    "array": list,
    "tuple": list,
    "dict": dict,
    "any": str,
}
_NOISE = re.compile(r"[ ,./\-_*^]")


class _CheckerError(Exception):
    """A path where BFCL's own checker raises (malformed possible answers)."""


@dataclass(frozen=True)
class BfclVerdict:
    """BFCL's verdict: ``valid``, and when not, its ``error_type`` and a message.

    ``matched`` counts the gold calls paired before the verdict was reached.
    """

    valid: bool
    error_type: str = ""
    error: str = ""
    matched: int = 0


def bfcl_category(task_id: str) -> str | None:
    """The BFCL category a task id names (``live_multiple_3-2-1`` -> ``live_multiple``), or None."""
    match = _ID.match(task_id)
    return match.group("category") if match else None


def standardize(text: str) -> str:
    """BFCL's string normalisation: drop `` ,./-_*^``, lower-case, ``'`` -> ``"``."""
    return _NOISE.sub("", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize(value) if type(value) is str else value


def _items(value: Any) -> list[Any]:
    """``[value[i] for i in range(len(value))]``, the way BFCL indexes possible answers."""
    if isinstance(value, list | str):
        return list(value)
    if isinstance(value, dict) and not value:
        return []
    raise _CheckerError(f"the possible answer {value!r} is not a list")


def _iterate(value: Any) -> list[Any]:
    """``list(value)``, the way BFCL loops over possible answers."""
    try:
        return list(value)
    except TypeError:
        raise _CheckerError(f"the possible answer {value!r} is not a list") from None


def _has(container: Any, item: Any) -> bool:
    """``item in container`` (Python's ``==`` semantics, as BFCL compares)."""
    try:
        return item in container
    except TypeError:
        raise _CheckerError(f"the possible answer {container!r} is not a list") from None


def _first_gold_type(accepted: Any) -> type | None:
    for option in _iterate(accepted):
        if option != "":
            return type(option)
    return None


def _type_check(value: Any, accepted: Any, expected: type, inner: type | None) -> tuple[bool, bool]:
    """(passes, is_variable): BFCL's type check of one value against its schema type."""
    gold_type = _first_gold_type(accepted)
    variable = gold_type is not None and gold_type != expected
    if type(value) is expected:
        if inner is None:
            return True, variable
        for option in _iterate(accepted):
            # An option that is not a list (the optional marker "") skips the item check.
            if type(option) is not list or all(
                _type_check(item, option, inner, None)[0] for item in value
            ):
                return True, variable
        return False, variable
    if gold_type is not None and type(value) is gold_type:
        return True, True
    return False, variable


def _dict_passes(value: Any, accepted: Any) -> bool:
    """BFCL's dict check: keys known, values among the options (strings normalised, one level)."""
    for option in _items(accepted):
        if option == "":
            continue
        if type(option) is not dict or type(value) is not dict:
            raise _CheckerError("a dict value or its possible answer is not a dict")
        fits = True
        for key, item in value.items():
            if key not in option or _std(item) not in [_std(o) for o in _items(option[key])]:
                fits = False
                break
        for key, options in option.items():
            if key not in value and not _has(options, ""):
                fits = False
                break
        if fits:
            return True
    return False


def _list_of_dicts_passes(value: list[Any], accepted: Any) -> bool:
    for option in _items(accepted):
        if not isinstance(option, list | str | dict):
            raise _CheckerError(f"the possible answer {option!r} is not a list")
        if len(value) != len(option):
            continue
        if all(_dict_passes(item, [entry]) for item, entry in zip(value, _items(option))):
            return True
    return False


def _list_passes(value: list[Any], accepted: Any) -> bool:
    options = [[_std(item) for item in _items(option)] for option in _items(accepted)]
    return [_std(item) for item in value] in options


def _string_passes(value: str, accepted: Any) -> bool:
    return standardize(value) in [standardize(o) for o in _items(accepted) if type(o) is str]


def _check_one(
    function: dict[str, Any] | None,
    output: dict[str, Any],
    gold: dict[str, Any],
    underscore_to_dot: bool,
) -> BfclVerdict:
    """One decoded call ``{name: params}`` against one gold call, by ``function``'s schema."""
    if not isinstance(function, dict):
        raise _CheckerError("the gold calls a function the entry does not list")
    ((_, accepted_by_param),) = gold.items()
    name = function["name"]
    if underscore_to_dot and "." in name:
        name = name.replace(".", "_")
    if name not in output:
        return BfclVerdict(False, "simple_function_checker:wrong_func_name", f"expected {name!r}")
    params = output[name]
    schema = function.get("parameters") or {}
    properties = schema.get("properties") or {}
    for param in schema.get("required") or []:
        if param not in params:
            return BfclVerdict(
                False, "simple_function_checker:missing_required", f"{name}: missing {param!r}"
            )
    for param, value in params.items():
        if param not in properties or param not in accepted_by_param:
            return BfclVerdict(
                False, "simple_function_checker:unexpected_param", f"{name}: unexpected {param!r}"
            )
        kind = properties[param].get("type")
        if kind not in _TYPES:
            raise _CheckerError(f"unknown BFCL type {kind!r} of {param!r}")
        expected = _TYPES[kind]
        inner = None
        if kind in ("array", "tuple"):
            inner_kind = (properties[param].get("items") or {}).get("type")
            if inner_kind not in _TYPES:
                raise _CheckerError(f"unknown BFCL item type {inner_kind!r} of {param!r}")
            inner = _TYPES[inner_kind]
        if kind == "float" and type(value) is int:
            value = float(value)  # BFCL lets an int stand for a float
        accepted = accepted_by_param[param]
        passes, variable = _type_check(value, accepted, expected, inner)
        if not passes:
            return BfclVerdict(
                False, "type_error", f"{name}: {param!r}={value!r} is not of type {kind}"
            )
        if not variable and expected in (dict, list, str):
            if expected is dict:
                fits = _dict_passes(value, accepted)
            elif inner is dict:
                fits = _list_of_dicts_passes(value, accepted)
            elif expected is str:
                fits = _string_passes(value, accepted)
            else:
                fits = _list_passes(value, accepted)
            if not fits:
                return BfclVerdict(
                    False, "value_error", f"{name}: {param!r}={value!r} is not an accepted value"
                )
            continue
        if not _has(accepted, value):
            return BfclVerdict(
                False, "value_error:others", f"{name}: {param!r}={value!r} is not accepted"
            )
    for param, accepted in accepted_by_param.items():
        if param not in params and not _has(accepted, ""):
            return BfclVerdict(
                False, "simple_function_checker:missing_optional", f"{name}: missing {param!r}"
            )
    return BfclVerdict(True, matched=1)


def _find(functions: Sequence[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((f for f in functions if f.get("name") == name), None)


def _check(
    functions: Sequence[dict[str, Any]],
    calls: list[dict[str, Any]],
    gold: list[dict[str, Any]],
    category: str,
    underscore_to_dot: bool,
) -> BfclVerdict:
    wanted = len(gold) if "parallel" in category or "multiple" in category else 1
    if len(calls) != wanted:
        return BfclVerdict(False, "wrong_count", f"{len(calls)} call(s) made, {wanted} expected")
    if "parallel" in category:
        taken: list[int] = []
        for number, expected in enumerate(gold):
            function = _find(functions, next(iter(expected)))
            for index, call in enumerate(calls):
                if index in taken:
                    continue
                if _check_one(function, call, expected, underscore_to_dot).valid:
                    taken.append(index)
                    break
            else:
                return BfclVerdict(
                    False,
                    "parallel_function_checker_no_order:cannot_find_match",
                    f"no call matches gold call {number} ({next(iter(expected))})",
                    matched=number,
                )
        return BfclVerdict(True, matched=len(gold))
    if "multiple" in category:
        function = _find(functions, next(iter(gold[0])))
        return _check_one(function, calls[0], gold[0], underscore_to_dot)
    return _check_one(functions[0] if functions else None, calls[0], gold[0], underscore_to_dot)


def check_calls(
    functions: Sequence[dict[str, Any]],
    calls: list[dict[str, Any]] | None,
    gold: list[dict[str, Any]],
    category: str,
    *,
    underscore_to_dot: bool = True,
) -> BfclVerdict:
    """BFCL's AST verdict on ``calls`` for an entry of an AST ``category``.

    ``functions`` are the entry's BFCL function documents (BFCL type names),
    ``calls`` the decoded response ``[{name: {param: value}}]`` (None when it
    could not be decoded), ``gold`` the possible answers as BFCL ships them.
    """
    if calls is None:
        return BfclVerdict(False, "ast_decoder:decoder_failed", "the calls could not be decoded")
    if not gold:
        raise ValueError("check_calls needs the possible answers of an AST entry (none given)")
    try:
        return _check(functions, calls, gold, category, underscore_to_dot)
    except _CheckerError as error:
        return BfclVerdict(False, "checker_error", str(error))


def check_relevance(calls: list[dict[str, Any]] | None, category: str) -> BfclVerdict:
    """BFCL's (ir)relevance verdict: ``irrelevance`` passes when no call decodes, ``relevance``
    when one does (an empty or undecodable response is no call)."""
    called = bool(calls)
    if "irrelevance" in category:
        if called:
            return BfclVerdict(False, "irrelevance_error:decoder_success", "a call was made")
        return BfclVerdict(True)
    if not called:
        return BfclVerdict(False, "relevance_error:decoder_failed", "no call was made")
    return BfclVerdict(True)


def decode_calls(completion: str) -> list[dict[str, Any]] | None:
    """The calls of a completion as BFCL's checker takes them, ``[{name: {param: value}}]``.

    Each ``<tool_call>`` block is one call; a completion without blocks decodes
    to ``[]``. None when any block cannot be read (not JSON, no name, arguments
    that are not an object, an unclosed block): a response that does not decode
    fails an AST entry and counts as no call for (ir)relevance, as in BFCL.
    """
    parsed = parse_completion(completion, max_calls=max(1, completion.count("<tool_call>")))
    if any(call.error is not None for call in parsed.calls):
        return None
    return [{call.name: call.arguments} for call in parsed.calls]
