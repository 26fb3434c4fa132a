"""``ScienceWorld-v0``: the real ScienceWorld simulator behind the mentorgym contract.

Differences from ``scienceworld.ScienceWorldEnv`` and why:

* a step asks the simulator only for what the ``admissible_actions`` mode
  needs (the full valid-action list costs ~25 ms a step; without it a step
  runs at the simulator's own speed);
* the score (0..100 upstream) is normalised to [0, 1]; a negative score means
  the task failed for good (e.g. focusing on the wrong object): the episode
  terminates with score 0, and ``info["raw_score"]`` keeps the simulator's value;
* one heap-capped JVM per env instance, reused across resets; a JVM that dies,
  or that does not answer a call within ``timeout_s`` (frozen, stopped), ends
  the episode with ``info["error"]``, is killed, and is replaced on the next
  reset. An env collected without ``close()`` still stops its JVM.

The simulator's own clarification dialogue is kept: an ambiguous command
("open door") answers with a numbered list, and the next action is the
number ("0"); then ``admissible_actions`` lists exactly those numbers. The
gold action sequences rely on this.
"""

from __future__ import annotations

import re
from typing import Any

from envs.core import BackendError, TextEnv, Transition
from envs.scienceworld.simulator import (
    DEFAULT_JVM_OPTIONS,
    DEFAULT_TIMEOUT_S,
    Simulator,
    find_java,
)
from envs.scienceworld.tasks import SPLITS, parse_task_id, task_ids

__all__ = ["SIMPLIFICATIONS", "ScienceWorldEnv"]

#: Simplifications the simulator knows (comma-separated in ``simplifications=``).
SIMPLIFICATIONS: tuple[str, ...] = (
    "teleportAction",
    "selfWateringFlowerPots",
    "openContainers",
    "openDoors",
    "noElectricalAction",
    "easy",
)

