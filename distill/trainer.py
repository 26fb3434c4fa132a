"""The training loop every method shares; it knows no loss.

``train(config)`` builds the student (and teacher, and a frozen reference
for GRPO), then for each step asks the method for training examples
(``method.make_examples``: the method collects its rollouts and turns them
into examples) and, micro-batch by micro-batch, for their per-token loss
(``method.loss``), and takes one AdamW step (or ``epochs`` of them) with
gradient clipping and accumulation over micro-batches. It evaluates the pure
student at temperature 0.4 every ``eval_every`` steps, logs metrics (JSONL,
TensorBoard), checkpoints every ``checkpoint_every`` steps, and resumes from
the newest checkpoint of ``run_dir`` with ``resume=True`` (same state as an
uninterrupted run: model, optimiser, scheduler, RNGs, step). Under
``torchrun`` each rank collects its share of the rollouts and gradients are
averaged (gloo on CPU, NCCL on GPU): with ``parallelism: ddp`` each rank holds
the whole student, with ``fsdp`` it is sharded (``distill.fsdp``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from distill import fsdp
from distill.batching import Example, collate
from distill.checkpoint import CheckpointError, latest_checkpoint, remove_staging, save_checkpoint
from distill.checkpoint import resume as resume_from
from distill.config import ConfigError, TrainConfig
from distill.lora import apply_lora, save_final
from distill.losses import aggregate
from distill.memory import enable_activation_checkpointing
from distill.methods import METHODS
from distill.metrics import MetricsLog, StepLog, plot_curves, read_metrics, rollout_rows
from distill.models import (
    check_shared_vocabulary,
    check_teacher_tokens,
    load_student,
    load_teacher,
    resolve_recipe_models,
    student_tokenizer,
)
from envs.fileio import atomic_write_json

__all__ = ["RunContext", "accumulate", "train"]


# -- one optimiser step's gradients ------------------------------------------------------


def accumulate(
    method: Any,
    model: torch.nn.Module,
    examples: Sequence[Example],
    ctx: Any,
    *,
    micro_batch_size: int,
    aggregation: str,
    tokens: float,
    sequences: float,
    world_size: int = 1,
    chunk_count: int = 0,
    placeholder: Example | None = None,
) -> tuple[float, dict[str, float]]:
    """Forward and backward ``examples`` in micro-batches, gradients adding up in ``model``.

    The method says what each token's loss is (``method.loss(model, batch, ctx)``:
    a per-token loss ``[batch, tokens]``); each micro-batch's scalar is its share
    of the step's mean (``losses.aggregate`` with the step's ``tokens`` and
    ``sequences`` over every rank), so the loss and the gradient are the same
    however the step is split into micro-batches or ranks. Returns the step's loss
    on this rank and the method's statistics, averaged over the tokens they count.

    A sharded model's every micro-batch is a collective: with ``chunk_count`` more
    than this rank's micro-batches, ``placeholder`` fills the rest with weight zero.
    """
    total, sums, counts = 0.0, {}, {}
    chunks = [
        examples[start : start + micro_batch_size]
        for start in range(0, len(examples), micro_batch_size)
    ]
    real = len(chunks)
    chunks += [[placeholder]] * max(0, chunk_count - real)
    replicated = isinstance(model, torch.nn.parallel.DistributedDataParallel)
    for index, chunk in enumerate(chunks):
        batch = collate(chunk)
        # DDP: ranks may hold different numbers of chunks, so gradients are summed locally
        # and averaged across ranks once per step (by the caller), never per chunk.
        sync = model.no_sync() if replicated else contextlib.nullcontext()
        with sync:
            per_token, stats = method.loss(model, batch, ctx)
            loss = aggregate(
                per_token,
                batch.mask.to(per_token.device),
                aggregation,
                tokens=tokens / world_size,
                sequences=sequences / world_size,
            )
            if index >= real:  # a placeholder: the collectives run, nothing is learnt
                (loss * 0.0).backward()
                continue
            loss.backward()
        total += float(loss.detach())
        for key, (value, count) in stats.items():
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0.0) + count
    averaged = {key: sums[key] / counts[key] for key in sums if counts[key] > 0}
    return total, averaged


# -- the run -----------------------------------------------------------------------------


@dataclass
class RunContext:
    """What a method's ``make_examples(ctx, step)`` and ``loss(model, batch, ctx)`` work with."""

    config: Any
    student: Any  # HFAgent being trained (sampling at train_temperature)
    teacher: Any | None
    collector: Any  # distill.rollout.RolloutCollector
    task_ids: list[str]
    rank: int = 0
    world_size: int = 1
    cache: dict[str, Any] = field(default_factory=dict)  # method state saved in checkpoints
    eval_collector: Any = None  # envs of the eval panel's split, made at the first evaluation
    progress: bool = False  # long preparation (demonstrations) shows a bar
    # What a method's loss(model, batch, ctx) may need besides the student being trained:
    pad_id: int = 0  # the student's padding token
    teacher_model: Any = None  # an in-process teacher's module (full-vocabulary KL)
    ref_model: Any = None  # the frozen initial student (GRPO's KL)

    def sample_tasks(self, step: int, count: int, *, share: bool = True) -> list[str]:
        """The step's tasks: the same draw on every rank and on resume.

        With ``share`` (the default) only this rank's share, whose i-th task is the
        step's ``global_index(i)``-th; otherwise all of them.
        """
        rng = np.random.default_rng([self.config.seed, step + 1])  # step -1: preparation
        chosen = [self.task_ids[int(i)] for i in rng.integers(len(self.task_ids), size=count)]
        return chosen[self.rank :: self.world_size] if share else chosen

    def global_index(self, local_index: int) -> int:
        return self.rank + local_index * self.world_size

    def rollout_seed(self, step: int, index: int) -> int:
        """Reset seed of the step's ``index``-th rollout (a global index)."""
        return int(np.random.default_rng([self.config.seed, step + 1, index]).integers(2**31))


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            # One GPU per rank: device "cuda" (no index) then means this rank's GPU.
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend=backend)
    if world > 1:
        return torch.distributed.get_rank(), world
    return 0, 1


