"""Who acts next: the single implementation of turn assignment.

A selector names, for each turn of an episode, which controller acts. The
PettingZoo ``SharedControlEnv`` uses selectors for ``agent_selection``, and
the distillation layer imports the same objects for its rollouts (no
PettingZoo needed):

* ``BernoulliSelector(p)``: Guided-OPD's per-turn coin flip; the first agent
  (the teacher) acts with probability ``p``, drawn anew every turn;
* ``PrefixSelector(k)``: the first ``k`` turns go to one agent, the rest to
  the other (TCOD-B2F replays a reference prefix, then the student acts);
* ``RoundRobinSelector``: agents take turns in order;
* ``FixedSelector``: one agent always acts.

Every selector is seeded through ``reset(seed)`` at the start of an episode
and then answers ``select(turn)`` for turns 0, 1, 2, ... in order. Its knobs
(``probability``, ``prefix_length``) may change between episodes, e.g. as a
schedule decays.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "DEFAULT_AGENTS",
    "BernoulliSelector",
    "FixedSelector",
    "PrefixSelector",
    "RoundRobinSelector",
    "Selector",
]

#: The controllers of a Guided-OPD rollout; the first is the one a coin flip of 1 picks.
DEFAULT_AGENTS: tuple[str, str] = ("teacher", "student")


@runtime_checkable
class Selector(Protocol):
    """Assigns each turn of an episode to one of ``agents``."""

    agents: tuple[str, ...]

    def reset(self, seed: int | None = None) -> None:
        """Start an episode (reseeding the selector's generator when ``seed`` is given)."""

    def select(self, turn: int) -> str:
        """The agent acting at ``turn`` (0-based; called once per turn, in order)."""


class _SeededSelector:
    def __init__(self, agents: tuple[str, ...], seed: int | None) -> None:
        if len(agents) < 1 or len(set(agents)) != len(agents):
            raise ValueError(f"agents must be distinct names, got {agents!r}")
        self.agents = tuple(agents)
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._rng = np.random.default_rng(seed)


class BernoulliSelector(_SeededSelector):
    """Each turn, ``agents[0]`` acts with probability ``probability``, else ``agents[1]``."""

    def __init__(
        self,
        probability: float,
        agents: tuple[str, str] = DEFAULT_AGENTS,
        seed: int | None = None,
    ) -> None:
        if len(agents) != 2:
            raise ValueError(f"BernoulliSelector chooses between two agents, got {agents!r}")
        super().__init__(agents, seed)
        self.probability = probability

    @property
    def probability(self) -> float:
        return self._probability

    @probability.setter
    def probability(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"probability must be in [0, 1], got {value}")
        self._probability = float(value)

    def select(self, turn: int) -> str:
        # Always draw, even at p = 0 or 1, so the random stream does not depend on p.
        draw = self._rng.random()
        return self.agents[0] if draw < self._probability else self.agents[1]


class PrefixSelector(_SeededSelector):
    """``agents[0]`` for turns ``0 .. prefix_length - 1``, then ``agents[1]``."""

    def __init__(
        self,
        prefix_length: int,
        agents: tuple[str, str] = DEFAULT_AGENTS,
        seed: int | None = None,
    ) -> None:
        if len(agents) != 2:
            raise ValueError(f"PrefixSelector hands over between two agents, got {agents!r}")
        super().__init__(agents, seed)
        self.prefix_length = prefix_length

    @property
    def prefix_length(self) -> int:
        return self._prefix_length

    @prefix_length.setter
    def prefix_length(self, value: int) -> None:
        if int(value) < 0:
            raise ValueError(f"prefix_length must be >= 0, got {value}")
        self._prefix_length = int(value)

    def select(self, turn: int) -> str:
        return self.agents[0] if turn < self._prefix_length else self.agents[1]


class RoundRobinSelector(_SeededSelector):
    """Agents act in turn: ``agents[turn % len(agents)]``."""

    def __init__(self, agents: tuple[str, ...] = DEFAULT_AGENTS, seed: int | None = None) -> None:
        super().__init__(agents, seed)

    def select(self, turn: int) -> str:
        return self.agents[turn % len(self.agents)]


class FixedSelector(_SeededSelector):
    """``agent`` acts on every turn (``agents`` lists every controller of the env)."""

    def __init__(
        self, agent: str, agents: tuple[str, ...] = DEFAULT_AGENTS, seed: int | None = None
    ) -> None:
        super().__init__(agents, seed)
        if agent not in self.agents:
            raise ValueError(f"{agent!r} is not one of {self.agents}")
        self.agent = agent

    def select(self, turn: int) -> str:
        return self.agent
