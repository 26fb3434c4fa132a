"""The environment contract of DESIGN.md, checked on every registered id."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from envs.core import INFO_KEYS, TextSpace
from envs.pool import EnvPool
from envs.registration import ENV_ENTRIES
from tests.conftest import entry_params
from tests.hostile import (
    HOSTILE_ACTIONS,
    HOSTILE_TEXT_ACTIONS,
    TOOL_CALL_BOMBS,
    assert_clean_output,
)

TOOL_IDS = tuple(e.id for e in ENV_ENTRIES if e.entry_point.startswith("envs.tooluse."))

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
        bombs = {name for name, _ in TOOL_CALL_BOMBS}
        for name, action in HOSTILE_ACTIONS:
            obs, reward, terminated, truncated, info = env.step(action)
            assert isinstance(obs, str) and obs, name
            assert env.observation_space.contains(obs), name
            assert_info_contract(env, info)
            assert_clean_output(obs, info)
            assert "error" not in info, (name, info["error"])  # refused, not a failure
            if env_id in TOOL_IDS and name in bombs:
                assert info["invalid_action"] and reward == 0.0, (name, obs)
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
        # One bad slot must not end the vector env: every hostile text goes to slot 0.
        for name, action in HOSTILE_TEXT_ACTIONS:
            observations, rewards, terminated, truncated, infos = vec.step((action, "look"))
            assert all(isinstance(o, str) and o for o in observations), name
            assert "error" not in infos or not infos["_error"].any(), name
    finally:
        vec.close()


def _hostile_pool_params() -> list:
    """Every id; the tool ids in the default run, the others (JVMs, TextWorld) under slow."""
    params = []
    for param in entry_params():
        (env_id,) = param.values
        marks = list(param.marks) + ([] if env_id in TOOL_IDS else [pytest.mark.slow])
        params.append(pytest.param(env_id, marks=marks, id=env_id))
    return params


@pytest.mark.parametrize("env_id", _hostile_pool_params())
def test_hostile_actions_through_an_env_pool(env_id: str) -> None:
    with EnvPool(env_id, 2, env_kwargs={"admissible_actions": "compact"}) as pool:
        pool.reset({0: {"seed": 0}, 1: {"seed": 1}})
        for name, action in HOSTILE_TEXT_ACTIONS:
            results = pool.step({0: action, 1: action})
            for index, (obs, _reward, terminated, truncated, info) in results.items():
                assert isinstance(obs, str) and obs, name
                assert_clean_output(obs, info)
                assert "error" not in info, (name, info["error"])
                if terminated or truncated:
                    pool.reset({index: {"seed": index}})
        assert pool.restarts == 0  # no worker died or raised


@pytest.mark.parametrize("env_id", entry_params())
def test_bad_resets_are_one_clear_value_error_and_leave_the_env_usable(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        # A failed *first* reset (Gymnasium's env checker used to break the env for good).
        with pytest.raises(ValueError, match="unknown task_id 'typo'"):
            env.reset(options={"task_id": "typo"})
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step("look")
        assert isinstance(obs, str) and obs
        assert_info_contract(env, info)
        task_id = env.unwrapped.task_ids[0]
        for options, message in (
            (5, "options must be a dict .* not int 5"),
            ("task_id", "options must be a dict .* not str 'task_id'"),
            ([("task_id", task_id)], "options must be a dict .* not list"),
            ({"task_id": 3}, r"options\['task_id'\] must be a str, not int 3"),
            ({"task": task_id}, r"unknown options \['task'\]; the only option is 'task_id'"),
            ({"task_id": "no/such/task"}, "unknown task_id 'no/such/task'"),
        ):
            with pytest.raises(ValueError, match=message):
                env.reset(options=options)
        with pytest.raises(ValueError, match="seed must be an int or None, not str"):
            env.reset(seed="7")
        obs, reward, terminated, truncated, info = env.step("look")  # the episode goes on
        assert isinstance(obs, str) and obs
        obs, info = env.reset(options={"task_id": task_id})
        assert info["task_id"] == task_id
    finally:
        env.close()


def test_trajectory_files_stay_valid_utf8_whatever_an_agent_wrote(tmp_path) -> None:
    from agents.trajectory import TrajectoryWriter, read_trajectories

    with TrajectoryWriter(tmp_path / "t.jsonl") as writer:
        writer.write({"action": "take \udc80 apple", "observation": "ok"})
    (tmp_path / "t.jsonl").read_bytes().decode("utf-8")  # strict: no surrogate got through
    assert read_trajectories(tmp_path / "t.jsonl")[0]["action"] == "take ? apple"
