"""Versioned task panels: fixed, ordered lists of task ids per env and split.

A panel is a JSON file ``envs/panels/<env-id lower-case>/<name>.json``::

    {"name": "test-quick-v1", "env_id": "ScienceWorld-v0", "split": "test",
     "version": 1, "seed": 0, "default": true, "description": "...",
     "task_ids": ["boil/0", ...]}

``"default": true`` marks the panels ``tools/benchmark.py`` runs when none is
named (every env id has at least one).

An evaluation on a panel plays its task ids in order, each once, with reset
seed ``seed + index``, so the same panel is the same evaluation on any machine.
A panel's contents never change once published: a changed list is a new
version (a new name).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Panel",
    "PANEL_DIR",
    "default_panel",
    "default_panels",
    "list_panels",
    "load_panel",
    "panel_path",
]

PANEL_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Panel:
    """One evaluation panel (see the module docstring for the file format)."""

    name: str
    env_id: str
    split: str
    version: int
    seed: int
    task_ids: tuple[str, ...]
    description: str = ""
    default: bool = False

    def seed_for(self, index: int) -> int:
        """Reset seed of the ``index``-th episode of the panel."""
        return self.seed + index

    @classmethod
    def from_dict(cls, data: dict, *, source: str = "<dict>") -> Panel:
        required = ("name", "env_id", "split", "version", "seed", "task_ids")
        missing = [key for key in required if key not in data]
        if missing:
            raise ValueError(f"panel {source} lacks the keys {missing}")
        task_ids = data["task_ids"]
        if not isinstance(task_ids, list) or not all(isinstance(t, str) for t in task_ids):
            raise ValueError(f"panel {source}: task_ids must be a list of strings")
        if len(set(task_ids)) != len(task_ids):
            raise ValueError(f"panel {source}: task_ids has duplicates")
        return cls(
            name=str(data["name"]),
            env_id=str(data["env_id"]),
            split=str(data["split"]),
            version=int(data["version"]),
            seed=int(data["seed"]),
            task_ids=tuple(task_ids),
            description=str(data.get("description", "")),
            default=bool(data.get("default", False)),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "env_id": self.env_id,
            "split": self.split,
            "version": self.version,
            "seed": self.seed,
            "default": self.default,
            "description": self.description,
            "task_ids": list(self.task_ids),
        }


def panel_path(env_id: str, name: str) -> Path:
    """Where the panel ``name`` of ``env_id`` is stored."""
    return PANEL_DIR / env_id.lower() / f"{name}.json"


def load_panel(env_id: str, name: str | None = None) -> Panel:
    """Load a panel by env id and name, or from a JSON file path given as ``env_id``.

    With ``name=None`` and an env id, returns the env's default panel.
    """
    candidate = Path(env_id)
    if name is None and candidate.suffix == ".json" and candidate.is_file():
        return Panel.from_dict(json.loads(candidate.read_text()), source=str(candidate))
    if name is None:
        return default_panel(env_id)
    path = panel_path(env_id, name)
    if not path.is_file():
        known = [p.name for p in list_panels(env_id)]
        raise FileNotFoundError(f"no panel {name!r} for {env_id}; known panels: {known}")
    return Panel.from_dict(json.loads(path.read_text()), source=str(path))


def list_panels(env_id: str | None = None) -> list[Panel]:
    """Every shipped panel, or those of one env id, sorted by env id and name."""
    folders = [PANEL_DIR / env_id.lower()] if env_id else sorted(PANEL_DIR.iterdir())
    panels = []
    for folder in folders:
        if folder.is_dir():
            for path in sorted(folder.glob("*.json")):
                panels.append(Panel.from_dict(json.loads(path.read_text()), source=str(path)))
    return panels


def default_panels(env_id: str) -> list[Panel]:
    """The panels the benchmark runs for ``env_id`` when none is named (one or more)."""
    defaults = [p for p in list_panels(env_id) if p.default]
    if not defaults:
        raise FileNotFoundError(f"{env_id} has no default panel under {PANEL_DIR / env_id.lower()}")
    return defaults


def default_panel(env_id: str) -> Panel:
    """The first of ``default_panels(env_id)`` (by name): one panel when one is needed."""
    return default_panels(env_id)[0]
