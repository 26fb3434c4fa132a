"""Panel evaluation for the trainer and the study: narrowed panels and the per-turn KL."""

from __future__ import annotations

import pytest

from distill.evaluation import panel_requests, per_turn_kl, summarise_rollouts
from distill.rollout import Rollout, Turn
from envs.evaluation import EpisodeResult, success_and_score, summarise
from envs.panels import Panel
from tests.builders import make_turn

PANEL = Panel(
    name="p",
    env_id="ToolMath-v0",
    split="test",
    version=1,
    seed=100,
    task_ids=("a/L2", "b/L5", "c/L2", "d/L3", "e/L8"),
)


def test_a_narrowed_panel_keeps_each_tasks_reset_seed() -> None:
    requests = panel_requests(PANEL, ["a/L2", "c/L2", "d/L3"], episodes=None, max_turns=4)
    assert [(r.task_id, r.seed) for r in requests] == [("a/L2", 100), ("c/L2", 102), ("d/L3", 103)]
    assert all(r.max_turns == 4 for r in requests)
    first_two = panel_requests(PANEL, ["a/L2", "c/L2", "d/L3"], episodes=2, max_turns=4)
    assert [r.task_id for r in first_two] == ["a/L2", "c/L2"]
    rank_one = panel_requests(
        PANEL, list(PANEL.task_ids), episodes=None, max_turns=4, rank=1, world_size=2
    )
    assert [r.task_id for r in rank_one] == ["b/L5", "d/L3"]
    with pytest.raises(ValueError, match="none of the 5 tasks of panel 'p'"):
        panel_requests(PANEL, ["z"], episodes=None, max_turns=4)


class FixedTeacher:
    """Scores every token of a trajectory with -1.0 (the interface score_with_teacher uses)."""

    def logprobs_trajectories(self, prompts, completions):
        return [[[-1.0] * len(ids) for ids in episode] for episode in completions]


def turn(logprobs: list[float], actor: str = "student") -> Turn:
    return make_turn(
        actor=actor,
        prompt_ids=[1, 2],
        completion_ids=list(range(len(logprobs))),
        sample_logprobs=logprobs,
    )


def test_per_turn_kl_averages_tokens_then_episodes_per_turn_index() -> None:
    long = Rollout("E", "t1", 0, 0, turns=[turn([-1.0, -3.0]), turn([-0.5]), turn([-2.0])])
    short = Rollout("E", "t2", 1, 0, turns=[turn([-1.0]), turn([-1.0, -1.0])], won=True)
    rows = per_turn_kl(FixedTeacher(), [long, short])
    # turn 0: episode means (-2 - -1) = -1 and 0 -> -0.5; turn 1: 0.5 and 0; turn 2: -1.
    assert rows == [
        {"turn": 0, "kl": -0.5, "episodes": 2},
        {"turn": 1, "kl": 0.25, "episodes": 2},
        {"turn": 2, "kl": -1.0, "episodes": 1},
    ]
    assert summarise_rollouts([long, short]) == {"sr": 50.0, "score": 0.0, "episodes": 2}


def test_per_turn_kl_skips_turns_without_student_logprobs() -> None:
    scripted = Rollout("E", "t", 0, 0, turns=[turn([-1.0], actor="expert"), turn([-3.0])])
    scripted.turns[0].sample_logprobs = None
    assert per_turn_kl(FixedTeacher(), [scripted]) == [{"turn": 1, "kl": -2.0, "episodes": 1}]


def test_rollout_summaries_and_benchmark_summaries_give_the_same_figures() -> None:
    outcomes = [(False, 0.1), (False, 0.2), (True, 1.0), (False, 0.7), (True, 1.0)]
    rollouts = [Rollout("E", f"t{i}", i, 0, won=w, score=s) for i, (w, s) in enumerate(outcomes)]
    results = [
        EpisodeResult("E", f"t{i}", i, 1, s, w, 0, 1.0, 0.5, 0.25, False)
        for i, (w, s) in enumerate(outcomes)
    ]
    for k in range(1, len(outcomes) + 1):
        mine, theirs = summarise_rollouts(rollouts[:k]), summarise(results[:k])
        assert (mine["sr"], mine["score"]) == (theirs["success_rate"], theirs["score"])
    assert summarise_rollouts(rollouts)["sr"] == 40.0
    assert summarise_rollouts([]) == {"sr": 0.0, "score": 0.0, "episodes": 0}
    with pytest.raises(ValueError, match="one score per episode"):
        success_and_score([True], [])
