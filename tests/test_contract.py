"""The environment contract of DESIGN.md, checked on every registered id with the public
checker (``envs.check_env_contract``) that outside env authors run on their own envs,
plus what only the project's own machinery promises (``EnvPool``, trajectory files)."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest
from gymnasium.envs.registration import load_env_creator

from envs.contract import (
    CHECKS,
    HOSTILE_TEXT_ACTIONS,
    ContractError,
    check_clean_output,
    check_env_contract,
    check_info,
    run_check,
)
from envs.core import TextSpace
from envs.pool import EnvPool
from envs.registration import ENV_ENTRIES
from tests.conftest import entry_params

TOOL_IDS = tuple(e.id for e in ENV_ENTRIES if e.entry_point.startswith("envs.tooluse."))


@pytest.mark.parametrize("check", [*CHECKS, "vector"])
@pytest.mark.parametrize("env_id", entry_params())
def test_every_registered_id_keeps_the_contract(env_id: str, check: str) -> None:
    run_check(env_id, check)


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
                check_clean_output(obs, info, name)
                assert "error" not in info, (name, info["error"])
                if terminated or truncated:
                    pool.reset({index: {"seed": index}})
        assert pool.restarts == 0  # no worker died or raised


@pytest.mark.parametrize("env_id", entry_params())
def test_bad_resets_name_the_bad_option_and_leave_the_env_usable(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        # A failed *first* reset (Gymnasium's env checker used to break the env for good).
        with pytest.raises(ValueError, match="unknown task_id 'typo'"):
            env.reset(options={"task_id": "typo"})
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step("look")
        assert isinstance(obs, str) and obs
        check_info(info)
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


class _LeakyEnv(gym.Env):
    """An env that breaks the contract three ways: it crashes on bad actions, forgets
    info keys, and ignores the task it is asked for."""

    observation_space = TextSpace(100)
    action_space = TextSpace(100)
    task_ids = ["a", "b"]

    def __init__(self, **kwargs: object) -> None:
        self.turn = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.turn = 0
        return "start", {"task_id": "a", "score": 0.0}

    def step(self, action):
        self.turn += 1
        if not isinstance(action, str):
            raise TypeError("actions are strings")
        return "ok", 0.0, False, False, {"task_id": "a", "score": 0.0}


def test_the_checker_names_each_broken_rule_in_a_sentence() -> None:
    with pytest.raises(ContractError) as caught:
        check_env_contract(_LeakyEnv, checks=["info", "hostile", "reset", "bad_reset"])
    failures = caught.value.failures
    assert set(failures) == {"info", "hostile", "reset", "bad_reset"}
    assert "lacks the keys" in failures["info"] and "'task'" in failures["info"]
    assert "lacks the keys" in failures["hostile"] or "raised TypeError" in failures["hostile"]
    assert "played another task" in failures["reset"]
    assert "unknown task_id did not raise ValueError" in failures["bad_reset"]
    assert str(caught.value).startswith("_LeakyEnv breaks the env contract in 4 check(s):")


def test_a_contract_keeping_env_passes_and_says_what_ran() -> None:
    assert check_env_contract("WebShop-v0") == [*CHECKS, "vector"]


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
