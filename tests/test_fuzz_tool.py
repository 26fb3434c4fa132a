"""tools/fuzz_envs.py: finds nothing on our envs, and does find a crash where there is one."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import fuzz_envs  # noqa: E402


def test_the_tool_envs_survive_a_short_fuzz(capsys: pytest.CaptureFixture) -> None:
    code = fuzz_envs.main(["--env", "ToolMath-v0", "--env", "SearchQA-v0", "--tries", "300"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.strip().splitlines()[-1].startswith("600 tries over 2 envs (seed 0): 0 crashes")


def test_the_fuzzer_reports_a_crash(capsys: pytest.CaptureFixture) -> None:
    code = fuzz_envs.main(
        [
            "--import", "tests.faulty_env", "--env", "Faulty-v0", "--tries", "40",
            "--env-kwargs", '{"fail_on_turn": 1}',
        ]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1
    assert "crash: RuntimeError: the backend fell over" in out
    assert " 0 crashes" not in out.splitlines()[-1]


@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["ALFWorld-v0", "WebShop-v0", "FunctionCall-v0"])
def test_a_longer_fuzz_finds_nothing(env_id: str, capsys: pytest.CaptureFixture) -> None:
    assert fuzz_envs.main(["--env", env_id, "--tries", "3000", "--seed", "1"]) == 0
