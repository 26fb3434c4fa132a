"""``MultiTaskParallelEnv``: N tasks of one env id played side by side (PettingZoo parallel API).

One PettingZoo agent per task (``task_0`` ... ``task_{N-1}``), so a batched
policy acts for all live tasks in one call::

    env = MultiTaskParallelEnv("ScienceWorld-v0", num_tasks=4, split="test")
    observations, infos = env.reset(seed=0, options={"task_ids": [...]})
    while env.agents:
        actions = dict(zip(env.agents, policy.act_batch([observations[a] for a in env.agents],
                                                         [infos[a] for a in env.agents])))
        observations, rewards, terminations, truncations, infos = env.step(actions)
    env.close()

The envs live in an ``EnvPool`` (one process each with ``mode="async"``), so
the tasks step in parallel. A task whose episode ends leaves ``agents``; the
others go on. Reset seeds are ``seed + i`` for task ``i``; without
``options["task_ids"]`` each env draws its own task from its split.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from pettingzoo import ParallelEnv

from envs.pool import EnvPool

__all__ = ["MultiTaskParallelEnv"]


class MultiTaskParallelEnv(ParallelEnv):
    """N copies of one env id, one PettingZoo agent per task."""

    metadata = {"render_modes": [], "name": "multi_task_v0"}

    def __init__(
        self, env_id: str, num_tasks: int, *, mode: str = "async", **env_kwargs: Any
    ) -> None:
        import envs  # noqa: F401  (registers the ids)

        self.env_id = env_id
        self.possible_agents = [f"task_{i}" for i in range(num_tasks)]
        self.agents: list[str] = []
        self._index = {agent: i for i, agent in enumerate(self.possible_agents)}
        spec_env = gym.make(env_id, **env_kwargs)  # the spaces, without starting N envs twice
        try:
            self._observation_spaces = {
                a: _copy(spec_env.observation_space) for a in self.possible_agents
            }
            self._action_spaces = {a: _copy(spec_env.action_space) for a in self.possible_agents}
        finally:
            spec_env.close()
        self.pool = EnvPool(env_id, num_tasks, env_kwargs=env_kwargs, mode=mode)

    def observation_space(self, agent: str) -> gym.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self._action_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, str], dict[str, dict]]:
        task_ids = list((options or {}).get("task_ids") or [])
        if task_ids and len(task_ids) != len(self.possible_agents):
            raise ValueError(
                f"options['task_ids'] has {len(task_ids)} ids for {len(self.possible_agents)} tasks"
            )
        requests = {}
        for i, _agent in enumerate(self.possible_agents):
            kwargs: dict[str, Any] = {"seed": None if seed is None else seed + i}
            if task_ids:
                kwargs["options"] = {"task_id": task_ids[i]}
            requests[i] = kwargs
        results = self.pool.reset(requests)
        self.agents = list(self.possible_agents)
        observations = {a: results[self._index[a]][0] for a in self.agents}
        infos = {a: results[self._index[a]][1] for a in self.agents}
        return observations, infos

    def step(self, actions: dict[str, str]) -> tuple[dict, dict, dict, dict, dict]:
        unknown = [a for a in actions if a not in self.agents]
        if unknown:
            raise ValueError(f"actions for agents that are not live: {unknown}")
        results = self.pool.step({self._index[a]: action for a, action in actions.items()})
        observations, rewards, terminations, truncations, infos = {}, {}, {}, {}, {}
        for agent in actions:
            obs, reward, terminated, truncated, info = results[self._index[agent]]
            observations[agent], rewards[agent], infos[agent] = obs, float(reward), info
            terminations[agent] = bool(terminated)
            truncations[agent] = bool(truncated and not terminated)
        self.agents = [a for a in self.agents if not (terminations.get(a) or truncations.get(a))]
        return observations, rewards, terminations, truncations, infos

    def close(self) -> None:
        self.pool.close()


def _copy(space: gym.Space) -> gym.Space:
    import copy

    return copy.deepcopy(space)
