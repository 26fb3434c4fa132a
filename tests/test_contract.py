"""The environment contract of DESIGN.md, checked on every registered id with the public
checker (``envs.check_env_contract``) that outside env authors run on their own envs."""

from __future__ import annotations

import pickle

import gymnasium as gym
import pytest

from envs.contract import CHECKS, ContractError, check_env_contract, run_check
from envs.core import TextSpace
from tests.conftest import entry_params


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
        check_env_contract(_LeakyEnv, checks=["info", "hostile", "reset"])
    failures = caught.value.failures
    assert set(failures) == {"info", "hostile", "reset"}
    assert "lacks the keys" in failures["info"] and "'task'" in failures["info"]
    assert "lacks the keys" in failures["hostile"] or "raised TypeError" in failures["hostile"]
    assert "played another task" in failures["reset"]
    assert str(caught.value).startswith("_LeakyEnv breaks the env contract in 3 check(s):")


def test_a_contract_keeping_env_passes_and_says_what_ran() -> None:
    assert check_env_contract("WebShop-v0") == [*CHECKS, "vector"]
