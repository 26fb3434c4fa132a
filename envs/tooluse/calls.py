"""Reading tool calls and final answers out of a model's completion, and writing them back.

The convention is Qwen's and Hermes': each call is a JSON object in its own
block, and each result comes back in its own block, in the same order::

    <tool_call>
    {"name": "add", "arguments": {"a": 1, "b": 2}}
    </tool_call>

    <tool_response>
    3
    </tool_response>

A final answer is ``\\boxed{...}`` (math) or ``<answer>...</answer>``; the
environments with an ``answer`` tool also take ``<tool_call>{"name":
"answer", ...}</tool_call>``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "MAX_CALL_DEPTH",
    "ParsedCall",
    "ParsedCompletion",
    "extract_boxed",
    "format_tool_call",
    "format_tool_calls",
    "format_tool_responses",
    "parse_completion",
    "value_problem",
]

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
_CALL_BLOCK = re.compile(r"<tool_call>(.*?)</tool_call>", re.DOTALL)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_BOXED = "\\boxed"


@dataclass
class ParsedCall:
    """One ``<tool_call>`` block: ``name`` and ``arguments``, or ``error`` saying why it is unusable."""

    name: str | None
    arguments: dict[str, Any] | None
    error: str | None = None
    raw: str = ""


@dataclass
class ParsedCompletion:
    """Every call block of a completion, in order, and its final answer when it gives one.

    ``call_blocks`` counts the ``<tool_call>`` openings, which may exceed
    ``len(calls)``: blocks beyond ``max_calls`` are counted but not parsed.
    ``answer_source`` is ``"boxed"`` or ``"tag"`` when ``answer`` is set.
    """

    calls: list[ParsedCall] = field(default_factory=list)
    call_blocks: int = 0
    answer: str | None = None
    answer_source: str | None = None


#: Deepest nesting of arrays and objects a tool call may have (the call object itself is level 1).
#: Real schemas nest a few levels; deeper values would only feed recursion to everything
#: downstream (validation, copies, the sandbox's encoder).
MAX_CALL_DEPTH = 32


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


# json.loads joins valid \ud83d\ude00 pairs; a surrogate left in a str is unpaired.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_lone_surrogate(text: str) -> bool:
    return _LONE_SURROGATE.search(text) is not None


def value_problem(data: Any, max_depth: int = MAX_CALL_DEPTH) -> str | None:
    """Why decoded JSON ``data`` cannot be a tool call's content, in words; None when it can.

    Refused: nesting deeper than ``max_depth``, a lone surrogate (``"\\ud800"``) in
    any key or string (it is not valid UTF-8, so it could reach no file or
    process), and numbers that are not finite (``1e999`` reads as infinity).
    Walks the value without recursion, so any depth json.loads accepts is safe.
    """
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                return f"the tool call is nested more than {max_depth} levels deep"
            if isinstance(value, dict):
                for key, item in value.items():
                    if _has_lone_surrogate(key):
                        return "the tool call holds a lone surrogate escape (such as \\ud800)"
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str):
            if _has_lone_surrogate(value):
                return "the tool call holds a lone surrogate escape (such as \\ud800)"
        elif isinstance(value, float) and not math.isfinite(value):
            return "the tool call holds a number too large to represent"
    return None


def _parse_call(text: str) -> ParsedCall:
    body = text.strip()
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        return ParsedCall(None, None, "the tool call is nested too deeply to read", text)
    except ValueError as error:  # JSONDecodeError, and ints beyond Python's digit limit
        return ParsedCall(None, None, f"the tool call is not valid JSON ({error})", text)
    problem = value_problem(data)
    if problem is not None:
        return ParsedCall(None, None, problem, text)
    if not isinstance(data, dict):
        return ParsedCall(
            None, None, 'a tool call must be a JSON object {"name": ..., "arguments": {...}}', text
        )
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        return ParsedCall(None, None, "the tool call has no string 'name'", text)
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):  # OpenAI's API sends arguments as a JSON string
        try:
            arguments = (
                json.loads(arguments, parse_constant=_reject_constant) if arguments.strip() else {}
            )
        except RecursionError:
            return ParsedCall(name, None, "the arguments are nested too deeply to read", text)
        except ValueError as error:
            return ParsedCall(name, None, f"the arguments are not valid JSON ({error})", text)
        problem = value_problem(arguments, MAX_CALL_DEPTH - 1)
        if problem is not None:
            return ParsedCall(name, None, problem, text)
    if not isinstance(arguments, dict):
        return ParsedCall(name, None, "'arguments' must be a JSON object", text)
    extra = sorted(set(data) - {"name", "arguments", "parameters", "id", "type"})
    if extra:
        return ParsedCall(name, None, f"unexpected keys {extra} in the tool call", text)
    return ParsedCall(name.strip(), arguments, None, text)


def extract_boxed(text: str) -> str | None:
    """The contents of the last ``\\boxed{...}`` in ``text`` (braces balanced), or None."""
    start = text.rfind(_BOXED + "{")
    while start != -1:
        depth, index = 0, start + len(_BOXED)
        for index in range(start + len(_BOXED), len(text)):
            char = text[index]
            if char == "{":
                depth += 1
            elif char == "}":
                depth -= 1
                if depth == 0:
                    return text[start + len(_BOXED) + 1 : index].strip()
        start = text.rfind(_BOXED + "{", 0, start)  # unbalanced: try an earlier one
    return None


def parse_completion(text: str, *, max_calls: int = 64) -> ParsedCompletion:
    """Split ``text`` into tool calls (at most ``max_calls`` parsed) and a final answer."""
    parsed = ParsedCompletion(call_blocks=text.count(CALL_OPEN))
    if parsed.call_blocks:
        for match in _CALL_BLOCK.finditer(text):
            if len(parsed.calls) >= max_calls:
                break
            parsed.calls.append(_parse_call(match.group(1)))
        closed = len(_CALL_BLOCK.findall(text))
        if closed < parsed.call_blocks and len(parsed.calls) < max_calls:
            # A block the model opened but never closed (often: generation stopped early).
            parsed.calls.append(
                ParsedCall(None, None, "a <tool_call> block is not closed with </tool_call>")
            )
    tags = _ANSWER_TAG.findall(text)
    if tags:
        parsed.answer, parsed.answer_source = tags[-1].strip(), "tag"
    else:
        boxed = extract_boxed(text)
        if boxed is not None:
            parsed.answer, parsed.answer_source = boxed, "boxed"
    return parsed


def format_tool_call(name: str, arguments: dict[str, Any]) -> str:
    """One call block in the Qwen/Hermes format."""
    payload = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False)
    return f"{CALL_OPEN}\n{payload}\n{CALL_CLOSE}"


def format_tool_calls(calls: list[dict[str, Any]]) -> str:
    """Several calls (``{"name", "arguments"}`` dicts), one block each, in order."""
    return "\n".join(format_tool_call(call["name"], call["arguments"]) for call in calls)


def format_tool_responses(contents: list[str]) -> str:
    """Each result in its own ``<tool_response>`` block, in call order."""
    return "\n".join(f"<tool_response>\n{content}\n</tool_response>" for content in contents)
