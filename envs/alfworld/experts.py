"""The two ALFWorld experts, with the upstream defects fixed.

``HandcodedExpert`` drives ALFWorld's own hand-coded expert
(``alfworld.agents.expert.HandCodedTWAgent``): it searches receptacles one by
one and decides from what the agent has seen, so its trajectories can be
learned from observations. Upstream defects handled here:

* alfworld 0.4.x renamed ``put X in/on Y`` to ``move X to Y`` but the expert's
  state tracking (``BasePolicy.update_state_tracking``) still looks for
  ``"put"``: after a placement it never updates its inventory or blacklist,
  so two-object tasks never finish. Here the policy sees a placement as the
  ``put`` it expects.
* the expert calls the global ``random`` module (to break ties and to escape
  loops); here each expert has its own seeded stream, so its trajectories are
  reproducible and the caller's ``random`` state is left untouched.
* upstream raises ``Exception("Timeout")`` when the expert exceeds its step
  budget; here the expert then has no action (``None``).

``PlannerExpert`` is ALFWorld's planner expert: Fast Downward's plan from the
current state. Upstream replans on every step (about a second each on a
kitchen); here the plan is kept while the agent follows it and recomputed
only when the agent deviates. The domain is deterministic, so the rest of a
plan stays a valid (and as short) plan after its first step is played. The
planner knows where hidden objects are.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from envs.alfworld.engine import AlfredEngine
from envs.alfworld.paths import configure_alfworld_data

configure_alfworld_data()

import alfworld.agents.expert.handcoded_expert as _handcoded_module  # noqa: E402
import alfworld.gen.constants as alfred_constants  # noqa: E402
from alfworld.agents.expert import HandCodedAgentFailed, HandCodedAgentTimeout  # noqa: E402
from alfworld.agents.expert.handcoded_expert_tw import HandCodedTWAgent  # noqa: E402

__all__ = [
    "EXPERT_TYPES",
    "Expert",
    "ExpertRun",
    "HandcodedExpert",
    "PlannerExpert",
    "make_expert",
    "play_expert",
    "task_params",
    "upstream_handcoded_agent",
]

#: Accepted values of the env's ``expert=`` argument besides ``True``/``False``.
EXPERT_TYPES: tuple[str, ...] = ("handcoded", "planner")

#: Upstream's step budget for the hand-coded expert (``AlfredExpert`` uses 200).
HANDCODED_MAX_STEPS = 200


def task_params(traj_data: Mapping[str, Any]) -> dict[str, Any]:
    """The hand-coded expert's task parameters from a ``traj_data.json`` dict.

    Same as ``HandCodedAgent.reset``: ``pddl_params`` plus ``task_type``, with
    known object names lower-cased.
    """
    try:
        params = {**traj_data["pddl_params"], "task_type": traj_data["task_type"]}
    except (KeyError, TypeError):
        raise ValueError("traj_data lacks 'pddl_params' or 'task_type'") from None
    return {k: v.lower() if v in alfred_constants.OBJECTS else v for k, v in params.items()}


def upstream_handcoded_agent(traj_data: Mapping[str, Any], first_feedback: str) -> Any:
    """Upstream's hand-coded TextWorld agent, unpatched, ready for a game (for comparisons).

    Set up as ``HandCodedTWAgent.reset`` does, from ``traj_data`` rather than a
    game folder, after observing ``first_feedback`` (the game's first text).
    """
    from alfworld.agents.expert.handcoded_expert_tw import HandCodedTWAgent

    agent = HandCodedTWAgent(max_steps=200)
    agent.task_params = task_params(traj_data)
    agent.policy = agent.get_task_policy(agent.task_params)(agent.task_params, max_steps=200)
    agent.observe(first_feedback)
    return agent


def _as_put(command: str) -> str:
    # "move X to Y" (0.4.x wording) -> "put X to Y", the form the upstream tracking expects.
    return "put" + command[4:] if command.startswith("move ") else command


class _PrivateRandom:
    """Runs a call with the global ``random`` module on a private, seeded stream."""

    def __init__(self, seed: int) -> None:
        generator = random.Random(seed)
        self._state = generator.getstate()

    def call(self, function: Any, *args: Any) -> Any:
        saved = random.getstate()
        random.setstate(self._state)
        try:
            return function(*args)
        finally:
            self._state = random.getstate()
            random.setstate(saved)


class Expert:
    """Interface of an expert: told about every step, asked for the next action."""

    kind = ""

    def reset(self, engine: AlfredEngine, traj_data: Mapping[str, Any], task_id: str) -> None:
        raise NotImplementedError

    def observe(self, command: str, accepted: bool) -> None:
        """The agent played ``command`` (``accepted``: the engine executed it)."""
        raise NotImplementedError

    def next_action(self) -> str | None:
        raise NotImplementedError


class HandcodedExpert(Expert):
    """ALFWorld's hand-coded expert with the ``move``/``put`` defect fixed (needs engine facts).

    As in ALFWorld's ``AlfredExpert`` wrapper, its first action is ``look``,
    and an action outside the admissible commands is replaced by ``look``.
    """

    kind = "handcoded"

    def __init__(self, max_steps: int = HANDCODED_MAX_STEPS) -> None:
        self.max_steps = max_steps
        self._engine: AlfredEngine | None = None
        self._agent: HandCodedTWAgent | None = None
        self._random = _PrivateRandom(0)
        self._next: str | None = None
        self.last_error: str | None = None

    def reset(self, engine: AlfredEngine, traj_data: Mapping[str, Any], task_id: str) -> None:
        self._engine = engine
        agent = HandCodedTWAgent(max_steps=self.max_steps)
        agent.task_params = task_params(traj_data)
        policy_class = agent.get_task_policy(agent.task_params)
        agent.policy = _move_aware(policy_class)(agent.task_params, max_steps=self.max_steps)
        self._agent = agent
        # A stream per task: the same task gives the same expert trajectory.
        self._random = _PrivateRandom(zlib.crc32(task_id.encode("utf-8")))
        self._random.call(agent.observe, engine.state["feedback"])
        self._next = "look"

    def observe(self, command: str, accepted: bool) -> None:
        if self._agent is None or self._engine is None:
            raise RuntimeError("HandcodedExpert.reset must come first")
        state = self._engine.state
        try:
            action = self._random.call(self._agent.act, state, 0, state["won"], command)
        except (HandCodedAgentTimeout, HandCodedAgentFailed):
            # Timeout: past its step budget (upstream raises Exception("Timeout")); failed:
            # subgoals exhausted. Either way it has no action left.
            self._next = None
            return
        except Exception as error:  # noqa: BLE001 - upstream heuristics, e.g. an empty inventory
            # after the agent deviated; the env must keep running, the expert just gives up.
            self.last_error = f"{type(error).__name__}: {error}"
            self._next = None
            return
        self._next = action if action in state["admissible_commands"] else "look"

    def next_action(self) -> str | None:
        return self._next


_MOVE_AWARE_CACHE: dict[type, type] = {}


def _move_aware(policy_class: type) -> type:
    """``policy_class`` whose state tracking reads ``move X to Y`` as a placement."""
    cached = _MOVE_AWARE_CACHE.get(policy_class)
    if cached is None:

        def update_state_tracking(self: Any, game_state: Any, last_action: str) -> None:
            policy_class.update_state_tracking(self, game_state, _as_put(last_action))

        cached = type(
            f"MoveAware{policy_class.__name__}",
            (policy_class,),
            {"update_state_tracking": update_state_tracking, "__module__": __name__},
        )
        _MOVE_AWARE_CACHE[policy_class] = cached
    return cached


class PlannerExpert(Expert):
    """Fast Downward's plan from the current state; replans only when the agent deviates."""

    kind = "planner"

    def __init__(self) -> None:
        self._engine: AlfredEngine | None = None
        self._plan: list[str] | None = None

    def reset(self, engine: AlfredEngine, traj_data: Mapping[str, Any], task_id: str) -> None:
        self._engine = engine
        self._plan = None

    def observe(self, command: str, accepted: bool) -> None:
        # Following the plan keeps its suffix valid (deterministic domain); any other executed
        # command changed the state, so the next request replans. A rejected command changed
        # nothing: the plan (or the knowledge that there is none) stays.
        if accepted and self._plan and command == self._plan[0]:
            self._plan = self._plan[1:] or None
        elif accepted:
            self._plan = None

    def next_action(self) -> str | None:
        if self._engine is None:
            raise RuntimeError("PlannerExpert.reset must come first")
        if self._engine.won:
            return None
        if self._plan is None:
            self._plan = self._engine.plan()  # [] when Fast Downward finds no plan
        return self._plan[0] if self._plan else None


def make_expert(kind: bool | str) -> Expert | None:
    """The expert for the env's ``expert=`` value (``True`` means hand-coded)."""
    if kind is False or kind is None:
        return None
    if kind is True or kind == "handcoded":
        return HandcodedExpert()
    if kind == "planner":
        return PlannerExpert()
    raise ValueError(f"expert must be True, False, 'handcoded' or 'planner', not {kind!r}")


@dataclass
class ExpertRun:
    """An expert's episode: whether it won, and the commands it played."""

    won: bool
    actions: list[str]


def play_expert(
    engine: AlfredEngine, expert: Expert, record: Any, *, max_steps: int = 50
) -> ExpertRun:
    """Play ``record`` (a :class:`~envs.alfworld.data.GameRecord`) with ``expert`` alone.

    The same loop as ``ALFWorld-v0`` driven by ``ExpertAgent``: at most
    ``max_steps`` commands, stopping when the game is won or the expert has
    no action.
    """
    engine.load(record.game)
    engine.reset()
    expert.reset(engine, record.traj_data, record.task_id)
    actions: list[str] = []
    while len(actions) < max_steps and not engine.won:
        action = expert.next_action()
        if action is None:
            break
        _state, accepted = engine.step(action)
        actions.append(action)
        expert.observe(action, accepted)
    return ExpertRun(engine.won, actions)


# The module the upstream policies live in, for tests that check the defect upstream.
UPSTREAM_HANDCODED_MODULE = _handcoded_module
