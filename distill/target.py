"""Training to a target: stop once an evaluation reaches a success rate, keep the best weights.

A run whose config sets ``target_eval_sr`` (a percentage) evaluates the pure student every
``eval_every`` steps on its eval panel (the dev panel, for a teacher); ``total_steps`` is
then a cap, not a length. The run stops at the first evaluation that reaches the target.
If the cap comes first, ``final/`` holds the weights of the best evaluation instead of the
last step's, and the summary says the target was missed. Either way the summary's
``target`` entry records the target, whether it was reached, and the step and SR of the
weights in ``final/``.

The best weights so far live in ``<run_dir>/best.pt`` (written atomically), so a resumed
run still knows them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from envs.fileio import atomic_write_bytes

__all__ = ["TargetTracker"]

BEST_FILE = "best.pt"


@dataclass
class TargetTracker:
    """The best evaluation of a run trained to ``target`` (SR in percent)."""

    run_dir: Path
    target: float
    best_step: int | None = None
    best_sr: float = -1.0
    best_metrics: dict[str, float] | None = None  # the best evaluation's eval_* values

    @classmethod
    def load(cls, run_dir: str | Path, target: float, *, resume: bool) -> TargetTracker:
        """A tracker for ``run_dir``: with ``resume``, it picks up the best weights saved so far."""
        tracker = cls(Path(run_dir), float(target))
        path = tracker.run_dir / BEST_FILE
        if path.is_file():
            if resume:
                saved = torch.load(path, map_location="cpu", weights_only=True)
                tracker.best_step, tracker.best_metrics = int(saved["step"]), saved["metrics"]
                tracker.best_sr = float(saved["metrics"]["eval_sr"])
            else:  # a fresh run must not inherit another run's best
                path.unlink()
        return tracker

    @property
    def reached(self) -> bool:
        return self.best_sr >= self.target

    def record(self, step: int, metrics: dict[str, float], model: torch.nn.Module) -> bool:
        """Note the evaluation ``metrics`` (``eval_sr`` and the rest) at ``step``; saves the
        weights if it is the best so far. Returns whether the target is now reached."""
        if metrics["eval_sr"] > self.best_sr:
            self.best_step, self.best_sr = step, float(metrics["eval_sr"])
            self.best_metrics = {k: float(v) for k, v in metrics.items()}
            buffer = io.BytesIO()
            state = {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()}
            torch.save({"step": step, "metrics": self.best_metrics, "state": state}, buffer)
            atomic_write_bytes(self.run_dir / BEST_FILE, buffer.getvalue())
        return self.reached

    def restore_best(self, model: torch.nn.Module, last_step: int) -> None:
        """Load the best evaluated weights into ``model`` unless they are ``last_step``'s."""
        if self.best_step is None or self.best_step == last_step:
            return
        saved = torch.load(self.run_dir / BEST_FILE, map_location="cpu", weights_only=True)
        _unwrap(model).load_state_dict(saved["state"])

    def summary(self) -> dict[str, Any]:
        return {
            "eval_sr": self.target,
            "reached": self.reached,
            "step": self.best_step,
            "best_eval_sr": None if self.best_step is None else self.best_sr,
        }


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)  # DistributedDataParallel keeps the model here
