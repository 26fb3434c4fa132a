"""The five tools share one grammar: the same flag names for the same things, one help
formatter (no "(default: None)" noise, no default said twice), old spellings kept with a
one-line notice, and one-line errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("benchmark", "collect", "distill", "study", "serve")

# The shared vocabulary: each flag, and the tools it belongs to (README's grammar table).
SHARED_FLAGS = {
    "--agent": {"benchmark", "collect"},
    "--agent-kwargs": {"benchmark", "collect"},
    "--env": {"benchmark", "collect", "distill"},
    "--import": {"benchmark", "collect", "distill", "study"},
    "--panel": {"benchmark", "distill"},
    "--split": {"collect", "distill"},
    "--episodes": {"benchmark", "collect", "distill"},
    "--max-turns": {"benchmark", "collect", "distill"},
    "--seed": {"benchmark", "collect", "distill"},
    "--device": {"benchmark", "collect", "distill", "study", "serve"},
    "--out": {"benchmark", "collect", "distill", "study"},
    "--track": {"benchmark", "distill"},
    "--quiet": {"benchmark", "collect", "distill", "study"},
}
# Old or other spellings that no --help may show (they are hidden aliases or never were).
NOT_SHOWN = ("--max-steps", "--run-dir", "--eval-panel", "--model ", "--output", "--outdir")


@pytest.fixture(scope="module")
def helps() -> dict[str, str]:
    texts = {}
    for tool in TOOLS:
        result = subprocess.run(
            [sys.executable, str(ROOT / "tools" / f"{tool}.py"), "--help"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        texts[tool] = " ".join(result.stdout.split())
    return texts


@pytest.mark.parametrize("tool", TOOLS)
def test_help_names_each_default_once_and_never_none(tool: str, helps: dict[str, str]) -> None:
    text = helps[tool]
    assert "(default: None)" not in text
    assert "(default: [])" not in text and "(default: {})" not in text
    for entry in re.split(r" (?=--?\w)", text):  # one flag's help at a time
        assert entry.count("default") <= 1 or "(default:" not in entry, entry


def test_the_same_thing_has_the_same_flag_in_every_tool(helps: dict[str, str]) -> None:
    for flag, tools in SHARED_FLAGS.items():
        having = {
            tool
            for tool, text in helps.items()
            if re.search(rf" {flag}[ ,]", text.partition(" options: ")[2])
        }
        assert having == tools, (flag, having)
    for tool, text in helps.items():
        for old in NOT_SHOWN:
            assert old not in text, (tool, old)


def run_tool(tool: str, *args: str, timeout: float, cwd: Path | None = None):
    """``tools/<tool>.py args`` in a fresh interpreter, as a user runs it; output captured."""
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / f"{tool}.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def test_benchmark_takes_max_turns_and_the_old_max_steps_with_a_notice(tmp_path: Path) -> None:
    outputs = []
    for flag in ("--max-turns", "--max-steps"):
        out = tmp_path / f"{flag}.json"
        result = run_tool(
            "benchmark",
            *("--env", "ToolMath-v0", "--agent", "random", "--episodes", "2", flag, "1"),
            *("--no-plot", "--quiet", "--out", str(out)),
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result)
        assert out.is_file()
    assert "note: --max-steps is now --max-turns" in outputs[1].stderr
    assert "--max-steps" not in outputs[0].stderr


def test_distill_common_flags_set_their_config_fields_over_set(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from distill.config import load_config
    from tools import distill as distill_tool

    args = distill_tool.parse_args(
        ["--config", "sft", "--set", "seed=1", "--seed", "7", "--out", str(tmp_path / "r")]
        + ["--max-turns", "5", "--split", "dev", "--panel", "dev-v1", "--episodes", "3"]
        + ["--device", "cpu", "--track", "none", "--env", "ToolMath-v0"]
    )
    config = load_config(args.config, args.override_values)
    assert (config.seed, config.run_dir, config.max_turns) == (7, str(tmp_path / "r"), 5)
    assert (config.train_split, config.eval_panel, config.eval_episodes) == ("dev", "dev-v1", 3)
    assert (config.device, config.track, config.env_id) == ("cpu", "none", "ToolMath-v0")
    assert capsys.readouterr().err == ""
    # The old spellings still work, each with a one-line notice.
    args = distill_tool.parse_args(["--config", "sft", "--run-dir", "x", "--max-steps", "4"])
    assert args.override_values == {"run_dir": "x", "max_turns": 4}
    assert capsys.readouterr().err.splitlines() == [
        "note: --run-dir is now --out",
        "note: --max-steps is now --max-turns",
    ]


def test_collect_reads_max_steps_and_the_model_prefix_as_their_new_names(
    capsys: pytest.CaptureFixture,
) -> None:
    from tools import collect as collect_tool

    args = collect_tool.parse_args(
        ["--env", "ToolMath-v0", "--agent", "model:runs/x/final", "--out", "o.jsonl"]
        + ["--max-steps", "9", "--device", "cpu"]
    )
    assert (args.agent, args.max_turns) == ("hf:runs/x/final", 9)
    assert args.agent_kwargs == {"device": "cpu"}
    assert capsys.readouterr().err.splitlines() == [
        "note: --max-steps is now --max-turns",
        "note: agent spec 'model:runs/x/final' is now written 'hf:runs/x/final'",
    ]


def test_model_prefix_is_hf_unless_a_model_module_has_that_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from agents.factory import canonical_spec, check_agent_spec

    with pytest.raises(ValueError, match="agent 'hf:/no/such': no model folder /no/such"):
        check_agent_spec("model:/no/such")
    assert canonical_spec("model:/no/such") == "hf:/no/such"
    assert capsys.readouterr().err.count("note:") == 1  # once per spec
    (tmp_path / "model.py").write_text("class Mine:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert canonical_spec("model:Mine") == "model:Mine"  # the user's own model.py wins


def test_serve_says_a_missing_or_unservable_model_in_one_line(
    capsys: pytest.CaptureFixture,
) -> None:
    from tools import serve as serve_tool

    for model, expected in [
        ("/no/such/folder", "error: agent 'hf:/no/such/folder': no model folder /no/such/folder"),
        ("tiny:huge", "unknown size; choose one of"),
        ("openai:http://x:1/v1#m", "cannot serve 'openai:http://x:1/v1#m': give a model folder"),
        (str(ROOT / "README.md"), "is a file; give the model's folder"),
    ]:
        assert serve_tool.main([model, "--port", "0"]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], lines


def test_benchmark_refuses_a_device_this_machine_lacks_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "benchmark.py"), "--device", "cuda:9", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "--device: 'cuda:9' is not available" in result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("tool", ["collect", "distill", "study"])
def test_tools_run_with_the_checkout_on_pythonpath(tool: str) -> None:
    """tools/distill.py must not shadow the distill package when PYTHONPATH names the checkout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / f"{tool}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr


def test_sft_without_a_winning_demonstration_is_one_line(tmp_path: Path) -> None:
    """The expert cannot finish a ToolMath task in one turn: nothing to imitate, said plainly."""
    result = run_tool(
        "distill",
        *("--config", "sft", "--set", "demo_episodes=2", "--max-turns", "1"),
        *("--out", str(tmp_path / "run"), "--quiet"),
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no expert demonstrations were kept: 0 of 2"), last
    assert "successful_only: false" in last and "Traceback" not in result.stderr
