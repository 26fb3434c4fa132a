"""Training to a target SR (distill/target.py): stop when reached, keep the best weights if not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import distill.trainer as trainer
from distill.target import BEST_FILE, TargetTracker
from tests.test_distill_methods import small_config


def scripted_evaluations(monkeypatch: pytest.MonkeyPatch, sr_by_step: dict[int, float]) -> list:
    """Replace the panel evaluation by fixed SRs per step; returns the steps evaluated."""
    calls: list[int] = []

    def evaluate(ctx, step):
        calls.append(step)
        sr = sr_by_step[step]
        return {"eval_sr": sr, "eval_score": sr / 2, "eval_episodes": 4}

    monkeypatch.setattr(trainer, "evaluate_student", evaluate)
    return calls


def trained_steps(run_dir: Path) -> list[int]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [row["step"] for row in rows if "loss" in row]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def test_a_run_stops_at_the_first_evaluation_reaching_its_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = scripted_evaluations(monkeypatch, {0: 0.0, 1: 10.0, 2: 30.0, 3: 60.0, 4: 90.0})
    config = small_config("sft", tmp_path, total_steps=6, eval_every=1, target_eval_sr=50)
    summary = trainer.train(config, progress=False)
    assert trained_steps(tmp_path) == [1, 2, 3]
    assert summary["target"] == {"eval_sr": 50.0, "reached": True, "step": 3, "best_eval_sr": 60.0}
    assert summary["final"]["eval_sr"] == 60.0
    # The stopping step is checkpointed even off the checkpoint cadence...
    assert (tmp_path / "checkpoints" / "step-00000003" / "COMPLETE").exists()
    # ...so a resumed run knows it is done and trains nothing more.
    calls.clear()
    summary = trainer.train(config, resume=True, progress=False)
    assert trained_steps(tmp_path) == [1, 2, 3] and calls == []
    assert summary["target"]["reached"] and summary["final"]["eval_sr"] == 60.0


def test_a_run_that_misses_its_target_keeps_the_best_evaluated_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_evaluations(monkeypatch, {0: 0.0, 1: 10.0, 2: 40.0, 3: 20.0})
    config = small_config("sft", tmp_path, total_steps=3, eval_every=1, target_eval_sr=50)
    summary = trainer.train(config, progress=False)
    assert trained_steps(tmp_path) == [1, 2, 3]
    assert summary["target"] == {
        "eval_sr": 50.0,
        "reached": False,
        "step": 2,
        "best_eval_sr": 40.0,
    }
    assert summary["final"] == {"eval_sr": 40.0, "eval_score": 20.0, "eval_episodes": 4.0}
    final = weights(tmp_path / "final")
    best = torch.load(tmp_path / BEST_FILE, weights_only=True)["state"]
    last = weights(tmp_path / "checkpoints" / "step-00000003" / "model")
    assert all(torch.equal(final[name], best[name]) for name in best)
    assert any(not torch.equal(final[name], last[name]) for name in final)


def test_a_resumed_run_remembers_its_best_and_a_fresh_one_forgets_it(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    tracker = TargetTracker.load(tmp_path, 50, resume=False)
    assert not tracker.record(4, {"eval_sr": 30.0}, model)
    assert not tracker.record(8, {"eval_sr": 20.0}, model)  # worse: the best stays step 4
    resumed = TargetTracker.load(tmp_path, 50, resume=True)
    assert (resumed.best_step, resumed.best_sr, resumed.reached) == (4, 30.0, False)
    assert resumed.record(12, {"eval_sr": 50.0}, model)
    fresh = TargetTracker.load(tmp_path, 50, resume=False)
    assert fresh.best_step is None and not (tmp_path / BEST_FILE).exists()


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"target_eval_sr": 0}, "percent"),
        ({"target_eval_sr": 120}, "percent"),
        ({"target_eval_sr": 30, "eval_every": 0}, "needs evaluations"),
        ({"target_eval_sr": 30, "eval_episodes": 0}, "needs evaluations"),
    ],
)
def test_a_target_without_evaluations_is_refused(
    tmp_path: Path, overrides: dict, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        small_config("sft", tmp_path, **overrides)


def test_the_periodic_evaluation_can_rank_on_alfworlds_dev_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """eval_mode=rank: the student picks among the admissible actions in every evaluation
    turn (as the study evaluates ALFWorld students), on dev games apart from train."""
    from agents.hf import HFAgent
    from distill.evaluation import find_panel

    ranked_tasks: list[str] = []
    original = HFAgent._rank_turns

    def spy(self, states, prompts):
        ranked_tasks.extend(state.info["task_id"] for state in states)
        return original(self, states, prompts)

    monkeypatch.setattr(HFAgent, "_rank_turns", spy)
    config = small_config(
        "sft",
        tmp_path,
        env_id="ALFWorld-v0",
        total_steps=1,
        eval_every=1,
        eval_panel="dev-v1",
        eval_episodes=2,
        eval_mode="rank",
        max_turns=2,
        successful_only=False,  # two turns win no game; the demos only need to exist
    )
    summary = trainer.train(config, progress=False)
    assert summary["final"]["eval_episodes"] == 2
    dev = find_panel("ALFWorld-v0", "dev-v1")
    assert set(ranked_tasks) == set(dev.task_ids[:2])
    assert all(task.startswith("dev/") for task in dev.task_ids)


def test_an_unknown_eval_mode_is_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"eval_mode: 'beam' is not one of generate, rank"):
        small_config("sft", tmp_path, eval_mode="beam")
