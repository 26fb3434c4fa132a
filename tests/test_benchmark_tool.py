"""tools/benchmark.py: the README's main job, on a small slice."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import HAS_JAVA

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import benchmark  # noqa: E402


@pytest.mark.java
@pytest.mark.skipif(not HAS_JAVA, reason="needs a Java runtime")
def test_benchmark_writes_results_and_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench.json"
    code = benchmark.main(
        [
            "--env",
            "ScienceWorld-v0",
            "--episodes",
            "2",
            "--out",
            str(out),
            "--quiet",
            "--max-turns",
            "90",  # the panel's first task needs 71 expert steps
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    rows = {row["agent"]: row for row in report["results"]}
    assert set(rows) == {"expert", "random"}
    expert = rows["expert"]["summary"]
    assert expert["episodes"] == 2 and expert["success_rate"] == 100.0 and expert["score"] == 100.0
    assert rows["random"]["summary"]["success_rate"] < 100.0
    for episode in rows["expert"]["episodes"]:
        assert {"task_id", "turns", "score", "won", "wall_s"} <= set(episode)
    assert rows["random"]["env_kwargs"]["admissible_actions"] == "full"
    table = capsys.readouterr().out
    assert "ScienceWorld-v0" in table and "SR %" in table
    assert out.with_suffix(".png").stat().st_size > 1000


def test_benchmark_rejects_bad_arguments(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        benchmark.main(["--env", "NoSuchEnv-v0"])
    assert "unknown env id" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        benchmark.main(["--env-kwargs", "[1, 2]"])
    assert benchmark.main(["--env", "ScienceWorld-v0", "--agent", "nosuch"]) == 2


def test_benchmark_lists_ids_and_panels(capsys: pytest.CaptureFixture) -> None:
    assert benchmark.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "ScienceWorld-v0" in out and "test-quick-v1 (default)" in out


def test_benchmark_plays_the_panel_tasks_a_narrowed_env_can_play(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    # ToolMath with levels=[3] plays only the level-3 tasks of the all-level test panel,
    # each with its panel position's seed; no level it cannot play is reset.
    out = tmp_path / "bench.json"
    argv = ["--env", "ToolMath-v0", "--panel", "test-v1", "--agent", "expert", "--episodes", "4"]
    argv += ["--env-kwargs", '{"levels": [3]}', "--out", str(out), "--quiet", "--no-plot"]
    assert benchmark.main(argv) == 0
    episodes = json.loads(out.read_text())["results"][0]["episodes"]
    panel = benchmark.load_panel("ToolMath-v0", "test-v1")
    level3 = [(i, t) for i, t in enumerate(panel.task_ids) if "/L3/" in t][:4]
    assert [(e["task_id"], e["seed"]) for e in episodes] == [
        (t, panel.seed_for(i)) for i, t in level3
    ]
    assert all(e["won"] for e in episodes)
    assert benchmark.main([*argv, "--env-kwargs", '{"levels": [99]}']) == 2
    assert "levels [99]" in capsys.readouterr().err


def test_model_agent_rows_report_real_time_throughput_and_tables(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = ["--env", "FunctionCall-v0", "--episodes", "4", "--batch", "4", "--out", str(out)]
    argv += ["--agent", "tiny:tiny", "--agent-kwargs", '{"max_new_tokens": 6}', "--quiet"]
    assert benchmark.main(argv) == 0
    (row,) = json.loads(out.read_text())["results"]
    summary, episodes = row["summary"], row["episodes"]
    # Four episodes ran at once: the row's real time is below the sum of theirs.
    assert summary["wall_s"] < sum(e["wall_s"] for e in episodes)
    assert summary["episodes_per_s"] == pytest.approx(4 / summary["wall_s"])
    assert summary["turns_per_s"] == pytest.approx(summary["steps"] / summary["wall_s"])
    tokens = sum(e["generated_tokens"] for e in episodes)
    assert 0 < tokens <= 6 * summary["steps"] and summary["generated_tokens"] == tokens
    assert summary["tokens_per_s"] == pytest.approx(tokens / summary["wall_s"])
    csv_lines = out.with_suffix(".csv").read_text().splitlines()
    assert csv_lines[0].startswith("env,panel,agent,") and "tokens_per_s" in csv_lines[0]
    assert csv_lines[1].startswith("FunctionCall-v0,test-v1,tiny:tiny,")
    markdown = out.with_suffix(".md").read_text().splitlines()
    assert markdown[0].startswith("| env | panel | agent |") and "env steps/s" in markdown[0]
    assert markdown[2].startswith("| FunctionCall-v0 | test-v1 | tiny:tiny |")


def test_scripted_rows_have_no_token_rate() -> None:
    from envs.benchmark_report import format_table
    from envs.evaluation import EpisodeResult, summarise

    results = [
        EpisodeResult("E", str(k), k, 2, 1.0, True, 0, 1.0, 0.5, 0.25, False) for k in range(3)
    ]
    summary = summarise(results)  # one at a time: the episodes' times add up
    assert summary["wall_s"] == 3.0 and summary["steps_per_s"] == pytest.approx(8.0)
    assert summary["generated_tokens"] is None
    table = format_table([{"env_id": "E", "panel": "p", "agent": "expert", "summary": summary}])
    assert table.splitlines()[2].split()[-2] == "-"  # tok/s: nothing was generated


def test_the_bar_counts_turns_while_batched_episodes_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # Batched episodes that all run to the turn cap end together: the episode count
    # alone would read 0/2 until the end; the turn count moves every round.
    monkeypatch.setattr(benchmark, "REDRAW_S", 0.0)
    out = tmp_path / "bench.json"
    argv = ["--env", "FunctionCall-v0", "--episodes", "2", "--batch", "2", "--max-turns", "3"]
    argv += ["--agent", "tiny:tiny", "--agent-kwargs", '{"max_new_tokens": 4}', "--no-plot"]
    assert benchmark.main([*argv, "--out", str(out)]) == 0
    steps = json.loads(out.read_text())["results"][0]["summary"]["steps"]
    frames = capsys.readouterr().err.replace("\n", "\r").split("\r")
    counts = [
        int(f.split(" turn")[0].rsplit(" ", 1)[-1]) for f in frames if "0/2" in f and " turn" in f
    ]
    assert counts[:2] == [1, 2] and counts == sorted(counts)  # shown before any episode ended
    last = [f for f in frames if "2/2" in f][-1]
    assert last.rstrip("] ").endswith(f"{steps} turns")
