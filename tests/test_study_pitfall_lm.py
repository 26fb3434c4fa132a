"""The full-stack Pitfall confirmation (kind: pitfall_lm): its presets load and name the arms,
the warm start is chosen closest to the target, states are read right from the observations,
and the smoke preset runs every unit through the trainer, resumes and fills the report."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from distill.study.pitfall_lm import (
    ARMS,
    choose_checkpoint,
    is_lm_preset,
    load_lm_preset,
    state_accuracy,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


@pytest.mark.parametrize("name", ["pitfall_lm", "pitfall_lm_smoke"])
def test_the_presets_load_and_name_the_key_arms(name) -> None:
    assert is_lm_preset(name)
    preset = load_lm_preset(name)
    assert preset.arms == ("opd", "guided_opd", "guided_masked", "sft")
    assert preset.temperature == 1.0  # sampling, as the training rollouts do
    assert preset.units()[:2] == ["teacher", "warm"]
    assert len(preset.units()) == 2 + len(preset.arms) * len(preset.seeds)


def test_the_arms_are_the_trainers_configs() -> None:
    from distill.config import load_config

    for arm, fields in ARMS.items():
        config = load_config(
            None,
            {"env_id": "Pitfall-v0", "student": "micro", "teacher": "micro", **fields,
             "eval_episodes": 0},
        )  # fmt: skip
        assert config.method == fields["method"], arm
    masked = load_config(None, {"env_id": "Pitfall-v0", "student": "micro", "teacher": "micro",
                                **ARMS["guided_masked"], "eval_episodes": 0})  # fmt: skip
    assert masked.teacher_turn_loss == "none" and masked.student_turn_loss == "reverse_kl"


def test_a_bad_preset_is_one_clear_line(tmp_path) -> None:
    text = (ROOT / "configs" / "study" / "pitfall_lm_smoke.yaml").read_text()
    path = tmp_path / "p.yaml"
    path.write_text(text.replace("guided_masked,", "guided_maskd,"))
    with pytest.raises(ValueError, match=r"arms must be a non-empty list from"):
        load_lm_preset(path)
    path.write_text(text.replace("seeds: 1", "seeds: 0"))
    with pytest.raises(ValueError, match="seeds must be a positive integer"):
        load_lm_preset(path)


def test_the_warm_start_is_the_checkpoint_closest_to_the_target() -> None:
    curve = [(0, 0.0, 0.0), (10, 0.0, 20.0), (20, 5.0, 30.0), (30, 15.0, 40.0), (40, 40.0, 60.0)]
    assert choose_checkpoint(curve, 10) == (30, 15.0)  # 5 away either side: the better score
    assert choose_checkpoint(curve, 6) == (20, 5.0)
    assert choose_checkpoint([(0, 0.0, 0.0), (5, 0.0, 10.0), (10, 0.0, 10.0)], 10) == (10, 0.0)
    # 0% is nearer 10% than 30% is, but a student that never wins is no warm start.
    assert choose_checkpoint([(0, 0.0, 0.0), (20, 0.0, 12.0), (40, 30.0, 47.0)], 10) == (40, 30.0)
    with pytest.raises(ValueError, match="no evaluation after step 0"):
        choose_checkpoint([(0, 0.0, 0.0)], 10)


def test_state_accuracy_reads_position_and_pits_from_the_observations() -> None:
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make("Pitfall-v0", split="test", expert=True)
    observation, info = env.reset(seed=3)
    task = info["task_id"]
    steps = []
    wrong = None
    for turn in range(4):
        expert = info["expert_action"]
        if turn == 1:  # a wrong move: into a pit; then rope (right) and the crossing move
            wrong = next(m for m in ("climb", "jump", "swim", "duck") if m != expert)
            move = wrong
        else:
            move = expert
        steps.append(SimpleNamespace(observation=observation, action=move))
        observation, _, _, _, info = env.step(move)
    env.close()
    rollout = SimpleNamespace(task_id=task, state=SimpleNamespace(steps=steps))
    stats = state_accuracy([rollout])
    assert stats["states_on_path"] == 3 and stats["states_off_path"] == 1
    assert stats["acc_off_path"] == 1.0  # rope, in the pit
    assert stats["acc_on_path"] == pytest.approx(2 / 3)  # the wrong move counts against it
    assert stats["offpath"] == 0.25
    assert math.isnan(state_accuracy([])["acc_on_path"])


@pytest.mark.slow  # 15 s on a quiet 2-core machine, about 2 minutes when it is loaded
def test_the_smoke_preset_runs_every_unit_resumes_and_reports(tmp_path, capsys) -> None:
    import study

    page = tmp_path / "page.md"
    page.write_text("# S\n\n<!-- pitfall_lm_smoke:begin -->\nold\n<!-- pitfall_lm_smoke:end -->\n")
    threads = torch.get_num_threads()
    argv = ["--preset", "pitfall_lm_smoke", "--out", str(tmp_path / "run"), "--quiet"]
    try:
        assert study.main([*argv, "--docs", str(page)]) == 0
        first = capsys.readouterr().out
        assert "6 of 6 units left" in first
        results = json.loads((tmp_path / "run" / "results.json").read_text())
        assert not results["missing_units"]
        for arm in ("opd", "guided_opd", "guided_masked", "sft"):
            unit = results["units"][f"{arm}-seed0"]
            assert unit["test"]["episodes"] == 2 and len(unit["test"]["won"]) == 2
            assert (tmp_path / "run" / "arms" / arm / "seed0" / "final" / "config.json").is_file()
        assert (tmp_path / "run" / "warm" / "chosen" / "tokenizer.json").is_file()
        summary = (tmp_path / "run" / "summary.md").read_text()
        assert (
            summary.count("not decidable") + summary.count("supported") + summary.count("refuted")
            >= 3
        )
        assert "MLP study" in summary
        text = page.read_text()
        assert "\nold\n" not in text and "Guided-OPD, teacher turns masked" in text
        assert study.main(argv) == 0  # everything is there: nothing runs again
        assert "0 of 6 units left" in capsys.readouterr().out
        assert json.loads((tmp_path / "run" / "results.json").read_text()) == results
    finally:
        torch.set_num_threads(threads)
