"""What a distillation run assumes about an env family unless the config says otherwise.

A method config says nothing env-specific: ``--set env_id=X`` alone must give a
sensible run on every registered id. What differs between families lives
here, and a config's own ``env_kwargs`` and ``prompt`` are merged over it
(a key the config sets wins; ``null`` removes a default):

* the turn cap of a training or evaluation episode (Guided-OPD's caps:
  ALFWorld and ScienceWorld 30, WebShop 15; tool tasks MENTOR's 5 tool turns
  plus the answer); any other id: its registered ``max_episode_steps``;
* ``gym.make`` keyword arguments (ToolMath's recipe levels and generated
  train problems, sized for tiny models);
* prompt settings (the compact tool listing: one line per tool instead of the
  chat template's JSON schemas, a fifth of the tokens).

A package that registers its own env may call :func:`register_env_defaults`
at import time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["EnvDefaults", "env_defaults", "merged", "register_env_defaults"]

#: Tool tasks: MENTOR's 5 tool turns (the env ends an episode after them) plus the final answer.
TOOL_TURN_CAP = 6
_COMPACT_TOOLS = {"tool_listing": "compact"}


@dataclass(frozen=True)
class EnvDefaults:
    """An env family's defaults for distillation runs (see the module docstring)."""

    env_kwargs: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    max_turns: int | None = None  # None: the id's registered max_episode_steps


_DEFAULTS: dict[str, EnvDefaults] = {
    "ALFWorld-v0": EnvDefaults(max_turns=30),
    "ScienceWorld-v0": EnvDefaults(max_turns=30),
    "WebShop-v0": EnvDefaults(max_turns=15),
    # Levels 2-4 (problems of 2 to 4 solution steps) with the train split replaced by
    # 8,572 freshly generated problems, so a small model cannot memorise its way through;
    # the dev and test panels are unchanged (docs/distillation.md).
    "ToolMath-v0": EnvDefaults(
        env_kwargs={"levels": [2, 3, 4], "train_tasks": 20000},
        prompt=_COMPACT_TOOLS,
        max_turns=TOOL_TURN_CAP,
    ),
    "FunctionCall-v0": EnvDefaults(prompt=_COMPACT_TOOLS, max_turns=TOOL_TURN_CAP),
    "SearchQA-v0": EnvDefaults(prompt=_COMPACT_TOOLS, max_turns=TOOL_TURN_CAP),
}


def register_env_defaults(
    env_id: str,
    *,
    env_kwargs: dict[str, Any] | None = None,
    prompt: dict[str, Any] | None = None,
    max_turns: int | None = None,
) -> None:
    """Declare the distillation defaults of ``env_id`` (replacing any earlier ones)."""
    if max_turns is not None and (not isinstance(max_turns, int) or max_turns < 1):
        raise ValueError(f"max_turns must be a positive integer, not {max_turns!r}")
    _DEFAULTS[env_id] = EnvDefaults(dict(env_kwargs or {}), dict(prompt or {}), max_turns)


def env_defaults(env_id: str) -> EnvDefaults:
    """The defaults of ``env_id`` (a copy); an id nobody declared gets no kwargs, no prompt
    settings and its registered ``max_episode_steps`` as the turn cap."""
    found = _DEFAULTS.get(env_id)
    if found is not None:
        return copy.deepcopy(found)
    import gymnasium as gym

    from envs.registration import resolve_spec

    try:
        cap = resolve_spec(env_id).max_episode_steps
    except (ImportError, gym.error.Error):
        cap = None
    return EnvDefaults(max_turns=cap)


def merged(defaults: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` over ``defaults``; a key given as None removes the default."""
    result = {**copy.deepcopy(defaults), **given}
    return {key: value for key, value in result.items() if not (value is None and key in given)}
