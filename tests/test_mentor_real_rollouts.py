"""MENTOR's composite reward on real rollouts: the env's expert, scored against its own
reference episodes, gets the maximum reward on every task of the ToolMath and
FunctionCall test panels, multi-call turns included (the trainer's own code path:
``distill.methods.mentor.composite_rewards`` with references collected by the run)."""

from __future__ import annotations

import dataclasses

import pytest

from distill.config import load_config
from distill.methods import mentor
from distill.rollout import RolloutCollector, RolloutRequest
from distill.trainer import RunContext
from envs.multiagent.selectors import FixedSelector
from envs.panels import load_panel


def expert_as_student(rollouts):
    """The expert's episodes relabelled as the student's (what the reward scores)."""
    for rollout in rollouts:
        rollout.turns = [dataclasses.replace(t, actor="student") for t in rollout.turns]
    return rollouts


@pytest.mark.parametrize(("env_id", "maximum"), [("ToolMath-v0", 1.1), ("FunctionCall-v0", 1.1)])
def test_the_expert_scored_against_itself_gets_the_maximum_on_every_task(
    env_id: str, maximum: float
) -> None:
    from agents import make_agent

    panel = load_panel(env_id, "test-v1")
    config = load_config(
        None,
        {
            "method": "mentor",
            "env_id": env_id,
            "env_kwargs": {"levels": None} if env_id == "ToolMath-v0" else {},
            "student": "micro",
            "reference": "expert",
            "eval_episodes": 0,
            "group_size": 2,
            "max_turns": 8,
        },
    )
    speaker = make_agent("tiny:micro", options={"prompt": config.prompt_config()})
    collector = RolloutCollector(
        env_id,
        student=speaker,
        num_envs=8,
        env_kwargs={**config.env_settings(), "split": panel.split, "expert": True},
        mode="sync",
    )
    try:
        ctx = RunContext(config, speaker, None, collector, list(panel.task_ids))
        expert = FixedSelector("expert", agents=("student", "expert"))
        requests = [
            RolloutRequest(task, seed=panel.seed_for(i), selector=expert, max_turns=8)
            for i, task in enumerate(panel.task_ids)
        ]
        rollouts = expert_as_student(collector.collect(requests))
        rewards = mentor.composite_rewards(ctx, rollouts)
    finally:
        collector.close()
    assert all(r.won for r in rollouts)
    calls_per_turn = [t.completion.count("<tool_call>") for r in rollouts for t in r.turns]
    if env_id == "ToolMath-v0":
        assert max(calls_per_turn) >= 2, "the panel has no multi-call turn to test"
    below = {r.task_id: reward for r, reward in zip(rollouts, rewards) if reward < maximum - 1e-9}
    assert not below, below
