"""``ALFWorld-v0``: ALFWorld's text games behind the mentorgym contract.

::

    import gymnasium as gym
    import envs

    env = gym.make("ALFWorld-v0", split="valid_unseen", expert=True)
    obs, info = env.reset(seed=0)          # or options={"task_id": info["task_id"]}
    obs, reward, terminated, truncated, info = env.step(info["expert_action"])

Games are played by TextWorld's PDDL engine with ALFWorld's ``alfred.pddl``
domain and ``alfred.twl2`` grammar (:mod:`envs.alfworld.engine`), so the
observations and commands are ALFWorld's own: the welcome text with
``Your task is to: ...``, ``go to``, ``take X from Y``, ``move X to Y``,
``open``, ``close``, ``heat/cool/clean X with Y``, ``use``, ``look``,
``inventory``, ``examine``. Commands must match an admissible command exactly
(as in ALFWorld); anything else answers "Nothing happens." with
``invalid_action=True``.

Where the games come from (:func:`envs.alfworld.data.resolve_source`):
``data_dir=``, else ``$ALFWORLD_DATA``, in ALFWorld's official layout; else the
small generated set shipped with the package. Task ids are game paths
relative to ``json_2.1.1`` (``valid_seen/<task>/<trial>/game.tw-pddl``).

Keyword arguments (besides the contract's ``split``, ``admissible_actions``,
``expert``, ``render_mode``):

* ``split``: ``train`` (default), ``dev`` (generated games only: held out
  from train on the same floor plans), ``valid_seen`` or ``valid_unseen``;
* ``expert``: ``True`` or ``"handcoded"`` (ALFWorld's hand-coded expert,
  which only uses what the agent has seen), ``"planner"`` (Fast Downward's
  plan from the current state; it knows where hidden objects are), ``False``;
* ``admissible_actions``: ``"full"`` and ``"compact"`` both give the engine's
  admissible commands (the list is short: tens of commands); ``"none"`` an
  empty list;
* ``data_dir``: an ``ALFWORLD_DATA`` folder (or its ``json_2.1.1``);
* ``task_types``: ALFWorld task type ids (1-6) or names to keep (default all).

Reward: 1 when the game is won (the engine's goal check), else 0;
``terminated`` when won. ``info["task_type"]`` names the game's task type.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import Any

from envs.alfworld.data import SPLITS, GameRecord, GameSource, resolve_source
from envs.alfworld.engine import AlfredEngine, EngineError
from envs.alfworld.experts import EXPERT_TYPES, HandcodedExpert, make_expert
from envs.core import BackendError, TextEnv, Transition

__all__ = ["ACTION_TYPES", "ALFWorldEnv", "action_type"]

#: Values of ``info["action_type"]``: ALFWorld's verb templates, or "invalid".
ACTION_TYPES: tuple[str, ...] = (
    "go to",
    "take",
    "move",
    "put",
    "open",
    "close",
    "heat",
    "cool",
    "clean",
    "slice",
    "use",
    "look",
    "inventory",
    "examine",
    "help",
    "invalid",
)
_ONE_WORD_VERBS = frozenset(ACTION_TYPES) - {"go to", "invalid"}
_TASK_PREFIX = "Your task is to: "


def action_type(command: str) -> str:
    """The verb template a command uses (``"go to"``, ``"take"``...), else ``"invalid"``."""
    words = command.split()
    if not words:
        return "invalid"
    if words[0] == "go":
        return "go to" if len(words) > 1 and words[1] == "to" else "invalid"
    return words[0] if words[0] in _ONE_WORD_VERBS else "invalid"


def _task_sentence(intro: str) -> str:
    for line in intro.splitlines():
        if line.startswith(_TASK_PREFIX):
            return line[len(_TASK_PREFIX) :].strip()
    return ""


class ALFWorldEnv(TextEnv):
    """ALFWorld text games on TextWorld's PDDL engine (see the module docstring)."""

    splits = SPLITS
    invalid_observation = "Nothing happens."
    max_turns = 50  # ALFWorld's usual evaluation cap (the registered cap)

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "full",
        expert: bool | str = False,
        data_dir: str | PathLike[str] | None = None,
        task_types: Iterable[int | str] | None = None,
        render_mode: str | None = None,
    ) -> None:
        if not (expert is True or expert is False or expert in EXPERT_TYPES):
            raise ValueError(
                f"ALFWorldEnv: expert must be True, False, 'handcoded' or 'planner', not {expert!r}"
            )
        super().__init__(
            split=split,
            admissible_actions=admissible_actions,
            expert=expert,
            render_mode=render_mode,
        )
        self.source: GameSource = resolve_source(data_dir, task_types=task_types)
        self.task_ids = self.source.task_ids(split)
        if not self.task_ids:
            raise ValueError(
                f"ALFWorldEnv: the {self.source.description} has no solvable games in split {split!r}"
            )
        self._expert = make_expert(expert)
        self._engine = AlfredEngine(facts=isinstance(self._expert, HandcodedExpert))
        self._record: GameRecord | None = None

    # -- TextEnv hooks --------------------------------------------------------

    def _knows_task(self, task_id: str) -> bool:
        # Ids of the other splits of the same games play too (a panel may span valid_seen and
        # valid_unseen); the id names its split.
        return self.source.split_of(task_id) is not None

    def _start_task(self, task_id: str) -> tuple[str, str]:
        record = self.source.load(task_id)
        try:
            self._engine.load(record.game)
            state = self._engine.reset()
        except EngineError as error:
            raise ValueError(f"ALFWorldEnv: cannot play {task_id!r}: {error}") from error
        self._record = record
        if self._expert is not None:
            self._expert.reset(self._engine, record.traj_data, task_id)
        return state.feedback, _task_sentence(state.feedback)

    def _execute(self, action: str) -> Transition:
        try:
            state, accepted = self._engine.step(action)
        except Exception as error:  # the engine never fails on text; if it does, end cleanly
            raise BackendError(f"the TextWorld engine failed on {action!r}: {error}") from error
        if self._expert is not None:
            self._expert.observe(action, accepted)
        won = self._engine.won
        return Transition(
            observation=state.feedback,
            score=1.0 if won else 0.0,
            terminated=won,
            won=won,
            invalid_action=not accepted,
            action_type=action_type(action),
        )

    def _admissible_actions(self) -> list[str]:
        # "full" and "compact" alike: the engine's list is already short.
        return self._engine.admissible_commands

    def _expert_action(self) -> str | None:
        return self._expert.next_action() if self._expert is not None else None

    def _extra_info(self) -> dict[str, Any]:
        return {"task_type": self._record.task_type if self._record is not None else ""}

    def close(self) -> None:
        self._engine.close()
        super().close()
