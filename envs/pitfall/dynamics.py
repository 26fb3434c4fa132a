"""The rules of Pitfall, shared by the text env and its vectorised form.

An episode is a trail of ``LENGTH`` obstacles and a *mode*, both drawn from the
task id (so train, dev and test contexts differ). On the trail the right move
for obstacle ``o`` in mode ``m`` is ``MOVES[(o + m) % 4]``; it advances one
obstacle. ``wait`` does nothing. Any other move drops the agent into a pit
beside that obstacle (an *off-path* state), from which only ``rope`` climbs
back (to the same obstacle); every other move in a pit leaves it there. The
episode is won on passing the last obstacle; the turn cap (``MAX_TURNS``)
leaves ``MAX_TURNS - LENGTH`` turns of slack, so a few falls are recoverable
and a policy that does not know ``rope`` is stuck for good.

Score: the fraction of obstacles passed. The oracle (``expert_index``) plays
the right move on the trail and ``rope`` in a pit.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTIONS",
    "LENGTH",
    "MAX_TURNS",
    "MODES",
    "OBSTACLES",
    "PIT_RECOVERY",
    "SPLIT_SIZES",
    "WAIT",
    "context",
    "expert_index",
    "parse_task_id",
    "task_id",
]

#: The six moves; the first four cross obstacles, ``rope`` leaves a pit, ``wait`` is a no-op.
ACTIONS: tuple[str, ...] = ("climb", "jump", "swim", "duck", "rope", "wait")
PIT_RECOVERY = 4  # index of "rope"
WAIT = 5
OBSTACLES: tuple[str, ...] = ("rock", "gap", "stream", "branch")
#: The mode rotates which move crosses which obstacle (the per-episode context).
MODES: tuple[str, ...] = ("calm", "windy", "dark")
LENGTH = 20
MAX_TURNS = 30
#: Contexts per split; a split's task ids are ``<split>/<index:05d>``.
SPLIT_SIZES: dict[str, int] = {"train": 10_000, "dev": 1_000, "test": 1_000}
_SPLIT_CODES = {"train": 1, "dev": 2, "test": 3}


def task_id(split: str, index: int) -> str:
    return f"{split}/{index:05d}"


def parse_task_id(task: str) -> tuple[str, int] | None:
    """(split, index) of a well-formed task id, else None."""
    split, _, number = task.partition("/")
    if split not in SPLIT_SIZES or len(number) != 5 or not number.isdigit():
        return None
    index = int(number)
    return (split, index) if index < SPLIT_SIZES[split] else None


def context(task: str, length: int = LENGTH) -> tuple[int, np.ndarray]:
    """(mode, obstacles[length]) of a task id: the same on every machine."""
    parsed = parse_task_id(task)
    if parsed is None:
        raise ValueError(f"not a Pitfall task id: {task!r} (expected e.g. 'train/00042')")
    split, index = parsed
    rng = np.random.default_rng([_SPLIT_CODES[split], index, length])
    mode = int(rng.integers(len(MODES)))
    return mode, rng.integers(len(OBSTACLES), size=length).astype(np.int64)


def expert_index(obstacle, mode, in_pit):
    """The oracle's move (scalars or numpy arrays): ``rope`` in a pit, else the crossing move."""
    crossing = (np.asarray(obstacle) + np.asarray(mode)) % 4
    return np.where(np.asarray(in_pit, dtype=bool), PIT_RECOVERY, crossing)
