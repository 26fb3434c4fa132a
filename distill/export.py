"""Trajectories out: a chat-format JSONL dataset other trainers read unchanged.

Each line is one turn as a conversation: ``{"messages": [...], "tools": [...]}``
where the messages are exactly the prompt the agent saw (built by
``agents.prompts.build_messages``: system, the task, the recent history, the
observation) followed by the assistant's completion. ``tools`` (JSON schemas)
is present for tool tasks. ``datasets.load_dataset("json", data_files=...)``
loads it, and TRL's SFT trainer takes the ``messages`` column as is. Extra
keys (``env_id``, ``task_id``, ``turn``, ``actor``, ``won``, ``score``) say
where a line came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from agents.prompts import EpisodeState, PromptConfig, build_messages
from distill.rollout import Rollout
from envs.fileio import atomic_write_text

__all__ = ["export_chat_jsonl", "rollout_conversations"]


def rollout_conversations(
    rollout: Rollout, *, actors: Iterable[str] | None = None, prompt: PromptConfig | None = None
) -> list[dict[str, Any]]:
    """One chat record per turn of ``rollout`` played by ``actors`` (every actor if None)."""
    state = rollout.state
    if state is None:
        raise ValueError(
            "the rollout has no episode state (it was not played by a RolloutCollector)"
        )
    wanted = set(actors) if actors is not None else None
    records = []
    for index, step in enumerate(state.steps):
        if wanted is not None and step.actor not in wanted:
            continue
        # The state as it stood when this turn was taken.
        before = EpisodeState(
            task=state.task,
            family=state.family,
            observation=step.observation,
            info=step.info,
            tools=list(state.tools),
            steps=list(state.steps[:index]),
            env_id=state.env_id,
        )
        messages = build_messages(before, prompt)
        messages.append(step.message or {"role": "assistant", "content": step.completion})
        record: dict[str, Any] = {"messages": messages}
        if state.family == "tool" and state.tools:
            record["tools"] = state.tools
        record.update(
            env_id=rollout.env_id,
            task_id=rollout.task_id,
            turn=index,
            actor=step.actor,
            won=rollout.won,
            score=rollout.score,
        )
        records.append(record)
    return records


def export_chat_jsonl(
    rollouts: Sequence[Rollout],
    path: str | Path,
    *,
    actors: Iterable[str] | None = None,
    successful_only: bool = False,
    prompt: PromptConfig | None = None,
) -> int:
    """Write the turns of ``rollouts`` to ``path`` (atomically); returns the number of lines."""
    lines = []
    for rollout in rollouts:
        if successful_only and not rollout.won:
            continue
        for record in rollout_conversations(rollout, actors=actors, prompt=prompt):
            lines.append(json.dumps(record, ensure_ascii=False))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return len(lines)
