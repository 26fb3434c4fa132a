"""mentorgym environments: real text-agent benchmarks behind one Gymnasium API.

``import envs`` registers every id (see ``envs.registration``)::

    import gymnasium as gym
    import envs
    gym.register_envs(envs)
    env = gym.make("ScienceWorld-v0", split="test")
"""

from __future__ import annotations

from envs.alfworld.paths import configure_alfworld_data

configure_alfworld_data()  # before anything imports alfworld, which would create ~/.cache/alfworld

from envs.core import (  # noqa: E402
    ADMISSIBLE_MODES,
    INFO_KEYS,
    BackendError,
    TextEnv,
    TextSpace,
    Transition,
)
from envs.panels import (  # noqa: E402
    Panel,
    default_panel,
    list_panels,
    load_panel,
    register_panel_dir,
)
from envs.registration import ENV_ENTRIES, register_all, registered_ids  # noqa: E402

register_all()


def __getattr__(name: str):
    # The contract checker is loaded on first use, so ``python -m envs.contract`` runs cleanly.
    if name in ("ContractError", "check_env_contract"):
        import envs.contract

        return getattr(envs.contract, name)
    raise AttributeError(f"module 'envs' has no attribute {name!r}")


__all__ = [
    "ADMISSIBLE_MODES",
    "ENV_ENTRIES",
    "INFO_KEYS",
    "BackendError",
    "ContractError",
    "Panel",
    "TextEnv",
    "TextSpace",
    "Transition",
    "check_env_contract",
    "default_panel",
    "list_panels",
    "load_panel",
    "register_panel_dir",
    "registered_ids",
]