def _lr_lambda(config: TrainConfig):
    def factor(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.lr_schedule == "constant":
            return 1.0
        progress = (step - config.warmup_steps) / max(1, config.total_steps - config.warmup_steps)
        progress = min(max(progress, 0.0), 1.0)
        return (
            0.5 * (1 + math.cos(math.pi * progress))
            if config.lr_schedule == "cosine"
            else 1 - progress
        )

    return factor


def evaluate_student(ctx: RunContext, step: int) -> dict[str, float]:
    """The pure student at eval temperature on the eval panel: SR and Score."""
    from distill.evaluation import find_panel, play_panel

    config = ctx.config
    panel = find_panel(config.env_id, config.eval_panel)
    if ctx.eval_collector is None:
        from distill.rollout import RolloutCollector

        ctx.eval_collector = RolloutCollector(
            config.env_id,
            student=ctx.student,
            num_envs=config.num_envs,
            # Ranking reads the admissible actions from the env's info.
            env_kwargs={
                **config.env_settings(),
                **({"admissible_actions": "full"} if config.eval_mode == "rank" else {}),
                "split": panel.split,
            },
            mode=config.env_mode,
            max_env_errors=config.max_env_errors,
        )
    rollouts = play_panel(
        ctx.eval_collector,
        panel,
        temperature=config.eval_temperature,
        mode=config.eval_mode,
        episodes=config.eval_episodes,
        max_turns=config.turn_cap(),
        rank=ctx.rank,
        world_size=ctx.world_size,
        # The first evaluation can take minutes before any training step: show it.
        progress=f"evaluating (step {step})" if ctx.progress else None,
    )
    won = torch.tensor(
        [
            float(sum(r.won for r in rollouts)),
            float(sum(r.score for r in rollouts)),
            float(len(rollouts)),
        ]
    )
    if ctx.world_size > 1:
        torch.distributed.all_reduce(won)
    n = max(float(won[2]), 1.0)
    return {
        "eval_sr": 100 * float(won[0]) / n,
        "eval_score": 100 * float(won[1]) / n,
        "eval_episodes": int(won[2]),
    }


def _collector(config: TrainConfig, student: Any, teacher: Any, env_kwargs: dict) -> Any:
    """The run's rollout collector; an env that cannot be made is a ConfigError naming it."""
    from distill.rollout import RolloutCollector
    from envs.pool import EnvPoolError

    try:
        return RolloutCollector(
            config.env_id,
            student=student,
            teacher=teacher,
            num_envs=config.num_envs,
            env_kwargs=env_kwargs,
            mode=config.env_mode,
            max_env_errors=config.max_env_errors,
        )
    except (EnvPoolError, TypeError, ValueError) as error:
        reason = str(error).strip().splitlines()[-1]
        raise ConfigError(
            f"env_kwargs: cannot make {config.env_id} with {env_kwargs}: {reason}"
        ) from None


def _probe_prompts(collector: Any, student: Any) -> list[str]:
    """Real prompts of the run's env, rendered by the student, for checking a teacher's
    tokenizer: the first turn of one episode."""
    from agents.prompts import EpisodeState

    observation, info = collector.pool.reset({0: {"seed": 0}})[0]
    state = EpisodeState.start(observation, info, env_id=collector.env_id)
    text = student.render(state)
    return [text, "Numbers 0 7 42 1,234 3.14 -5 and words: déjà vu, naïve, \u2192 \U0001f600."]


def _evaluation(row: dict[str, Any]) -> dict[str, Any]:
    """The evaluation fields (``eval_*``) of a metrics row; empty if it holds none."""
    return {key: value for key, value in row.items() if key.startswith("eval_")}


def _measured_so_far(run_dir: Path) -> dict[str, Any]:
    """The first and the newest evaluations in ``run_dir/metrics.jsonl``, as a summary."""
    evaluations = [
        (row.get("step"), _evaluation(row)) for row in read_metrics(run_dir / "metrics.jsonl")
    ]
    evaluations = [(step, found) for step, found in evaluations if found]
    summary: dict[str, Any] = {}
    if evaluations and evaluations[0][0] == 0:
        summary["initial"] = evaluations[0][1]
    if evaluations and evaluations[-1][0] != 0:
        summary["final"] = evaluations[-1][1]
    return summary


def train(config: TrainConfig, *, resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Run ``config`` to ``total_steps`` (from the newest checkpoint with ``resume``); returns a summary.

    Everything that can be wrong with the config (models, teacher server, envs) is checked
    before ``run_dir`` is made: a mistake is a ``ConfigError`` and leaves no run folder. A
    teacher server that fails mid-run raises ``agents.openai_agent.ServerError`` after its
    retries; the newest checkpoint is intact and ``resume=True`` continues from it.
    """

    rank, world = _distributed()
    run_dir = Path(config.run_dir)
    if resume and latest_checkpoint(run_dir) is None:
        raise ConfigError(
            f"resume: {run_dir} holds no checkpoint to resume from; start the run without resume"
        )
    config = resolve_recipe_models(config, quiet=not progress or rank != 0)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    method = METHODS[config.method]

    student = load_student(config, student_tokenizer(config, run_dir, resume=resume))
    teacher = load_teacher(config, student) if config.teacher else None
    if teacher is not None and getattr(method, "NEEDS_SHARED_VOCAB", False):
        check_shared_vocabulary(student, teacher)
    if teacher is None and getattr(method, "NEEDS_TEACHER", False):
        raise ConfigError(f"teacher: {config.method} needs a teacher")
    ref_model = None
    if getattr(method, "NEEDS_REFERENCE_MODEL", False):
        ref_model = copy.deepcopy(student.model).eval().requires_grad_(False)

    env_kwargs = {"split": config.train_split, **config.env_settings()}
    if (
        getattr(method, "NEEDS_EXPERT", False)
        or getattr(config, "demonstrator", "") == "expert"
        or getattr(config, "reference", "") == "expert"
    ):
        env_kwargs.setdefault("expert", True)
    collector = _collector(config, student, teacher, env_kwargs)
    made_run_dir = not run_dir.exists()
    try:
        if teacher is not None:
            check_teacher_tokens(teacher, _probe_prompts(collector, student))
        if config.lora_rank:
            student.model = apply_lora(
                student.model, rank=config.lora_rank, alpha=config.lora_alpha
            )
        model = student.model
        sharded = config.parallelism == "fsdp" and world > 1
        if sharded:
            # Train a sharded copy; student.model stays whole (no gradients) and generates
            # the rollouts, refreshed after each optimiser step (distill.fsdp).
            model = copy.deepcopy(student.model)
            student.model.requires_grad_(False)
        if config.activation_checkpointing:
            enable_activation_checkpointing(model)
        if sharded:
            model = fsdp.shard(model)
        # full_vocab reverse KL reads the teacher's logits: an in-process teacher's module.
        teacher_module = getattr(teacher, "model", None)
        if not isinstance(teacher_module, torch.nn.Module):
            teacher_module = None
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],  # LoRA: the adapters
            lr=config.learning_rate,
            weight_decay=config.weight_decay,
            betas=config.adam_betas,
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(config))
        start_step, cache, stopped = 0, {}, False
        if rank == 0:
            remove_staging(run_dir)  # what a kill mid-save left behind
        if resume:
            problem = fsdp.layout_problem(latest_checkpoint(run_dir), sharded=sharded, world=world)
            if problem:
                raise CheckpointError(problem)
        # The newest intact checkpoint (a damaged one is passed over with a warning).
        state = (
            (fsdp.resume_sharded if sharded else resume_from)(
                run_dir,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                config=config.to_dict(),
            )
            if resume
            else None
        )
        if state is not None and sharded:
            fsdp.refresh(student.model, model)
        checkpoint = state.path if state is not None else None
        if state is not None:
            start_step, cache = state.step, state.extra.get("method_cache", {})
            stopped = bool(state.extra.get("target_reached", False))
            if ref_model is not None and "ref_state" in state.extra:
                ref_model.load_state_dict(state.extra["ref_state"])
        train_model: torch.nn.Module = model
        if world > 1 and not sharded:
            train_model = torch.nn.parallel.DistributedDataParallel(model)

        task_ids = collector.pool.get_attr("task_ids")[0]
        ctx = RunContext(config, student, teacher, collector, list(task_ids), rank, world, cache)
        ctx.progress = progress and rank == 0
        ctx.pad_id, ctx.teacher_model, ctx.ref_model = (
            student.pad_token_id,
            teacher_module,
            ref_model,
        )
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run_dir / "config.json", config.to_dict())
            if not (run_dir / "tokenizer" / "tokenizer_config.json").exists():
                student.tokenizer.save_pretrained(run_dir / "tokenizer")
        log = (
            MetricsLog(
                run_dir,
                resume_step=start_step if checkpoint else None,
                tensorboard=config.tensorboard and rank == 0,
                track=config.track,
                track_config=config.to_dict(),
            )
            if rank == 0
            else None
        )
        trajectories = None
        if rank == 0 and config.save_trajectories:
            trajectories = StepLog(
                run_dir / "trajectories.jsonl", resume_step=start_step if checkpoint else None
            )
        if hasattr(method, "prepare"):
            method.prepare(ctx)
    except BaseException:
        collector.close()
        if made_run_dir and latest_checkpoint(run_dir) is None:
            shutil.rmtree(run_dir, ignore_errors=True)  # nothing ran: leave no folder behind
        raise

    from tqdm import tqdm

    bar = tqdm(
        total=config.total_steps,
        initial=start_step,
        desc=config.method,
        disable=not progress or rank != 0,
        dynamic_ncols=True,
    )
    autocast = (
        torch.autocast("cpu" if config.device == "cpu" else "cuda", dtype=torch.bfloat16)
        if config.dtype == "bfloat16"
        else contextlib.nullcontext()
    )
    # A resumed run keeps what it had measured before the stop (its summary.json is rewritten
    # at the end: resuming a finished run must not blank it).
    summary: dict[str, Any] = _measured_so_far(run_dir) if checkpoint is not None else {}
    tracker = None
    if config.target_eval_sr is not None and rank == 0:
        from distill.target import TargetTracker

        tracker = TargetTracker.load(run_dir, config.target_eval_sr, resume=checkpoint is not None)
    last_step = start_step
    try:
        evaluates = config.eval_episodes != 0  # 0 episodes: the caller evaluates (the study)
        if evaluates and (
            start_step == 0
            and config.eval_every
            and rank == 0
            or (start_step == 0 and config.eval_every and world > 1)
        ):
            metrics = evaluate_student(ctx, 0)
            if log:
                log.log(0, **metrics)
            summary["initial"] = metrics
        for step in range(start_step, config.total_steps if not stopped else start_step):
            timings: dict[str, float] = {}
            started, env_before = time.perf_counter(), collector.env_seconds
            collector.history = [] if trajectories is not None else None
            errors_before = collector.env_errors
            examples, metrics = method.make_examples(ctx, step)
            # The rollouts written are the ones this step trains on.
            if trajectories is not None:
                for row in rollout_rows(step + 1, collector.history or []):
                    trajectories.write(row)
            # Episodes an env failure ended this step (they stop the run only many in a row).
            metrics["env_errors"] = collector.env_errors - errors_before
            timings["time_scoring_s"] = float(metrics.pop("time_scoring_s", 0.0))
            timings["time_rollout_s"] = time.perf_counter() - started - timings["time_scoring_s"]
            # The envs' share of the rollout time (the rest is generation and bookkeeping).
            timings["time_env_s"] = collector.env_seconds - env_before
            started = time.perf_counter()
            epochs = int(getattr(config, "epochs", 1))
            losses = []
            trained = [e for e in examples if e.completion_ids and e.trained_tokens > 0]
            # The step's trained tokens and sequences over every rank: each micro-batch's
            # loss is its share of the step's mean (distill.losses.aggregate).
            totals = torch.tensor([float(sum(e.trained_tokens for e in trained)), len(trained)])
            if world > 1:
                torch.distributed.all_reduce(totals)
            stats: dict[str, float] = {"tokens": float(totals[0])}
            chunk_count, placeholder = (
                fsdp.micro_batch_plan(trained, config.micro_batch_size) if sharded else (0, None)
            )
            for _ in range(epochs):
                optimizer.zero_grad(set_to_none=True)
                with autocast:
                    total, method_stats = accumulate(
                        method,
                        train_model,
                        trained,
                        ctx,
                        micro_batch_size=config.micro_batch_size,
                        aggregation=config.aggregation,
                        tokens=float(totals[0]),
                        sequences=float(totals[1]),
                        world_size=world,
                        chunk_count=chunk_count,
                        placeholder=placeholder,
                    )
                stats.update(method_stats)
                if world > 1 and not sharded:  # FSDP reduces gradients in each backward
                    for parameter in (p for p in model.parameters() if p.requires_grad):
                        if parameter.grad is None:
                            parameter.grad = torch.zeros_like(parameter)
                        torch.distributed.all_reduce(parameter.grad)
                        parameter.grad /= world
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                if hasattr(grad_norm, "full_tensor"):  # sharded gradients: a DTensor norm
                    grad_norm = grad_norm.full_tensor()
                optimizer.step()
                if sharded:
                    fsdp.refresh(student.model, model)
                losses.append(total)
            scheduler.step()
            timings["time_optimise_s"] = time.perf_counter() - started
            if world > 1:  # each rank's loss is its share of the global token mean
                reduced = torch.tensor(losses or [0.0])
                torch.distributed.all_reduce(reduced)
                losses = (reduced / world).tolist()
            row = {
                "loss": float(np.mean(losses)) if losses else 0.0,
                "grad_norm": float(grad_norm) if trained else 0.0,
                "lr": scheduler.get_last_lr()[0],
                **stats,
                **metrics,
                **timings,
            }
            done = step + 1
            due = config.eval_every and done % config.eval_every == 0 or done == config.total_steps
            if due and evaluates:
                evaluation = evaluate_student(ctx, done)
                row.update(evaluation)
                if config.target_eval_sr is not None:
                    stopped = tracker.record(done, evaluation, student.model) if tracker else False
                    if world > 1:  # every rank stops at the same step
                        flag = torch.tensor(float(stopped))
                        torch.distributed.broadcast(flag, src=0)
                        stopped = bool(flag)
            if log:
                log.log(done, **row)
            bar.update(1)
            bar.set_postfix(
                {
                    k: round(v, 3)
                    for k, v in row.items()
                    if k in ("loss", "eval_sr", "reverse_kl", "nll", "beta", "reward")
                }
            )
            last_step = done
            extra = None  # what the checkpoint keeps besides model, optimiser and RNGs
            if done % config.checkpoint_every == 0 or done == config.total_steps or stopped:
                extra = {"method_cache": ctx.cache, "target_reached": stopped}
                if ref_model is not None:
                    extra["ref_state"] = ref_model.state_dict()
            if sharded and extra is not None:  # every rank writes its shard
                fsdp.save_sharded(
                    run_dir,
                    step=done,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    extra=extra,
                    keep=config.keep_checkpoints,
                    config=config.to_dict(),
                )
            elif rank == 0 and extra is not None:
                save_checkpoint(
                    run_dir,
                    step=done,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    data_position=done,
                    extra=extra,
                    keep=config.keep_checkpoints,
                    config=config.to_dict(),
                )
            summary["final"] = _evaluation(row) or summary.get("final", {})
            if stopped:
                break
    finally:
        bar.close()
        collector.close()
        if ctx.eval_collector is not None:
            ctx.eval_collector.close()
        if log:
            log.close()
        if trajectories is not None:
            trajectories.close()
    if tracker is not None:
        # Missed the target within the cap: final/ gets the best evaluated weights.
        tracker.restore_best(student.model, last_step)
        summary["target"] = tracker.summary()
        if tracker.best_metrics is not None:
            summary["final"] = dict(tracker.best_metrics)
        if not tracker.reached:
            print(
                f"warning: {run_dir} missed its target of {tracker.target:g}% SR within "
                f"{config.total_steps} steps; final/ holds the best evaluation "
                f"({tracker.best_sr:g}% at step {tracker.best_step})"
            )
    if rank == 0:
        plot_curves(run_dir, title=f"{config.method} on {config.env_id}")
        save_final(student.model, run_dir / "final")  # LoRA: adapters merged
        student.tokenizer.save_pretrained(run_dir / "final")
        atomic_write_json(run_dir / "summary.json", summary)
    return summary
