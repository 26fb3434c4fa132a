"""Play agents on task panels: the evaluation loop shared by tools and training.

``play_episode`` runs one task to the end; ``evaluate_panel`` plays a panel's
tasks in order with the panel's seeds and returns per-episode results;
``evaluate_panel_batched`` plays them several at a time, one env per slot,
with one ``agent.act_batch`` call per round (language models generate for all
slots at once); ``summarise`` turns results into the protocol's figures (spec
section 6): Success Rate (fraction won) and Score (mean final score x 100),
computed by ``success_and_score``, which the distillation layer's summaries use too.

The three share one loop (``_play``) and its bookkeeping (``_Episode``); they
differ only in how the agent is asked for actions: ``act`` on one env, or
``act_batch`` over slots. The distillation layer's ``RolloutCollector`` has a
loop of its own (its module docstring says why).

Every loop takes an optional ``on_turn`` callback, called after each
``env.step`` with a :class:`TurnEvent`: what the env answered, plus what the
agent reported about the turn (``agent.last_turn`` after ``act``, the item of
``agent.last_turns`` after ``act_batch``; None for agents that report nothing).
``agents.trajectory.turn_record`` turns an event into a trajectory JSONL line.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym

from envs.panels import Panel

__all__ = [
    "EpisodeResult",
    "TurnEvent",
    "evaluate_panel",
    "evaluate_panel_batched",
    "panel_tasks",
    "play_episode",
    "success_and_score",
    "summarise",
    "supports_batched",
]


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
    # Completion tokens the agent reported (``AgentTurn.completion_ids``); None when it
    # reports none (scripted agents, servers that return no token ids or logprobs).
    generated_tokens: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TurnEvent:
    """One executed turn, as ``on_turn`` callbacks receive it.

    ``turn`` counts from 1; ``episode`` is the episode's index in the
    evaluation; ``observation``, ``reward``, ``info``, ``terminated`` and
    ``truncated`` are what ``env.step(action)`` returned; ``agent_turn`` is
    the agent's own record of the turn (or None).
    """

    env_id: str
    task_id: str
    seed: int
    episode: int
    turn: int
    action: str
    observation: str
    reward: float
    info: dict[str, Any]
    terminated: bool
    truncated: bool
    agent_turn: Any = None


def play_episode(
    env: gym.Env,
    agent: Any,
    *,
    task_id: str,
    seed: int,
    env_id: str = "",
    episode: int = 0,
    on_turn: Callable[[TurnEvent], None] | None = None,
) -> EpisodeResult:
    """Play ``task_id`` with ``agent`` until the episode terminates or is truncated."""
    (result,) = _play_one_at_a_time(
        env, agent, [(episode, task_id)], env_id=env_id, seed_for=lambda _: seed, on_turn=on_turn
    )
    return result


def panel_tasks(
    panel: Panel, limit: int | None = None, playable: Collection[str] | None = None
) -> list[tuple[int, str]]:
    """(panel position, task id) of the first ``limit`` panel tasks in ``playable`` (None: all)."""
    known = None if playable is None else set(playable)
    tasks = [(i, t) for i, t in enumerate(panel.task_ids) if known is None or t in known]
    return tasks[:limit]


def evaluate_panel(
    env: gym.Env,
    agent: Any,
    panel: Panel,
    *,
    limit: int | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_turn: Callable[[TurnEvent], None] | None = None,
    playable: Collection[str] | None = None,
) -> list[EpisodeResult]:
    """Play the panel's tasks in order (the first ``limit`` only, if given).

    ``playable``: the task ids the env as configured can play (for example
    ToolMath with ``levels``); other panel tasks are skipped, and the rest keep
    their panel positions' seeds.
    """
    return _play_one_at_a_time(
        env,
        agent,
        panel_tasks(panel, limit, playable),
        env_id=panel.env_id,
        seed_for=panel.seed_for,
        on_episode=on_episode,
        on_turn=on_turn,
    )


def supports_batched(agent: Any) -> bool:
    """Whether ``agent`` can play several episodes at once (``act_batch(..., slots=...)``)."""
    act_batch = getattr(agent, "act_batch", None)
    return act_batch is not None and "slots" in inspect.signature(act_batch).parameters


def evaluate_panel_batched(
    envs: Sequence[gym.Env],
    agent: Any,
    panel: Panel,
    *,
    limit: int | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_turn: Callable[[TurnEvent], None] | None = None,
    playable: Collection[str] | None = None,
) -> list[EpisodeResult]:
    """Play the panel's tasks ``len(envs)`` at a time; results come back in panel order.

    Each round, every busy env's observation goes to one
    ``agent.act_batch(observations, infos, slots=...)`` call; the slot key is
    the env's index, and an episode starts with ``info["turn"] == 0``. When an
    episode ends, its env takes the next task of the panel. The seeds and task
    order are the panel's, so results match ``evaluate_panel`` for agents whose
    actions do not depend on the batch. An episode's ``wall_s`` runs from its
    reset to its end (episodes overlap).
    """
    if not envs:
        raise ValueError("evaluate_panel_batched needs at least one env")
    if not supports_batched(agent):
        raise ValueError(
            f"{type(agent).__name__}.act_batch(observations, infos, slots=...) is needed to play "
            "several episodes at once; play them one at a time instead (evaluate_panel)"
        )

    def act(busy: list[int], episodes: list[_Episode]) -> Iterable[tuple[str, Any]]:
        actions = agent.act_batch(
            [e.observation for e in episodes], [e.info for e in episodes], slots=busy
        )
        reports = getattr(agent, "last_turns", None) or [None] * len(busy)
        return zip(actions, reports)

    return _play(
        envs,
        panel_tasks(panel, limit, playable),
        env_id=panel.env_id,
        seed_for=panel.seed_for,
        act=act,
        on_episode=on_episode,
        on_turn=on_turn,
    )


# -- the loop ------------------------------------------------------------------------------


@dataclass
class _Episode:
    """An env of the loop and the episode it is playing: what is counted and timed."""

    env: gym.Env
    index: int = -1  # the episode's position in the panel; -1 when idle
    task_id: str = ""
    seed: int = 0
    observation: str = ""
    info: dict[str, Any] | None = None
    turns: int = 0
    invalid: int = 0
    started: float = 0.0
    env_s: float = 0.0
    step_s: float = 0.0
    tokens: int | None = None

    def count_tokens(self, report: Any) -> None:
        """Add the completion tokens an agent's turn report holds, if it holds any."""
        ids = getattr(report, "completion_ids", None)
        if ids is None:
            ids = getattr(report, "logprobs", None)  # one per generated token
        if isinstance(ids, list):
            self.tokens = (self.tokens or 0) + len(ids)

    def start(self, index: int, task_id: str, seed: int) -> None:
        self.index, self.task_id, self.seed = index, task_id, seed
        self.started = time.perf_counter()
        self.observation, self.info = self.env.reset(seed=seed, options={"task_id": task_id})
        self.env_s = time.perf_counter() - self.started
        self.step_s, self.turns, self.invalid, self.tokens = 0.0, 0, 0, None

    def step(self, action: str) -> tuple[float, bool, bool]:
        """Step the env; (reward, terminated, truncated), with the new observation kept."""
        step_started = time.perf_counter()
        observation, reward, terminated, truncated, info = self.env.step(action)
        elapsed = time.perf_counter() - step_started
        self.env_s += elapsed
        self.step_s += elapsed
        self.turns += 1
        self.invalid += bool(info["invalid_action"])
        self.observation, self.info = observation, info
        return float(reward), bool(terminated), bool(truncated)

    def result(self, env_id: str, terminated: bool, truncated: bool) -> EpisodeResult:
        assert self.info is not None
        return EpisodeResult(
            env_id=env_id,
            task_id=self.task_id,
            seed=self.seed,
            turns=self.turns,
            score=float(self.info["score"]),
            won=bool(self.info["won"]),
            invalid_actions=self.invalid,
            wall_s=time.perf_counter() - self.started,
            env_s=self.env_s,
            step_s=self.step_s,
            truncated=bool(truncated and not terminated),
            error=self.info.get("error"),
            generated_tokens=self.tokens,
        )


