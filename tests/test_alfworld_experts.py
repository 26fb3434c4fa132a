"""The ALFWorld experts: both solve every shipped game; the upstream defects are handled."""

from __future__ import annotations

import random

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers ALFWorld-v0)
from envs.alfworld.data import SPLITS, TASK_TYPES, GameRecord, ShippedGames
from envs.alfworld.engine import AlfredEngine
from envs.alfworld.experts import (
    UPSTREAM_HANDCODED_MODULE,
    HandcodedExpert,
    PlannerExpert,
    make_expert,
    play_expert,
    upstream_handcoded_agent,
)

MAX_STEPS = 50  # ALFWorld-v0's registered turn cap


def _shipped() -> ShippedGames:
    return ShippedGames()


def _all_records() -> list[GameRecord]:
    source = _shipped()
    return [source.load(t) for split in SPLITS for t in source.task_ids(split)]


def _one_per_task_type(split: str = "valid_unseen") -> list[GameRecord]:
    """The smallest shipped game of each task type in ``split`` (the fast default subset)."""
    source = _shipped()
    best: dict[str, GameRecord] = {}
    for task_id in source.task_ids(split):
        record = source.load(task_id)
        current = best.get(record.task_type)
        if current is None or len(record.game["pddl_problem"]) < len(current.game["pddl_problem"]):
            best[record.task_type] = record
    return [best[t] for t in TASK_TYPES.values()]


@pytest.fixture(scope="module")
def engine() -> AlfredEngine:
    engine = AlfredEngine(facts=True)
    yield engine
    engine.close()


@pytest.mark.parametrize("record", _one_per_task_type(), ids=lambda r: r.task_type)
def test_handcoded_expert_solves_each_task_type(engine: AlfredEngine, record: GameRecord) -> None:
    run = play_expert(engine, HandcodedExpert(), record, max_steps=MAX_STEPS)
    assert run.won, (record.task_id, run.actions)


@pytest.mark.parametrize(
    "record",
    [
        r
        for r in _one_per_task_type()
        if r.task_type in ("look_at_obj_in_light", "pick_two_obj_and_place")
    ],
    ids=lambda r: r.task_type,
)
def test_planner_expert_solves_with_the_shortest_plan(
    engine: AlfredEngine, record: GameRecord
) -> None:
    run = play_expert(engine, PlannerExpert(), record, max_steps=MAX_STEPS)
    assert run.won and run.actions == record.game["walkthrough"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["handcoded", "planner"])
@pytest.mark.parametrize(
    "record", _all_records(), ids=lambda r: r.task_id.split("/")[0] + ":" + r.task_id.split("/")[1]
)
def test_both_experts_solve_every_shipped_game(
    engine: AlfredEngine, record: GameRecord, kind: str
) -> None:
    run = play_expert(engine, make_expert(kind), record, max_steps=MAX_STEPS)
    assert run.won, (record.task_id, kind, run.actions)


def _two_object_game() -> GameRecord:
    return next(r for r in _one_per_task_type() if r.task_type == "pick_two_obj_and_place")


def test_upstream_handcoded_expert_loses_track_of_a_two_object_task(engine: AlfredEngine) -> None:
    # alfworld 0.4.x says "move X to Y" where the expert's state tracking looks for "put":
    # the unpatched expert forgets each placement; on this game it loops until the cap.
    if '"put" in last_action' not in _upstream_tracking_source():
        pytest.skip("upstream alfworld now tracks 'move' placements itself")
    record = _two_object_game()
    engine.load(record.game)
    state = engine.reset()
    agent = upstream_handcoded_agent(record.traj_data, state["feedback"])
    command, rng_state = "look", random.getstate()
    random.seed(0)
    try:
        for _ in range(MAX_STEPS):
            state, _accepted = engine.step(command)
            if engine.won:
                break
            command = agent.act(state, 0, False, command)
    finally:
        random.setstate(rng_state)
    assert not engine.won


def _upstream_tracking_source() -> str:
    import inspect

    return inspect.getsource(UPSTREAM_HANDCODED_MODULE.BasePolicy.update_state_tracking)


def test_fixed_handcoded_expert_finishes_two_object_tasks(engine: AlfredEngine) -> None:
    record = _two_object_game()
    run = play_expert(engine, HandcodedExpert(), record, max_steps=MAX_STEPS)
    assert run.won
    assert sum(a.startswith("move ") for a in run.actions) == 2


def test_handcoded_expert_is_reproducible_and_leaves_global_random_alone(
    engine: AlfredEngine,
) -> None:
    record = _one_per_task_type()[0]
    random.seed(1234)
    before = random.getstate()
    first = play_expert(engine, HandcodedExpert(), record, max_steps=MAX_STEPS)
    second = play_expert(engine, HandcodedExpert(), record, max_steps=MAX_STEPS)
    assert first.actions == second.actions
    assert random.getstate() == before


def test_planner_expert_replans_after_the_agent_deviates() -> None:
    record = next(r for r in _one_per_task_type() if r.task_type == "pick_and_place_simple")
    env = gym.make("ALFWorld-v0", split="valid_unseen", expert="planner")
    try:
        _obs, info = env.reset(options={"task_id": record.task_id})
        detours = [
            a
            for a in info["admissible_actions"]
            if a.startswith("go to ") and a != info["expert_action"]
        ]
        for action in detours[:2] + ["inventory"]:
            _obs, _r, _t, _tr, info = env.step(action)
        for _ in range(MAX_STEPS):
            _obs, _r, terminated, truncated, info = env.step(info["expert_action"])
            if terminated or truncated:
                break
        assert info["won"]
    finally:
        env.close()


def test_handcoded_expert_tracks_what_the_agent_did() -> None:
    # The hand-coded expert follows the agent's actual steps (it is asked every step), so an
    # agent that wanders first still gets a winning expert from where it stands.
    record = next(r for r in _one_per_task_type() if r.task_type == "pick_and_place_simple")
    env = gym.make("ALFWorld-v0", split="valid_unseen", expert=True)
    try:
        _obs, info = env.reset(options={"task_id": record.task_id})
        for action in ["inventory", "look"]:
            _obs, _r, _t, _tr, info = env.step(action)
        for _ in range(MAX_STEPS):
            _obs, _r, terminated, truncated, info = env.step(info["expert_action"] or "look")
            if terminated or truncated:
                break
        assert info["won"]
    finally:
        env.close()
