"""tools/benchmark.py with hf: and tiny: agents, and its per-turn trajectory JSONL."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from agents import make_agent  # noqa: E402
from agents.tiny import save_tiny  # noqa: E402
from agents.trajectory import TRAJECTORY_FIELDS, read_trajectories  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import benchmark  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny(tmp_path_factory.mktemp("models") / "tiny", "tiny", seed=0)


def run(args: list[str]) -> int:
    return benchmark.main([*args, "--no-plot", "--quiet"])


def test_benchmark_with_an_hf_model_writes_results_and_trajectories(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, trajectories = tmp_path / "bench.json", tmp_path / "runs" / "t.jsonl"
    code = run(
        [
            "--env", "WebShop-v0", "--agent", f"hf:{model_dir}", "--agent", "expert",
            "--episodes", "2", "--max-turns", "2", "--batch", "2",
            "--agent-kwargs", '{"max_new_tokens": 8, "temperature": 0.4}',
            "--trajectories", str(trajectories), "--trajectory-ids", "--out", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    report = json.loads(out.read_text())
    rows = {row["agent"]: row for row in report["results"]}
    hf = rows[f"hf:{model_dir}"]["summary"]
    assert hf["episodes"] == 2 and hf["mean_turns"] == 2.0
    assert report["trajectories"] == str(trajectories)
    records = read_trajectories(trajectories)
    model_records = [r for r in records if r["agent"].startswith("hf:")]
    expert_records = [r for r in records if r["agent"] == "expert"]
    assert len(model_records) == 4 and expert_records
    for record in records:
        assert set(TRAJECTORY_FIELDS) <= set(record)
        assert record["env_id"] == "WebShop-v0" and record["turn"] >= 1
    for record in model_records:
        assert record["actor"] == "student" and record["prompt"].startswith("<|im_start|>user")
        assert 1 <= record["completion_tokens"] <= 8
        assert (
            len(record["logprobs"]) == record["completion_tokens"] == len(record["completion_ids"])
        )
        assert record["prompt_tokens"] == len(record["prompt_ids"])
        assert all(value <= 0 for value in record["logprobs"])
    assert {(r["episode"], r["turn"]) for r in model_records} == {(0, 1), (0, 2), (1, 1), (1, 2)}
    for record in expert_records:
        assert (
            record["actor"] == "expert" and record["prompt"] is None and record["logprobs"] is None
        )
    assert "trajectories:" in capsys.readouterr().out


def test_batched_and_sequential_benchmark_runs_agree(model_dir: Path, tmp_path: Path) -> None:
    actions = {}
    for batch in ("1", "2"):
        path = tmp_path / f"t{batch}.jsonl"
        args = [
            "--env", "WebShop-v0", "--agent", f"hf:{model_dir}", "--episodes", "2", "--max-turns", "2",
            "--batch", batch, "--agent-kwargs", '{"max_new_tokens": 6}', "--trajectories", str(path),
            "--out", str(tmp_path / f"b{batch}.json"),
        ]  # fmt: skip
        assert run(args) == 0
        actions[batch] = sorted(
            (r["episode"], r["turn"], r["action"]) for r in read_trajectories(path)
        )
    assert actions["1"] == actions["2"]


def test_tiny_spec_and_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    agent = make_agent("tiny:tiny", seed=1, options={"max_new_tokens": 4})
    assert agent.defaults.max_new_tokens == 4 and agent.seed == 1
    assert (
        run(["--env", "WebShop-v0", "--agent", "tiny:tiny", "--agent-kwargs", '{"bogus": 1}']) == 2
    )
    assert "bogus" in capsys.readouterr().err
    assert run(["--env", "WebShop-v0", "--agent", "tiny:enormous"]) == 2
    assert "unknown tiny size" in capsys.readouterr().err
    assert run(["--env", "WebShop-v0", "--agent", f"hf:{tmp_path / 'missing'}"]) == 2
    assert "cannot load" in capsys.readouterr().err
    code = run(  # scripted agents cannot batch: they play one episode at a time
        ["--env", "WebShop-v0", "--agent", "random", "--batch", "2", "--episodes", "2",
         "--max-turns", "2", "--out", str(tmp_path / "r.json")]
    )  # fmt: skip
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["results"][0]["summary"]["episodes"] == 2
    with pytest.raises(SystemExit):
        benchmark.main(["--agent-kwargs", "[1]"])
    with pytest.raises(SystemExit):
        benchmark.main(["--batch", "0"])
