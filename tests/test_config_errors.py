"""Every mistaken value a user can give the command-line tools is one line naming what was
wrong and what is allowed: exit status 2, no traceback, no run folder left behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import collect as collect_tool
from tools import distill as distill_tool
from tools import study as study_tool

QUICK = ["--set", "teacher=tiny", "--set", "student=micro"]


def one_error_line(captured: str) -> str:
    lines = [line for line in captured.splitlines() if line.strip()]
    assert len(lines) == 1, captured[-3000:]
    assert lines[0].startswith("error: ") and "Traceback" not in captured
    return lines[0]


# (what the user gave, the --set overrides, what the one line must say)
DISTILL_CASES = [
    ("an unknown env id", ["env_id=NoSuch-v0"], "env_id: unknown env id 'NoSuch-v0'"),
    ("a lower-case env id", ["env_id=toolmath-v0"], "did you mean 'ToolMath-v0'?"),
    ("an env kwarg the env lacks", ["env_kwargs={colour: red}"], "takes no ['colour']"),
    ("an env kwarg value it refuses", ["env_kwargs={levels: [9]}"], "cannot make ToolMath-v0"),
    ("a word for a number", ["total_steps=abc"], "total_steps: expected an integer, got 'abc'"),
    ("a negative learning rate", ["learning_rate=-1"], "learning_rate: must be greater than 0"),
    ("no envs", ["num_envs=0"], "num_envs: 0 is below the minimum 1"),
    ("a missing student folder", ["student=runs/no/such/final"], "student: no model folder"),
    ("a hub name without hf:", ["student=Qwen/Qwen3-0.6B"], "write hf:Qwen/Qwen3-0.6B"),
    ("a device this machine lacks", ["device=cuda:7"], "device: 'cuda:7' is not available"),
    ("an unknown panel", ["eval_panel=valid-v9"], "eval_panel: no panel 'valid-v9'"),
    ("negative steps", ["total_steps=-5"], "total_steps: -5 is below the minimum 1"),
    ("no rollouts", ["rollouts_per_step=0"], "rollouts_per_step: 0 is below the minimum 1"),
    ("an unknown dtype", ["dtype=float8"], "dtype: 'float8' is not one of float32, bfloat16"),
    ("an unknown field", ["total_step=3"], "did you mean 'total_steps'? (tools/distill.py"),
    ("an unknown choice", ["reverse_kl=forward"], "reverse_kl: 'forward' is not one of"),
    ("a served student", ["student=openai:http://x:1/v1#m"], "student: the student is trained"),
    ("a bad server address", ["teacher=openai:ftp://x"], "teacher: base_url must be an http"),
]


@pytest.mark.parametrize(
    "overrides, expected", [c[1:] for c in DISTILL_CASES], ids=[c[0] for c in DISTILL_CASES]
)
def test_a_mistaken_distill_value_is_one_line_and_leaves_no_run_folder(
    overrides: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    run_dir = tmp_path / "run"
    argv = ["--config", "opd", *QUICK, "--out", str(run_dir), "--quiet"]
    for item in overrides:
        argv += ["--set", item]
    assert distill_tool.main(argv) == 2
    assert expected in one_error_line(capsys.readouterr().err)
    assert not run_dir.exists()


def test_a_run_dir_that_is_a_file_and_a_resume_with_nothing_to_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    afile = tmp_path / "notes.txt"
    afile.write_text("mine")
    assert distill_tool.main(["--config", "opd", *QUICK, "--out", str(afile)]) == 2
    assert "is a file; give a folder" in one_error_line(capsys.readouterr().err)
    assert afile.read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert distill_tool.main(["--config", "opd", *QUICK, "--out", str(empty), "--resume"]) == 2
    assert "holds no checkpoint to resume from" in one_error_line(capsys.readouterr().err)
    assert list(empty.iterdir()) == []


def test_a_bad_config_file_and_unknown_method_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert distill_tool.main(["--config", "no-such-config"]) == 2
    assert "no config file no-such-config (shipped configs:" in one_error_line(
        capsys.readouterr().err
    )
    broken = tmp_path / "broken.yaml"
    broken.write_text("method: opd\n  total_steps: [\n")
    assert distill_tool.main(["--config", str(broken)]) == 2
    assert "not valid YAML" in one_error_line(capsys.readouterr().err)
    assert distill_tool.main(["--config", "opd", "--set", "method=dpo"]) == 2
    assert "method: 'dpo' is not one of sft, opd" in one_error_line(capsys.readouterr().err)
    assert distill_tool.main(["--config", "opd", "--import", "no_such_module_x"]) == 2
    assert "cannot import 'no_such_module_x'" in one_error_line(capsys.readouterr().err)


def test_help_fields_lists_each_field_with_its_default_and_description(
    capsys: pytest.CaptureFixture,
) -> None:
    assert distill_tool.main(["--help-fields"]) == 0
    out = capsys.readouterr().out
    assert "    total_steps = 250  # optimiser steps (Guided-OPD: 250)" in out
    assert "[guided_opd]" in out and "    beta_ratio = 0.8  # fraction of total_steps" in out
    assert distill_tool.main(["--help-fields", "mentor"]) == 0
    out = capsys.readouterr().out
    assert "    match = 'exact'" in out and "    env_id = 'ToolMath-v0'" in out


def test_collect_refuses_a_split_the_env_lacks(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "x.jsonl"
    code = collect_tool.main(["--env", "ALFWorld-v0", "--split", "test", "--out", str(out)])
    assert code == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--split: ALFWorld-v0 has no split 'test'; choose one of" in line
    assert not out.exists()


def test_study_refuses_an_unknown_device_and_an_empty_report(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert study_tool.main(["--preset", "smoke", "--device", "gpu", "--out", str(tmp_path)]) == 2
    assert "--device: 'gpu' is not a device" in one_error_line(capsys.readouterr().err)
    empty = tmp_path / "nothing"
    assert study_tool.main(["--preset", "smoke", "--report-only", "--out", str(empty)]) == 2
    assert "holds no evaluated run of preset 'smoke'" in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize(
    "spec, suggestion",
    [
        ("expret", "did you mean 'expert'"),
        ("opeani:http://x/v1#m", "did you mean 'openai:'"),
        ("tiyn:micro", "did you mean 'tiny:'"),
    ],
)
def test_a_mistyped_agent_spec_gets_a_did_you_mean(spec: str, suggestion: str) -> None:
    from agents.factory import check_agent_spec

    with pytest.raises(ValueError, match=suggestion):
        check_agent_spec(spec)


def test_a_mistyped_config_name_gets_a_did_you_mean() -> None:
    from distill.config import ConfigError, config_path

    assert config_path("guided_opd.yaml").name == "guided_opd.yaml"  # bare names work
    with pytest.raises(ConfigError, match="did you mean 'guided_opd'"):
        config_path("guided_op")
