"""The environment contract of DESIGN.md, checked on every registered id."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from envs.core import INFO_KEYS, TextSpace
from tests.conftest import entry_params
from tests.hostile import HOSTILE_ACTIONS

INFO_TYPES = {
    "task_id": str,
    "task": str,
    "admissible_actions": list,
    "score": float,
    "won": bool,
    "invalid_action": bool,
    "action_type": str,
    "turn": int,
}


def assert_info_contract(env: gym.Env, info: dict) -> None:
    missing = [key for key in INFO_KEYS if key not in info]
    assert not missing, f"info lacks {missing}"
    for key, kind in INFO_TYPES.items():
        assert isinstance(info[key], kind), f"info[{key!r}] is {type(info[key]).__name__}"
    assert all(isinstance(a, str) for a in info["admissible_actions"])
    assert info["expert_action"] is None or isinstance(info["expert_action"], str)
    assert 0.0 <= info["score"] <= 1.0


@pytest.mark.parametrize("env_id", entry_params())
def test_check_env_passes(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", entry_params())
def test_hostile_actions_never_crash(env_id: str) -> None:
    env = gym.make(env_id, admissible_actions="compact")
    try:
        obs, info = env.reset(seed=0)
        assert_info_contract(env, info)
        score_before = info["score"]
        for name, action in HOSTILE_ACTIONS:
            obs, reward, terminated, truncated, info = env.step(action)
            assert isinstance(obs, str) and obs, name
            assert env.observation_space.contains(obs), name
            assert_info_contract(env, info)
            if name in (
                "empty",
                "one-megabyte",
                "binary-bytes",
                "nul-and-controls",
                "none",
                "integer",
            ):
                assert info["invalid_action"], name
                assert reward == 0.0, name
                assert info["score"] == score_before, name
            if terminated or truncated:
                obs, info = env.reset(seed=0)
                score_before = info["score"]
            else:
                score_before = info["score"]
        # the env still plays after the barrage
        obs, info = env.reset(seed=1)
        assert_info_contract(env, info)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", entry_params())
def test_reset_with_task_id_is_deterministic(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        task_ids = env.unwrapped.task_ids
        assert isinstance(task_ids, list) and task_ids
        task_id = task_ids[len(task_ids) // 2]
        obs1, info1 = env.reset(options={"task_id": task_id})
        obs2, info2 = env.reset(seed=123, options={"task_id": task_id})
        assert info1["task_id"] == info2["task_id"] == task_id
        assert obs1 == obs2
        assert info1["task"] == info2["task"]
        with pytest.raises(ValueError, match="unknown task_id"):
            env.reset(options={"task_id": "no-such-task/999999"})
    finally:
        env.close()


@pytest.mark.parametrize("env_id", entry_params())
def test_rewards_sum_to_final_score(env_id: str) -> None:
    env = gym.make(env_id, expert=True, admissible_actions="none")
    try:
        obs, info = env.reset(seed=0)
        total = 0.0
        for _ in range(200):
            action = info["expert_action"] or "look"
            obs, reward, terminated, truncated, info = env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        assert total == pytest.approx(info["score"], abs=1e-9)
    finally:
        env.close()


def test_text_space_accepts_natural_language_and_pickles() -> None:
    space = TextSpace(100)
    assert space.contains("Your task is to: put a clean apple in fridge.\n\tYou see \u203a a mug.")
    assert not space.contains("bad\x00char")
    assert not space.contains("x" * 101)
    assert not space.contains(b"bytes")
    space.seed(3)
    samples = [space.sample() for _ in range(20)]
    assert all(space.contains(s) and s.strip() for s in samples)
    clone = pickle.loads(pickle.dumps(space))
    assert clone == space
    assert clone.sample() == space.sample()


@pytest.mark.parametrize("env_id", entry_params())
def test_async_vector_env_steps(env_id: str) -> None:
    vec = gym.make_vec(env_id, num_envs=2, vectorization_mode="async")
    try:
        observations, infos = vec.reset(seed=7)
        assert len(observations) == 2 and all(isinstance(o, str) and o for o in observations)
        observations, rewards, terminated, truncated, infos = vec.step(("look", "look around"))
        assert len(observations) == 2 and all(isinstance(o, str) and o for o in observations)
        assert rewards.shape == (2,)
    finally:
        vec.close()
