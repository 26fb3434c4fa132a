"""Several policies in mentorgym environments (PettingZoo APIs) and the turn selectors.

* ``SharedControlEnv``: an AEC env where named controllers (teacher, student)
  share one text env and a selector picks who acts each turn;
* ``MultiTaskParallelEnv``: a parallel env running N tasks side by side;
* selectors (``BernoulliSelector``, ``PrefixSelector``, ``RoundRobinSelector``,
  ``FixedSelector``): the one implementation of "who acts", also used by
  the distillation layer without PettingZoo.

The two PettingZoo envs are imported on first use, so ``import envs.multiagent.selectors``
(and with it the distillation layer) never loads PettingZoo.
"""

from __future__ import annotations

import importlib
from typing import Any

from envs.multiagent.selectors import (
    DEFAULT_AGENTS,
    BernoulliSelector,
    FixedSelector,
    PrefixSelector,
    RoundRobinSelector,
    Selector,
)

_LAZY: dict[str, str] = {
    "MultiTaskParallelEnv": "envs.multiagent.parallel",
    "SharedControlEnv": "envs.multiagent.shared_control",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'envs.multiagent' has no attribute {name!r}")


__all__ = [
    "DEFAULT_AGENTS",
    "BernoulliSelector",
    "FixedSelector",
    "MultiTaskParallelEnv",
    "PrefixSelector",
    "RoundRobinSelector",
    "Selector",
    "SharedControlEnv",
]
