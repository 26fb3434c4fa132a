"""ScienceWorld-v0: the real simulator through the mentorgym wrapper."""

from __future__ import annotations

import os
import signal
import time

import gymnasium as gym
import psutil
import pytest

import envs  # noqa: F401
from envs.scienceworld.simulator import JavaNotFoundError
from envs.scienceworld.tasks import parse_task_id, task_ids, tasks
from tests.conftest import HAS_JAVA

# One short test variation per topic the default run can afford (gold paths of 4-15 steps).
FAST_GOLD = [
    "lifespan-longest-lived/93",
    "find-non-living-thing/225",
    "chemistry-mix-paint-secondary-color/27",
    "identify-life-stages-2/6",
    "power-component/15",
    "use-thermometer/405",
]


def play_gold(env: gym.Env, task_id: str) -> tuple[float, dict, int]:
    obs, info = env.reset(options={"task_id": task_id})
    total, turns = 0.0, 0
    while True:
        action = info["expert_action"]
        assert action is not None, f"{task_id}: expert ran out of actions at turn {turns}"
        obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        turns += 1
        if terminated or truncated:
            return total, info, turns


def test_split_sizes_match_the_paper() -> None:
    assert len(tasks()) == 30
    assert [len(task_ids(s)) for s in ("train", "dev", "test")] == [3592, 1796, 1819]
    everything = set(task_ids("train")) | set(task_ids("dev")) | set(task_ids("test"))
    assert len(everything) == 3592 + 1796 + 1819  # disjoint splits
    assert parse_task_id("boil/21") == ("boil", 21)
    for bad in ("boil", "boil/x", "nope/1", "boil/30"):
        with pytest.raises(ValueError):
            parse_task_id(bad)


@pytest.mark.java
@pytest.mark.parametrize("task_id", FAST_GOLD)
def test_gold_path_wins(task_id: str, sw_expert_env: gym.Env) -> None:
    total, info, _ = play_gold(sw_expert_env, task_id)
    assert info["won"] and info["score"] == 1.0
    assert total == pytest.approx(1.0)


@pytest.mark.slow
@pytest.mark.parametrize("task", [t.name for t in tasks()])
def test_gold_path_wins_on_every_task(task: str) -> None:
    if not HAS_JAVA:
        pytest.skip("needs a Java runtime")
    variation = next(t for t in tasks() if t.name == task).variations["test"][0]
    env = gym.make(
        "ScienceWorld-v0",
        split="test",
        expert=True,
        admissible_actions="none",
        max_episode_steps=400,
    )
    try:
        total, info, _ = play_gold(env, f"{task}/{variation}")
        assert info["won"] and info["score"] == 1.0 and total == pytest.approx(1.0)
    finally:
        env.close()


@pytest.fixture(scope="module")
def sw_expert_env():
    if not HAS_JAVA:
        pytest.skip("needs a Java runtime")
    env = gym.make("ScienceWorld-v0", split="test", expert=True, admissible_actions="none")
    yield env
    env.close()


@pytest.fixture(scope="module")
def sw_env():
    if not HAS_JAVA:
        pytest.skip("needs a Java runtime")
    env = gym.make("ScienceWorld-v0", split="test")
    yield env
    env.close()


@pytest.mark.java
def test_split_file_matches_the_simulator(sw_env: gym.Env) -> None:
    server = sw_env.unwrapped.simulator.server
    for task in (tasks()[0], tasks()[7], tasks()[-1]):
        server.load(task.name, 0, "", False)
        assert tuple(server.getVariationsTrain()) == task.variations["train"]
        assert tuple(server.getVariationsDev()) == task.variations["dev"]
        assert tuple(server.getVariationsTest()) == task.variations["test"]


@pytest.mark.java
def test_expert_goes_silent_after_a_deviation(sw_expert_env: gym.Env) -> None:
    obs, info = sw_expert_env.reset(options={"task_id": "lifespan-longest-lived/93"})
    assert info["expert_action"] == "open door to outside"
    obs, reward, terminated, truncated, info = sw_expert_env.step("look around")
    assert info["expert_action"] is None


@pytest.mark.java
def test_failing_the_task_terminates_with_score_zero(sw_env: gym.Env) -> None:
    obs, info = sw_env.reset(options={"task_id": "lifespan-longest-lived/93"})
    sw_env.step("open door to outside")
    obs, reward, terminated, truncated, info = sw_env.step("go to outside")
    assert info["score"] == 0.5 and reward == 0.5
    obs, reward, terminated, truncated, info = sw_env.step("focus on agent")
    assert terminated and not info["won"]
    assert info["score"] == 0.0 and reward == -0.5
    assert info["raw_score"] < 0


