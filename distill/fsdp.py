"""Students sharded with FSDP2 (``parallelism: fsdp`` under ``torchrun``).

``shard(model)`` applies ``torch.distributed.fsdp.fully_shard`` to each decoder
layer and then to the root, so each rank holds 1/world of the parameters, their
gradients and their AdamW state, and a layer's parameters are all-gathered only
while it runs.

Generation for rollouts and evaluations does not run on the sharded model: a
rank's rollouts differ in length from another's, and every forward of a sharded
model is a collective all ranks must join. Each rank instead keeps a whole copy
of the student's parameters (no gradients, no optimiser state) for generation;
``refresh`` copies the trained weights into it after each optimiser step, one
all-gather per trainable parameter. On the tiny CPU model this measured faster
than gathering the sharded model's parameters for each step's generation
(``benchmarks/bench_fsdp_generation.py``, numbers in docs/scaling.md).

Every sharded forward/backward is a collective, so all ranks must run the same
number of micro-batches: ``micro_batch_plan`` says how many and gives a rank
with fewer a placeholder example, trained with weight zero.

Checkpoints (``save_sharded`` / ``resume_sharded``) are ``torch.distributed.checkpoint``
folders of the sharded model and optimiser state, each rank's RNG state, and
the scheduler and method state; they resume on the same world size only, and
``layout_problem`` says in one line why a checkpoint does not fit the run.
"""

from __future__ import annotations

import json
import math
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from distill.batching import Example
from distill.checkpoint import (
    _MARKER,
    Checkpoint,
    CheckpointError,
    _complete,
    _manifest,
    _read_manifest,
    _shape_mismatch,
    _write_problem,
    checkpoint_problem,
    rng_state,
    set_rng_state,
)
from distill.memory import decoder_layers

__all__ = [
    "layout_problem",
    "micro_batch_plan",
    "refresh",
    "resume_sharded",
    "save_sharded",
    "shard",
]


