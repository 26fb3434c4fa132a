"""``tests.faulty_env:Faulty-v0``: an env that fails on request, for the failure-handling tests.

Importing this module registers the id, so ``gym.make("tests.faulty_env:Faulty-v0")``
works in a freshly spawned pool worker too. Actions: ``up`` (three win),
``die`` (the process exits at once), ``hang`` (never answers), ``raise``
(the env raises), ``backend`` (a ``BackendError``: the env ends the episode
with ``info["error"]``); anything else is an invalid action. With
``fail_on_turn=N`` the N-th step of every episode does ``failure`` whatever
the action, and with ``fail_every_reset=N`` every N-th reset of an env
raises (for runs whose actions a model picks).
"""

from __future__ import annotations

import os
import time

import gymnasium as gym

from envs.core import BackendError, TextEnv, Transition

ENV_ID = "tests.faulty_env:Faulty-v0"


class FaultyEnv(TextEnv):
    splits = ("train",)

    def __init__(
        self, *, fail_on_turn: int = 0, failure: str = "raise", fail_every_reset: int = 0, **kwargs
    ) -> None:
        kwargs.pop("expert", None)
        super().__init__(**kwargs)
        self.fail_on_turn, self.failure = fail_on_turn, failure
        self.fail_every_reset, self.resets = fail_every_reset, 0
        self.task_ids = [f"faulty/{n}" for n in range(7)]
        self.count = 0

    def _start_task(self, task_id: str) -> tuple[str, str]:
        self.resets += 1
        if self.fail_every_reset and self.resets % self.fail_every_reset == 0:
            raise RuntimeError(f"reset {self.resets} of this env fails")
        if task_id == "faulty/7":
            raise RuntimeError("task faulty/7 cannot load")
        self.count = 0
        return f"Counter at 0 ({task_id}).", "say up three times"

    def _execute(self, action: str) -> Transition:
        if self._turn == self.fail_on_turn:
            action = self.failure
        if action == "die":
            os._exit(7)
        if action == "hang":
            time.sleep(3600)
        if action == "raise":
            raise RuntimeError("the backend fell over")
        if action == "backend":
            raise BackendError("the simulator broke")
        if action != "up":
            return Transition(
                "Nothing happens.", self._score, invalid_action=True, action_type="invalid"
            )
        self.count += 1
        return Transition(
            f"Counter at {self.count}.",
            score=self.count / 3,
            terminated=self.count == 3,
            won=self.count == 3,
            action_type="up",
        )

    def _knows_task(self, task_id: str) -> bool:
        return task_id == "faulty/7"  # playable by id only: its reset always fails

    def _admissible_actions(self) -> list[str]:
        return ["up"]


if "Faulty-v0" not in gym.registry:
    gym.register(
        id="Faulty-v0", entry_point=FaultyEnv, max_episode_steps=10, disable_env_checker=True
    )
