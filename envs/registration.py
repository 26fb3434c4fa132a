"""Registration of every mentorgym environment id with Gymnasium.

``import envs`` calls :func:`register_all`. Entry points are strings, so a
benchmark's heavy imports (the JVM bridge, TextWorld) happen at ``gym.make``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import WrapperSpec

__all__ = [
    "EnvEntry",
    "ENV_ENTRIES",
    "accepted_kwargs",
    "check_env_id",
    "env_class",
    "register_all",
    "registered_ids",
    "resolve_spec",
]


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
    # Some test variations' gold paths are longer (boil, melt, freeze, inclined-plane, Mendelian
    # genetics: up to 751 steps measured), so there the expert is truncated: docs/scienceworld.md.
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
    # A controlled env for the distillation study: 20 obstacles in 30 turns (docs/study.md).
    EnvEntry(
        id="Pitfall-v0",
        entry_point="envs.pitfall.env:PitfallEnv",
        max_episode_steps=30,
    ),
)


# Around gym.make's TimeLimit: copies the cap it applies into the env, which then
# refuses to act after truncation (envs.core.TurnCap).
_TURN_CAP = WrapperSpec(name="TurnCap", entry_point="envs.core:TurnCap", kwargs={})


def register_all() -> None:
    """Register every id in ``ENV_ENTRIES`` (idempotent).

    ``gym.make`` adds no ``PassiveEnvChecker``: the contract tests run the full
    ``check_env`` on every id, and Gymnasium 1.4's passive checker breaks an env
    for good when its first ``reset`` raises (every later ``step`` raises
    ``TypeError``). ``gym.make(id, disable_env_checker=False)`` still adds it.
    """
    for entry in ENV_ENTRIES:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
            disable_env_checker=True,
            additional_wrappers=(_TURN_CAP,),
        )


def registered_ids() -> list[str]:
    """Every id this package registers, in registration order."""
    return [entry.id for entry in ENV_ENTRIES]


def resolve_spec(env_id: str) -> gym.envs.registration.EnvSpec:
    """The spec of ``env_id``, also in Gymnasium's ``"module:Name-v0"`` form (the module is
    imported first, as ``gym.make`` does)."""
    module, sep, name = env_id.rpartition(":")
    if sep and module:
        importlib.import_module(module)
        return gym.spec(name)
    return gym.spec(env_id)


def check_env_id(env_id: Any) -> str:
    """``env_id`` if Gymnasium knows it; otherwise a one-line ValueError with the closest ids."""
    import envs  # noqa: F401  (registers the project's ids)

    if isinstance(env_id, str) and env_id in gym.registry:
        return env_id
    if isinstance(env_id, str) and ":" in env_id:
        try:
            resolve_spec(env_id)
            return env_id
        except (ImportError, gym.error.Error):
            pass
    known = sorted(gym.registry)
    text = str(env_id)
    by_case = {name.lower(): name for name in known}
    guesses = [by_case[text.lower()]] if text.lower() in by_case else []
    guesses += difflib.get_close_matches(text, known, n=3, cutoff=0.6)
    hint = f"; did you mean {guesses[0]!r}?" if guesses else ""
    ours = ", ".join(registered_ids())
    raise ValueError(
        f"unknown env id {env_id!r}{hint} (mentorgym registers {ours}; "
        "--import <module> registers your own)"
    )


def env_class(env_id: str) -> type | None:
    """The class behind a registered id, or None when its entry point is not a class."""
    entry_point = resolve_spec(env_id).entry_point
    if isinstance(entry_point, str):
        module_name, _, name = entry_point.partition(":")
        try:
            entry_point = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            return None
    return entry_point if isinstance(entry_point, type) else None


def accepted_kwargs(env_id: str) -> set[str] | None:
    """The keyword arguments the env of ``env_id`` takes (None: it takes any)."""
    cls = env_class(env_id)
    if cls is None:
        return None
    names: set[str] = {"render_mode"}  # gym.make passes it to every env
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        parameters = inspect.signature(init).parameters.values()
        names.update(
            p.name
            for p in parameters
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        )
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
        if klass.__module__.startswith("gymnasium"):
            return None  # **kwargs all the way up: anything goes
    return None
