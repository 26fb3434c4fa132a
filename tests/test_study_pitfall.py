"""The Pitfall study: the smoke preset fills every table cell and plot and resumes; the arms
take their schedule, selectors and rewards from the project's own code."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.schedules import intervention_prob
from distill.study.pitfall import load_pitfall_preset, plan
from distill.study.pitfall_train import (
    ARMS,
    _selectors,
    arm_loss,
    fixed,
    make_policy,
    mentor_rewards,
    play,
    split_tasks,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    import study

    out = tmp_path_factory.mktemp("pitfall")
    page = out / "page.md"
    page.write_text(
        "# S\n\n<!-- pitfall_smoke:begin -->\nold\n<!-- pitfall_smoke:end -->\n\nafter\n"
    )
    threads = torch.get_num_threads()
    try:
        argv = ["--preset", "pitfall_smoke", "--out", str(out / "run"), "--docs", str(page)]
        assert study.main([*argv, "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    return out, page


def test_the_smoke_preset_fills_every_cell_and_plot(smoke) -> None:
    out, page = smoke
    summary = (out / "run" / "summary.md").read_text()
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line]
    cells = [cell.strip() for row in rows for cell in row.strip("|").split("|")]
    assert cells and not [c for c in cells if c in ("", "-") or "nan" in c], summary
    for name in ("OPD (sampled)", "OPD (full vocab)", "teacher turns masked", "constant beta",
                 "SFT on teacher", "GRPO, sparse", "MENTOR f1", "shuffled reference"):  # fmt: skip
        assert f"| {name}" in summary or name in summary, name
    assert (
        summary.count("supported") + summary.count("refuted") + summary.count("not decidable")
        == 6 * 4 + 2 + 4
    )  # every claim under both teachers and sizes, the gap, MENTOR's four
    plots = sorted(p.name for p in (out / "run" / "plots").glob("*.png"))
    expected = [f"pitfall_{t}_{c}.png" for t in ("T1", "T2") for c in ("large", "small")]
    assert plots == sorted([*expected, "pitfall_kl_by_turn.png", "pitfall_mentor.png"])
    text = page.read_text()
    assert "\nold\n" not in text and text.endswith("after\n")
    for name in plots:
        assert f"(page/pitfall_smoke/{name})" in text
        assert (out / "page" / "pitfall_smoke" / name).is_file()
    assert "not run yet" not in summary


def test_a_second_call_runs_nothing_and_reports_the_same(smoke, capsys) -> None:
    import study

    out, _ = smoke
    before = (out / "run" / "results.json").read_text()
    assert study.main(["--preset", "pitfall_smoke", "--out", str(out / "run"), "--quiet"]) == 0
    said = capsys.readouterr().out
    units = len(plan(load_pitfall_preset("pitfall_smoke")))
    assert f"{units} done already, 0 to run" in said
    assert json.loads((out / "run" / "results.json").read_text()) == json.loads(before)
    calls = json.loads((out / "run" / "calls.json").read_text())
    assert len(calls) == 2 and all(c["finished"] for c in calls)


def test_a_bad_preset_is_one_clear_line(tmp_path, capsys) -> None:
    import study

    preset = tmp_path / "p.yaml"
    text = (ROOT / "configs" / "study" / "pitfall_smoke.yaml").read_text()
    preset.write_text(text.replace("guided_opd,", "guided_opdd,"))
    assert study.main(["--preset", str(preset), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"arms \['guided_opdd'\] unknown; choose from", err), err


def test_guided_arms_draw_the_trainers_schedule_and_selectors() -> None:
    for step in (0, 20, 40, 59):
        _, beta = _selectors(ARMS["guided_opd"], step, 60, 4, 0)
        assert beta == intervention_prob(step, 60)  # GuidedOPDConfig's defaults
        _, beta = _selectors(ARMS["guided_constant"], step, 60, 4, 0)
        assert beta == 0.5
    tasks = split_tasks("train", 64)
    student, teacher = make_policy(4, 0), make_policy(4, 1)
    selectors, beta = _selectors(ARMS["guided_opd"], 30, 60, len(tasks), 0)  # beta ~ 0.31
    trace = play(tasks, student, teacher, selectors, 0)
    assert abs(trace.teacher_turn.mean() - beta) < 0.05
    # Masking teacher turns: a batch of teacher turns alone gives no gradient.
    only_teacher = play(tasks, student, teacher, fixed("teacher", len(tasks)), 0)
    student.zero_grad()
    arm_loss(ARMS["guided_masked"], student, teacher, only_teacher).backward()
    assert all(p.grad is None or not p.grad.any() for p in student.parameters())
    # SFT's loss is the NLL of the teacher's moves.
    loss = arm_loss(ARMS["sft"], student, teacher, only_teacher)
    logp = torch.log_softmax(student(torch.from_numpy(only_teacher.features)), -1)
    nll = -logp[np.arange(len(only_teacher.moves)), only_teacher.moves].mean()
    assert torch.allclose(loss, nll)


def test_mentor_arms_score_episodes_with_the_projects_rewards() -> None:
    trace = play(["train/00001"] * 2, None, None, fixed("expert", 2), 0, length=4, max_turns=6)
    moves = [
        [
            ("climb", "jump", "swim", "duck", "rope", "wait")[m]
            for m in trace.moves[trace.episode == k]
        ]
        for k in range(2)
    ]
    assert trace.won.all()
    assert mentor_rewards("grpo_sparse", trace, moves) == [1.0, 1.0]
    exact = mentor_rewards("mentor_exact", trace, moves)
    assert exact == pytest.approx([1.1, 1.1])  # 0.7 correct + 0.3 match + 0.1 no hallucination
    wrong = mentor_rewards("mentor_exact", trace, [["rope"], ["rope"]])
    assert wrong == pytest.approx([0.8, 0.8])
