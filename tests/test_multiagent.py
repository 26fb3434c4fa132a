"""PettingZoo adapters and the turn selectors (issue 7)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test, seed_test

from envs.multiagent import (
    BernoulliSelector,
    FixedSelector,
    MultiTaskParallelEnv,
    PrefixSelector,
    RoundRobinSelector,
    Selector,
    SharedControlEnv,
)
from envs.pool import EnvPool, EnvPoolError
from tests.conftest import entry_params


@pytest.mark.parametrize("env_id", entry_params())
def test_shared_control_env_passes_pettingzoo_api_and_seed_tests(env_id: str) -> None:
    env = SharedControlEnv(env_id, selector=BernoulliSelector(0.5, seed=0))
    try:
        api_test(env, num_cycles=15)
    finally:
        env.close()
    seed_test(lambda: SharedControlEnv(env_id, selector=BernoulliSelector(0.5)), num_cycles=15)


def cheap_entry_params() -> list:
    """Every id, with the ones that start a JVM or compile games per env marked slow."""
    params = []
    for param in entry_params():
        env_id = param.values[0]
        slow = env_id in ("ScienceWorld-v0", "ALFWorld-v0")
        params.append(
            pytest.param(
                env_id, marks=[*param.marks, *([pytest.mark.slow] if slow else [])], id=env_id
            )
        )
    return params


@pytest.mark.parametrize("env_id", cheap_entry_params())
def test_parallel_env_passes_pettingzoo_parallel_tests(env_id: str) -> None:
    env = MultiTaskParallelEnv(env_id, num_tasks=2, mode="async")
    try:
        parallel_api_test(env, num_cycles=8)
    finally:
        env.close()
    parallel_seed_test(lambda: MultiTaskParallelEnv(env_id, num_tasks=2, mode="sync"), num_cycles=8)


def test_bernoulli_selector_frequency_matches_its_probability() -> None:
    for p in (0.1, 0.5, 0.85):
        selector = BernoulliSelector(p, seed=123)
        selector.reset()
        picks = [selector.select(t) for t in range(20_000)]
        frequency = picks.count("teacher") / len(picks)
        assert abs(frequency - p) < 4 * np.sqrt(p * (1 - p) / len(picks)), (p, frequency)


def test_bernoulli_draw_is_per_turn_not_per_episode() -> None:
    selector = BernoulliSelector(0.5, seed=0)
    episodes = []
    for _episode in range(50):
        selector.reset()
        episodes.append([selector.select(t) for t in range(10)])
    mixed = sum(len(set(turns)) == 2 for turns in episodes)
    assert mixed > 40  # a per-rollout draw would give single-actor episodes


def test_bernoulli_extremes_and_schedule_updates() -> None:
    selector = BernoulliSelector(1.0, seed=0)
    assert {selector.select(t) for t in range(100)} == {"teacher"}
    selector.probability = 0.0
    assert {selector.select(t) for t in range(100)} == {"student"}
    with pytest.raises(ValueError):
        selector.probability = 1.5


def test_prefix_selector_hands_over_exactly_after_k_turns() -> None:
    selector = PrefixSelector(3)
    selector.reset(seed=0)
    assert [selector.select(t) for t in range(6)] == ["teacher"] * 3 + ["student"] * 3
    selector.prefix_length = 0
    assert selector.select(0) == "student"
    with pytest.raises(ValueError):
        PrefixSelector(-1)


def test_round_robin_and_fixed_selectors() -> None:
    robin = RoundRobinSelector(("a", "b", "c"))
    assert [robin.select(t) for t in range(5)] == ["a", "b", "c", "a", "b"]
    fixed = FixedSelector("student")
    assert {fixed.select(t) for t in range(5)} == {"student"}
    with pytest.raises(ValueError):
        FixedSelector("nobody")
    for selector in (robin, fixed, PrefixSelector(1), BernoulliSelector(0.3)):
        assert isinstance(selector, Selector)


def test_selectors_are_reproducible_with_a_seed() -> None:
    def run(seed: int) -> list[str]:
        selector = BernoulliSelector(0.4)
        selector.reset(seed)
        return [selector.select(t) for t in range(200)]

    assert run(7) == run(7)
    assert run(7) != run(8)


def _first_python_env_id() -> str:
    """A registered env that is cheap to start (no JVM, no game compilation)."""
    import gymnasium as gym

    for env_id in ("ToolMath-v0", "WebShop-v0"):
        if env_id in gym.registry:
            return env_id
    pytest.skip("no cheap pure-Python env registered")


def test_shared_control_routes_rewards_and_infos_to_the_actor() -> None:
    env_id = _first_python_env_id()
    env = SharedControlEnv(env_id, selector=PrefixSelector(2), expert=True)
    try:
        env.reset(seed=0)
        actors, total = [], {"teacher": 0.0, "student": 0.0}
        for agent in env.agent_iter(max_iter=200):
            observation, reward, terminated, truncated, info = env.last()
            total[agent] += reward
            if terminated or truncated:
                env.step(None)
                continue
            actors.append(agent)
            assert info["next_actor"] == agent
            env.step(info["expert_action"] or "look")
            acted = env.infos[agent]["last_actor"] if agent in env.infos else agent
            assert acted == agent
        assert actors[:2] == ["teacher", "teacher"] and set(actors[2:]) <= {"student"}
        assert env.agents == []
    finally:
        env.close()


def test_env_pool_steps_envs_independently_and_reports_worker_errors() -> None:
    env_id = _first_python_env_id()
    with EnvPool(env_id, 2, mode="async") as pool:
        task_ids = pool.get_attr("task_ids")[0]
        results = pool.reset({0: {"options": {"task_id": task_ids[0]}}, 1: {"seed": 1}})
        assert set(results) == {0, 1} and results[0][1]["task_id"] == task_ids[0]
        stepped = pool.step({1: "look"})
        assert set(stepped) == {1} and stepped[1][4]["turn"] == 1
        with pytest.raises(EnvPoolError, match="unknown task_id"):
            pool.reset({0: {"options": {"task_id": "no/such/task"}}})
        # the worker survives its error
        assert pool.step({0: "look"})[0][4]["turn"] == 1
    with pytest.raises(IndexError):
        EnvPool(env_id, 1, mode="sync").step({3: "look"})


def test_selectors_and_the_distillation_layer_import_without_pettingzoo() -> None:
    # A fresh interpreter, since this test module itself imports PettingZoo.
    code = (
        "import importlib, pkgutil, sys\n"
        "import envs.multiagent.selectors\n"
        "assert 'pettingzoo' not in sys.modules, 'selectors loaded pettingzoo'\n"
        "import distill\n"
        "for info in pkgutil.walk_packages(distill.__path__, 'distill.'):\n"
        "    importlib.import_module(info.name)\n"
        "    assert 'pettingzoo' not in sys.modules, info.name + ' loaded pettingzoo'\n"
        "import envs.multiagent\n"
        "assert 'pettingzoo' not in sys.modules, 'envs.multiagent loaded pettingzoo'\n"
        "envs.multiagent.SharedControlEnv\n"
        "assert 'pettingzoo' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
