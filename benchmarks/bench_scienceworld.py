#!/usr/bin/env python
"""Steps/s of ScienceWorld-v0 per admissible-actions mode, against upstream in the same run.

Baselines, measured in this run on the same task and the same action sequence:

* ``upstream env.step``: ``scienceworld.ScienceWorldEnv.step``, which always
  builds the full valid-action list (plus look, inventory, task text);
* ``bare server.step``: the simulator's own step call and nothing else.

Targets (issue 2): with the list off, at least 5x upstream's step rate and
within 10% of the bare step. Also prints each JVM's resident memory, and the
rate with FAST_JVM_OPTIONS (no deterministic identity hashing) to show what
determinism costs.
Usage: ``python benchmarks/bench_scienceworld.py [--steps 500] [--task boil/0]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402, F401
from envs.scienceworld.simulator import FAST_JVM_OPTIONS  # noqa: E402
from envs.scienceworld.tasks import parse_task_id  # noqa: E402

# Actions that never end a boil episode; cycled so every contender runs the same inputs.
ACTIONS = (
    "look around",
    "open door to kitchen",
    "inventory",
    "look at picture",
    "close door to kitchen",
    "look at agent",
    "focus",  # unparsed: exercises the invalid path too
)


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=300, help="timed steps per contender")
    parser.add_argument(
        "--rounds", type=int, default=15, help="contenders alternate in this many rounds"
    )
    parser.add_argument("--task", default="boil/0", help="task id to step in")
    args = parser.parse_args()

    from scienceworld import ScienceWorldEnv

    name, variation = parse_task_id(args.task)
    upstream = ScienceWorldEnv("", envStepLimit=10**9)
    upstream.load(name, variation, "")
    upstream.reset()
    ours = {}
    for mode in ("none", "compact", "full", "none, FAST_JVM_OPTIONS"):
        extra = {"jvm_options": FAST_JVM_OPTIONS} if "FAST" in mode else {}
        admissible = mode.split(",")[0]
        env = gym.make(
            "ScienceWorld-v0", admissible_actions=admissible, max_episode_steps=None, **extra
        )
        env.reset(options={"task_id": args.task})
        ours[mode] = env
    bare_server = ours["none"].unwrapped.simulator.server
    contenders = {
        "upstream ScienceWorldEnv.step (always full list)": upstream.step,
        "bare simulator server.step (same JVM as 'none')": bare_server.step,
        **{f"ScienceWorld-v0 admissible_actions={mode!r}": env.step for mode, env in ours.items()},
    }
    memory = {
        "upstream ScienceWorldEnv.step (always full list)": upstream._gateway.java_process.pid,
        **{
            f"ScienceWorld-v0 admissible_actions={m!r}": e.unwrapped.simulator.pid
            for m, e in ours.items()
        },
    }
    elapsed = dict.fromkeys(contenders, 0.0)
    per_round = max(1, args.steps // args.rounds)
    for step in contenders.values():  # warm-up (JIT)
        for i in range(20):
            step(ACTIONS[i % len(ACTIONS)])
    # Contenders alternate in short blocks, so a noisy neighbour slows all of them alike.
    for _ in range(args.rounds):
        for label, step in contenders.items():
            started = time.perf_counter()
            for i in range(per_round):
                step(ACTIONS[i % len(ACTIONS)])
            elapsed[label] += time.perf_counter() - started
    rates = {label: per_round * args.rounds / seconds for label, seconds in elapsed.items()}
    rss = {label: rss_mb(pid) for label, pid in memory.items()}
    upstream.close()
    for env in ours.values():
        env.close()

    base = rates["upstream ScienceWorldEnv.step (always full list)"]
    bare = rates["bare simulator server.step (same JVM as 'none')"]
    none = rates["ScienceWorld-v0 admissible_actions='none'"]
    print(
        f"task {args.task}, {per_round * args.rounds} steps per contender in {args.rounds} rounds\n"
    )
    print(f"{'contender':<62} {'steps/s':>9} {'x upstream':>11} {'x bare':>8} {'JVM RSS MB':>11}")
    for label, rate in rates.items():
        memory_text = f"{rss[label]:.0f}" if label in rss else "-"
        print(
            f"{label:<62} {rate:>9.0f} {rate / base:>11.2f} {rate / bare:>8.2f} {memory_text:>11}"
        )
    print(
        f"\nheadline: admissible_actions='none' runs {none / base:.1f}x upstream's step "
        f"(target >= 5x) and {none / bare:.2f}x the bare simulator step (target >= 0.90)"
    )


if __name__ == "__main__":
    main()