_UNPARSED = ("No known action matches that input.", "Unknown action.")
_AMBIGUOUS = "Ambiguous request"
_CHOICE_LINE = re.compile(r"^(\d+):\t", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\b(OBJ|LOC)\b")


def _normalise(action: str) -> str:
    return " ".join(action.lower().split())


def _verb_of_template(template: str) -> str:
    """``"connect OBJ to OBJ"`` -> ``"connect"``; ``"look around"`` -> ``"look around"``."""
    match = _PLACEHOLDER.search(template)
    return (template[: match.start()] if match else template).strip().lower()


class ScienceWorldEnv(TextEnv):
    """ScienceWorld (Wang et al., 2022) through its Java simulator.

    Keyword arguments (besides the ``TextEnv`` ones):

    * ``split``: ``"train"`` (3,592 variations), ``"dev"`` (1,796) or ``"test"`` (1,819);
    * ``admissible_actions``: ``"compact"`` (default: the action templates such
      as ``"open OBJ"``, with ``info["objects"]`` listing the objects in view),
      ``"full"`` (every valid command, ~2,700 strings, ~25 ms a step) or ``"none"``;
    * ``expert``: fill ``info["expert_action"]`` from the simulator's gold
      action sequence while the agent stays on it (``None`` once it deviated);
    * ``simplifications``: comma-separated names from ``SIMPLIFICATIONS`` ("" by default);
    * ``tasks``: restrict the split to these task names (e.g. ``("boil", "melt")``);
    * ``jvm_options``: JVM flags; the default caps the heap at 256 MB;
    * ``timeout_s``: seconds one call to the JVM may take (30); a JVM past it is
      killed and the episode ends with ``info["error"]``.
    """

    max_turns = 100  # ScienceWorld's own step limit (the registered cap)

    splits = SPLITS
    invalid_observation = "No known action matches that input."

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "compact",
        expert: bool = False,
        simplifications: str = "",
        tasks: tuple[str, ...] | list[str] | None = None,
        jvm_options: tuple[str, ...] | list[str] = DEFAULT_JVM_OPTIONS,
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            split=split,
            admissible_actions=admissible_actions,
            expert=bool(expert),
            render_mode=render_mode,
        )
        unknown = [s for s in simplifications.split(",") if s and s not in SIMPLIFICATIONS]
        if unknown:
            raise ValueError(
                f"ScienceWorld-v0: unknown simplifications {unknown}; known: {list(SIMPLIFICATIONS)}"
            )
        find_java()  # fail at construction, with install instructions, when there is no Java
        self.simplifications = simplifications
        self.task_ids = task_ids(split, tuple(tasks) if tasks is not None else None)
        self.jvm_options = tuple(jvm_options)
        self.timeout_s = timeout_s
        self._simulator: Simulator | None = Simulator(self.jvm_options, timeout_s)
        self._simulator_broken = False
        self._death = ""  # why the last simulator was given up, in words
        self._templates: list[str] = []
        self._verbs: list[str] = []
        self._objects: list[str] = []
        self._choices = 0  # > 0 while the simulator waits for an ambiguity choice
        self._gold: list[str] = []
        self._gold_position: int | None = None
        self._raw_score = 0.0

    # -- lifecycle ------------------------------------------------------------

    @property
    def simulator(self) -> Simulator:
        """The running simulator (started anew if the last one died)."""
        if self._simulator is None or self._simulator_broken or not self._simulator.alive():
            if self._simulator is not None:
                self._simulator.close(force=True)
            self._simulator = Simulator(self.jvm_options, self.timeout_s)
            self._simulator_broken, self._death = False, ""
        return self._simulator

    def _break_simulator(self) -> str:
        """The JVM failed a call: kill it now (a frozen one would hold ~200 MB and a
        socket) and say why; the next reset starts a fresh one."""
        self._simulator_broken = True
        if self._simulator is None:
            return "the simulator was closed"
        if self._simulator.alive():
            self._death = self._simulator.describe_death()
            self._simulator.close(force=True)
        return self._death or self._simulator.describe_death()

    def close(self) -> None:
        if self._simulator is not None:
            self._simulator.close()
            self._simulator = None
        super().close()

    def _knows_task(self, task_id: str) -> bool:
        try:
            parse_task_id(task_id)
        except ValueError:
            return False
        return True

    # -- TextEnv hooks --------------------------------------------------------

    def _start_task(self, task_id: str) -> tuple[str, str]:
        from py4j.protocol import Py4JError, Py4JJavaError

        name, variation = parse_task_id(task_id)
        for attempt in range(2):
            server = self.simulator.server
            try:
                server.load(name, variation, self.simplifications, bool(self.expert))
                look = str(server.step("look around"))
                task = str(server.getTaskDescription())
                self._templates = [str(t) for t in server.getPossibleActions()]
                self._gold = [str(a) for a in server.getGoldActionSequence()] if self.expert else []
                break
            except Py4JJavaError as error:
                raise RuntimeError(f"ScienceWorld could not load {task_id!r}: {error}") from None
            except (Py4JError, OSError):
                # The JVM died or froze between episodes: start a fresh one and try once more.
                self._break_simulator()
                if attempt == 1:
                    raise RuntimeError(
                        f"ScienceWorld's JVM failed twice while loading {task_id!r}"
                    ) from None
        self._verbs = sorted({_verb_of_template(t) for t in self._templates}, key=len, reverse=True)
        self._objects = []
        self._choices = 0
        self._gold_position = 0 if self.expert else None
        self._raw_score = 0.0
        return f"{look.rstrip()}\n\n{task}", task

    def _execute(self, action: str) -> Transition:
        from py4j.protocol import Py4JError, Py4JJavaError

        simulator = self._simulator
        if simulator is None or self._simulator_broken or not simulator.alive():
            # Never restart mid-episode: a fresh simulator has not loaded this task.
            message = self._break_simulator()
            raise BackendError(f"{message}; the next reset() starts a fresh simulator")
        server = simulator.server
        try:
            observation = str(server.step(action))
            raw_score = float(server.getScore())
            completed = bool(server.getCompleted())
        except Py4JJavaError as error:
            if "OutOfMemoryError" in str(error):
                self._break_simulator()
                raise BackendError("the ScienceWorld JVM ran out of memory") from None
            return Transition(
                observation=self.invalid_observation,
                score=self._score,
                invalid_action=True,
                action_type="invalid",
            )
        except (Py4JError, OSError):
            message = self._break_simulator()
            raise BackendError(f"{message}; the next reset() starts a fresh simulator") from None

        was_choosing = self._choices > 0
        self._choices = (
            len(_CHOICE_LINE.findall(observation)) if observation.startswith(_AMBIGUOUS) else 0
        )
        invalid = observation.strip().startswith(_UNPARSED)
        self._follow_gold(action)
        self._raw_score = raw_score
        failed = raw_score < 0
        won = completed and raw_score >= 1.0
        return Transition(
            observation=observation,
            score=0.0 if failed else raw_score,
            terminated=completed or failed,
            won=won,
            invalid_action=invalid,
            action_type=self._action_type(action, invalid, was_choosing),
        )

    def _admissible_actions(self) -> list[str]:
        from py4j.protocol import Py4JError

        if self._choices:
            return [str(i) for i in range(self._choices)]
        server = self.simulator.server
        try:
            if self.admissible_mode == "compact":
                self._objects = [str(o) for o in server.getPossibleObjects()]
                return list(self._templates)
            return [str(a) for a in server.getValidActionObjectCombinations()]
        except (Py4JError, OSError):
            # The JVM died or froze after the step; the next step reports it as the episode's end.
            self._break_simulator()
            return []

    def _expert_action(self) -> str | None:
        position = self._gold_position
        if position is None or position >= len(self._gold):
            return None
        return self._gold[position]

    def _extra_info(self) -> dict[str, Any]:
        return {
            "raw_score": round(100 * self._raw_score),
            "objects": list(self._objects) if self.admissible_mode == "compact" else [],
        }

    # -- helpers --------------------------------------------------------------

    def _follow_gold(self, action: str) -> None:
        position = self._gold_position
        if position is None:
            return
        if position < len(self._gold) and _normalise(action) == _normalise(self._gold[position]):
            self._gold_position = position + 1
        else:
            self._gold_position = None

    def _action_type(self, action: str, invalid: bool, was_choosing: bool) -> str:
        text = _normalise(action)
        if was_choosing and text.isdigit():
            return "choose"
        for verb in self._verbs:
            if text == verb or text.startswith(verb + " "):
                return verb
        return "invalid" if invalid else text.split(" ", 1)[0]
