#!/usr/bin/env python
"""Do N envs in an EnvPool step in parallel? Aggregate steps/s vs the same envs stepped in turn.

Both contenders hold the same N envs of one id (default ScienceWorld-v0, whose
every env is a JVM); ``sync`` steps them one after another in this process,
``async`` sends each its action at once and collects the results (one process
per env). Same tasks, same actions, same run. On 2 cores the ceiling is ~2x (each env's step also needs its
own Python worker's CPU, so expect less).
Usage: ``python benchmarks/bench_pool.py [--env ScienceWorld-v0] [--envs 2] [--steps 200]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from envs.pool import EnvPool  # noqa: E402

ACTIONS = {
    "ScienceWorld-v0": (
        "look around",
        "open door to kitchen",
        "inventory",
        "close door to kitchen",
    ),
}
TASKS = {"ScienceWorld-v0": "boil/0"}  # one task everywhere: both contenders do equal work


def measure(pool: EnvPool, actions: tuple[str, ...], steps: int, task_id: str | None) -> float:
    n = pool.num_envs
    options = {"options": {"task_id": task_id}} if task_id else {}
    pool.reset({i: {"seed": i, **options} for i in range(n)})
    started = time.perf_counter()
    for t in range(steps):
        results = pool.step({i: actions[t % len(actions)] for i in range(n)})
        finished = [i for i, r in results.items() if r[2] or r[3]]
        if finished:
            pool.reset({i: {"seed": i + t, **options} for i in finished})
    return n * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="ScienceWorld-v0")
    parser.add_argument("--envs", type=int, default=2, help="envs in the pool")
    parser.add_argument("--steps", type=int, default=200, help="steps per env per contender")
    args = parser.parse_args()
    actions = ACTIONS.get(args.env, ("look",))
    kwargs = {"admissible_actions": "none"}
    rates = {}
    for mode in ("sync", "async"):
        with EnvPool(args.env, args.envs, env_kwargs=kwargs, mode=mode) as pool:
            measure(pool, actions, 10, TASKS.get(args.env))  # warm-up
            rates[mode] = measure(pool, actions, args.steps, TASKS.get(args.env))
    print(f"{args.env}, {args.envs} envs, {args.steps} steps each\n")
    print(f"{'mode':<8} {'aggregate steps/s':>18} {'x sync':>7}")
    for mode, rate in rates.items():
        print(f"{mode:<8} {rate:>18.0f} {rate / rates['sync']:>7.2f}")
    print(
        f"\nheadline: the async pool steps {rates['async'] / rates['sync']:.2f}x faster than the same envs in turn"
    )


if __name__ == "__main__":
    main()
