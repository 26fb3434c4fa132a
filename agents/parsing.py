"""Reading the action out of a language model's completion, forgivingly.

The ReAct format asks for ``<think>reasoning</think>`` then ``<action>one
action</action>``. Models get it wrong in many small ways; ``parse_action``
copes with the common ones and never raises:

* tags in any letter case, whitespace inside and around them;
* a missing ``</action>`` (generation stopped at the tag, or the model forgot
  it): the first non-empty line after ``<action>`` is the action;
* several ``<action>`` blocks: the first non-empty one wins;
* an ``<action>`` quoted inside the reasoning: blocks after ``</think>`` are
  preferred;
* quotes or backticks around the action, runs of spaces inside it;
* no tags at all but a line ``Action: ...``: that line's text.

When nothing can be read, the completion itself (stripped) is the action: the
environment then answers it as an invalid action, which is the honest
outcome. Tool-calling environments read ``<tool_call>`` blocks themselves, so
for them ``parse_tool_completion`` only drops a closed ``<think>`` block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ParsedAction", "parse_action", "parse_tool_completion", "strip_think"]

_ACTION_OPEN = re.compile(r"<\s*action\s*>", re.IGNORECASE)
_ACTION_CLOSE = re.compile(r"<\s*/\s*action\s*>", re.IGNORECASE)
_THINK_BLOCK = re.compile(r"<\s*think\s*>(.*?)<\s*/\s*think\s*>", re.IGNORECASE | re.DOTALL)
_THINK_CLOSE = re.compile(r"<\s*/\s*think\s*>", re.IGNORECASE)
_ACTION_LINE = re.compile(r"^[ \t*]*action[ \t*]*:[ \t*]*(.+)$", re.IGNORECASE | re.MULTILINE)
# Special tokens a decoder may leave in the text (chat-template markers, EOS).
_SPECIAL = re.compile(r"<\|[a-z_]+\|>|</s>|<eos>|<\|endoftext\|>", re.IGNORECASE)
_QUOTES = ("'", '"', "`")


@dataclass(frozen=True)
class ParsedAction:
    """What a completion says: ``action`` to send, whether a tag held it, the reasoning."""

    action: str
    found: bool  # True when the action came from an <action> block (or an "Action:" line)
    think: str | None = None


def _clean(text: str) -> str:
    text = " ".join(text.split())
    while len(text) >= 2 and text[0] == text[-1] and text[0] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _first_action(text: str) -> str | None:
    """The first non-empty ``<action>`` block of ``text``, or None."""
    for opening in _ACTION_OPEN.finditer(text):
        rest = text[opening.end() :]
        closing = _ACTION_CLOSE.search(rest)
        next_open = _ACTION_OPEN.search(rest)
        if closing is not None and (next_open is None or closing.start() < next_open.start()):
            candidate = rest[: closing.start()]
        else:
            # Unclosed: the action is the first non-empty line before any next block.
            if next_open is not None:
                rest = rest[: next_open.start()]
            lines = [line for line in rest.splitlines() if line.strip()]
            candidate = lines[0] if lines else ""
        candidate = _clean(candidate)
        if candidate:
            return candidate
    return None


def strip_think(text: str) -> str:
    """``text`` without its closed ``<think>...</think>`` blocks."""
    return _THINK_BLOCK.sub("", text)


def parse_action(completion: str) -> ParsedAction:
    """The action a ReAct completion names (see the module docstring); never raises."""
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    text = _SPECIAL.sub("", completion)
    think_match = _THINK_BLOCK.search(text)
    think = think_match.group(1).strip() if think_match else None
    closes = list(_THINK_CLOSE.finditer(text))
    after_think = text[closes[-1].end() :] if closes else None
    for region in (after_think, text):
        if region is None:
            continue
        action = _first_action(region)
        if action is not None:
            return ParsedAction(action, True, think)
    for region in (after_think, text):
        if region is None:
            continue
        line = _ACTION_LINE.search(region)
        if line is not None and _clean(line.group(1)):
            return ParsedAction(_clean(line.group(1)), True, think)
    stripped = text.strip()
    return ParsedAction(stripped if stripped else completion, False, think)


def parse_tool_completion(completion: str) -> ParsedAction:
    """The action for a tool-calling env: the completion without reasoning and special tokens.

    The environment parses ``<tool_call>`` blocks and final answers itself; a
    closed ``<think>`` block is dropped so an answer quoted while reasoning is
    not taken for the final one. ``found`` says whether a call or an answer is there.
    """
    if not isinstance(completion, str):
        completion = "" if completion is None else str(completion)
    text = _SPECIAL.sub("", completion)
    think_match = _THINK_BLOCK.search(text)
    think = think_match.group(1).strip() if think_match else None
    body = strip_think(text).strip()
    if not body:
        body = text.strip() or completion
    lowered = body.lower()
    found = "<tool_call>" in lowered or "<answer>" in lowered or "\\boxed" in lowered
    return ParsedAction(body, found, think)
