"""An env that fails (raises, dies, hangs) costs its episode, never the pool, the rollouts or the run.

The env is ``tests.faulty_env:Faulty-v0``, which fails on request.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from agents.trajectory import AgentTurn
from distill.rollout import EnvErrorLimit, RolloutCollector, RolloutRequest
from envs.pool import EnvFailure, EnvPool, EnvPoolError
from tests.faulty_env import ENV_ID


def start(pool: EnvPool, *indices: int) -> None:
    pool.reset({i: {"options": {"task_id": f"faulty/{i}"}} for i in indices})


def test_a_dead_worker_fails_its_env_only_and_is_replaced() -> None:
    with EnvPool(ENV_ID, 2) as pool:
        start(pool, 0, 1)
        results = pool.step({0: "die", 1: "up"}, errors="return")
        assert isinstance(results[0], EnvFailure) and results[0].died
        assert "exited (exit code 7)" in results[0].message
        assert results[1][4]["turn"] == 1  # the other env's result stands
        start(pool, 0)  # a fresh worker replaces the dead one, and plays
        assert pool.restarts == 1
        assert pool.step({0: "up", 1: "up"})[0][4]["score"] == pytest.approx(1 / 3)


def test_a_hung_worker_is_killed_at_the_deadline_and_replaced() -> None:
    with EnvPool(ENV_ID, 1, timeout_s=1.5) as pool:
        start(pool, 0)
        started = time.monotonic()
        with pytest.raises(EnvPoolError, match="gave no answer within 1.5 s") as caught:
            pool.step({0: "hang"})
        assert time.monotonic() - started < 1.5 + 1.0
        assert caught.value.failures[0].died
        start(pool, 0)  # a fresh worker replaces the hung one
        assert pool.restarts == 1
        assert pool.step({0: "up"})[0][4]["turn"] == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_env_that_raises_keeps_its_worker_and_resets(mode: str) -> None:
    with EnvPool(ENV_ID, 2, mode=mode) as pool:
        start(pool, 0, 1)
        results = pool.step({0: "raise", 1: "up"}, errors="return")
        assert isinstance(results[0], EnvFailure) and not results[0].died
        assert results[0].message == "RuntimeError: the backend fell over"
        assert pool.restarts == 0
        with pytest.raises(EnvPoolError, match="the backend fell over") as caught:
            pool.step({0: "raise", 1: "up"})
        assert set(caught.value.failures) == {0} and caught.value.results[1][4]["turn"] == 2
        start(pool, 0)
        assert pool.step({0: "up"})[0][4]["turn"] == 1


# -- rollouts ----------------------------------------------------------------------------


class ScriptedStudent:
    """Plays each task's script (one action per turn), as a language model would act."""

    def __init__(self, scripts: dict[str, list[str]]) -> None:
        self.scripts = scripts

    def take_turns(
        self, states: Sequence[Any], *, seeds: Sequence[int | None] | None = None
    ) -> list[AgentTurn]:
        turns = []
        for state in states:
            script = self.scripts[state.info["task_id"]]
            action = script[min(state.turns_taken, len(script) - 1)]
            turns.append(
                AgentTurn(
                    prompt="p",
                    completion=action,
                    action=action,
                    prompt_ids=[1, 2],
                    completion_ids=[3],
                    logprobs=[-0.5],
                    finish_reason="stop",
                )
            )
        return turns


def collector(scripts: dict[str, list[str]], **kwargs: Any) -> RolloutCollector:
    return RolloutCollector(
        ENV_ID, student=ScriptedStudent(scripts), num_envs=2, env_kwargs={}, **kwargs
    )


def test_a_failing_env_ends_its_episode_with_the_error_and_the_collection_goes_on() -> None:
    scripts = {
        "faulty/0": ["up"],
        "faulty/1": ["up", "die"],
        "faulty/2": ["backend"],
        "faulty/3": ["up", "raise"],
        "faulty/7": ["up"],  # its reset fails
    }
    rollouts_of = collector(scripts)
    try:
        requests = [RolloutRequest(task, seed=0, max_turns=5) for task in scripts]
        rollouts = {r.task_id: r for r in rollouts_of.collect(requests)}
        assert rollouts["faulty/0"].won and rollouts["faulty/0"].error is None
        died = rollouts["faulty/1"]
        assert "exited (exit code 7)" in died.error and died.truncated
        assert [t.action for t in died.turns] == ["up", "die"]
        assert died.turns[0].trained and not died.turns[-1].trained
        assert died.turns[-1].observation.startswith("The environment failed")
        assert died.turns[-1].action_type == "error"
        assert rollouts["faulty/2"].error == "the simulator broke"
        assert rollouts["faulty/3"].error == "RuntimeError: the backend fell over"
        assert rollouts["faulty/7"].error.startswith("reset failed: RuntimeError")
        assert rollouts["faulty/7"].turns == []
        assert rollouts_of.env_errors == 4 and rollouts_of.pool.restarts == 1
        # the next collection plays as if nothing happened
        again = rollouts_of.collect([RolloutRequest("faulty/0", seed=0, max_turns=5)])
        assert again[0].won and rollouts_of.env_errors_in_a_row == 0
    finally:
        rollouts_of.close()


