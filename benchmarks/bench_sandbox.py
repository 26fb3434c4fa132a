#!/usr/bin/env python
"""What the tool sandbox costs: a tool call in the sandbox against the same call made directly.

Contenders, measured in this run on the same arguments, alternating in rounds
so that a busy machine hurts them alike:

* ``direct``: the tool function called in this process (the baseline);
* ``sandbox``: ``Sandbox.call`` on a warm worker (JSON over a pipe, the
  CPU-limit re-arm, the result rendered and sent back);
* ``env step``: one ToolMath-v0 step holding that call (parsing, validation,
  the sandbox, the info dict; a reset every five steps, as the tool-turn cap
  allows);

for ``add`` (the cheapest tool) and SearchQA's ``search`` (a BM25 query over
the shipped corpus). Also times a worker's start (with the math checker's
imports, what a restart after a timeout costs).

Usage: ``python benchmarks/bench_sandbox.py [--calls 2000] [--rounds 5]``.
The last line is the headline: the sandbox's overhead per call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402, F401
from envs.tooluse.calls import format_tool_call  # noqa: E402
from envs.tooluse.mathtools import make_tools  # noqa: E402
from envs.tooluse.sandbox import Sandbox, Toolset  # noqa: E402
from envs.tooluse.searchqa import SHIPPED_CORPUS  # noqa: E402
from envs.tooluse.searchtool import make_search_tools  # noqa: E402
from envs.tooluse.toolmath import CHECKER_TOOLSET, MATH_TOOLSET  # noqa: E402


def per_call_us(function: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls", type=int, default=1000, help="timed calls per contender and round"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="contenders alternate in this many rounds"
    )
    args = parser.parse_args()

    add = make_tools()["add"]
    search_toolset = Toolset(
        "envs.tooluse.searchtool:make_search_tools", {"corpus_path": str(SHIPPED_CORPUS)}
    )
    search = make_search_tools(str(SHIPPED_CORPUS))["search"]
    sandbox = Sandbox(preload=(MATH_TOOLSET, search_toolset))
    env = gym.make("ToolMath-v0", split="test", admissible_actions="none")
    env.reset(seed=0)
    action = format_tool_call("add", {"a": 1234, "b": 5678})
    query = {"query": "Kelburg founded river", "top_k": 3}

    task_id = env.unwrapped.task_ids[0]

    def env_step() -> None:
        # Episodes of five tool turns, as the cap allows; the reset is part of the cost.
        if env.unwrapped._tool_turns == 5:
            env.reset(options={"task_id": task_id})
        env.step(action)

    contenders: dict[str, Callable[[], object]] = {
        "add: direct": lambda: add(1234, 5678),
        "add: sandbox": lambda: sandbox.call(MATH_TOOLSET, "add", {"a": 1234, "b": 5678}),
        "add: env step": env_step,
        "search: direct": lambda: search(**query),
        "search: sandbox": lambda: sandbox.call(search_toolset, "search", query),
    }
    for function in contenders.values():  # warm-up: worker started, caches filled
        function()
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, function in contenders.items():
            calls = args.calls if "search" not in name else max(50, args.calls // 10)
            samples[name].append(per_call_us(function, calls))

    starts = []
    for _ in range(3):
        box = Sandbox(preload=(MATH_TOOLSET, CHECKER_TOOLSET))
        started = time.perf_counter()
        box.call(MATH_TOOLSET, "add", {"a": 1, "b": 1})
        starts.append(time.perf_counter() - started)
        box.close()
    env.close()
    isolation = ", ".join(sandbox.isolation)
    sandbox.close()

    median = {name: statistics.median(values) for name, values in samples.items()}
    print(f"tool-call latency, median of {args.rounds} rounds (isolation: {isolation})")
    print(f"{'contender':<18} {'us/call':>10} {'x direct':>9}")
    for name, value in median.items():
        base = median[name.split(":")[0] + ": direct"]
        print(f"{name:<18} {value:>10.1f} {value / base:>9.1f}")
    print(
        f"{'worker start':<18} {statistics.median(starts) * 1e6:>10.0f}   (math tools + math-verify imports)"
    )
    overhead = median["add: sandbox"] - median["add: direct"]
    print(
        f"sandbox overhead: {overhead:.0f} us per call "
        f"({median['add: sandbox'] / median['add: direct']:.0f}x a direct add; "
        f"{median['search: sandbox'] / median['search: direct']:.2f}x a direct BM25 search)"
    )


if __name__ == "__main__":
    main()
