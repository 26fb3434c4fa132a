"""Checkpoints a killed run can resume from, written atomically.

A checkpoint is a folder ``<run>/checkpoints/step-<N>/`` holding the model
(``save_pretrained`` when the model has it, else a state dict), the optimiser,
the learning-rate scheduler, every random generator's state (Python, NumPy,
torch CPU and CUDA), the step and the data position, plus any extra state
the method keeps (e.g. a cached teacher reference). It is first written to a
temporary folder and renamed into place, so a kill mid-write leaves the
previous checkpoint intact and never a half one. ``latest_checkpoint`` finds
the newest complete one.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "Checkpoint",
    "latest_checkpoint",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

_MARKER = "COMPLETE"


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` returns (the model's weights are loaded in place)."""

    step: int
    data_position: int
    path: Path
    extra: dict[str, Any] = field(default_factory=dict)


def rng_state() -> dict[str, Any]:
    """The state of every random generator a run draws from."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: str | Path,
    *,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    data_position: int = 0,
    extra: dict[str, Any] | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` and keep the newest ``keep``."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    staging = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.", dir=root))
    try:
        model_to_save = getattr(model, "module", model)  # unwrap DistributedDataParallel
        if hasattr(model_to_save, "save_pretrained"):
            model_to_save.save_pretrained(staging / "model")
        else:
            (staging / "model").mkdir()
            torch.save(model_to_save.state_dict(), staging / "model" / "state_dict.pt")
        torch.save(
            {
                "step": step,
                "data_position": data_position,
                "optimizer": optimizer.state_dict() if optimizer is not None else None,
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng": rng_state(),
                "extra": extra or {},
            },
            staging / "trainer_state.pt",
        )
        (staging / _MARKER).write_text(str(step))
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    complete = sorted(p for p in root.glob("step-*") if (p / _MARKER).exists())
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of ``run_dir``, or None."""
    root = Path(run_dir) / "checkpoints"
    complete = sorted(p for p in root.glob("step-*") if (p / _MARKER).exists())
    return complete[-1] if complete else None


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> Checkpoint:
    """Load ``path`` into ``model`` (and optimiser, scheduler, RNGs); return step and position."""
    path = Path(path)
    if not (path / _MARKER).exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint")
    target = getattr(model, "module", model)
    model_dir = path / "model"
    if (model_dir / "state_dict.pt").exists():
        target.load_state_dict(torch.load(model_dir / "state_dict.pt", map_location="cpu"))
    else:
        from safetensors.torch import load_file

        files = sorted(model_dir.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no weights in {model_dir}")
        state: dict[str, torch.Tensor] = {}
        for file in files:
            state.update(load_file(file))
        missing, unexpected = target.load_state_dict(state, strict=False)
        # Tied embeddings are saved once; anything else missing is an error.
        real_missing = [k for k in missing if "lm_head" not in k]
        if real_missing or unexpected:
            raise RuntimeError(
                f"checkpoint {path} does not fit the model: missing {real_missing}, unexpected {unexpected}"
            )
        if hasattr(target, "tie_weights"):
            target.tie_weights()
    trainer_state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
    if optimizer is not None and trainer_state["optimizer"] is not None:
        optimizer.load_state_dict(trainer_state["optimizer"])
    if scheduler is not None and trainer_state["scheduler"] is not None:
        scheduler.load_state_dict(trainer_state["scheduler"])
    if restore_rng:
        set_rng_state(trainer_state["rng"])
    return Checkpoint(
        step=int(trainer_state["step"]),
        data_position=int(trainer_state["data_position"]),
        path=path,
        extra=dict(trainer_state["extra"]),
    )