def _play(
    envs: Sequence[gym.Env],
    tasks: list[tuple[int, str]],
    *,
    env_id: str,
    seed_for: Callable[[int], int],
    act: Callable[[list[int], list[_Episode]], Iterable[tuple[str, Any]]],
    on_start: Callable[[_Episode], None] | None = None,
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_turn: Callable[[TurnEvent], None] | None = None,
) -> list[EpisodeResult]:
    """Play ``tasks`` ((position, task id), in order) on ``envs``; results in task order.

    Each round, ``act(busy, episodes)`` gives (action, agent report) for every busy env;
    each env is stepped in turn, and an env whose episode ended takes the next task
    (``on_start`` is called after each reset).
    """
    queue = iter(tasks)
    episodes = [_Episode(env) for env in envs]
    results: dict[int, EpisodeResult] = {}

    def start(episode: _Episode) -> None:
        entry = next(queue, None)
        if entry is None:
            episode.index = -1
            return
        episode.start(entry[0], entry[1], seed_for(entry[0]))
        if on_start is not None:
            on_start(episode)

    for episode in episodes:
        start(episode)
    while True:
        busy = [k for k, episode in enumerate(episodes) if episode.index >= 0]
        if not busy:
            break
        for k, (action, report) in zip(busy, act(busy, [episodes[k] for k in busy])):
            episode = episodes[k]
            episode.count_tokens(report)
            reward, terminated, truncated = episode.step(action)
            if on_turn is not None:
                on_turn(
                    TurnEvent(
                        env_id=env_id,
                        task_id=episode.task_id,
                        seed=episode.seed,
                        episode=episode.index,
                        turn=episode.turns,
                        action=action,
                        observation=episode.observation,
                        reward=reward,
                        info=episode.info or {},
                        terminated=terminated,
                        truncated=truncated,
                        agent_turn=report,
                    )
                )
            if terminated or truncated:
                result = episode.result(env_id, terminated, truncated)
                results[episode.index] = result
                if on_episode is not None:
                    on_episode(result)
                start(episode)
    return [results[index] for index, _ in tasks]


