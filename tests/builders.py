"""Records built by hand for tests of the distillation layer."""

from __future__ import annotations

from typing import Any

from distill.rollout import Turn


def make_turn(**fields: Any) -> Turn:
    """A finished, valid, reward-free ``Turn``; ``fields`` set the ids, actor, log-probs..."""
    defaults: dict[str, Any] = {
        "actor": "student",
        "completion": "c",
        "action": "a",
        "observation": "o",
        "reward": 0.0,
        "score": 0.0,
        "action_type": "",
        "invalid_action": False,
        "finished": True,
    }
    return Turn(**{**defaults, **fields})