@pytest.mark.java
def test_admissible_modes_and_action_types() -> None:
    compact = gym.make("ScienceWorld-v0", split="test", admissible_actions="compact")
    full = gym.make("ScienceWorld-v0", split="test", admissible_actions="full")
    none = gym.make("ScienceWorld-v0", split="test", admissible_actions="none")
    try:
        task = {"options": {"task_id": "chemistry-mix-paint-secondary-color/27"}}
        _, info_c = compact.reset(**task)
        assert (
            "open OBJ" in info_c["admissible_actions"]
            and "look around" in info_c["admissible_actions"]
        )
        assert "agent" in info_c["objects"] and all(isinstance(o, str) for o in info_c["objects"])
        _, info_f = full.reset(**task)
        assert len(info_f["admissible_actions"]) > 100
        assert all("OBJ" not in a for a in info_f["admissible_actions"])
        _, info_n = none.reset(**task)
        assert info_n["admissible_actions"] == [] and info_n["objects"] == []

        _, _, _, _, info = compact.step("look at agent")
        assert info["action_type"] == "look at" and not info["invalid_action"]
        _, _, _, _, info = compact.step("xyzzy")
        assert info["action_type"] == "invalid" and info["invalid_action"]
        # The simulator's clarification dialogue: an ambiguous command lists numbered choices.
        obs, _, _, _, info = compact.step("open door")
        if obs.startswith("Ambiguous request"):
            assert info["admissible_actions"][0] == "0"
            obs, _, _, _, info = compact.step("0")
            assert info["action_type"] == "choose" and not info["invalid_action"]
    finally:
        for env in (compact, full, none):
            env.close()


@pytest.mark.java
def test_jvm_is_reused_across_resets_and_heap_capped(sw_env: gym.Env) -> None:
    pid = sw_env.unwrapped.simulator.pid
    for task_id in ("boil/21", "melt/21", "boil/21"):
        sw_env.reset(options={"task_id": task_id})
    assert sw_env.unwrapped.simulator.pid == pid
    command_line = " ".join(psutil.Process(pid).cmdline())
    assert "-Xmx256m" in command_line


@pytest.mark.java
def test_a_killed_jvm_ends_the_episode_and_reset_recovers() -> None:
    env = gym.make("ScienceWorld-v0", split="test")
    try:
        env.reset(options={"task_id": "lifespan-longest-lived/93"})
        old_pid = env.unwrapped.simulator.pid
        os.kill(old_pid, signal.SIGKILL)
        time.sleep(0.2)
        obs, reward, terminated, truncated, info = env.step("open door to outside")
        assert terminated and reward == 0.0
        assert "error" in info and "exited" in info["error"]
        assert "failed" in obs
        obs, info = env.reset(options={"task_id": "lifespan-longest-lived/93"})
        assert env.unwrapped.simulator.pid != old_pid
        obs, reward, terminated, truncated, info = env.step("open door to outside")
        assert obs == "The door is now open."
    finally:
        env.close()
    assert (
        not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == psutil.STATUS_ZOMBIE
    )


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.java
def test_a_frozen_jvm_ends_the_episode_within_the_deadline_and_is_replaced() -> None:
    env = gym.make("ScienceWorld-v0", split="test", timeout_s=3.0)
    try:
        env.reset(options={"task_id": "lifespan-longest-lived/93"})
        old_pid = env.unwrapped.simulator.pid
        os.kill(old_pid, signal.SIGSTOP)  # frozen: alive, but never answers
        started = time.monotonic()
        obs, reward, terminated, truncated, info = env.step("open door to outside")
        assert time.monotonic() - started < 3.0 + 1.0
        assert terminated and reward == 0.0
        assert "stopped answering within 3 s" in info["error"]
        assert _gone(old_pid, within_s=5), "the frozen JVM was left running"
        obs, info = env.reset(options={"task_id": "lifespan-longest-lived/93"})
        assert env.unwrapped.simulator.pid != old_pid
        obs, *_ = env.step("open door to outside")
        assert obs == "The door is now open."
    finally:
        env.close()


@pytest.mark.java
def test_an_env_collected_without_close_stops_its_jvm() -> None:
    import gc

    env = gym.make("ScienceWorld-v0", split="test")
    pid = env.unwrapped.simulator.pid
    del env
    gc.collect()
    assert _gone(pid, within_s=5), "the JVM of a collected env kept running"


def test_missing_java_fails_at_make_with_install_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(JavaNotFoundError, match="apt-get install"):
        gym.make("ScienceWorld-v0")


@pytest.mark.java
def test_bad_kwargs_are_reported_clearly() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("ScienceWorld-v0", split="validation")
    with pytest.raises(ValueError, match="admissible_actions"):
        gym.make("ScienceWorld-v0", admissible_actions="some")
    with pytest.raises(ValueError, match="simplifications"):
        gym.make("ScienceWorld-v0", simplifications="teleport")
    with pytest.raises(ValueError, match="unknown ScienceWorld task names"):
        gym.make("ScienceWorld-v0", tasks=("boiling",))


@pytest.mark.java
def test_tasks_filter_restricts_the_split() -> None:
    env = gym.make("ScienceWorld-v0", split="dev", tasks=("boil", "melt"))
    try:
        ids = env.unwrapped.task_ids
        assert len(ids) == 14 and {i.split("/")[0] for i in ids} == {"boil", "melt"}
        for seed in range(3):
            _, info = env.reset(seed=seed)
            assert info["task_id"] in ids
    finally:
        env.close()
