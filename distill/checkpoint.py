"""Checkpoints a killed run can resume from, written atomically and checked when read.

A checkpoint is a folder ``<run>/checkpoints/step-<N>/`` holding the model
(``save_pretrained`` when the model has it, else a state dict), the optimiser,
the learning-rate scheduler, every random generator's state (Python, NumPy,
torch CPU and CUDA), the step and the data position, plus any extra state
the method keeps (e.g. a cached teacher reference). It is first written to a
temporary ``.step-<N>.*`` folder and renamed into place, so a kill mid-write
leaves the previous checkpoint intact and never a half one; such leftovers
are removed by :func:`remove_staging` (the trainer calls it at start).

The ``COMPLETE`` marker is a manifest: every file's size and SHA-256, and the
fields of the run's config that fix the model's shapes. :func:`resume` loads
the newest checkpoint whose files match it, warning about each damaged one
it passes over, and refuses (saying which field) a config whose
shape-relevant fields differ from the checkpoint's. A save that fails for
lack of space, a read-only file system or permissions raises
:class:`CheckpointError` with one line saying so.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "SHAPE_FIELDS",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_problem",
    "latest_checkpoint",
    "load_checkpoint",
    "remove_staging",
    "resume",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]

_MARKER = "COMPLETE"
#: Config fields that decide the student's parameter shapes: a checkpoint only fits a config
#: with the same values.
SHAPE_FIELDS: tuple[str, ...] = ("student", "tokenizer")
# Free space below this after a failed save means the disk filled up.
_NEARLY_FULL_BYTES = 64 << 20


class CheckpointError(RuntimeError):
    """A checkpoint could not be written or does not fit the run (the message says why)."""


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


# -- writing -----------------------------------------------------------------------------


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def _manifest(folder: Path, step: int, config: dict[str, Any] | None) -> dict[str, Any]:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        files[path.relative_to(folder).as_posix()] = [path.stat().st_size, _digest(path)]
    shapes = {name: config.get(name) for name in SHAPE_FIELDS} if config is not None else None
    return {"step": step, "files": files, "shape_fields": shapes}


def _write_problem(root: Path, error: BaseException) -> str | None:
    """Why writing under ``root`` failed, in words, when it is the disk's fault (else None)."""
    codes = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
    codes |= {errno.EROFS: "read-only file system", errno.EACCES: "permission denied"}
    codes[errno.EPERM] = "permission denied"
    cause: BaseException | None = error
    while cause is not None:  # safetensors and torch wrap the OS error, or lose it
        if isinstance(cause, OSError) and cause.errno in codes:
            return codes[cause.errno]
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    if "No space left" in text or "StorageFull" in text:
        return codes[errno.ENOSPC]
    if "Read-only file system" in text or "ReadOnlyFilesystem" in text:
        return codes[errno.EROFS]
    try:
        stats = os.statvfs(root)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return codes[errno.EROFS]
    if stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES:
        return codes[errno.ENOSPC]  # torch's writer reports only "enforce fail ... unexpected pos"
    return None


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
    config: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``run_dir/checkpoints`` and keep the newest ``keep``.

    ``config`` (the run's config as a dict) puts its shape-relevant fields in the
    manifest, for :func:`resume` to compare. Raises :class:`CheckpointError` when
    the disk is full, read-only or not writable (nothing half-written is left).
    """
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    staging: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.", dir=root))
        model_to_save = getattr(model, "module", model)  # unwrap DistributedDataParallel
        # A peft model's save_pretrained writes the adapter alone: it keeps a state dict.
        if hasattr(model_to_save, "save_pretrained") and not hasattr(model_to_save, "peft_config"):
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
        # The manifest goes last: a folder without it was never finished.
        (staging / _MARKER).write_text(json.dumps(_manifest(staging, step, config), indent=1))
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    except Exception as error:
        problem = _write_problem(root if root.exists() else root.parent, error)
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if problem is not None:
            raise CheckpointError(
                f"cannot write checkpoint step-{step:08d} to {root}: {problem}"
            ) from error
        raise
    except BaseException:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        raise
    complete = sorted(p for p in root.glob("step-*") if (p / _MARKER).exists())
    for old in complete[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def remove_staging(run_dir: str | Path) -> list[Path]:
    """Remove the ``.step-*`` folders a run killed mid-save left behind; returns them."""
    root = Path(run_dir) / "checkpoints"
    stale = sorted(p for p in root.glob(".step-*") if p.is_dir()) if root.is_dir() else []
    for folder in stale:
        shutil.rmtree(folder, ignore_errors=True)
    return stale


# -- reading -----------------------------------------------------------------------------


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of ``run_dir``, or None (its files unchecked)."""
    complete = _complete(run_dir)
    return complete[-1] if complete else None


def _complete(run_dir: str | Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    return sorted(p for p in root.glob("step-*") if (p / _MARKER).exists())


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest, or None for a checkpoint written before manifests (marker = the step)."""
    text = (path / _MARKER).read_text()
    try:
        manifest = json.loads(text)
    except ValueError:
        if text.strip().isdigit():
            return None
        raise
    return manifest if isinstance(manifest, dict) and "files" in manifest else None


def checkpoint_problem(path: str | Path) -> str | None:
    """What is wrong with checkpoint ``path`` (a missing, cut or altered file), or None."""
    path = Path(path)
    if not (path / _MARKER).exists():
        return "it has no COMPLETE marker"
    try:
        manifest = _read_manifest(path)
    except (OSError, ValueError) as error:
        return f"its manifest is unreadable ({error})"
    if manifest is None:
        return None
    for name, (size, digest) in manifest["files"].items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if file.stat().st_size != size:
            return f"{name} has {file.stat().st_size} bytes, not {size}"
        if _digest(file) != digest:
            return f"{name} does not match its checksum"
    return None


def _read_files(path: Path) -> tuple[dict[str, torch.Tensor], bool, dict[str, Any]]:
    """Everything a checkpoint holds, read into memory: (model state, whether it is a plain
    state dict, trainer state). Raises on unreadable files, before anything is applied."""
    model_dir = path / "model"
    if (model_dir / "state_dict.pt").exists():
        state = torch.load(model_dir / "state_dict.pt", map_location="cpu")
        plain = True
    else:
        from safetensors.torch import load_file

        files = sorted(model_dir.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"no weights in {model_dir}")
        state = {}
        for file in files:
            state.update(load_file(file))
        plain = False
    trainer_state = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
    return state, plain, trainer_state


def _apply(
    path: Path,
    files: tuple[dict[str, torch.Tensor], bool, dict[str, Any]],
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any,
    restore_rng: bool,
) -> Checkpoint:
    state, plain, trainer_state = files
    target = getattr(model, "module", model)
    try:
        if plain:
            target.load_state_dict(state)
        else:
            missing, unexpected = target.load_state_dict(state, strict=False)
            # Tied embeddings are saved once; anything else missing is an error.
            real_missing = [k for k in missing if "lm_head" not in k]
            if real_missing or unexpected:
                raise CheckpointError(
                    f"checkpoint {path} does not fit the model: missing {real_missing[:5]}, "
                    f"unexpected {unexpected[:5]}"
                )
            if hasattr(target, "tie_weights"):
                target.tie_weights()
    except RuntimeError as error:
        if isinstance(error, CheckpointError):
            raise
        first = next((line for line in str(error).splitlines() if "size mismatch" in line), "")
        raise CheckpointError(
            f"checkpoint {path} does not fit the model ({first.strip() or error})"
        ) from None
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


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
) -> Checkpoint:
    """Load ``path`` into ``model`` (and optimiser, scheduler, RNGs); return step and position.

    Raises ``FileNotFoundError`` for a folder that is not a complete checkpoint and
    :class:`CheckpointError` for a damaged one or one that does not fit ``model``.
    """
    path = Path(path)
    if not (path / _MARKER).exists():
        raise FileNotFoundError(f"{path} is not a complete checkpoint")
    problem = checkpoint_problem(path)
    if problem is not None:
        raise CheckpointError(f"checkpoint {path} is damaged: {problem}")
    try:
        files = _read_files(path)
    except Exception as error:
        raise CheckpointError(f"checkpoint {path} is damaged: {error}") from error
    return _apply(
        path, files, model=model, optimizer=optimizer, scheduler=scheduler, restore_rng=restore_rng
    )


def _shape_mismatch(path: Path, config: dict[str, Any]) -> str | None:
    try:
        manifest = _read_manifest(path)
    except (OSError, ValueError):
        return None
    saved = (manifest or {}).get("shape_fields")
    if not saved:
        return None
    for name, value in saved.items():
        if name in config and config[name] != value:
            return (
                f"cannot resume from {path}: it was trained with {name}={value!r} and this "
                f"config has {name}={config[name]!r}; {name} decides the model's shapes, so "
                "restore it or start a new run_dir"
            )
    return None


def resume(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    restore_rng: bool = True,
    config: dict[str, Any] | None = None,
) -> Checkpoint | None:
    """Load the newest intact checkpoint of ``run_dir`` (None when there is none).

    A damaged checkpoint (a file missing, cut short or altered since it was
    written, or unreadable) is passed over with a warning naming it (when all
    are damaged, :class:`CheckpointError` says so rather than start over); a config
    whose shape-relevant fields (:data:`SHAPE_FIELDS`) differ from the
    checkpoint's raises :class:`CheckpointError` naming the field.
    """
    damaged = []
    for path in reversed(_complete(run_dir)):
        problem = checkpoint_problem(path)
        files = None
        if problem is None:
            try:
                files = _read_files(path)
            except Exception as error:
                problem = f"it cannot be read ({type(error).__name__}: {error})"
        if problem is not None:
            warnings.warn(
                f"checkpoint {path} is damaged ({problem}); trying an older one",
                stacklevel=2,
            )
            damaged.append(path.name)
            continue
        if config is not None:
            mismatch = _shape_mismatch(path, config)
            if mismatch:
                raise CheckpointError(mismatch)
        return _apply(
            path,
            files,
            model=model,
            optimizer=optimizer,
            scheduler=scheduler,
            restore_rng=restore_rng,
        )
    if damaged:  # starting over silently would throw the run away
        raise CheckpointError(
            f"every checkpoint of {run_dir} is damaged ({', '.join(damaged)}); move them aside "
            "to start the run afresh"
        )
    return None
