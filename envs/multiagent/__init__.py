"""Several policies in mentorgym environments (PettingZoo APIs) and the turn selectors.

* ``SharedControlEnv``: an AEC env where named controllers (teacher, student)
  share one text env and a selector picks who acts each turn;
* ``MultiTaskParallelEnv``: a parallel env running N tasks side by side;
* selectors (``BernoulliSelector``, ``PrefixSelector``, ``RoundRobinSelector``,
  ``FixedSelector``): the one implementation of "who acts", also used by
  the distillation layer without PettingZoo.
"""

from __future__ import annotations

from envs.multiagent.parallel import MultiTaskParallelEnv
from envs.multiagent.selectors import (
    DEFAULT_AGENTS,
    BernoulliSelector,
    FixedSelector,
    PrefixSelector,
    RoundRobinSelector,
    Selector,
)
from envs.multiagent.shared_control import SharedControlEnv

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
