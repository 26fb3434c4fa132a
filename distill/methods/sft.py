"""SFT: the negative log-likelihood of a demonstrator's completions (the baseline).

Rollouts: ``prepare`` has the demonstrator (the env's expert, or the teacher)
play ``demo_episodes`` tasks once, keeps the successful episodes
(``successful_only``) and caches their turns in the checkpoint; each step
then trains on the next ``rollouts_per_step`` units of a seeded shuffle of
them: single turns, or with ``demo_unit: trajectory`` whole episodes packed
one per sequence (their observations read, not trained).

Loss, per completion token y_t of a demonstration (prompts and observations
never count):

    L_t = -log pi_S(y_t | context)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from distill.batching import Batch, Example, completion_logprobs
from distill.config import ConfigError, TrainConfig, setting
from distill.losses import tally
from distill.methods.common import collect, rollout_metrics, trajectory_examples, turn_examples
from envs.multiagent.selectors import FixedSelector


@dataclass
class SFTConfig(TrainConfig):
    """SFT on teacher or expert trajectories."""

    method: str = setting("sft", "the algorithm")
    demonstrator: str = setting(
        "expert",
        "who demonstrates: expert (the env's oracle) or teacher",
        choices=("expert", "teacher"),
    )
    successful_only: bool = setting(True, "train on successful demonstrations only")
    demo_episodes: int = setting(256, "demonstrations collected once before training", minimum=1)
    # (our default) what one of the rollouts_per_step demonstrations is: a "turn", or a whole
    # "trajectory" packed in one sequence (every completion trained, observations read only:
    # about turns-per-episode times fewer tokens run per trained token)
    demo_unit: str = setting(
        "turn",
        "a step's unit: turn (one example per turn) or trajectory (an episode packed in one)",
        choices=("turn", "trajectory"),
    )
    learning_rate: float = setting(
        1e-4, "AdamW learning rate (our default: SFT from scratch needs more than 1e-6)", above=0
    )

    def check(self) -> None:
        super().check()
        if self.demonstrator == "teacher" and not self.teacher:
            raise ConfigError("teacher: sft with demonstrator: teacher needs a teacher")


NEEDS_TEACHER = False


def prepare(ctx: Any) -> None:
    config = ctx.config
    if "demos" in ctx.cache:
        return
    who = config.demonstrator
    if who == "teacher" and ctx.teacher is None:
        raise ValueError("sft with demonstrator=teacher needs a teacher")
    selector = FixedSelector(who, agents=("student", "teacher", "expert", "replay"))
    # Every rank gathers the same demonstrations; each step then splits the batch across ranks.
    tasks = ctx.sample_tasks(-1, config.demo_episodes, share=False)
    rollouts = collect(
        ctx,
        -1,
        tasks,
        lambda _i: selector,
        indices=list(range(len(tasks))),
        progress=f"{who} demonstrations",
    )
    kept = [r for r in rollouts if r.won or not config.successful_only]
    turns = turn_examples(kept, [who])
    examples = turns if config.demo_unit == "turn" else trajectory_examples(kept, [who])
    ctx.cache["demos"] = [(e.prompt_ids, e.completion_ids, e.token_mask) for e in examples]
    ctx.cache["demo_stats"] = {
        **rollout_metrics(rollouts),
        "demo_turns": float(len(turns)),
        "demo_units": float(len(examples)),
    }
    if not examples:
        # A setting that cannot train (a weak demonstrator, too few episodes), not a crash.
        won = sum(1 for r in rollouts if r.won)
        raise ConfigError(
            f"no {who} demonstrations were kept: {won} of {len(rollouts)} demonstration "
            f"episodes won (successful_only={config.successful_only}); use a demonstrator "
            "that succeeds, raise demo_episodes or max_turns, or set successful_only: false"
        )


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    demos = ctx.cache["demos"]
    per_step = ctx.config.rollouts_per_step
    epoch, offset = divmod(step * per_step, len(demos))
    order: list[int] = []
    while len(order) < per_step:
        permutation = np.random.default_rng([ctx.config.seed, epoch]).permutation(len(demos))
        order.extend(int(i) for i in permutation[offset:])
        epoch, offset = epoch + 1, 0
    chosen = order[:per_step][ctx.rank :: ctx.world_size]
    examples = [
        Example(
            prompt_ids=demos[i][0],
            completion_ids=demos[i][1],
            actor=ctx.config.demonstrator,
            # checkpoints written before packing existed hold (prompt, completion) pairs
            token_mask=demos[i][2] if len(demos[i]) > 2 else None,
        )
        for i in chosen
    ]
    return examples, {
        "epoch": float(step * per_step / len(demos)),
        **ctx.cache.get("demo_stats", {}),
    }


def loss(model: Any, batch: Batch, ctx: Any) -> tuple[torch.Tensor, dict[str, Any]]:
    """Per-token NLL of the demonstrations' completion tokens."""
    logp, _ = completion_logprobs(model, batch, pad_id=ctx.pad_id)
    per_token = -logp * batch.mask
    return per_token, {"nll": tally(-logp, batch.mask)}


Config = SFTConfig
