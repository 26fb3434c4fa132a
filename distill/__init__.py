"""mentorgym's distillation layer: SFT, OPD, Guided-OPD, TCOD, GRPO and MENTOR on any env.

From Python, a method is its config class and ``train``::

    from distill import GuidedOPDConfig, train

    config = GuidedOPDConfig(env_id="WebShop-v0", student="micro", teacher="tiny",
                             total_steps=4, rollouts_per_step=4, run_dir="runs/example")
    summary = train(config)            # resume=True continues a killed run

``load_config(path, overrides)`` reads the same configs as ``tools/distill.py``.
Names are imported on first use, so ``import distill`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "CONFIGS",
    "ConfigError",
    "GRPOConfig",
    "GuidedOPDConfig",
    "MentorConfig",
    "OPDConfig",
    "SFTConfig",
    "TCODConfig",
    "TrainConfig",
    "load_config",
    "register_env_defaults",
    "train",
]

_LAZY: dict[str, str] = {
    **{
        name: "distill.config" for name in __all__ if name not in ("train", "register_env_defaults")
    },
    "train": "distill.trainer",
    "register_env_defaults": "distill.env_defaults",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'distill' has no attribute {name!r}")
