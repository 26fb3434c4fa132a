"""The guides' env and agent do what the guides say (docs/writing-an-env.md,
docs/writing-an-agent.md). That every block runs as written is tests/test_docs_snippets.py's
job; these check the behaviour behind them, and the distill commands in a short version."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)


def blocks(name: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)


def write_guide_package(folder: Path) -> None:
    """``coinroom.py`` and its panel, as sections 1 to 3 of the env guide lay them out."""
    code = python_blocks("writing-an-env.md")
    (folder / "coinroom.py").write_text(code[0] + "\n" + code[1])
    panel = json.loads(blocks("writing-an-env.md", "json")[0])
    (folder / "panels" / "coinroom-v0").mkdir(parents=True)
    (folder / "panels" / "coinroom-v0" / "test-v1.json").write_text(json.dumps(panel))


def guide_commands(shrink: dict[str, str] | None = None) -> list[list[str]]:
    """The env guide's shell commands, run as written from the folder holding coinroom.py
    (the project's python and tools by their full paths); ``shrink`` adds --set overrides
    to the distill commands (the default suite's short version)."""
    commands = []
    for block in blocks("writing-an-env.md", "bash"):
        for line in block.strip().splitlines():
            words = shlex.split(line)
            assert words[0] == ".venv/bin/python", line
            words = [sys.executable] + [
                str(ROOT / w) if w.startswith("tools/") else w for w in words[1:]
            ]
            if shrink and "distill.py" in words[1]:
                method = words[words.index("--config") + 1]
                for key, value in shrink.items():
                    if key != "demo_episodes" or method == "sft":
                        words += ["--set", f"{key}={value}"]
            commands.append(words)
    return commands


def run_guide(tmp_path: Path, shrink: dict[str, str] | None) -> list[str]:
    write_guide_package(tmp_path)
    outputs = []
    for command in guide_commands(shrink):
        result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{command}: {result.stderr[-2000:]}"
        outputs.append(result.stdout)
    return outputs


def test_writing_an_env_guide_runs_and_its_env_passes_the_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_guide_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import envs.panels

    monkeypatch.setattr(envs.panels, "_PANEL_DIRS", list(envs.panels._PANEL_DIRS))
    sys.modules.pop("coinroom", None)
    try:
        namespace: dict = {"__name__": "guide_env"}
        exec(compile(python_blocks("writing-an-env.md")[2], "writing-an-env.md", "exec"), namespace)
        env = gym.make("CoinRoom-v0", split="train")
        obs, info = env.reset(options={"task_id": "coin/gold"})
        assert info["admissible_actions"] == ["look", "take gold coin"]
        obs, reward, terminated, truncated, info = env.step("take gold coin")
        assert reward == 0.5 and info["action_type"] == "take"
        with pytest.raises(ValueError, match="unknown task_id"):
            env.reset(options={"task_id": "coin/bronze"})  # a test task, not in train
        env.close()
        assert envs.panels.load_panel("CoinRoom-v0").name == "test-v1"  # its own panel
    finally:
        gym.registry.pop("CoinRoom-v0", None)
        sys.modules.pop("coinroom", None)


SHRINK = {"total_steps": "2", "rollouts_per_step": "2", "demo_episodes": "4", "eval_every": "2"}


def test_the_env_guides_commands_check_benchmark_and_distill_an_outside_env(
    tmp_path: Path,
) -> None:
    """A user's env from outside the repository, with its own panel: contract-checked,
    benchmarked and distilled through the command-line tools with --import."""
    checked, benchmarked, sft, opd = run_guide(tmp_path, SHRINK)
    assert "CoinRoom-v0 keeps the env contract" in checked
    assert re.search(r"CoinRoom-v0\s+test-v1\s+expert\s+2\s+100\.0", benchmarked)
    assert "sft on CoinRoom-v0: student after:  SR" in sft and "(2 episodes)" in sft
    assert "opd on CoinRoom-v0: student after:  SR" in opd
    assert (tmp_path / "runs" / "coinroom-opd" / "final" / "config.json").exists()


@pytest.mark.parametrize("env_id", ["CoinRoom-v0"])
def test_writing_an_agent_guide_runs(
    env_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The guide's env module and its panel, as the env guide lays them out.
    write_guide_package(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    import envs.panels

    monkeypatch.setattr(envs.panels, "_PANEL_DIRS", list(envs.panels._PANEL_DIRS))
    sys.modules.pop("coinroom", None)
    import coinroom  # noqa: F401

    try:
        namespace: dict = {"__name__": "guide_agent"}
        for block in python_blocks("writing-an-agent.md"):
            # The guide names one id; the test plays the guide's own env instead.
            block = re.sub(r'^ENV_ID = "[^"]+"', f'ENV_ID = "{env_id}"', block, flags=re.M)
            exec(compile(block, "writing-an-agent.md", "exec"), namespace)
        agent = namespace["KeywordAgent"]()
        agent.reset("put the bronze coin in the box.", {})
        assert (
            agent.act("", {"admissible_actions": ["look", "take bronze coin"]})
            == "take bronze coin"
        )
        assert namespace["summary"]["episodes"] == 2
    finally:
        gym.registry.pop(env_id, None)
        sys.modules.pop("coinroom", None)
