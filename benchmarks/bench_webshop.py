#!/usr/bin/env python
"""Steps/s of WebShop-v0, and the memory of 8 env instances in one process next to one.

Speed: whole episodes on the test split (resets included), per policy and
admissible-actions mode, with the catalogue already loaded:

* ``random, full``: a seeded random agent over the full admissible list (the
  list is built every step);
* ``expert, none``: the expert (its plan and next action computed every step);
* ``random, full, cold search``: as the first row with the search cache
  emptied before every step, so every search runs BM25 from scratch.

Memory: resident set size of a fresh process after ``import envs`` and after
making, resetting and stepping 1 or 8 instances; the ``8 unshared`` row gives
each of the 8 instances its own catalogue and index (what upstream does: it
loads the products, goals and search engine per instance), as the same-run
baseline for the sharing.

Targets (issue 4): at least 500 steps/s on 2 cores (upstream's text env runs
about 45 steps/s on this machine, measured once in
/work/shared/notes/benchmarks-offline.md, not in this run); 8 instances cost
less than 1.5x the memory of one.

Usage: ``python benchmarks/bench_webshop.py [--episodes 200]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_STEPS_PER_S = 500.0
UPSTREAM_STEPS_PER_S = 45.0  # benchmarks-offline.md, upstream WebAgentTextEnv on 300 products


def run_episodes(env, agent, episodes: int, *, cold_search: bool = False) -> tuple[int, float]:
    """Play ``episodes`` episodes over the test split; returns (steps, seconds)."""
    catalogue = env.unwrapped.catalogue
    task_ids = env.unwrapped.task_ids
    steps = 0
    start = time.perf_counter()
    for episode in range(episodes):
        obs, info = env.reset(options={"task_id": task_ids[episode % len(task_ids)]})
        agent.reset(info["task"], info)
        done = False
        while not done:
            if cold_search:
                catalogue.index._cache.clear()
            obs, reward, terminated, truncated, info = env.step(agent.act(obs, info))
            steps += 1
            done = terminated or truncated
    return steps, time.perf_counter() - start


def speed_rows(episodes: int) -> list[tuple[str, int, float]]:
    import gymnasium as gym

    import envs  # noqa: F401
    from agents.scripted import ExpertAgent, RandomAgent

    rows = []
    cases = [
        ("random, full", RandomAgent, {"admissible_actions": "full"}, False),
        ("expert, none", ExpertAgent, {"expert": True, "admissible_actions": "none"}, False),
        ("random, full, cold search", RandomAgent, {"admissible_actions": "full"}, True),
    ]
    for name, agent_class, kwargs, cold in cases:
        env = gym.make("WebShop-v0", split="test", **kwargs)
        agent = agent_class(seed=0) if agent_class is RandomAgent else agent_class()
        run_episodes(env, agent, 5, cold_search=cold)  # warm-up: first searches, imports
        agent = agent_class(seed=0) if agent_class is RandomAgent else agent_class()
        steps, seconds = run_episodes(env, agent, episodes, cold_search=cold)
        rows.append((name, steps, seconds))
        env.close()
    return rows


def child_memory(instances: int, shared: bool) -> dict:
    """Run in a fresh process: RSS after import, and after making and stepping the instances."""
    import psutil

    process = psutil.Process()
    import gymnasium as gym

    import envs  # noqa: F401
    from envs.webshop.catalogue import load_shipped

    after_import = process.memory_info().rss
    made = []
    for i in range(instances):
        env = gym.make("WebShop-v0", split="test")
        if not shared:
            # Upstream's layout: every instance loads its own products, goals and index.
            env.unwrapped.catalogue = load_shipped()
        obs, info = env.reset(seed=i)
        for action in ("search[protein bars gluten free]", "click[next >]", "click[< prev]"):
            env.step(action)
        made.append(env)
    return {"after_import": after_import, "after_envs": process.memory_info().rss}


def memory(instances: int, shared: bool) -> dict:
    command = [sys.executable, __file__, "--child", str(instances), "shared" if shared else "own"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="WebShop-v0 speed and memory")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per speed row")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_memory(int(args.child[0]), args.child[1] == "shared")))
        return 0

    print(f"WebShop-v0, {args.episodes} test-split episodes per row (resets included)\n")
    print(f"{'policy, admissible':<28} {'steps':>7} {'seconds':>8} {'steps/s':>9} {'x target':>9}")
    rows = speed_rows(args.episodes)
    for name, steps, seconds in rows:
        rate = steps / seconds
        print(
            f"{name:<28} {steps:>7} {seconds:>8.2f} {rate:>9.0f} {rate / TARGET_STEPS_PER_S:>8.1f}x"
        )
    print(
        f"(target {TARGET_STEPS_PER_S:.0f} steps/s; upstream's text env ~{UPSTREAM_STEPS_PER_S:.0f}"
        " steps/s, from the notes, not this run)\n"
    )

    mib = 1024 * 1024
    one = memory(1, shared=True)
    eight = memory(8, shared=True)
    unshared = memory(8, shared=False)
    print(f"{'instances in one process':<28} {'RSS MiB':>8} {'over import':>12} {'x one':>7}")
    base = one["after_envs"]
    for name, data in (
        ("1", one),
        ("8 (shared catalogue)", eight),
        ("8 unshared (baseline)", unshared),
    ):
        rss = data["after_envs"]
        extra = rss - data["after_import"]
        print(f"{name:<28} {rss / mib:>8.1f} {extra / mib:>12.1f} {rss / base:>6.2f}x")

    rate = rows[0][1] / rows[0][2]
    ratio = eight["after_envs"] / base
    print(
        f"\nWebShop-v0: {rate:.0f} steps/s (random agent, full admissible list) = "
        f"{rate / TARGET_STEPS_PER_S:.1f}x the 500 steps/s target; 8 instances = {ratio:.2f}x "
        f"the memory of one (target < 1.5x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
