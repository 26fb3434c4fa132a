"""Pitfall's dynamics over many episodes at once, in numpy (the many-run experiments' env).

``PitfallVec(task_ids)`` plays one episode per task id in lock step:
``reset()`` then ``step(moves)`` with one move index per episode
(``dynamics.ACTIONS``). Finished episodes ignore further moves. The state
is public (``position``, ``in_pit``, ``done``, ``won``, ``turn``) and
``features()`` encodes what the text observation says (obstacle, mode, pit) as
a float matrix for small policies. ``length`` and ``max_turns`` give shorter
variants of the same rules (the tool-selection study uses one).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from envs.pitfall.dynamics import (
    LENGTH,
    MAX_TURNS,
    MODES,
    OBSTACLES,
    PIT_RECOVERY,
    WAIT,
    context,
    expert_index,
)

__all__ = ["FEATURES", "PitfallVec"]

#: Width of ``features()``: obstacle one-hot, mode one-hot, in-pit flag.
FEATURES = len(OBSTACLES) + len(MODES) + 1


class PitfallVec:
    """Many Pitfall episodes stepped together (see the module docstring)."""

    def __init__(
        self, task_ids: Sequence[str], *, length: int = LENGTH, max_turns: int = MAX_TURNS
    ) -> None:
        if not task_ids:
            raise ValueError("PitfallVec needs at least one task id")
        if length < 1 or max_turns < 1:
            raise ValueError(f"length and max_turns must be positive, got {length}, {max_turns}")
        self.length, self.max_turns = length, max_turns
        contexts = [context(t, length) for t in task_ids]
        self.mode = np.array([m for m, _ in contexts], dtype=np.int64)
        # A sentinel column past the end keeps indexing valid for finished episodes.
        self.obstacles = np.zeros((len(task_ids), length + 1), dtype=np.int64)
        self.obstacles[:, :length] = np.stack([o for _, o in contexts])
        self.n = len(task_ids)
        self._rows = np.arange(self.n)
        self.reset()

    def reset(self) -> None:
        self.position = np.zeros(self.n, dtype=np.int64)
        self.in_pit = np.zeros(self.n, dtype=bool)
        self.done = np.zeros(self.n, dtype=bool)
        self.won = np.zeros(self.n, dtype=bool)
        self.turn = np.zeros(self.n, dtype=np.int64)

    @property
    def obstacle(self) -> np.ndarray:
        return self.obstacles[self._rows, self.position]

    @property
    def score(self) -> np.ndarray:
        return self.position / self.length

    def expert(self) -> np.ndarray:
        """The oracle's move index in every episode."""
        return expert_index(self.obstacle, self.mode, self.in_pit)

    def features(self) -> np.ndarray:
        """[n, FEATURES] float32: obstacle one-hot, mode one-hot, in-pit flag."""
        out = np.zeros((self.n, FEATURES), dtype=np.float32)
        out[self._rows, self.obstacle % len(OBSTACLES)] = 1.0
        out[self._rows, len(OBSTACLES) + self.mode] = 1.0
        out[:, -1] = self.in_pit
        return out

    def step(self, moves: np.ndarray) -> np.ndarray:
        """Apply one move per episode (ignored where done); returns which episodes acted."""
        moves = np.asarray(moves, dtype=np.int64)
        if moves.shape != (self.n,):
            raise ValueError(f"step needs {self.n} moves, got shape {moves.shape}")
        acting = ~self.done
        right = self.expert()
        climbs = acting & self.in_pit & (moves == PIT_RECOVERY)
        advances = acting & ~self.in_pit & (moves == right)
        falls = acting & ~self.in_pit & (moves != right) & (moves != WAIT)
        self.in_pit = (self.in_pit & ~climbs) | falls
        self.position = self.position + advances
        self.turn = self.turn + acting
        self.won = self.won | (self.position >= self.length)
        self.done = self.done | self.won | (self.turn >= self.max_turns)
        return acting
