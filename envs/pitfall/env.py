"""Pitfall-v0, the text env (rules in :mod:`envs.pitfall.dynamics`).

Observations are one or two short lines: ``Mode: windy. Obstacle 4 of 20: a
gap.`` on the trail, ``Mode: windy. You are in a pit beside obstacle 4 (a
gap).`` off it. Actions are the six move words; anything else is an invalid
action (a turn spent, nothing changes). ``info`` adds ``in_pit`` and
``position``.
"""

from __future__ import annotations

from typing import Any

from envs.core import TextEnv, Transition
from envs.pitfall.dynamics import (
    ACTIONS,
    LENGTH,
    MAX_TURNS,
    MODES,
    OBSTACLES,
    PIT_RECOVERY,
    SPLIT_SIZES,
    WAIT,
    context,
    expert_index,
    task_id,
)

__all__ = ["PitfallEnv", "describe"]

TASK = f"cross all {LENGTH} obstacles of the trail"
RULES = (
    f"Moves: {', '.join(ACTIONS)}. The right move for each obstacle depends on the mode; "
    "a wrong move drops you into a pit."
)


def describe(mode: int, obstacle: int, position: int, in_pit: bool) -> str:
    """The observation of a state (what the env shows; tiny models read this)."""
    where = f"obstacle {position + 1} of {LENGTH}"
    if in_pit:
        return f"Mode: {MODES[mode]}. You are in a pit beside {where} (a {OBSTACLES[obstacle]})."
    return f"Mode: {MODES[mode]}. {where[0].upper()}{where[1:]}: a {OBSTACLES[obstacle]}."


class PitfallEnv(TextEnv):
    """Cross a trail of obstacles; a wrong move drops you into a pit that only ``rope`` leaves."""

    splits = ("train", "dev", "test")
    max_turns = MAX_TURNS

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "full",
        expert: bool | str = False,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            split=split,
            admissible_actions=admissible_actions,
            expert=expert,
            render_mode=render_mode,
        )
        self.task_ids = [task_id(split, i) for i in range(SPLIT_SIZES[split])]
        self._mode, self._obstacles = 0, None
        self._position, self._in_pit = 0, False

    def _start_task(self, task: str) -> tuple[str, str]:
        self._mode, self._obstacles = context(task)
        self._position, self._in_pit = 0, False
        return f"Your task is to: {TASK}. {RULES}\n{self._describe()}", TASK

    def _describe(self) -> str:
        return describe(
            self._mode, int(self._obstacles[self._position]), self._position, self._in_pit
        )

    def _execute(self, action: str) -> Transition:
        if action not in ACTIONS:
            return Transition(
                f"Unknown move {action[:40]!r}; the moves are {', '.join(ACTIONS)}.",
                score=self._score,
                invalid_action=True,
                action_type="invalid",
            )
        move = ACTIONS.index(action)
        right = int(self._expert_index())
        if self._in_pit:
            if move == PIT_RECOVERY:
                self._in_pit = False
                text = "You climb the rope out of the pit."
            else:
                text = "You are still in the pit."
        elif move == right:
            self._position += 1
            if self._position == LENGTH:
                return Transition(
                    "You crossed the last obstacle.", 1.0, True, True, action_type=action
                )
            text = "You pass the obstacle."
        elif move == WAIT:
            text = "You wait."
        else:
            self._in_pit = True
            text = "Wrong move: you fall into a pit."
        return Transition(
            f"{text}\n{self._describe()}", self._position / LENGTH, action_type=action
        )

    def _expert_index(self) -> int:
        return int(expert_index(self._obstacles[self._position], self._mode, self._in_pit))

    def _admissible_actions(self) -> list[str]:
        return list(ACTIONS)

    def _expert_action(self) -> str | None:
        return ACTIONS[self._expert_index()]

    def _extra_info(self) -> dict[str, Any]:
        return {"in_pit": bool(self._in_pit), "position": int(self._position)}