def test_only_repeated_failures_stop_the_collection() -> None:
    scripts = {f"faulty/{n}": ["raise"] for n in range(4)}
    rollouts_of = collector(scripts, max_env_errors=2, mode="sync")
    try:
        requests = [RolloutRequest(task, seed=0, max_turns=5) for task in scripts]
        with pytest.raises(EnvErrorLimit, match=r"3 episodes .* in a row .*max_env_errors=2"):
            rollouts_of.collect(requests)
    finally:
        rollouts_of.close()
    with pytest.raises(ValueError, match="max_env_errors"):
        collector(scripts, max_env_errors=-1, mode="sync")


# -- a training run ----------------------------------------------------------------------


def faulty_run_config(run_dir: Any, **overrides: Any) -> Any:
    from tests.test_distill_methods import small_config

    values = {
        "env_id": ENV_ID,
        "env_kwargs": {"fail_every_reset": 2},
        "eval_every": 0,
        "eval_episodes": 0,
        "total_steps": 2,
        "rollouts_per_step": 4,
        **overrides,
    }
    return small_config("grpo", run_dir, **values)


@pytest.mark.slow
def test_a_training_run_counts_env_failures_per_step_and_goes_on(tmp_path: Any) -> None:
    import json

    from distill.trainer import train

    train(faulty_run_config(tmp_path), progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]
    # Each env resets twice a step and every second reset fails: failures in every step.
    assert all(row["env_errors"] >= 1 for row in rows), [r["env_errors"] for r in rows]
    assert (tmp_path / "final").exists()


@pytest.mark.slow
def test_a_training_run_stops_on_repeated_env_failures(tmp_path: Any) -> None:
    from distill.trainer import train

    config = faulty_run_config(tmp_path, env_kwargs={"fail_every_reset": 1}, max_env_errors=2)
    with pytest.raises(EnvErrorLimit, match="max_env_errors=2"):
        train(config, progress=False)


def test_the_progress_bar_advances_as_each_episode_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    student = ScriptedStudent({"faulty/0": ["up"], "faulty/1": ["noop"]})
    turns_seen: list[int] = []  # the turns played when the bar moved
    played = {"turns": 0}
    take_turns = student.take_turns

    def counting(states: Sequence[Any], **kwargs: Any) -> list[AgentTurn]:
        played["turns"] += 1
        return take_turns(states, **kwargs)

    class Bar(tqdm.auto.tqdm):
        def update(self, n: float | None = 1) -> bool | None:
            turns_seen.append(played["turns"])
            return super().update(n)

    student.take_turns = counting  # type: ignore[method-assign]
    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    rollouts_of = RolloutCollector(ENV_ID, student=student, num_envs=2, env_kwargs={})
    try:
        requests = [RolloutRequest(task, seed=0, max_turns=6) for task in ("faulty/0", "faulty/1")]
        rollouts_of.collect(requests, progress="episodes")
    finally:
        rollouts_of.close()
    # faulty/0 wins after 3 turns; faulty/1 plays to the 6-turn cap: one tick each, when each ends.
    assert turns_seen == [3, 6]


def test_a_pool_started_from_an_unguarded_script_says_why_its_workers_died(tmp_path) -> None:
    """Spawned workers import the main script again; without a main guard they die while
    starting, and the error must say so instead of a bare exit code."""
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "noguard.py"
    script.write_text(
        "from envs.pool import EnvPool\n"
        "pool = EnvPool('ToolMath-v0', num_envs=1, mode='async')\n"
        "pool.close()\n"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert result.returncode != 0
    assert "EnvPoolError" in result.stderr
    assert 'if __name__ == "__main__":' in result.stderr.splitlines()[-1]
