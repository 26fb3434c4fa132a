"""Optional experiment tracking through Weights & Biases: open a run, log scalars and tables, close.

Off by default (``track: none``); ``track: wandb`` in a distillation config, or
``--track wandb`` on ``tools/distill.py`` and ``tools/benchmark.py``, turns it on.
It needs the ``tracking`` extra (``pip install -e '.[tracking]'``); without it,
:func:`check_tracker` raises one line saying so. Runs are written offline
(``WANDB_MODE=offline``) unless the user's environment sets ``WANDB_MODE``:
nothing leaves the machine until ``wandb sync <folder>/wandb/offline-run-*``.
The project is ``$WANDB_PROJECT``, else ``mentorgym``.

    run = open_run("wandb", folder="runs/x", name="opd", config={"lr": 1e-6})
    run.log({"loss": 0.5}, step=1)
    run.table("results", ["agent", "SR"], [["expert", 100.0]])
    run.summary({"SR": 100.0})
    run.close()
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write_text

__all__ = ["TRACKERS", "TrackingError", "TrackingRun", "check_tracker", "open_run"]

#: The values of ``track`` / ``--track``.
TRACKERS: tuple[str, ...] = ("none", "wandb")
_ID_FILE = "run-id"  # in the run's wandb/ folder: a resumed run continues the same id


class TrackingError(ValueError):
    """A tracker that cannot run here (unknown name, or its package is not installed)."""


def _import_wandb() -> Any:
    try:
        return importlib.import_module("wandb")
    except ImportError:
        raise TrackingError(
            "wandb is not installed: install the tracking extra "
            "(.venv/bin/python -m pip install -e '.[tracking]') or track none"
        ) from None


def check_tracker(kind: str) -> None:
    """Raise a one-line :class:`TrackingError` unless ``kind`` can track on this machine."""
    if kind not in TRACKERS:
        raise TrackingError(f"unknown tracker {kind!r}; choose one of {list(TRACKERS)}")
    if kind == "wandb":
        _import_wandb()


def _scalars(values: dict[str, Any]) -> dict[str, float]:
    return {
        key: value
        for key, value in values.items()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    }


class TrackingRun:
    """One open run of a logger (see the module docstring)."""

    def __init__(self, run: Any, wandb: Any) -> None:
        self._run, self._wandb = run, wandb
        self.folder = Path(run.dir).parent  # wandb/offline-run-<time>-<id>/ (or run-...)

    def log(self, values: dict[str, Any], step: int | None = None) -> None:
        """Log the finite numbers of ``values`` (other values are left out) at ``step``."""
        scalars = _scalars(values)
        if scalars:
            self._run.log(scalars, step=step)

    def summary(self, values: dict[str, Any]) -> None:
        """Set the run's summary numbers (its one value per key; non-numbers left out)."""
        self._run.summary.update(_scalars(values))

    def table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        """Log a table (one list of cells per row, in ``columns`` order) under ``key``."""
        # A missing cell is None to the logger ("" would make a number column mixed).
        data = [[None if cell == "" else cell for cell in row] for row in rows]
        self._run.log({key: self._wandb.Table(columns=list(columns), data=data)})

    def close(self) -> None:
        """Finish the run; its files are complete on disk when this returns."""
        self._run.finish()
        # finish() returns before wandb's service has written the run's log; tearing the
        # service down waits for it (unless another run of the process still needs it).
        if self._wandb.run is None:
            self._wandb.teardown()

    def where(self) -> str:
        """Where the run is, for a tool's last lines (with how to upload an offline run)."""
        if os.environ.get("WANDB_MODE") == "offline":
            return f"{self.folder} (offline; `wandb sync {self.folder}` uploads it)"
        return str(self.folder)


def open_run(
    kind: str,
    *,
    folder: str | Path,
    name: str,
    config: dict[str, Any] | None = None,
    resume: bool = False,
) -> TrackingRun | None:
    """A run writing under ``folder/wandb/`` (None for ``kind="none"``). With ``resume``,
    the run id kept there by an earlier call is continued."""
    check_tracker(kind)
    if kind == "none":
        return None
    wandb = _import_wandb()
    os.environ.setdefault("WANDB_MODE", "offline")  # never upload unless the user asks to
    # wandb takes the project's `agents` package for an LLM SDK and advertises Weave.
    os.environ.setdefault("WANDB_DISABLE_WEAVE", "true")
    folder = Path(folder)
    (folder / "wandb").mkdir(parents=True, exist_ok=True)
    id_file = folder / "wandb" / _ID_FILE
    run_id = id_file.read_text().strip() if resume and id_file.is_file() else None
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", "mentorgym"),
        name=name,
        dir=str(folder),
        config=config or {},
        id=run_id,
        resume="allow" if run_id else None,
        settings=wandb.Settings(silent=True),  # its banner would break up the tools' output
    )
    atomic_write_text(id_file, run.id + "\n")
    return TrackingRun(run, wandb)
