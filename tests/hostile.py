"""Hostile actions every environment must survive (see DESIGN.md, bad actions).

``HOSTILE_ACTIONS`` mixes malformed values (not strings, empty, huge, binary)
with crafted text; ``TOOL_CALL_BOMBS`` are tool calls built to break a
parser or whatever handles the parsed value: nesting from 10 to 5,000 levels
and lone-surrogate escapes (``\\ud800``: valid JSON, not valid UTF-8) in every
string field. For the non-tool envs they are just odd text.
"""

from __future__ import annotations

import json

NESTING_DEPTHS = (10, 100, 450, 990, 1000, 5000)
LONE_SURROGATES = ("\\ud800", "\\udfff", "x\\udc80y")


def _call(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


def _tool_call_bombs() -> list[tuple[str, str]]:
    bombs = []
    for depth in NESTING_DEPTHS:
        nested = "[" * depth + "]" * depth
        bombs.append(
            (
                f"nested-argument-{depth}",
                _call('{"name": "add", "arguments": {"a": ' + nested + ', "b": 1}}'),
            )
        )
        bombs.append((f"nested-call-{depth}", _call(nested)))
        objects = '{"k": ' * depth + "1" + "}" * depth
        bombs.append(
            (f"nested-objects-{depth}", _call('{"name": "add", "arguments": ' + objects + "}"))
        )
    for escape in LONE_SURROGATES:
        for field, body in (
            ("name", '{"name": "%s", "arguments": {}}'),
            ("key", '{"name": "add", "arguments": {"%s": 1, "b": 2}}'),
            ("value", '{"name": "add", "arguments": {"a": "%s", "b": 2}}'),
            ("answer", '{"name": "answer", "arguments": {"answer": "%s"}}'),
            ("nested", '{"name": "add", "arguments": {"a": [{"x": ["%s"]}], "b": 2}}'),
            ("outer-key", '{"name": "add", "arguments": {"a": 1, "b": 2}, "%s": 0}'),
            ("string-arguments", '{"name": "add", "arguments": "{\\"a\\": \\"%s\\"}"}'),
        ):
            bombs.append((f"surrogate-{field}-{escape}", _call(body % escape)))
    bombs.append(("huge-float", _call('{"name": "add", "arguments": {"a": 1e999, "b": 1}}')))
    bombs.append(
        ("huge-int", _call('{"name": "add", "arguments": {"a": ' + "9" * 5000 + ', "b": 1}}'))
    )
    return bombs


TOOL_CALL_BOMBS: list[tuple[str, str]] = _tool_call_bombs()

HOSTILE_ACTIONS: list[tuple[str, object]] = [
    ("empty", ""),
    ("whitespace", "   \t "),
    ("one-megabyte", "go to " + "x" * (1 << 20)),
    ("binary-bytes", b"\x00\xff\xfe"),
    ("nul-and-controls", "go\x00to\x1b[31m desk"),
    ("lone-surrogate", "take \udc80 apple"),
    ("none", None),
    ("integer", 42),
    ("list", ["go to desk 1"]),
    ("nonsense", "xyzzy plugh frobnicate the quux"),
    ("brackets", "click[ search[ ]]] [[["),
    ("unicode", "ouvrir la porte \u2192 \U0001f600 \u00e9t\u00e9"),
    ("json", '{"name": "add", "arguments": {"a": 1}}'),
    ("newlines", "go to\n\n\ndesk 1\n"),
    ("long-words", " ".join(["supercalifragilistic"] * 300)),
    *TOOL_CALL_BOMBS,
]

#: The string actions (what a vector env or a pool can carry).
HOSTILE_TEXT_ACTIONS: list[tuple[str, str]] = [
    (name, action) for name, action in HOSTILE_ACTIONS if isinstance(action, str)
]


def assert_clean_output(observation: object, info: dict) -> None:
    """The observation and info are JSON-serialisable and valid UTF-8, whatever the action."""
    assert isinstance(observation, str)
    observation.encode("utf-8")
    json.dumps(info, ensure_ascii=False, allow_nan=False).encode("utf-8")
