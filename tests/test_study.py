"""The study runner: the smoke preset produces every table cell, resumes, and reports honestly."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path

import pytest
import yaml

from distill.study.presets import METHOD_VARIANTS, load_preset
from distill.study.report import ci95, contrasts, diff_ci95, markdown, summarise

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def smoke_study(tmp_path_factory):
    """The smoke preset run once through the command line, with a docs page to fill."""
    import study
    import torch

    out = tmp_path_factory.mktemp("study")
    page = out / "page.md"
    page.write_text("# Study\n\nintro\n\n<!-- study:begin -->\nold\n<!-- study:end -->\n\nafter\n")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine is shared (see conftest.one_torch_thread)
    try:
        argv = ["--preset", "smoke", "--out", str(out), "--docs", str(page), "--quiet"]
        assert study.main(argv) == 0
    finally:
        torch.set_num_threads(threads)
    return out, page


def test_smoke_preset_produces_every_cell(smoke_study) -> None:
    out, _ = smoke_study
    preset = load_preset("smoke")
    results = json.loads((out / "results.json").read_text())
    labels = {spec.label for family in preset.families for spec in family.eval}
    runs = {(r["family"], r["size"], r["method"], r["seed"]): r for r in results["runs"]}
    for family, size, method, seed in preset.cells():
        for name in (method, "initial"):
            run = runs[(family.name, size, name, seed)]
            assert set(run["panels"]) == labels
            for panel in run["panels"].values():
                assert 0.0 <= panel["sr"] <= 100.0 and 0.0 <= panel["score"] <= 100.0
                assert panel["episodes"] >= 1
        # Every method starts from the size's one warm-started student.
        warm = out / family.name / size / "warmstart" / "final"
        assert (warm / "config.json").is_file()
        cell = json.loads(
            (out / family.name / size / method / f"seed{seed}" / "config.json").read_text()
        )
        assert cell["student"] == str(warm)
        trained = runs[(family.name, size, method, seed)]
        assert trained["timings"]["steps"] >= 1 and trained["timings"]["tokens_trained"] > 0
        assert trained["kl_by_turn"], "the per-turn KL is measured on the in-domain panel"
    # Every method of the study is in the smoke preset, and in the tables.
    assert set(preset.families[0].methods) == set(METHOD_VARIANTS)
    table = (out / "summary.md").read_text()
    for method in METHOD_VARIANTS:
        assert f"| {method} |" in table
    for teacher in results["teachers"].values():
        assert set(teacher["panels"]) == labels


def test_smoke_preset_writes_plots_and_the_docs_block(smoke_study) -> None:
    out, page = smoke_study
    assert (out / "plots" / "tool_success.png").stat().st_size > 1000
    assert (out / "plots" / "tool_kl_by_turn.png").stat().st_size > 1000
    text = page.read_text()
    assert text.startswith("# Study\n\nintro\n") and text.endswith("\n\nafter\n")
    assert "\nold\n" not in text and "python tools/study.py --preset smoke" in text
    assert "![tool_success](page/tool_success.png)" in text
    assert (page.parent / "page" / "tool_success.png").is_file()
    copied = json.loads((page.parent / "page" / "results.json").read_text())
    assert copied["runs"] == json.loads((out / "results.json").read_text())["runs"]


def test_a_finished_study_is_not_trained_again(smoke_study, monkeypatch) -> None:
    """Running the same command again continues: finished cells are neither trained nor evaluated."""
    import study

    from distill.study import runner

    out, _ = smoke_study

    def refuse(*args, **kwargs):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(runner, "_train", refuse)
    monkeypatch.setattr(runner, "_evaluate", refuse)
    before = (out / "results.json").read_text()
    assert study.main(["--preset", "smoke", "--out", str(out), "--quiet"]) == 0
    after = json.loads((out / "results.json").read_text())
    assert after["runs"] == json.loads(before)["runs"]


def test_students_trained_two_at_once_match_those_trained_one_at_a_time(
    smoke_study, tmp_path: Path
) -> None:
    """--jobs 2 runs cells in two worker processes; at the same threads per run (one here)
    every record is the one a one-job run writes, and unfinished work is all that runs."""
    import shutil

    from distill.study import runner

    out, _ = smoke_study
    data = yaml.safe_load((ROOT / "configs" / "study" / "smoke.yaml").read_text())
    family = data["families"]["tool"]
    family["methods"] = ["opd", "grpo"]
    family["method_train"] = {"grpo": family["method_train"]["grpo"]}
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(data))
    preset = load_preset(path)
    assert [cell[2] for cell in preset.cells()] == ["opd", "grpo"]
    again = tmp_path / "out"
    for part in ("teacher", "micro/warmstart"):  # built stages are reused, not rebuilt
        shutil.copytree(out / "tool" / part, again / "tool" / part)
    results = runner.run_study(preset, again, progress=False, jobs=2)
    one_job = json.loads((out / "results.json").read_text())
    expected = {(r["size"], r["method"], r["seed"]): r for r in one_job["runs"]}
    assert len(results["runs"]) == 3  # the initial student and the two cells
    for run in results["runs"]:
        twin = expected[(run["size"], run["method"], run["seed"])]
        assert run["panels"] == twin["panels"], run["method"]
        assert run["kl_by_turn"] == twin["kl_by_turn"], run["method"]
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        runner.run_study(preset, again, progress=False, jobs=0)


def _record_task(folder: str, name: str, needs: str | None) -> None:
    """A task for the scheduler tests: it fails if the task it follows has not finished."""
    if needs is not None and not (Path(folder) / needs).exists():
        raise RuntimeError(f"{name} ran before {needs}")
    (Path(folder) / name).write_text("done")


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_sizes_cells_start_after_its_warm_start_and_failures_stop_the_study(
    tmp_path: Path, jobs: int
) -> None:
    from distill.study import runner

    class Bar:  # counts what the study's progress bar is told
        n = 0

        def update(self, units: int) -> None:
            self.n += units

        def set_postfix_str(self, label: str) -> None:
            pass

    def task(name: str, needs: str | None = None):
        return (name, 1, _record_task, (str(tmp_path), name, needs), {})

    stages = [
        (task("micro"), [task("micro-opd", "micro"), task("micro-sft", "micro")]),
        (task("mini"), [task("mini-opd", "mini")]),
    ]
    bar = Bar()
    runner._run_all(stages, jobs=jobs, bar=bar)
    assert bar.n == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "micro",
        "micro-opd",
        "micro-sft",
        "mini",
        "mini-opd",
    ]
    with pytest.raises(RuntimeError, match="late ran before never"):
        runner._run_all([(task("late", "never"), [])], jobs=jobs, bar=bar)


def test_a_recipe_teacher_is_built_once_and_copied_into_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`teacher: recipe` takes the embedded teacher (built by distill.recipe) into the study."""
    import distill.recipe
    from distill.study import runner

    built = tmp_path / "teachers" / "ToolMath-v0-x"
    (built / "final").mkdir(parents=True)
    (built / "final" / "config.json").write_text("{}")
    (built / "metrics.jsonl").write_text('{"step": 1, "time_optimise_s": 0.5}\n')
    asked = []

    def fake_recipe_teacher(config, *, quiet):
        asked.append((config.env_id, config.env_kwargs, config.method))
        return str(built / "final")

    monkeypatch.setattr(distill.recipe, "ensure_recipe_teacher", fake_recipe_teacher)
    preset_text = (ROOT / "configs" / "study" / "smoke.yaml").read_text()
    start = preset_text.index("    teacher: {")
    end = preset_text.index("    warm_start:")
    path = tmp_path / "recipe.yaml"
    path.write_text(preset_text[:start] + "    teacher: recipe\n" + preset_text[end:])
    family = load_preset(path).families[0]
    runner._build_teacher(tmp_path / "out", family, "cpu", progress=False)
    copied = tmp_path / "out" / "tool" / "teacher"
    assert (copied / "final" / "config.json").read_text() == "{}"
    assert runner._run_timings(copied)["time_optimise_s"] == 0.5
    assert asked == [("ToolMath-v0", {"levels": [2]}, "sft")]


