"""The environment contract of DESIGN.md, checked on every registered id."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env

from envs.core import INFO_KEYS, TextSpace
from envs.registration import ENV_ENTRIES
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


# -- the turn cap belongs to the env ------------------------------------------------

OVER = "The episode is over; call reset() to start a new one."


def _play_to_truncation(env, cap: int, *, reset: bool = True) -> dict:
    if reset:
        env.reset(seed=0)
    info = {}
    for turn in range(1, cap + 1):
        obs, reward, terminated, truncated, info = env.step("xyzzy plugh")
        assert not terminated, f"an invalid action ended the episode at turn {turn}"
        assert truncated == (turn == cap), turn
    return info


def _assert_refuses(env, info_before: dict, actions: list[str]) -> None:
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        assert obs == OVER and reward == 0.0 and truncated and not terminated, action
        assert info["invalid_action"] and info["turn"] == info_before["turn"], action
        assert info["score"] == info_before["score"] and info["won"] == info_before["won"]


@pytest.mark.parametrize("env_id", entry_params())
def test_no_env_acts_after_truncation(env_id: str) -> None:
    entry = next(e for e in ENV_ENTRIES if e.id == env_id)
    env_class = load_env_creator(entry.entry_point)
    # Built directly, the env has the registered cap (its class's own).
    assert env_class.max_turns == entry.max_episode_steps
    direct = env_class()
    made = gym.make(env_id)
    override = gym.make(env_id, max_episode_steps=3, expert=True)
    try:
        assert made.unwrapped.max_turns == entry.max_episode_steps
        info = _play_to_truncation(direct, entry.max_episode_steps)
        _assert_refuses(direct, info, ["look around", "look", "inventory"])
        obs, info = direct.reset(seed=0)  # a reset starts afresh
        assert info["turn"] == 0 and direct.step("look")[0] != OVER
        # Made with a max_episode_steps override, the env takes the override and
        # refuses even the expert's next action once it is reached.
        assert override.unwrapped.max_turns == 3
        obs, info = override.reset(seed=0)
        expert = [info["expert_action"] or "look", "look"]
        info = _play_to_truncation(override, 3, reset=False)
        _assert_refuses(override.unwrapped, info, expert)
        _assert_refuses(override, info, expert)
    finally:
        for env in (direct, made, override):
            env.close()


def test_without_a_time_limit_the_env_has_no_cap() -> None:
    env = gym.make("WebShop-v0", max_episode_steps=-1)
    assert env.unwrapped.max_turns is None
    env.reset(seed=0)
    for _ in range(20):
        assert env.step("xyzzy")[3] is False


def test_sync_vector_env_resets_a_truncated_episode() -> None:
    vec = gym.make_vec("WebShop-v0", num_envs=2, vectorization_mode="sync", max_episode_steps=2)
    try:
        vec.reset(seed=0)
        vec.step(("xyzzy", "xyzzy"))
        observations, rewards, terminated, truncated, infos = vec.step(("xyzzy", "xyzzy"))
        assert list(truncated) == [True, True] and not any(terminated)
        observations, rewards, terminated, truncated, infos = vec.step(("xyzzy", "xyzzy"))
        assert list(infos["turn"]) == [0, 0] and OVER not in observations  # autoreset
    finally:
        vec.close()
