"""Trajectories export to chat JSONL that `datasets` (and so TRL) read unchanged."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import collect  # noqa: E402


@pytest.mark.parametrize("env_id", ["WebShop-v0", "ToolMath-v0"])
def test_collect_writes_chat_jsonl_that_datasets_loads(env_id: str, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "data.jsonl"
    assert (
        collect.main(["--env", env_id, "--episodes", "3", "--out", str(out), "--num-envs", "2"])
        == 0
    )
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(line["actor"] == "expert" and line["won"] for line in lines)
    for line in lines:
        roles = [m["role"] for m in line["messages"]]
        assert roles[0] in ("system", "user") and roles[-1] == "assistant"
    if env_id == "ToolMath-v0":
        assert "tools" in lines[0] and "<tool_call>" in lines[0]["messages"][-1]["content"]
    else:
        assert "<action>" in lines[0]["messages"][-1]["content"]
    dataset = datasets.load_dataset("json", data_files=str(out), split="train")
    assert len(dataset) == len(lines)
    assert dataset[0]["messages"][-1]["role"] == "assistant"


def test_collect_rejects_bad_arguments(capsys: pytest.CaptureFixture) -> None:
    assert collect.main(["--env", "WebShop-v0", "--agent", "gpt", "--out", "x.jsonl"]) == 2
    assert "unknown agent 'gpt'" in capsys.readouterr().err
    assert collect.main(["--env", "NoSuch-v0", "--out", "x.jsonl"]) == 2