def _play_one_at_a_time(
    env: gym.Env,
    agent: Any,
    tasks: list[tuple[int, str]],
    *,
    env_id: str,
    seed_for: Callable[[int], int],
    on_episode: Callable[[EpisodeResult], None] | None = None,
    on_turn: Callable[[TurnEvent], None] | None = None,
) -> list[EpisodeResult]:
    """``_play`` on one env with an ``Agent`` (``reset`` after each env reset, then ``act``)."""

    def act(busy: list[int], episodes: list[_Episode]) -> list[tuple[str, Any]]:
        (episode,) = episodes
        action = agent.act(episode.observation, episode.info)
        return [(action, getattr(agent, "last_turn", None))]

    def reset_agent(episode: _Episode) -> None:
        assert episode.info is not None
        agent.reset(episode.info["task"], episode.info)

    return _play(
        [env],
        tasks,
        env_id=env_id,
        seed_for=seed_for,
        act=act,
        on_start=reset_agent,
        on_episode=on_episode,
        on_turn=on_turn,
    )


def success_and_score(won: Sequence[bool], scores: Sequence[float]) -> tuple[float, float]:
    """The protocol's two figures, in percent: Success Rate (the fraction of episodes won
    x 100) and Score (the mean final score x 100); (0.0, 0.0) for no episodes."""
    if len(won) != len(scores):
        raise ValueError("success_and_score: one score per episode")
    n = max(len(won), 1)
    return 100.0 * sum(bool(w) for w in won) / n, 100.0 * sum(scores) / n


def summarise(results: Iterable[EpisodeResult], elapsed_s: float | None = None) -> dict[str, Any]:
    """SR and Score (x100) with 95% normal-approximation half-widths, and throughput.

    ``elapsed_s``: the real time the episodes took together (they may overlap);
    without it, the sum of the episodes' times (right when they ran one at a
    time). ``wall_s`` is that time; ``episodes_per_s``, ``turns_per_s`` and
    ``tokens_per_s`` (completion tokens, when the agent reports them) are per
    second of it; ``steps_per_s`` counts time inside ``env.step`` alone (the
    environment's own speed, not the run's).
    """
    results = list(results)
    n = len(results)
    if n == 0:
        return {"episodes": 0}
    sr, score = success_and_score([r.won for r in results], [r.score for r in results])
    steps = sum(r.turns for r in results)
    step_s = sum(r.step_s for r in results)
    wall = float(elapsed_s) if elapsed_s is not None else sum(r.wall_s for r in results)
    counted = [r.generated_tokens for r in results if r.generated_tokens is not None]
    tokens = sum(counted) if counted else None

    def ci95(values: list[float], mean: float) -> float:
        if n < 2:
            return float("nan")
        variance = sum((v - mean) ** 2 for v in values) / (n - 1)
        return 1.96 * math.sqrt(variance / n)

    def rate(count: float | None) -> float:
        return count / wall if count is not None and wall > 0 else float("nan")

    return {
        "episodes": n,
        "success_rate": sr,
        "success_rate_ci95": ci95([100.0 * r.won for r in results], sr),
        "score": score,
        "score_ci95": ci95([100.0 * r.score for r in results], score),
        "mean_turns": steps / n,
        "steps": steps,
        "invalid_action_rate": sum(r.invalid_actions for r in results) / max(steps, 1),
        "steps_per_s": steps / step_s if step_s > 0 else float("nan"),
        "reset_s": sum(r.env_s - r.step_s for r in results) / n,
        "wall_s": wall,
        "episode_s": sum(r.wall_s for r in results) / n,
        "episodes_per_s": rate(n),
        "turns_per_s": rate(steps),
        "generated_tokens": tokens,
        "tokens_per_s": rate(tokens),
        "errors": sum(r.error is not None for r in results),
    }
