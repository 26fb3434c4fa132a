"""Hostile actions every environment must survive (see DESIGN.md, bad actions)."""

from __future__ import annotations

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
]
