"""The guides' code blocks run as written (docs/writing-an-env.md, docs/writing-an-agent.md)."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def python_blocks(name: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / name).read_text(), flags=re.DOTALL)


def test_writing_an_env_guide_runs_and_its_env_passes_the_checks() -> None:
    blocks = python_blocks("writing-an-env.md")
    assert len(blocks) >= 3
    namespace: dict = {"__name__": "guide_env"}
    try:
        for block in blocks:
            exec(compile(block, "writing-an-env.md", "exec"), namespace)
        env = gym.make("CoinRoom-v0", split="train")
        obs, info = env.reset(options={"task_id": "coin/gold"})
        assert info["admissible_actions"] == ["look", "take gold coin"]
        obs, reward, terminated, truncated, info = env.step("take gold coin")
        assert reward == 0.5 and info["action_type"] == "take"
        with pytest.raises(ValueError, match="unknown task_id"):
            env.reset(options={"task_id": "coin/bronze"})  # a test task, not in train
        env.close()
    finally:
        gym.registry.pop("CoinRoom-v0", None)


@pytest.mark.parametrize("env_id", ["CoinRoom-v0"])
def test_writing_an_agent_guide_runs(
    env_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_namespace: dict = {"__name__": "guide_env"}
    for block in python_blocks("writing-an-env.md")[:2]:  # the env class and its registration
        exec(compile(block, "writing-an-env.md", "exec"), env_namespace)
    # A panel for the guide's env, as section 4 of the env guide describes.
    panel_dir = tmp_path / "panels"
    (panel_dir / env_id.lower()).mkdir(parents=True)
    (panel_dir / env_id.lower() / "test-v1.json").write_text(
        '{"name": "test-v1", "env_id": "CoinRoom-v0", "split": "test", "version": 1, "seed": 0,'
        ' "default": true, "task_ids": ["coin/bronze", "coin/platinum"]}'
    )
    import envs.panels

    monkeypatch.setattr(envs.panels, "PANEL_DIR", panel_dir)
    try:
        namespace: dict = {"__name__": "guide_agent", "ENV_ID": env_id}
        for block in python_blocks("writing-an-agent.md"):
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


def test_multiagent_guide_runs() -> None:
    if "ToolMath-v0" not in gym.registry:
        pytest.skip("ToolMath-v0 is not registered")
    namespace: dict = {"__name__": "guide_multiagent", "ENV_ID": "ToolMath-v0"}
    for block in python_blocks("multiagent.md"):
        exec(compile(block, "multiagent.md", "exec"), namespace)
    assert set(namespace["turns"]) <= {"teacher", "student"} and namespace["turns"]
    assert namespace["won"] == {"task_0": True, "task_1": True}


def test_robustness_guide_runs() -> None:
    blocks = python_blocks("robustness.md")
    assert blocks
    namespace: dict = {"__name__": "guide_robustness"}
    for block in blocks:
        exec(compile(block, "robustness.md", "exec"), namespace)
