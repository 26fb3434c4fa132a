"""The policy interface every agent implements.

An agent is anything with ``reset(task, info)`` and ``act(observation, info)
-> action``. Agents may also declare ``env_kwargs``: the ``gym.make`` keyword
arguments they need from an environment (an expert needs ``expert=True``, a
random agent needs the full admissible-action list); tools such as
``tools/benchmark.py`` merge them into the env's construction.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Protocol, runtime_checkable

__all__ = ["Agent", "BatchAgent", "TurnTakingAgent", "agent_env_kwargs"]


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


class TurnTakingAgent:
    """The agent interface of language-model agents, written once.

    Such an agent keeps one episode history per slot (``self._slots``, an
    ``agents.prompts.EpisodeSlots``) and acts through ``take_turns(states,
    seeds=)``; subclasses provide those two and ``_episode_seed(state,
    occurrence)`` (the sampling seed of a turn, or None). ``last_turns`` then
    holds one ``AgentTurn`` per item of the latest call.
    """

    _slots: Any
    last_turns: list[Any]
    last_turn: Any

    def take_turns(
        self, states: Sequence[Any], *, seeds: Sequence[int | None] | None = None
    ) -> list[Any]:
        raise NotImplementedError

    def _episode_seed(self, state: Any, occurrence: int) -> int | None:
        raise NotImplementedError

    def reset(self, task: str, info: dict[str, Any]) -> None:
        """Forget every episode in progress (``act`` then starts afresh)."""
        self._slots.reset()

    def restart(self) -> None:
        """Start a new run: forget every episode and the per-task episode counts, so the
        same seed gives the same samples as a fresh agent."""
        self._slots.restart()

    def act(self, observation: str, info: dict[str, Any]) -> str:
        """The next action of the single episode this agent plays (see ``act_batch``)."""
        action = self.act_batch([observation], [info], slots=[0])[0]
        self.last_turn = self.last_turns[0]
        return action

    def act_batch(
        self,
        observations: Sequence[str],
        infos: Sequence[dict[str, Any]],
        *,
        slots: Sequence[Hashable] | None = None,
    ) -> list[str]:
        """One action per episode, all taken in one batch.

        Episodes are told apart by ``slots`` (default: the position in the
        lists). A slot starts a new episode when its ``info["turn"]`` is 0 (the
        info of ``env.reset``); otherwise the observation continues the slot's
        episode, whose last action is taken to be the one this agent returned.
        """
        if len(observations) != len(infos):
            raise ValueError("act_batch: observations and infos differ in length")
        entries = self._slots.update(observations, infos, slots)
        seeds = [self._episode_seed(entry.state, entry.occurrence) for entry in entries]
        turns = self.take_turns([entry.state for entry in entries], seeds=seeds)
        self._slots.record(entries, turns)
        self.last_turns = turns
        self.last_turn = turns[0] if turns else None
        return [turn.action for turn in turns]
