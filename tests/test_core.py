"""envs.core: the TextEnv base class and TextSpace, on a tiny env defined here."""

from __future__ import annotations

import copy
import multiprocessing as mp

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.core import BackendError, TextEnv, TextSpace, Transition


class CounterEnv(TextEnv):
    """Say 'up' three times to win; 'crash' simulates a broken backend; 'lose' fails the task."""

    splits = ("train", "test")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.task_ids = [f"count/{n}" for n in range(3)]
        self.count = 0

    def _start_task(self, task_id: str) -> tuple[str, str]:
        self.count = 0
        return f"Counter at 0 for {task_id}.", "say up three times"

    def _execute(self, action: str) -> Transition:
        if action == "crash":
            raise BackendError("the counter exploded")
        if action == "lose":
            return Transition("You lose.", score=0.0, terminated=True, action_type="lose")
        if action == "big":
            return Transition("x" * 100_000, score=self._score, action_type="big")
        if action != "up":
            return Transition(
                "Nothing happens.", score=self._score, invalid_action=True, action_type="invalid"
            )
        self.count += 1
        return Transition(
            f"Counter at {self.count}.",
            score=self.count / 3,
            terminated=self.count == 3,
            won=self.count == 3,
            action_type="up",
        )

    def _admissible_actions(self) -> list[str]:
        return ["up", "lose"]

    def _expert_action(self) -> str | None:
        return "up"


def make(**kwargs) -> CounterEnv:
    return CounterEnv(**kwargs)


def test_check_env_passes_on_a_minimal_subclass() -> None:
    check_env(make(), skip_render_check=True)


def test_rewards_are_score_deltas_and_sum_to_the_final_score() -> None:
    env = make(expert=True)
    obs, info = env.reset(seed=0)
    rewards = []
    while True:
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        rewards.append(reward)
        if terminated:
            break
    assert rewards == pytest.approx([1 / 3, 1 / 3, 1 / 3])
    assert sum(rewards) == pytest.approx(info["score"]) == pytest.approx(1.0)
    assert info["won"] and info["turn"] == 3 and info["expert_action"] is None


def test_losing_after_progress_gives_back_the_score() -> None:
    env = make()
    env.reset(seed=0)
    env.step("up")
    obs, reward, terminated, truncated, info = env.step("lose")
    assert terminated and reward == pytest.approx(-1 / 3) and info["score"] == 0.0


def test_step_after_the_end_is_harmless() -> None:
    env = make()
    env.reset(seed=0)
    env.step("lose")
    obs, reward, terminated, truncated, info = env.step("up")
    assert terminated and reward == 0.0 and info["invalid_action"] and "reset()" in obs


def test_backend_error_ends_the_episode_with_the_message_in_info() -> None:
    env = make()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step("crash")
    assert terminated and info["error"] == "the counter exploded" and "exploded" in obs
    assert info["admissible_actions"] == []


def test_long_observations_are_cut_to_the_space() -> None:
    env = make()
    env.reset(seed=0)
    obs, *_ = env.step("big")
    assert len(obs) == env.observation_space.max_length and env.observation_space.contains(obs)


def test_reset_options_and_kwargs_are_validated() -> None:
    env = make()
    with pytest.raises(ValueError, match="unknown options"):
        env.reset(options={"task": "count/1"})
    with pytest.raises(ValueError, match=r"options\['task_id'\] must be a str, not int 7"):
        env.reset(options={"task_id": 7})
    with pytest.raises(ValueError, match="unknown task_id"):
        env.reset(options={"task_id": "count/999"})
    with pytest.raises(ValueError, match="unknown split"):
        make(split="dev")
    with pytest.raises(ValueError, match="admissible_actions"):
        make(admissible_actions="all")
    with pytest.raises(ValueError, match="render_mode"):
        make(render_mode="rgb_array")


def test_admissible_mode_none_skips_the_hook() -> None:
    env = make(admissible_actions="none")
    env._admissible_actions = lambda: pytest.fail("must not be called")  # type: ignore[method-assign]
    _, info = env.reset(seed=0)
    assert info["admissible_actions"] == []


def test_render_ansi_returns_the_last_observation() -> None:
    env = make(render_mode="ansi")
    obs, _ = env.reset(seed=1)
    assert env.render() == obs


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300), st.binary(max_size=50), st.integers(), st.none(), st.lists(st.text())
    )
)
def test_any_action_is_a_valid_step(action) -> None:
    env = make()
    env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(action)
    assert isinstance(obs, str) and obs and env.observation_space.contains(obs)
    assert 0.0 <= info["score"] <= 1.0
    if not isinstance(action, str) or not action.strip():
        assert info["invalid_action"] and reward == 0.0


def test_text_space_shared_memory_round_trip_and_live_view() -> None:
    space = TextSpace(32)
    memory = create_shared_memory(space, n=2, ctx=mp.get_context())
    view = read_from_shared_memory(space, memory, n=2)
    write_to_shared_memory(space, 0, "caf\u00e9 \u2192 \U0001f600", memory)
    write_to_shared_memory(space, 1, "second", memory)
    assert tuple(view) == ("caf\u00e9 \u2192 \U0001f600", "second")
    snapshot = copy.deepcopy(view)
    write_to_shared_memory(space, 1, "new", memory)
    assert view[1] == "new" and snapshot == ("caf\u00e9 \u2192 \U0001f600", "second")


def test_async_vector_env_of_a_text_env() -> None:
    gym.register(id="Counter-test-v0", entry_point=CounterEnv, max_episode_steps=5)
    try:
        vec = gym.make_vec("Counter-test-v0", num_envs=2, vectorization_mode="async")
        obs, infos = vec.reset(seed=0)
        obs, rewards, terminated, truncated, infos = vec.step(("up", "nope"))
        assert obs == ("Counter at 1.", "Nothing happens.")
        assert list(rewards) == pytest.approx([1 / 3, 0.0])
        assert list(infos["invalid_action"]) == [False, True]
        vec.close()
    finally:
        gym.registry.pop("Counter-test-v0", None)
