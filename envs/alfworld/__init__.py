"""ALFWorld text games on TextWorld's PDDL engine (``gym.make("ALFWorld-v0")``).

Importing this package only points ``ALFWORLD_DATA`` somewhere harmless when
the user has not set it (see :mod:`envs.alfworld.paths`), because
``import alfworld`` creates that directory, ``~/.cache/alfworld`` by default.
The heavy modules (TextWorld, Fast Downward) load on first use:

* :mod:`envs.alfworld.env`: the Gymnasium environment ``ALFWorldEnv``;
* :mod:`envs.alfworld.engine`: TextWorld's PDDL env with a reset cache;
* :mod:`envs.alfworld.experts`: the hand-coded and planner experts;
* :mod:`envs.alfworld.data`: official-layout directories and the shipped games;
* :mod:`envs.alfworld.generate`: the procedural game generator.
"""

from __future__ import annotations

from typing import Any

from envs.alfworld.paths import configure_alfworld_data

configure_alfworld_data()

__all__ = ["ALFWorldEnv"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``import envs.alfworld`` stays cheap until the env is made.
    if name == "ALFWorldEnv":
        from envs.alfworld.env import ALFWorldEnv

        return ALFWorldEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
