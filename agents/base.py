"""The policy interface every agent implements.

An agent is anything with ``reset(task, info)`` and ``act(observation, info)
-> action``. Agents may also declare ``env_kwargs``: the ``gym.make`` keyword
arguments they need from an environment (an expert needs ``expert=True``, a
random agent needs the full admissible-action list); tools such as
``tools/benchmark.py`` merge them into the env's construction.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["Agent", "BatchAgent", "agent_env_kwargs"]


@runtime_checkable
class Agent(Protocol):
    """One policy acting in one episode at a time."""

    def reset(self, task: str, info: dict[str, Any]) -> None:
        """Start a new episode whose goal is ``task`` (``info`` is reset's info)."""

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action for ``observation``; ``info`` is the env's latest info."""


@runtime_checkable
class BatchAgent(Agent, Protocol):
    """An agent that can act for many episodes in one call (language models)."""

    def act_batch(self, observations: list[str], infos: list[dict[str, Any]]) -> list[str]:
        """One action per (observation, info) pair, in order."""


def agent_env_kwargs(agent: Any) -> dict[str, Any]:
    """The ``gym.make`` kwargs ``agent`` asks for (empty when it declares none)."""
    return dict(getattr(agent, "env_kwargs", None) or {})
