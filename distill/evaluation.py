"""Playing an evaluation panel with a student, and the per-turn KL to a teacher along the way.

The trainer's periodic evaluation and the study's final evaluation share this:
the panel's tasks that the env plays (``env_kwargs`` may narrow a split, as
ToolMath's ``levels`` does) in panel order, each with its panel reset seed,
the pure student acting at the evaluation temperature. Episodes are played by the
``RolloutCollector`` (not ``envs.evaluation``'s loop), so the student acts exactly as in
training rollouts; the figures are ``envs.evaluation``'s.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

from distill.rollout import Rollout, RolloutCollector, RolloutRequest, score_with_teacher
from envs.evaluation import panel_tasks, success_and_score
from envs.multiagent.selectors import FixedSelector
from envs.panels import Panel, load_panel

__all__ = [
    "acting_mode",
    "find_panel",
    "panel_requests",
    "per_turn_kl",
    "play_panel",
    "sampling_temperature",
    "summarise_rollouts",
]


def find_panel(env_id: str, name: str | None) -> Panel:
    """A panel by name (None: the env's default) or from a JSON path."""
    if name and name.endswith(".json"):
        return load_panel(name)
    return load_panel(env_id, name)


def panel_requests(
    panel: Panel,
    playable: Sequence[str],
    *,
    episodes: int | None,
    max_turns: int,
    rank: int = 0,
    world_size: int = 1,
) -> list[RolloutRequest]:
    """Requests for the first ``episodes`` playable tasks of ``panel`` (this rank's share).

    A task keeps its panel position's reset seed, so a narrowed panel plays its
    tasks exactly as the full panel would.
    """
    tasks = panel_tasks(panel, None, playable)
    if not tasks:
        raise ValueError(
            f"none of the {len(panel.task_ids)} tasks of panel {panel.name!r} ({panel.env_id}) "
            "is playable by the env as configured (check env_kwargs, e.g. ToolMath's levels)"
        )
    return [
        RolloutRequest(
            task_id,
            seed=panel.seed_for(i),
            selector=FixedSelector("student"),
            max_turns=max_turns,
        )
        for i, task_id in tasks[:episodes][rank::world_size]
    ]


@contextlib.contextmanager
def sampling_temperature(agent: Any, temperature: float) -> Iterator[None]:
    """Let ``agent`` (an ``HFAgent``) sample at ``temperature`` inside the block."""
    saved = agent.defaults
    agent.defaults = type(saved)(**{**saved.__dict__, "temperature": float(temperature)})
    try:
        yield
    finally:
        agent.defaults = saved


@contextlib.contextmanager
def acting_mode(agent: Any, mode: str | None) -> Iterator[None]:
    """Let ``agent`` (an ``HFAgent``) act in ``mode`` ("generate" or "rank") inside the block.

    None keeps the agent's own mode. Ranking needs the env's admissible actions in
    ``info`` (the collector's envs must list them); where a state has none, the
    agent generates for that turn.
    """
    saved = agent.mode
    if mode is not None:
        agent.mode = mode
    try:
        yield
    finally:
        agent.mode = saved


def play_panel(
    collector: RolloutCollector,
    panel: Panel,
    *,
    temperature: float,
    episodes: int | None = None,
    max_turns: int,
    rank: int = 0,
    world_size: int = 1,
    mode: str | None = None,
    progress: str | None = None,
) -> list[Rollout]:
    """The collector's student plays ``panel`` at ``temperature``; the rollouts in panel order.

    ``mode`` ("generate" or "rank") overrides how the student acts (None: its own mode);
    ``progress`` names a bar that advances as each episode ends (None: no bar).
    """
    playable = collector.pool.get_attr("task_ids")[0]
    requests = panel_requests(
        panel,
        playable,
        episodes=episodes,
        max_turns=max_turns,
        rank=rank,
        world_size=world_size,
    )
    with sampling_temperature(collector.student, temperature), acting_mode(collector.student, mode):
        return collector.collect(requests, progress=progress)


def summarise_rollouts(rollouts: Sequence[Rollout]) -> dict[str, float]:
    """SR and Score (percent, as ``envs.evaluation.summarise`` computes them) and the
    episode count."""
    sr, score = success_and_score([r.won for r in rollouts], [r.score for r in rollouts])
    return {"sr": sr, "score": score, "episodes": len(rollouts)}


def per_turn_kl(teacher: Any, rollouts: Sequence[Rollout]) -> list[dict[str, float]]:
    """The student-to-teacher KL at each turn index, over ``rollouts`` the student played.

    Per token, the sampled estimate ``log pi_S(y) - log pi_T(y)`` of the reverse
    KL (the OPD objective's quantity), averaged over the turn's tokens, then
    over the episodes that reached that turn. Returns one row per turn index:
    ``{"turn", "kl", "episodes"}``. Needs the student's sampling log-probs.
    """
    score_with_teacher(teacher, rollouts)
    by_turn: dict[int, list[float]] = {}
    for rollout in rollouts:
        for index, turn in enumerate(rollout.turns):
            if turn.actor != "student" or not turn.sample_logprobs or not turn.teacher_logprobs:
                continue
            gaps = [s - t for s, t in zip(turn.sample_logprobs, turn.teacher_logprobs)]
            if gaps and all(math.isfinite(g) for g in gaps):
                by_turn.setdefault(index, []).append(sum(gaps) / len(gaps))
    return [
        {"turn": index, "kl": sum(values) / len(values), "episodes": len(values)}
        for index, values in sorted(by_turn.items())
    ]
