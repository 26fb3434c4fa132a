"""Pitfall-v0: its rules, its oracle, and the vectorised form agreeing with the text env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers Pitfall-v0)
from envs.pitfall.dynamics import ACTIONS, LENGTH, MAX_TURNS, MODES, OBSTACLES, context
from envs.pitfall.env import describe
from envs.pitfall.vector import PitfallVec


def _play(env, task: str, moves: list[int]) -> list[tuple]:
    obs, info = env.reset(options={"task_id": task})
    trace = [(info["position"], info["in_pit"], False, False, info["expert_action"], obs)]
    for move in moves:
        obs, reward, terminated, truncated, info = env.step(ACTIONS[move])
        trace.append(
            (
                info["position"],
                info["in_pit"],
                terminated or truncated,
                info["won"],
                info["expert_action"],
                obs,
            )
        )
        if terminated or truncated:
            break
    return trace


def test_the_vector_form_agrees_with_the_text_env_step_by_step() -> None:
    rng = np.random.default_rng(0)
    tasks = [f"dev/{i:05d}" for i in range(40)]
    # Mostly the oracle's move, sometimes another: episodes win, fall, recover and time out.
    vec = PitfallVec(tasks)
    env = gym.make("Pitfall-v0", split="dev", expert=True)
    plans = []
    for _ in range(MAX_TURNS):
        expert = vec.expert()
        noisy = rng.random(len(tasks)) < 0.3
        moves = np.where(noisy, rng.integers(len(ACTIONS), size=len(tasks)), expert)
        plans.append(moves)
        vec.step(moves)
    vec.reset()
    outcomes = {"won": 0, "fell": 0, "capped": 0}
    for k, task in enumerate(tasks):
        trace = _play(env, task, [int(p[k]) for p in plans])
        vec_k = PitfallVec([task])
        mode = vec_k.mode[0]
        for t, (position, in_pit, done, won, expert, obs) in enumerate(trace):
            if t > 0:
                vec_k.step(np.array([plans[t - 1][k]]))
            assert position == vec_k.position[0] and in_pit == vec_k.in_pit[0], (task, t)
            assert done == vec_k.done[0] and won == vec_k.won[0], (task, t)
            if not done:
                assert expert == ACTIONS[vec_k.expert()[0]]
                line = describe(mode, int(vec_k.obstacle[0]), position, bool(in_pit))
                assert obs.endswith(line)
                row = vec_k.features()[0]
                assert row[int(vec_k.obstacle[0])] == 1 and row[len(OBSTACLES) + mode] == 1
                assert row[-1] == float(in_pit)
        outcomes["won" if trace[-1][3] else "capped"] += 1
        outcomes["fell"] += any(step[1] for step in trace)
    env.close()
    assert all(outcomes.values()), outcomes  # every kind of episode was compared


def test_only_rope_leaves_a_pit_and_the_expert_wins_every_test_context() -> None:
    vec = PitfallVec([f"test/{i:05d}" for i in range(1000)])
    for _ in range(MAX_TURNS):
        vec.step(vec.expert())
    assert vec.won.all() and (vec.turn == LENGTH).all()
    vec = PitfallVec(["train/00000"] * len(ACTIONS))
    wrong = (vec.expert()[0] + 1) % 4
    vec.step(np.full(len(ACTIONS), wrong))
    assert vec.in_pit.all()
    vec.step(np.arange(len(ACTIONS)))
    assert list(vec.in_pit) == [a != "rope" for a in ACTIONS]


def test_contexts_are_per_episode_and_the_splits_differ() -> None:
    modes = {context(f"train/{i:05d}")[0] for i in range(50)}
    assert modes == set(range(len(MODES)))
    train = {tuple(context(f"train/{i:05d}")[1]) for i in range(200)}
    test = {tuple(context(f"test/{i:05d}")[1]) for i in range(200)}
    assert not train & test
    with pytest.raises(ValueError, match="not a Pitfall task id"):
        context("train/123")


def test_a_wrong_word_is_an_invalid_turn_that_changes_nothing() -> None:
    env = gym.make("Pitfall-v0")
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step("fly")
    assert info["invalid_action"] and not info["in_pit"] and info["turn"] == 1
    assert "the moves are climb, jump" in obs and reward == 0.0
    env.close()
