#!/usr/bin/env python
"""Two training runs side by side at one thread each, against one run at two threads.

The study's CPU preset runs its cells one after another, each with torch's
default threads (one per core). Would running two at once, one thread each,
get through the work faster? This runs the same short OPD cell (ToolMath
levels 2-4; by default a fresh ``mini`` student and a fresh ``tiny`` teacher,
so nothing has to be built first; ``--student``/``--teacher`` take trained
model folders, such as a study's warm start and teacher, whose turns are as
long as the study's) both ways, in alternating rounds:

* ``one at 2 threads``: one ``tools/distill.py`` process, ``OMP_NUM_THREADS=2``
  (the baseline: how the study runs cells);
* ``two at 1 thread``: two processes at once, ``OMP_NUM_THREADS=1`` each.

It reports each way's training steps per second (both processes' steps for the
pair), from the runs' own per-step timings after the first steps (process
start-up and model building left out), and the throughput ratio. A ratio of 2
would mean threads buy nothing at this model size; 1 that they scale perfectly.

Run it on an otherwise idle machine: another job's threads change both ways' rates.
Usage: ``python benchmarks/bench_threads.py [--steps 12] [--rounds 2] [--cores 2]
[--student DIR --teacher DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = 2  # first steps left out: caches and allocator warm-up
TIMES = ("time_rollout_s", "time_scoring_s", "time_env_s", "time_optimise_s")


def cell_command(run_dir: Path, steps: int, student: str, teacher: str) -> list[str]:
    settings = {
        "method": "opd",
        "env_id": "ToolMath-v0",
        "env_kwargs": {"levels": [2, 3, 4], "train_tasks": 20000},
        "prompt": {"tool_listing": "compact"},
        "student": student,
        "teacher": teacher,
        "total_steps": steps,
        "rollouts_per_step": 8,
        "num_envs": 8,
        "env_mode": "sync",
        "max_new_tokens": 64,
        "learning_rate": 0.0005,
        "eval_every": 0,
        "eval_episodes": 0,
        "checkpoint_every": 10_000,
        "tensorboard": False,
        "seed": 0,
    }
    command = [sys.executable, str(ROOT / "tools" / "distill.py"), "--quiet"]
    command += ["--config", str(ROOT / "configs" / "opd.yaml"), "--out", str(run_dir)]
    for key, value in settings.items():
        command += ["--set", f"{key}={json.dumps(value)}"]
    return command


def step_seconds(run_dir: Path) -> tuple[float, int]:
    """Seconds and count of the run's steps after the first ``SKIP`` (its own timings)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rows = [row for row in rows if "loss" in row and row["step"] > SKIP]
    if not rows:
        raise SystemExit(f"{run_dir}: no timed steps; pass --steps above {SKIP}")
    return sum(sum(row[key] for key in TIMES) for row in rows), len(rows)


def run_side_by_side(runs: list[Path], steps: int, threads: int, models: tuple[str, str]) -> float:
    """Start one process per run dir at once; steps per second of them all together."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    processes = [
        subprocess.Popen(
            cell_command(run, steps, *models),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for run in runs
    ]
    for process, run in zip(processes, runs):
        _, error = process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"run {run} failed:\n{error.decode()[-2000:]}")
    # Side by side, the runs overlap in time: the pair's rate is the sum of their rates.
    return sum(count / seconds for seconds, count in map(step_seconds, runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="training steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of both ways")
    parser.add_argument("--cores", type=int, default=2, help="threads of the baseline run")
    parser.add_argument(
        "--student",
        default="mini",
        help="a local size (fresh weights) or a model folder, e.g. a study's warm start",
    )
    parser.add_argument("--teacher", default="tiny", help="a local size or a model folder")
    args = parser.parse_args(argv)
    if args.steps <= SKIP:
        parser.error(f"--steps must be above {SKIP}")
    models = (args.student, args.teacher)
    print(
        f"OPD cell, ToolMath-v0 levels 2-4, student {args.student}, teacher {args.teacher}, "
        f"{args.steps} steps; {os.cpu_count()} cores"
    )
    rates: dict[str, list[float]] = {"one": [], "side": []}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        for round_index in range(args.rounds):
            base = Path(folder) / f"round{round_index}"
            rates["one"].append(run_side_by_side([base / "one"], args.steps, args.cores, models))
            pair = [base / f"side{i}" for i in range(args.cores)]
            rates["side"].append(run_side_by_side(pair, args.steps, 1, models))
            print(
                f"round {round_index + 1}: one at {args.cores} threads "
                f"{rates['one'][-1]:.2f} steps/s; {args.cores} at 1 thread "
                f"{rates['side'][-1]:.2f} steps/s together"
            )
    one, side = statistics.median(rates["one"]), statistics.median(rates["side"])
    print(f"one run at {args.cores} threads: {one:.2f} steps/s (baseline)")
    print(f"{args.cores} runs at 1 thread each: {side:.2f} steps/s together")
    print(f"throughput ratio (side by side / baseline): {side / one:.2f}")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
