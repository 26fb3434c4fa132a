"""Scripted agents: a seeded random policy and the environment's expert."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

__all__ = ["ExpertAgent", "RandomAgent"]

# What an agent says when an env offers nothing better; every env answers it.
FALLBACK_ACTION = "look"


class RandomAgent:
    """Picks uniformly among ``info["admissible_actions"]`` (seeded).

    It asks for the full admissible list, since templates (the compact form)
    are not executable actions. With an empty list it says ``"look"``.
    """

    env_kwargs: ClassVar[dict[str, Any]] = {"admissible_actions": "full"}

    def __init__(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def reset(self, task: str, info: dict[str, Any]) -> None:
        pass

    def act(self, observation: str, info: dict[str, Any]) -> str:
        actions = info.get("admissible_actions") or []
        if not actions:
            return FALLBACK_ACTION
        return str(actions[int(self._rng.integers(len(actions)))])


class ExpertAgent:
    """Follows ``info["expert_action"]`` (the env must be made with ``expert=True``).

    When the oracle has no action (for example after someone else deviated
    from a fixed gold path), it falls back to ``fallback`` (default ``"look"``).
    """

    env_kwargs: ClassVar[dict[str, Any]] = {"expert": True, "admissible_actions": "none"}

    def __init__(self, fallback: str = FALLBACK_ACTION) -> None:
        self.fallback = fallback

    def reset(self, task: str, info: dict[str, Any]) -> None:
        pass

    def act(self, observation: str, info: dict[str, Any]) -> str:
        action = info.get("expert_action")
        return str(action) if action else self.fallback
