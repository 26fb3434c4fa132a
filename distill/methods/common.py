"""Helpers every method uses: turning rollouts into examples, and rollout statistics."""

from __future__ import annotations

import time
import zlib
from collections.abc import Collection, Iterator, Sequence
from typing import Any

from distill.batching import Example
from distill.rollout import Rollout, RolloutRequest, Turn, score_with_teacher
from envs.multiagent.selectors import FixedSelector, Selector

__all__ = [
    "collect",
    "task_answers",
    "reference_rollouts",
    "rollout_metrics",
    "scored",
    "trajectory_examples",
    "turn_examples",
]


def _trained_turns(rollout: Rollout, actors: Collection[str]) -> Iterator[Turn]:
    """The turns of ``rollout`` written by ``actors`` that may be trained on."""
    for turn in rollout.turns:
        if turn.trained and turn.actor in actors and turn.completion_ids:
            yield turn


def turn_examples(
    rollouts: Sequence[Rollout],
    actors: Collection[str] = ("student",),
    *,
    advantages: Sequence[float] | None = None,
) -> list[Example]:
    """One example per trainable turn of ``actors`` (``advantages``: one per rollout)."""
    examples = []
    for r, rollout in enumerate(rollouts):
        for turn in _trained_turns(rollout, actors):
            examples.append(
                Example(
                    prompt_ids=turn.prompt_ids,
                    completion_ids=turn.completion_ids,
                    actor=turn.actor,
                    # pi_old is the sampling student; other actors' turns use the current student
                    logp_old=turn.sample_logprobs if turn.actor == "student" else None,
                    logp_teacher=turn.teacher_logprobs,
                    advantage=float(advantages[r]) if advantages is not None else 0.0,
                    meta={"task_id": rollout.task_id},
                )
            )
    return examples


def trajectory_examples(rollouts: Sequence[Rollout], actors: Collection[str]) -> list[Example]:
    """Trainable turns of ``actors`` packed per rollout: consecutive turns whose prompts extend
    the sequence so far (the chat layout keeps every completion verbatim) become one example.

    The example's completion runs from the end of its first prompt to the end of its
    last trained completion; ``token_mask`` trains the completions and only reads the
    observations and untrained turns between them. A turn whose prompt does not extend
    the sequence (a history window that dropped old turns) or by another actor starts
    a new example. For losses that need no per-token sampling or teacher log-probs
    (SFT's NLL).
    """
    examples: list[Example] = []
    for rollout in rollouts:
        current: Example | None = None
        for turn in _trained_turns(rollout, actors):
            so_far = current.prompt_ids + current.completion_ids if current is not None else []
            extends = (
                current is not None
                and current.actor == turn.actor
                and len(turn.prompt_ids) >= len(so_far)
                and turn.prompt_ids[: len(so_far)] == so_far
            )
            if current is not None and extends:
                between = list(turn.prompt_ids[len(so_far) :])
                current.completion_ids += between + list(turn.completion_ids)
                assert current.token_mask is not None
                current.token_mask += [0.0] * len(between) + [1.0] * len(turn.completion_ids)
                continue
            current = Example(
                prompt_ids=list(turn.prompt_ids),
                completion_ids=list(turn.completion_ids),
                actor=turn.actor,
                meta={"task_id": rollout.task_id},
                token_mask=[1.0] * len(turn.completion_ids),
            )
            examples.append(current)
    return examples


