"""Per-turn records: what a language-model agent did in a turn, and the JSONL trajectory file.

A model agent leaves an :class:`AgentTurn` for every action it returns
(``agent.last_turn`` after ``act``, ``agent.last_turns`` after
``act_batch``). :func:`turn_record` joins it with what the environment
answered into one JSON-ready dict, and :class:`TrajectoryWriter` writes those
dicts as JSON lines, atomically (the file appears complete or not at all).

Trajectory JSONL schema, one object per turn (``TRAJECTORY_FIELDS``):

=====================  =========================================================
``env_id``             environment id, e.g. ``"WebShop-v0"``
``task_id``            the task (panel entry)
``seed``               the episode's reset seed
``episode``            index of the episode in the run (0-based)
``turn``               1 for the first action of an episode, 2 for the next ...
``actor``              who produced the action: ``student``, ``teacher``, ``expert`` ...
``prompt``             the rendered prompt text (null for scripted agents)
``completion``         the model's raw completion (null for scripted agents)
``action``             the action sent to ``env.step``
``observation``        the observation ``env.step`` returned
``reward``             the step's reward (change of the normalised score)
``score``              the normalised score after the step, in [0, 1]
``won``                whether the task is solved after the step
``terminated``         the episode ended (won or lost for good)
``truncated``          the episode hit the turn cap
``invalid_action``     the env did not understand or allow the action
``prompt_tokens``      prompt length in tokens (null when unknown)
``completion_tokens``  completion length in tokens (null when unknown)
``finish_reason``      ``stop`` (stop string or end of sequence), ``length``, ``rank``, or null
``logprobs``           per-token log-probs of the completion at temperature 1, or null
``prompt_ids``         prompt token ids (only when ids are kept; else absent)
``completion_ids``     completion token ids (only when ids are kept; else absent)
=====================  =========================================================
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "TRAJECTORY_FIELDS",
    "AgentTurn",
    "TrajectoryWriter",
    "actor_of",
    "read_trajectories",
    "turn_record",
]

TRAJECTORY_FIELDS: tuple[str, ...] = (
    "env_id",
    "task_id",
    "seed",
    "episode",
    "turn",
    "actor",
    "prompt",
    "completion",
    "action",
    "observation",
    "reward",
    "score",
    "won",
    "terminated",
    "truncated",
    "invalid_action",
    "prompt_tokens",
    "completion_tokens",
    "finish_reason",
    "logprobs",
)


@dataclass
class AgentTurn:
    """One turn of a language-model agent.

    ``logprobs[i]`` is the log-probability at temperature 1 of
    ``completion_ids[i]`` given the prompt and the completion before it (what
    the distillation losses call log pi_old). Fields a backend cannot provide
    are None (e.g. token ids from a server that does not return them).
    """

    prompt: str
    completion: str
    action: str
    actor: str = "student"
    prompt_ids: list[int] | None = None
    completion_ids: list[int] | None = None
    logprobs: list[float] | None = None
    finish_reason: str | None = None
    parsed: bool = False  # the action came from an <action> block (or a tool call / answer)
    tokens: list[str] | None = None  # completion tokens as text, when ids are unknown
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def prompt_tokens(self) -> int | None:
        return None if self.prompt_ids is None else len(self.prompt_ids)

    @property
    def completion_tokens(self) -> int | None:
        if self.completion_ids is not None:
            return len(self.completion_ids)
        if self.logprobs is not None:
            return len(self.logprobs)
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def actor_of(agent: Any) -> str:
    """The actor name of ``agent``: its ``actor`` attribute, else ``expert`` for agents that
    ask the env for the oracle, else ``agent``."""
    actor = getattr(agent, "actor", None)
    if actor:
        return str(actor)
    env_kwargs = getattr(agent, "env_kwargs", None) or {}
    return "expert" if env_kwargs.get("expert") else "agent"


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def turn_record(
    *,
    env_id: str,
    task_id: str,
    seed: int | None,
    episode: int,
    turn: int,
    actor: str,
    action: str,
    observation: str,
    reward: float,
    info: dict[str, Any],
    terminated: bool,
    truncated: bool,
    agent_turn: AgentTurn | None = None,
    keep_ids: bool = False,
) -> dict[str, Any]:
    """One JSON-ready trajectory line (schema in the module docstring)."""
    record: dict[str, Any] = {
        "env_id": env_id,
        "task_id": task_id,
        "seed": seed,
        "episode": episode,
        "turn": turn,
        "actor": agent_turn.actor if agent_turn is not None and agent_turn.actor else actor,
        "prompt": agent_turn.prompt if agent_turn is not None else None,
        "completion": agent_turn.completion if agent_turn is not None else None,
        "action": action,
        "observation": observation,
        "reward": _finite(reward),
        "score": _finite(info.get("score", 0.0)),
        "won": bool(info.get("won", False)),
        "terminated": bool(terminated),
        "truncated": bool(truncated),
        "invalid_action": bool(info.get("invalid_action", False)),
        "prompt_tokens": agent_turn.prompt_tokens if agent_turn is not None else None,
        "completion_tokens": agent_turn.completion_tokens if agent_turn is not None else None,
        "finish_reason": agent_turn.finish_reason if agent_turn is not None else None,
        "logprobs": (
            [float(x) for x in agent_turn.logprobs]
            if agent_turn is not None and agent_turn.logprobs is not None
            else None
        ),
    }
    if keep_ids:
        record["prompt_ids"] = agent_turn.prompt_ids if agent_turn is not None else None
        record["completion_ids"] = agent_turn.completion_ids if agent_turn is not None else None
    return record


class TrajectoryWriter:
    """Writes trajectory records as JSON lines to ``path``, atomically.

    Lines go to a temporary file beside ``path``; ``close()`` renames it into
    place, so readers never see a half-written file. Leaving the ``with``
    block through an exception still keeps what was written (a partial run's
    records are worth having) under the final name. Use as a context manager.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(
            prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
        )
        self._tmp = Path(tmp)
        # A lone surrogate (an agent's malformed text) becomes "?": the file stays valid UTF-8.
        self._handle = os.fdopen(fd, "w", encoding="utf-8", errors="replace")
        self.count = 0

    def write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n")
        self.count += 1

    def close(self) -> Path:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            os.replace(self._tmp, self.path)
        return self.path

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def read_trajectories(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of a trajectory JSONL file, in order."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
