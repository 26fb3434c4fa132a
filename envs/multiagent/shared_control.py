"""``SharedControlEnv``: several policies taking turns in one text environment (PettingZoo AEC).

A Guided-OPD rollout is a two-player game: at every turn a selector decides
whether the teacher or the student acts, and both see the same history. This
env exposes that through PettingZoo's agent-environment-cycle API::

    env = SharedControlEnv("ALFWorld-v0", selector=BernoulliSelector(0.5, seed=0))
    env.reset(seed=0)
    for agent in env.agent_iter():
        observation, reward, terminated, truncated, info = env.last()
        action = None if terminated or truncated else policies[agent].act(observation, info)
        env.step(action)

Contract:

* ``possible_agents`` are the selector's agents (default ``("teacher", "student")``);
  ``agent_selection`` is the selector's choice for the current turn;
* every agent observes the same text observation;
* ``rewards`` give the step's reward to the agent that acted (0 to the others);
  the episode's score so far is in every agent's ``info["score"]``;
* ``infos[agent]`` is the underlying env's info plus ``last_actor`` (who acted
  on the previous turn, ``None`` after reset) and ``next_actor``;
* when the underlying episode terminates or is truncated, every agent is
  terminated or truncated at once and then stepped out with ``None``.

``reset(options=...)`` passes ``task_id`` to the underlying env and ignores
other keys (PettingZoo's API test sends arbitrary options).

It plays no episodes itself, so it shares no loop with ``envs.evaluation`` or the
distillation layer's ``RolloutCollector``: under PettingZoo's API the caller's
``agent_iter`` loop plays, and this env only steps and says who acts next.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from pettingzoo import AECEnv

from envs.multiagent.selectors import BernoulliSelector, Selector

__all__ = ["SharedControlEnv", "TextObservation"]


class TextObservation(str):
    """A text observation that also states its dtype, as PettingZoo's checks expect.

    PettingZoo's API test compares ``observation.dtype`` with the observation
    space's dtype, which only numpy arrays have; this ``str`` subclass carries
    the text space's dtype and is otherwise an ordinary string.
    """

    __slots__ = ()
    dtype = np.dtype(str)


class SharedControlEnv(AECEnv):
    """Named controllers share one env; a selector picks who acts each turn."""

    metadata = {"render_modes": ["ansi"], "name": "shared_control_v0", "is_parallelizable": False}

    def __init__(
        self,
        env: str | gym.Env,
        *,
        selector: Selector | None = None,
        render_mode: str | None = None,
        **env_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(env, str):
            import envs  # noqa: F401  (registers the ids)

            self.env = gym.make(env, **env_kwargs)
        elif env_kwargs:
            raise ValueError("env_kwargs are only used when env is an id; got an env instance")
        else:
            self.env = env
        self.selector = selector if selector is not None else BernoulliSelector(0.5)
        self.possible_agents = list(self.selector.agents)
        self.render_mode = render_mode
        # One space object per agent: PettingZoo seeds each agent's space separately.
        self._observation_spaces = {
            a: _copy_space(self.env.observation_space) for a in self.possible_agents
        }
        self._action_spaces = {a: _copy_space(self.env.action_space) for a in self.possible_agents}
        self._observation = ""
        self._turn = 0
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> gym.Space:
        return self._observation_spaces[agent]

    def action_space(self, agent: str) -> gym.Space:
        return self._action_spaces[agent]

    def observe(self, agent: str) -> TextObservation:
        return TextObservation(self._observation)

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        task_options = {"task_id": options["task_id"]} if options and "task_id" in options else None
        self._observation, info = self.env.reset(seed=seed, options=task_options)
        self.selector.reset(seed)
        self._turn = 0
        self.agents = list(self.possible_agents)
        self.agent_selection = self.selector.select(0)
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self._cumulative_rewards = dict.fromkeys(self.agents, 0.0)
        self.terminations = dict.fromkeys(self.agents, False)
        self.truncations = dict.fromkeys(self.agents, False)
        self.infos = {a: self._agent_info(info, last_actor=None) for a in self.agents}

    def step(self, action: str | None) -> None:
        if self.terminations[self.agent_selection] or self.truncations[self.agent_selection]:
            self._was_dead_step(action)
            return
        actor = self.agent_selection
        self._cumulative_rewards[actor] = 0.0
        self._observation, reward, terminated, truncated, info = self.env.step(action)
        self._turn += 1
        self.rewards = dict.fromkeys(self.agents, 0.0)
        self.rewards[actor] = float(reward)
        self.terminations = dict.fromkeys(self.agents, bool(terminated))
        self.truncations = dict.fromkeys(self.agents, bool(truncated and not terminated))
        if not (terminated or truncated):
            self.agent_selection = self.selector.select(self._turn)
        self.infos = {a: self._agent_info(info, last_actor=actor) for a in self.agents}
        self._accumulate_rewards()
        if terminated or truncated:
            self._deads_step_first()

    def render(self) -> str | None:
        return self._observation if self.render_mode == "ansi" else None

    def close(self) -> None:
        self.env.close()

    def _agent_info(self, info: dict, *, last_actor: str | None) -> dict:
        done = any(self.terminations.values()) or any(self.truncations.values())
        next_actor = None if done else self.agent_selection
        return {**info, "last_actor": last_actor, "next_actor": next_actor}


def _copy_space(space: gym.Space) -> gym.Space:
    import copy

    return copy.deepcopy(space)
