"""Versioned task panels: fixed, ordered lists of task ids per env and split.

A panel is a JSON file ``<panel folder>/<env-id lower-case>/<name>.json``::

    {"name": "test-quick-v1", "env_id": "ScienceWorld-v0", "split": "test",
     "version": 1, "seed": 0, "default": true, "description": "...",
     "task_ids": ["boil/0", ...]}

``"default": true`` marks the panels ``tools/benchmark.py`` runs when none is
named (every env id has at least one).

The project's panels live in ``envs/panels/``. A package that registers its own
env ids ships its panels the same way, in a folder of its own, and calls
:func:`register_panel_dir` with it at import (next to its ``gym.register``);
a panel file can also be named by its path wherever a panel name is taken.

An evaluation on a panel plays its task ids in order, each once, with reset
seed ``seed + index``, so the same panel is the same evaluation on any machine.
A panel's contents never change once published: a changed list is a new
version (a new name).
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Panel",
    "PANEL_DIR",
    "PanelNotFound",
    "panel_dirs",
    "register_panel_dir",
    "default_panel",
    "default_panels",
    "list_panels",
    "load_panel",
    "panel_path",
]

PANEL_DIR = Path(__file__).resolve().parent
_PANEL_DIRS: list[Path] = [PANEL_DIR]


class PanelNotFound(FileNotFoundError):
    """No panel of that name (or no default panel) for the env id."""


def register_panel_dir(path: str | Path) -> Path:
    """Add a folder of panels (``<folder>/<env-id lower-case>/<name>.json``) to those searched;
    returns it. Idempotent; a folder that does not exist is an error."""
    folder = Path(path).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"register_panel_dir: no folder {folder}")
    if folder not in _PANEL_DIRS:
        _PANEL_DIRS.append(folder)
    return folder


def panel_dirs() -> list[Path]:
    """The panel folders searched, the project's first."""
    return list(_PANEL_DIRS)


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
    """Where the panel ``name`` of ``env_id`` is stored (the first registered folder holding
    it; the project's folder when none does)."""
    for folder in _PANEL_DIRS:
        path = folder / env_id.lower() / f"{name}.json"
        if path.is_file():
            return path
    return PANEL_DIR / env_id.lower() / f"{name}.json"


def load_panel(env_id: str, name: str | None = None) -> Panel:
    """Load a panel by env id and name, or from a JSON file path given as ``env_id``
    (or as ``name``). With ``name=None`` and an env id, returns the env's default panel."""
    for candidate in (env_id, name):
        if candidate and str(candidate).endswith(".json"):
            path = Path(candidate).expanduser()
            if not path.is_file():
                raise PanelNotFound(f"no panel file {candidate}")
            return Panel.from_dict(json.loads(path.read_text()), source=str(path))
    if name is None:
        return default_panel(env_id)
    path = panel_path(env_id, name)
    if not path.is_file():
        known = [p.name for p in list_panels(env_id)]
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += f"known panels: {known}" if known else "it has no panels"
        raise PanelNotFound(f"no panel {name!r} for {env_id}; {hint}{_HOW_TO_ADD}")
    return Panel.from_dict(json.loads(path.read_text()), source=str(path))


_HOW_TO_ADD = (
    " (a panel JSON path works too; a package ships panels with envs.panels.register_panel_dir)"
)


def list_panels(env_id: str | None = None) -> list[Panel]:
    """Every panel of the registered folders, or those of one env id, sorted by env id and name."""
    panels: dict[tuple[str, str], Panel] = {}
    for root in _PANEL_DIRS:
        folders = [root / env_id.lower()] if env_id else sorted(root.iterdir())
        for folder in folders:
            if folder.is_dir():
                for path in sorted(folder.glob("*.json")):
                    panel = Panel.from_dict(json.loads(path.read_text()), source=str(path))
                    panels.setdefault((panel.env_id, panel.name), panel)
    return [panels[key] for key in sorted(panels)]


def default_panels(env_id: str) -> list[Panel]:
    """The panels the benchmark runs for ``env_id`` when none is named (one or more)."""
    defaults = [p for p in list_panels(env_id) if p.default]
    if not defaults:
        raise PanelNotFound(f"{env_id} has no default panel{_HOW_TO_ADD}")
    return defaults


def default_panel(env_id: str) -> Panel:
    """The env's default panel (each shipped id has exactly one, ``tests/test_panels.py``)."""
    return default_panels(env_id)[0]