def collect(
    ctx: Any,
    step: int,
    tasks: Sequence[str],
    selector_for: Any,
    *,
    max_turns: int | None = None,
    groups: Sequence[int] | None = None,
    replay: Sequence[list[str] | None] | None = None,
    indices: Sequence[int] | None = None,
    progress: str | None = None,
) -> list[Rollout]:
    """Play one rollout per task of this rank; ``selector_for(index)`` gives each one's selector.

    Rollouts are numbered by their global index across ranks (or by ``indices``
    for work every rank repeats), which seeds the env reset and the sampling.
    ``groups`` gives several rollouts one group: same task and reset seed,
    different samples (GRPO). ``progress`` names a bar over the episodes (shown
    when the run shows progress).
    """
    requests = []
    for index, task in enumerate(tasks):
        if indices is not None:
            number = indices[index]
        else:
            number = ctx.global_index(groups[index] if groups is not None else index)
        member = groups[:index].count(groups[index]) if groups is not None else 0
        requests.append(
            RolloutRequest(
                task_id=task,
                seed=ctx.rollout_seed(step, number),
                selector=selector_for(index),
                max_turns=max_turns if max_turns is not None else ctx.config.turn_cap(),
                group=number * 1_000 + member,
                replay_actions=replay[index] if replay is not None else None,
            )
        )
    shown = progress if getattr(ctx, "progress", False) else None
    return ctx.collector.collect(requests, progress=shown)


def scored(ctx: Any, rollouts: Sequence[Rollout]) -> float:
    """Teacher log-probs of the student turns; returns the seconds it took."""
    started = time.perf_counter()
    score_with_teacher(ctx.teacher, rollouts)
    return time.perf_counter() - started


def rollout_metrics(rollouts: Sequence[Rollout]) -> dict[str, float]:
    n = max(len(rollouts), 1)
    turns = [t for r in rollouts for t in r.turns]
    return {
        "train_sr": 100.0 * sum(r.won for r in rollouts) / n,
        "train_score": 100.0 * sum(r.score for r in rollouts) / n,
        "turns_per_rollout": len(turns) / n,
        "student_turn_fraction": sum(t.actor == "student" for t in turns) / max(len(turns), 1),
        "completion_tokens": float(sum(len(t.completion_ids) for t in turns)),
    }


def reference_rollouts(
    ctx: Any, tasks: Sequence[str], who: str, *, attempts: int = 1
) -> dict[str, dict[str, Any]]:
    """Reference episodes of each task by ``who`` (``expert`` or ``teacher``), cached in ``ctx.cache``.

    ``attempts`` episodes are played per task (seeded by the task, so every rank and
    every resume gets the same ones). A task's record holds ``episodes`` (each
    ``{"won", "completions"}``) and, from its first successful episode (or its
    first episode when none succeeded), ``won``, ``actions`` and ``action_types``.
    """
    if attempts < 1:
        raise ValueError(f"reference attempts must be at least 1, not {attempts}")
    cache = ctx.cache.setdefault("references", {})
    missing = [
        t
        for t in dict.fromkeys(tasks)
        if t not in cache or len(cache[t].get("episodes", ())) < attempts
    ]
    if missing:
        selector: Selector = FixedSelector(who, agents=("student", "teacher", "expert", "replay"))
        wanted = [(task, k) for task in missing for k in range(attempts)]
        # The first attempt keeps the seed a single reference always had.
        indices = [zlib.crc32(task.encode()) + k for task, k in wanted]
        rollouts = collect(ctx, -1, [t for t, _ in wanted], lambda _i: selector, indices=indices)
        played: dict[str, list[Rollout]] = {}
        for (task, _), rollout in zip(wanted, rollouts):
            played.setdefault(task, []).append(rollout)
        for task, episodes in played.items():
            chosen = next((r for r in episodes if r.won), episodes[0])
            cache[task] = {
                "won": chosen.won,
                "actions": chosen.actions_of(who),
                "action_types": chosen.action_types_of(who),
                "episodes": [
                    {"won": r.won, "completions": [t.completion for t in r.turns if t.actor == who]}
                    for r in episodes
                ],
            }
    return {t: cache[t] for t in tasks}


def task_answers(ctx: Any, tasks: Sequence[str]) -> dict[str, list[str]]:
    """The gold answers of tool tasks, read once from the env and cached in ``ctx.cache``."""
    cache = ctx.cache.setdefault("ground_truth", {})
    if any(task not in cache for task in tasks):
        known = ctx.collector.pool.get_attr("tasks")[0]
        for task in tasks:
            cache[task] = list(known[task].answer)
    return {task: cache[task] for task in tasks}