def test_confidence_interval_is_students_t() -> None:
    mean, half = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 / math.sqrt(3))
    assert math.isnan(ci95([5.0])[1])


def test_method_differences_have_welch_intervals() -> None:
    # Against a constant baseline Welch's interval is the one-sample t interval.
    diff, half = diff_ci95([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert diff == 2.0 and half == pytest.approx(ci95([1.0, 2.0, 3.0])[1])
    # Equal variances and sizes: 4 degrees of freedom (t = 2.776).
    diff, half = diff_ci95([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert diff == -1.0 and half == pytest.approx(2.776 * math.sqrt(2 / 3))
    assert math.isnan(diff_ci95([1.0], [2.0, 3.0])[1])


def test_the_claims_table_compares_each_method_with_its_baseline() -> None:
    def run(method: str, seed: int, in_sr: float, out_sr: float) -> dict:
        panels = {
            "T test": {"sr": in_sr, "score": in_sr, "episodes": 10, "domain": "in"},
            "F test": {"sr": out_sr, "score": out_sr, "episodes": 10, "domain": "out"},
        }
        return {"family": "f", "size": "s", "method": method, "seed": seed, "panels": panels}

    runs = [run("opd", k, 10.0 + k, 0.0) for k in range(3)]
    runs += [run("guided_opd", k, 20.0 + k, 0.0) for k in range(3)]
    runs += [run("sft", k, 30.0, 5.0) for k in range(3)]  # no MENTOR run: no MENTOR rows
    rows = {(r["method"], r["baseline"], r["panel"]): r for r in contrasts({"runs": runs})}
    assert set(rows) == {("guided_opd", "opd", "T test"), ("guided_opd", "opd", "F test")}
    gain = rows[("guided_opd", "opd", "T test")]
    assert gain["sr_diff"] == 10.0 and gain["score_relative"] == pytest.approx(10.0 / 11.0)
    assert math.isnan(rows[("guided_opd", "opd", "F test")]["score_relative"])
    table = markdown({"runs": runs, "teachers": {}})
    assert "| f | s | guided_opd - opd | T test | +10.0 ± " in table
    assert "guided_opd - opd | F test" not in table  # both at 0%: one line, not a row
    assert "Both at 0% on every seed (no difference to measure): every pair on F test." in table


def test_silent_pairs_are_named_where_other_pairs_of_the_panel_are_shown() -> None:
    def run(method: str, seed: int, sr: float) -> dict:
        panels = {"T test": {"sr": sr, "score": sr, "episodes": 10, "domain": "in"}}
        return {"family": "f", "size": "s", "method": method, "seed": seed, "panels": panels}

    runs = [run(m, k, 0.0) for m in ("grpo", "mentor_exact") for k in range(3)]
    runs += [run("sft", k, 20.0 + k) for k in range(3)]
    table = markdown({"runs": runs, "teachers": {}})
    assert "| f | s | mentor_exact - sft | T test | -21.0 ± " in table
    assert "(no difference to measure): on T test, mentor_exact - grpo (s)." in table


def test_summary_averages_over_seeds() -> None:
    runs = [
        {
            "family": "f",
            "size": "s",
            "method": "opd",
            "seed": seed,
            "panels": {"E p": {"sr": sr, "score": sr / 2, "episodes": 10, "domain": "in"}},
        }
        for seed, sr in enumerate([10.0, 20.0, 30.0])
    ]
    (row,) = summarise({"runs": runs, "teachers": {}})
    assert row["sr"] == 20.0 and row["score"] == 10.0 and row["seeds"] == 3
    assert row["sr_ci"] == pytest.approx(4.303 * 10 / math.sqrt(3))
    assert "| s | opd | 20.0 ± 24.8 |" in markdown({"runs": runs, "teachers": {}})


def test_bad_presets_are_refused_with_the_reason(tmp_path: Path) -> None:
    good = (ROOT / "configs" / "study" / "smoke.yaml").read_text()
    cases = {
        "methods: [sft, opd": ("methods: [sft, dpo, opd", "unknown method 'dpo'"),
        "students: [micro]": ("students: [giant]", "unknown student size 'giant'"),
        "seeds: [0]": ("seeds: []", "seeds must be a non-empty list"),
    }
    for original, (replacement, message) in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(good.replace(original, replacement, 1))
        with pytest.raises(ValueError, match=message):
            load_preset(path)
    with pytest.raises(FileNotFoundError, match="no study preset 'nope'"):
        load_preset("nope")


@pytest.mark.parametrize("name", ["smoke", "timing", "cpu", "cpu_lowlr", "cpu_alfworld", "gpu"])
def test_every_shipped_preset_makes_valid_run_configs(name: str, tmp_path: Path) -> None:
    from distill.study.runner import (
        _cell_config,
        _teacher_config,
        _warm_start_config,
        initial_student,
        teacher_dir,
    )

    preset = load_preset(name)
    for family in preset.families:
        teacher = _teacher_config(tmp_path, family, "cpu")
        assert teacher.method == "sft" and teacher.env_id == family.env_id
        # a config checks that its models exist: each is made once the step before it ran
        (teacher_dir(tmp_path, family) / "final").mkdir(parents=True)
        for size in family.students:
            warm = _warm_start_config(tmp_path, family, size, "cpu")
            Path(initial_student(tmp_path, family, size)).mkdir(parents=True, exist_ok=True)
            assert warm.method == "sft" and warm.student == size and warm.demonstrator == "expert"
    for family, size, method, seed in preset.cells():
        config = _cell_config(tmp_path, family, size, method, seed, "cpu")
        assert config.student == initial_student(tmp_path, family, size) and config.seed == seed
        assert config.method == METHOD_VARIANTS[method]["method"]
        assert config.teacher.endswith("teacher/final")


def test_a_cell_that_cannot_train_is_reported_not_fatal() -> None:
    runs = [
        {"family": "f", "size": "s", "method": "sft", "seed": 0, "panels": {}, "error": "no demos"},
        {
            "family": "f",
            "size": "s",
            "method": "opd",
            "seed": 0,
            "panels": {"E p": {"sr": 10.0, "score": 5.0, "episodes": 4, "domain": "in"}},
        },
    ]
    table = markdown({"runs": runs, "teachers": {}})
    assert "- f / s / sft / seed 0: no demos" in table
    assert "| s | opd | 10.0 |" in table and "| s | sft |" not in table


ALFWORLD_FAMILY = """
name: games
seeds: [0]
families:
  alfworld:
    env_id: ALFWorld-v0
    games: {train: 3, valid_seen: 3, jobs: 2}
    teacher: {total_steps: 1}
    students: [micro]
    methods: [opd]
    eval:
      - {env_id: ALFWorld-v0, panel: valid_seen-v1, domain: in}
      - {env_id: ToolMath-v0, panel: test-v1, domain: out}
"""


def test_an_alfworld_family_generates_its_games_once_and_every_run_plays_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    import envs.alfworld.generate as generate
    from distill.study import runner

    path = tmp_path / "games.yaml"
    path.write_text(ALFWORLD_FAMILY)
    family = load_preset(path).families[0]
    assert family.games == {"train": 3, "valid_seen": 3, "jobs": 2}
    calls = []

    def fake_generate(out_dir, **kwargs):  # the real generator has its own tests
        calls.append((Path(out_dir), kwargs))
        (Path(out_dir) / "json_2.1.1" / "train").mkdir(parents=True)
        return SimpleNamespace(config={"seed": kwargs["seed"]}, games=[1] * 36)

    monkeypatch.setattr(generate, "generate_dataset", fake_generate)
    out = tmp_path / "study"
    assert runner._ensure_games(out, family, progress=False) >= 0.0
    ((where, kwargs),) = calls
    assert where.name == "games.partial" and not where.exists()  # renamed when complete
    assert kwargs["games_per_type"] == {
        "train": 3,
        "dev": 0,
        "valid_seen": 3,
        "valid_unseen": 0,
    }
    assert kwargs["jobs"] == 2 and kwargs["seed"] == 0
    games = out / "alfworld" / "games"
    assert json.loads((games / "games.json").read_text())["games"] == 36
    assert runner._ensure_games(out, family, progress=False) == 0.0 and len(calls) == 1
    # The teacher, the cells and the family's own panels play the generated games;
    # a panel of another env does not get them.
    assert runner._teacher_config(out, family, "cpu").env_kwargs["data_dir"] == str(games)
    (runner.teacher_dir(out, family) / "final").mkdir(parents=True)  # as if it had trained
    Path(runner.initial_student(out, family, "micro")).mkdir(parents=True, exist_ok=True)
    cell = runner._cell_config(out, family, "micro", "opd", 0, "cpu")
    assert cell.env_kwargs["data_dir"] == str(games)
    in_domain, other = family.eval
    assert runner._games_kwargs(out, family, in_domain) == {"data_dir": str(games)}
    assert runner._games_kwargs(out, family, other) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("env_id: ALFWorld-v0\n    games", "env_id: ToolMath-v0\n    games"), "only ALFWorld-v0"),
        (("{train: 3,", "{train: 3, levels: 2,"), "unknown keys \\['levels'\\]"),
        (("{train: 3,", "{train: -3,"), "non-negative integers"),
        (("teacher: {total_steps: 1}", "teacher: recipe"), "trains its own teacher"),
    ],
)
def test_bad_games_settings_are_refused(tmp_path: Path, change, message) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(ALFWORLD_FAMILY.replace(*change))
    with pytest.raises(ValueError, match=message):
        load_preset(path)


def test_teachers_train_to_the_recipe_target_where_the_env_has_a_dev_panel(
    tmp_path: Path,
) -> None:
    """A ToolMath teacher trains until it solves the recipe's share of dev-v1 (its step
    count a cap); the ALFWorld preset's teacher trains to its own target on ALFWorld's
    dev-v1, ranking; WebShop ships no dev panel, so a recipe teacher there trains fixed steps."""
    from distill.recipe import recipe_config
    from distill.study.runner import _teacher_config, _warm_start_config, teacher_dir

    recipe = recipe_config("ToolMath-v0", env_kwargs={}, prompt={})
    assert recipe.target_eval_sr and recipe.eval_panel == "dev-v1" and recipe.eval_every > 0
    webshop = recipe_config("WebShop-v0", env_kwargs={}, prompt={})
    assert webshop.target_eval_sr is None and webshop.eval_panel is None
    family = load_preset("cpu").families[0]
    assert family.teacher == "recipe"
    teacher = _teacher_config(tmp_path, family, "cpu")
    assert (teacher.target_eval_sr, teacher.eval_panel) == (recipe.target_eval_sr, "dev-v1")
    (teacher_dir(tmp_path, family) / "final").mkdir(parents=True)  # warm starts follow it
    assert _warm_start_config(tmp_path, family, "mini", "cpu").eval_panel == "dev-v1"
    alfworld = load_preset("cpu_alfworld").families[0]
    config = _teacher_config(tmp_path, alfworld, "cpu")
    assert (config.target_eval_sr, config.eval_panel, config.eval_mode) == (33, "dev-v1", "rank")
    assert config.env_kwargs["data_dir"] == str(tmp_path / "alfworld" / "games")
    assert recipe_config("ALFWorld-v0", env_kwargs={}, prompt={}).eval_panel == "dev-v1"
    smoke = load_preset("smoke").families[0]  # evaluations off: fixed steps, no target
    config = _teacher_config(tmp_path, smoke, "cpu")
    assert config.target_eval_sr is None and config.eval_episodes == 0


def test_the_report_says_how_each_teacher_and_warm_start_was_trained() -> None:
    panels = {"T test": {"sr": 10.0, "score": 10.0, "episodes": 10, "domain": "in"}}
    reached = {"eval_sr": 30.0, "reached": True, "step": 3500, "best_eval_sr": 31.7}
    missed = {"eval_sr": 10.0, "reached": False, "step": 2000, "best_eval_sr": 6.7}
    teacher = {
        "panels": panels,
        "timings": {"steps": 3500.0},
        "training": {"target": reached, "eval_curve": [[3000, 20.0], [3500, 31.7]]},
    }
    runs = [
        {
            "family": "f",
            "size": size,
            "method": "initial",
            "seed": seed,
            "panels": panels,
            "timings": {"steps": 2500.0},
            "training": training,
        }
        for size, training in (
            ("micro", {"eval_curve": []}),
            ("mini", {"target": missed, "eval_curve": [[2000, 6.7], [2500, 5.0]]}),
        )
        for seed in range(2)
    ]
    table = markdown({"runs": runs, "teachers": {"f": teacher}})
    assert (
        "| f | teacher | 3,500 | 30% SR: reached at step 3,500 | 3,000: 20.0, 3,500: 31.7 |"
        in table
    )
    assert "| f | micro warm start | 2,500 | fixed steps | - |" in table
    assert "| f | mini warm start | 2,500 | 10% SR: **missed**; best 6.7% (step 2,000) kept |" in (
        table
    )
    assert table.count("mini warm start") == 1  # one row per warm start, not per seed


def test_each_call_records_its_elapsed_time_and_the_header_adds_them_up(
    smoke_study, monkeypatch
) -> None:
    """The header's elapsed time is what the folder's calls took, interrupted ones included."""
    import study

    from distill.study import runner

    out, _ = smoke_study
    calls = json.loads((out / "calls.json").read_text())
    assert calls[0]["finished"] is True and calls[0]["elapsed_s"] > 0
    assert calls[0]["jobs"] == 1

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_study", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study.main(["--preset", "smoke", "--out", str(out), "--quiet"])
    calls = json.loads((out / "calls.json").read_text())
    assert calls[-1]["finished"] is False and calls[-1]["elapsed_s"] >= 0
    total = sum(call["elapsed_s"] for call in calls) / 60
    assert study._elapsed(calls) == (
        f"; elapsed {total:.1f} min in {len(calls)} calls of this folder (1 stopped before the end)"
    )
    killed = calls + [{"started": "2026-11-23T10:00:00+00:00", "jobs": 2}]
    assert "1 killed before it could record its time, not counted" in study._elapsed(killed)
    assert study._elapsed([]) == ""


def test_a_study_header_names_its_elapsed_time(smoke_study) -> None:
    out, _ = smoke_study
    header = (out / "summary.md").read_text().split("\n", 1)[0]
    # Written by the smoke run's call, or by a later call that found every stage done.
    assert re.search(r"; elapsed \d+\.\d min in \d calls? of this folder", header)


def test_a_report_only_call_names_the_jobs_the_students_were_trained_with(
    smoke_study, tmp_path: Path
) -> None:
    """--report-only trains nothing, so its header and docs command take the recorded jobs."""
    import shutil

    import study

    out = tmp_path / "study"
    shutil.copytree(smoke_study[0], out)
    calls = json.loads((out / "calls.json").read_text())
    calls.append({"started": "2026-11-23T10:00:00+00:00", "jobs": 2, "elapsed_s": 60.0})
    (out / "calls.json").write_text(json.dumps(calls))
    page = tmp_path / "page.md"
    argv = ["--preset", "smoke", "--out", str(out), "--report-only", "--quiet", "--docs", str(page)]
    assert study.main(argv) == 0
    header = (out / "summary.md").read_text().split("\n", 1)[0]
    assert "(2 students at once," in header and "summed over 2 at once" in header
    assert "--preset smoke --jobs 2" in page.read_text()
    assert json.loads((out / "calls.json").read_text()) == calls, "a report is not a call"
