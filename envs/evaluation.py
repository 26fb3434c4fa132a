"""Play agents on task panels: the evaluation loop shared by tools and training.

``play_episode`` runs one task to the end; ``evaluate_panel`` plays a panel's
tasks in order with the panel's seeds and returns per-episode results;
``summarise`` turns them into the protocol's figures (spec section 6):
Success Rate (fraction won) and Score (mean final score x 100).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym

from envs.panels import Panel

__all__ = ["EpisodeResult", "evaluate_panel", "play_episode", "summarise"]


@dataclass
class EpisodeResult:
    """What one episode produced."""

    env_id: str
    task_id: str
    seed: int
    turns: int
    score: float
    won: bool
    invalid_actions: int
    wall_s: float  # the whole episode: reset, agent and env
    env_s: float  # time spent inside env.reset and env.step
    step_s: float  # time spent inside env.step alone
    truncated: bool
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def play_episode(
    env: gym.Env, agent: Any, *, task_id: str, seed: int, env_id: str = ""
) -> EpisodeResult:
    """Play ``task_id`` with ``agent`` until the episode terminates or is truncated."""
    started = time.perf_counter()
    observation, info = env.reset(seed=seed, options={"task_id": task_id})
    env_s = time.perf_counter() - started
    step_s = 0.0
    agent.reset(info["task"], info)
    turns = invalid = 0
    terminated = truncated = False
    while not (terminated or truncated):
        action = agent.act(observation, info)
        step_started = time.perf_counter()
        observation, _reward, terminated, truncated, info = env.step(action)
        elapsed = time.perf_counter() - step_started
        env_s += elapsed
        step_s += elapsed
        turns += 1
        invalid += bool(info["invalid_action"])
    return EpisodeResult(
        env_id=env_id,
        task_id=task_id,
        seed=seed,
        turns=turns,
        score=float(info["score"]),
        won=bool(info["won"]),
        invalid_actions=invalid,
        wall_s=time.perf_counter() - started,
        env_s=env_s,
        step_s=step_s,
        truncated=bool(truncated and not terminated),
        error=info.get("error"),
    )


def evaluate_panel(
    env: gym.Env,
    agent: Any,
    panel: Panel,
    *,
    limit: int | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """Play the panel's tasks in order (the first ``limit`` only, if given)."""
    results = []
    for index, task_id in enumerate(panel.task_ids[:limit]):
        result = play_episode(
            env, agent, task_id=task_id, seed=panel.seed_for(index), env_id=panel.env_id
        )
        results.append(result)
        if on_episode is not None:
            on_episode(result)
    return results


def summarise(results: Iterable[EpisodeResult]) -> dict[str, Any]:
    """SR and Score (x100) with 95% normal-approximation half-widths, and throughput."""
    results = list(results)
    n = len(results)
    if n == 0:
        return {"episodes": 0}
    wins = [float(r.won) for r in results]
    scores = [100.0 * r.score for r in results]
    steps = sum(r.turns for r in results)
    step_s = sum(r.step_s for r in results)

    def mean_ci(values: list[float]) -> tuple[float, float]:
        mean = sum(values) / n
        if n < 2:
            return mean, float("nan")
        variance = sum((v - mean) ** 2 for v in values) / (n - 1)
        return mean, 1.96 * math.sqrt(variance / n)

    sr, sr_ci = mean_ci([100.0 * w for w in wins])
    score, score_ci = mean_ci(scores)
    return {
        "episodes": n,
        "success_rate": sr,
        "success_rate_ci95": sr_ci,
        "score": score,
        "score_ci95": score_ci,
        "mean_turns": steps / n,
        "steps": steps,
        "invalid_action_rate": sum(r.invalid_actions for r in results) / max(steps, 1),
        "steps_per_s": steps / step_s if step_s > 0 else float("nan"),
        "reset_s": sum(r.env_s - r.step_s for r in results) / n,
        "wall_s": sum(r.wall_s for r in results),
        "errors": sum(r.error is not None for r in results),
    }
