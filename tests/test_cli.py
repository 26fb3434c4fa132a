"""The tools' --help: one formatter, no "(default: None)" noise, no default said twice."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("tool", ["benchmark", "collect", "distill", "study", "serve"])
def test_help_names_each_default_once_and_never_none(tool: str) -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / f"{tool}.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "(default: None)" not in text
    assert "(default: [])" not in text and "(default: {})" not in text
    for entry in re.split(r" (?=--?\w)", text):  # one flag's help at a time
        assert entry.count("default") <= 1 or "(default:" not in entry, entry


def test_benchmark_takes_max_turns_and_the_old_max_steps_with_a_notice(tmp_path: Path) -> None:
    outputs = []
    for flag in ("--max-turns", "--max-steps"):
        out = tmp_path / f"{flag}.json"
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "benchmark.py"),
                "--env",
                "ToolMath-v0",
                "--agent",
                "random",
                "--episodes",
                "2",
                flag,
                "1",
                "--no-plot",
                "--quiet",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result)
        assert out.is_file()
    assert "note: --max-steps is now --max-turns" in outputs[1].stderr
    assert "--max-steps" not in outputs[0].stderr
