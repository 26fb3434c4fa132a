"""ScienceWorld's 30 tasks and their official train/dev/test variation splits.

Task ids are ``<task-name>/<variation>``, e.g. ``boil/21``. The split lists
come from the simulator (``getVariationsTrain/Dev/Test``) and are stored in
``data/variations.json`` so that listing a split needs no JVM;
``tests/test_scienceworld.py`` checks the file against the simulator.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["SPLITS", "TaskInfo", "format_task_id", "parse_task_id", "task_ids", "tasks"]

SPLITS: tuple[str, ...] = ("train", "dev", "test")
_DATA = Path(__file__).resolve().parent / "data" / "variations.json"


@dataclass(frozen=True)
class TaskInfo:
    """One ScienceWorld task: its name, paper code (``1-1``), topic and split variations."""

    name: str
    code: str
    topic: str
    title: str
    variations: dict[str, tuple[int, ...]]

    @property
    def family(self) -> str:
        """The paper's topic number (``"1"`` for the Matter tasks ``1-1`` .. ``1-4``)."""
        return self.code.split("-")[0]


@lru_cache(maxsize=1)
def tasks() -> tuple[TaskInfo, ...]:
    """All 30 tasks in the paper's order (``1-1`` boil .. ``10-2``)."""
    data = json.loads(_DATA.read_text())
    return tuple(
        TaskInfo(
            name=t["name"],
            code=t["code"],
            topic=t["topic"],
            title=t["title"],
            variations={split: tuple(t[split]) for split in SPLITS},
        )
        for t in data["tasks"]
    )


@lru_cache(maxsize=4)
def _split_ids(split: str) -> tuple[str, ...]:
    return tuple(format_task_id(t.name, v) for t in tasks() for v in t.variations[split])


def task_ids(split: str, task_names: tuple[str, ...] | None = None) -> list[str]:
    """Ordered task ids of ``split`` (optionally only of the named tasks)."""
    if split not in SPLITS:
        raise ValueError(f"unknown ScienceWorld split {split!r}; choose one of {list(SPLITS)}")
    if task_names is None:
        return list(_split_ids(split))
    known = {t.name: t for t in tasks()}
    unknown = [name for name in task_names if name not in known]
    if unknown:
        raise ValueError(f"unknown ScienceWorld task names {unknown}; known: {sorted(known)}")
    return [format_task_id(name, v) for name in task_names for v in known[name].variations[split]]


def format_task_id(task_name: str, variation: int) -> str:
    return f"{task_name}/{variation}"


def parse_task_id(task_id: str) -> tuple[str, int]:
    """``"boil/21"`` -> ``("boil", 21)``; raises ValueError for anything else."""
    name, sep, variation = task_id.rpartition("/")
    known = {t.name: t for t in tasks()}
    if not sep or name not in known or not variation.isdigit():
        raise ValueError(
            f"not a ScienceWorld task id: {task_id!r} (expected '<task-name>/<variation>')"
        )
    index = int(variation)
    total = sum(len(v) for v in known[name].variations.values())
    if index >= total:
        raise ValueError(f"{name} has variations 0..{total - 1}; got {index}")
    return name, index
