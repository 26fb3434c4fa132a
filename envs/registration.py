"""Registration of every mentorgym environment id with Gymnasium.

``import envs`` calls :func:`register_all`. Entry points are strings, so a
benchmark's heavy imports (the JVM bridge, TextWorld) happen at ``gym.make``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

__all__ = ["EnvEntry", "ENV_ENTRIES", "register_all", "registered_ids"]


@dataclass(frozen=True)
class EnvEntry:
    """One registered id: where it lives, its default kwargs and turn cap."""

    id: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ()  # external requirements, e.g. ("java",)


ENV_ENTRIES: tuple[EnvEntry, ...] = (
    # ScienceWorld's own step limit is 100 moves; the distillation recipes cap turns lower (30).
    EnvEntry(
        id="ScienceWorld-v0",
        entry_point="envs.scienceworld.env:ScienceWorldEnv",
        max_episode_steps=100,
        needs=("java",),
    ),
    # ALFWorld's usual evaluation cap is 50 steps; the shipped games are checked to be won
    # by both experts within it.
    EnvEntry(
        id="ALFWorld-v0",
        entry_point="envs.alfworld.env:ALFWorldEnv",
        max_episode_steps=50,
    ),
    # Guided-OPD caps WebShop episodes at 15 turns (the expert needs 3 to 5 on shipped goals).
    EnvEntry(
        id="WebShop-v0",
        entry_point="envs.webshop.env:WebShopEnv",
        max_episode_steps=15,
    ),
    # Tool envs: the env itself ends an episode after 5 tool turns (MENTOR's cap) plus the
    # final answer; the step cap leaves 2 more turns for completions that are neither.
    EnvEntry(
        id="ToolMath-v0",
        entry_point="envs.tooluse.toolmath:ToolMathEnv",
        max_episode_steps=8,
    ),
    EnvEntry(
        id="FunctionCall-v0",
        entry_point="envs.tooluse.functioncall:FunctionCallEnv",
        max_episode_steps=8,
    ),
    EnvEntry(
        id="SearchQA-v0",
        entry_point="envs.tooluse.searchqa:SearchQAEnv",
        max_episode_steps=8,
    ),
)


# Around gym.make's TimeLimit: copies the cap it applies into the env, which then
# refuses to act after truncation (envs.core.TurnCap).
_TURN_CAP = WrapperSpec(name="TurnCap", entry_point="envs.core:TurnCap", kwargs={})


def register_all() -> None:
    """Register every id in ``ENV_ENTRIES`` (idempotent)."""
    for entry in ENV_ENTRIES:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
            disable_env_checker=False,
            additional_wrappers=(_TURN_CAP,),
        )


def registered_ids() -> list[str]:
    """Every id this package registers, in registration order."""
    return [entry.id for entry in ENV_ENTRIES]