def shard(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` sharded in place: each decoder layer, then the root (embeddings, norm, head)."""
    from torch.distributed.fsdp import fully_shard

    for layer in decoder_layers(model):
        fully_shard(layer)
    return fully_shard(model)


@torch.no_grad()
def refresh(whole: torch.nn.Module, sharded: torch.nn.Module) -> None:
    """Copy ``sharded``'s trainable parameters into ``whole`` (a collective: every rank)."""
    targets = dict(whole.named_parameters())
    for name, parameter in sharded.named_parameters():
        if not parameter.requires_grad:  # frozen (LoRA's base weights): never changes
            continue
        full = parameter.full_tensor() if hasattr(parameter, "full_tensor") else parameter
        targets[name].copy_(full)


def micro_batch_plan(
    examples: Sequence[Example], micro_batch_size: int
) -> tuple[int, Example | None]:
    """(micro-batches every rank runs, a placeholder example for the ranks with fewer).

    The placeholder is one of this rank's examples, or, for a rank with none, one
    broadcast from the first rank that has some; it is trained with weight zero.
    """
    world, rank = dist.get_world_size(), dist.get_rank()
    counts = [torch.zeros(1, dtype=torch.long) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([math.ceil(len(examples) / micro_batch_size)]))
    counts = [int(c) for c in counts]
    most = max(counts)
    if most == 0:
        return 0, None
    if min(counts) > 0:
        return most, examples[0]
    source = next(r for r, count in enumerate(counts) if count > 0)
    box = [examples[0] if rank == source else None]
    dist.broadcast_object_list(box, src=source)
    return most, examples[0] if examples else box[0]


# -- checkpoints -----------------------------------------------------------------------


def layout_problem(path: str | Path, *, sharded: bool, world: int) -> str | None:
    """Why checkpoint ``path`` cannot resume this run (sharded or not, on ``world`` ranks)."""
    manifest = _read_manifest(Path(path)) or {}
    saved_world = manifest.get("world_size")
    if manifest.get("parallelism") == "fsdp":
        if not sharded:
            return (
                f"cannot resume from {path}: it was saved sharded by FSDP over {saved_world} "
                f"processes and this run is not sharded ({world} process(es)); resume with "
                f"parallelism: fsdp under torchrun --nproc_per_node {saved_world}"
            )
        if saved_world != world:
            return (
                f"cannot resume from {path}: it was saved sharded over {saved_world} processes "
                f"and this run has {world}; resume under torchrun --nproc_per_node {saved_world}"
            )
        return None
    if sharded:
        return (
            f"cannot resume from {path}: it holds the whole model (parallelism: ddp, or one "
            "process); resume with parallelism: ddp, or start a new run_dir"
        )
    return None


def save_sharded(
    run_dir: str | Path,
    *,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
    keep: int,
    config: dict[str, Any],
) -> Path:
    """Write checkpoint ``step`` (every rank calls it); staged, then renamed into place."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    rank, world = dist.get_rank(), dist.get_world_size()
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{step:08d}"
    staging = root / f".step-{step:08d}.sharded"  # the same name on every rank
    try:
        if rank == 0:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
        dist.barrier()
        model_state, optimizer_state = get_state_dict(model, optimizer)
        dcp.save(
            {"model": model_state, "optimizer": optimizer_state}, checkpoint_id=staging / "dcp"
        )
        torch.save(rng_state(), staging / f"rng-rank{rank}.pt")
        dist.barrier()
        if rank == 0:
            torch.save(
                {
                    "step": step,
                    "data_position": step,
                    "scheduler": scheduler.state_dict(),
                    "extra": extra,
                },
                staging / "trainer_state.pt",
            )
            manifest = _manifest(staging, step, config)
            manifest.update(parallelism="fsdp", world_size=world)
            # The manifest goes last: a folder without it was never finished.
            (staging / _MARKER).write_text(json.dumps(manifest, indent=1))
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
            complete = _complete(run_dir)
            for old in complete[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        dist.barrier()
    except Exception as error:
        problem = _write_problem(root if root.exists() else root.parent, error)
        if problem is not None:
            raise CheckpointError(
                f"cannot write checkpoint step-{step:08d} to {root}: {problem}"
            ) from error
        raise
    return final


def resume_sharded(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    config: dict[str, Any],
) -> Checkpoint | None:
    """Load the newest intact checkpoint of ``run_dir`` into every rank (None: there is none).

    A damaged one is passed over with a warning (as ``distill.checkpoint.resume`` does);
    one saved on another world size, or not sharded, raises :class:`CheckpointError`.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    rank, world = dist.get_rank(), dist.get_world_size()
    damaged = []
    for path in reversed(_complete(run_dir)):
        problem = checkpoint_problem(path)
        if problem is not None:
            warnings.warn(
                f"checkpoint {path} is damaged ({problem}); trying an older one", stacklevel=2
            )
            damaged.append(path.name)
            continue
        mismatch = layout_problem(path, sharded=True, world=world) or _shape_mismatch(path, config)
        if mismatch:
            raise CheckpointError(mismatch)
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(state, checkpoint_id=path / "dcp")
        set_state_dict(
            model,
            optimizer,
            model_state_dict=state["model"],
            optim_state_dict=state["optimizer"],
        )
        trainer = torch.load(path / "trainer_state.pt", map_location="cpu", weights_only=False)
        scheduler.load_state_dict(trainer["scheduler"])
        set_rng_state(torch.load(path / f"rng-rank{rank}.pt", weights_only=False))
        return Checkpoint(
            step=int(trainer["step"]),
            data_position=int(trainer["data_position"]),
            path=path,
            extra=dict(trainer["extra"]),
        )
    if damaged:
        raise CheckpointError(
            f"every checkpoint of {run_dir} is damaged ({', '.join(damaged)}); move them aside "
            "to start the run afresh"
        )
    return None
