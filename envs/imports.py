"""Importing a user's own modules (their envs, agents, panels) by name.

Command-line tools are scripts in ``tools/``, so Python puts that folder, not
the directory the user runs them from, first on ``sys.path``. A user who
writes ``--import mypkg.envs`` or ``--agent mypkg.agents:MyAgent`` next to
their own package expects it to be found, as ``python -m`` would: these
helpers put the current working directory on ``sys.path`` (once) first.
Spawned worker processes inherit ``sys.path``, so they find it too.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterable
from types import ModuleType

__all__ = ["import_module", "import_modules"]


def _cwd_on_path() -> None:
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)  # after the project's own folders: a user module cannot shadow them


def import_module(name: str) -> ModuleType:
    """``importlib.import_module(name)`` with the current directory importable."""
    _cwd_on_path()
    return importlib.import_module(name)


def import_modules(names: Iterable[str]) -> None:
    """Import each module (e.g. one that registers env ids); a failure is one ValueError line."""
    for name in names:
        try:
            import_module(name)
        except ImportError as error:
            raise ValueError(f"cannot import {name!r}: {error}") from None
