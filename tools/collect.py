#!/usr/bin/env python
"""Record trajectories of an agent on an env as a chat-format JSONL dataset.

    python tools/collect.py --env ALFWorld-v0 --agent expert --episodes 200 --out data/alfworld-expert.jsonl
    python tools/collect.py --env ToolMath-v0 --agent teacher:runs/teachers/ToolMath-v0/final --out tm.jsonl

Each line is one turn: the exact prompt messages the agent saw plus its
completion (``messages``), with ``tools`` for tool tasks, so
``datasets.load_dataset("json", data_files=...)`` and TRL's SFT trainer read
it unchanged (see distill/export.py). Scripted agents' actions are written in
the student format (``<think></think><action>...</action>``, or the tool call).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="collect.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", required=True, metavar="ID", help="registered env id")
    parser.add_argument(
        "--agent",
        default="expert",
        help="'expert' (the env's oracle) or 'model:<folder or hub name>' (a language model)",
    )
    parser.add_argument("--episodes", type=int, default=100, help="episodes to play")
    parser.add_argument("--split", default="train", help="split the tasks are drawn from")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-turns", type=int, help="turn cap (default: the env family's)")
    parser.add_argument("--all", action="store_true", help="keep failed episodes too")
    parser.add_argument("--out", type=Path, required=True, help="JSONL file to write")
    parser.add_argument("--num-envs", type=int, default=4, help="envs played side by side")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.agent != "expert" and not args.agent.startswith("model:"):
        parser.error("--agent must be 'expert' or 'model:<folder or hub name>'")
    return args


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    import gymnasium as gym
    import numpy as np

    import envs  # noqa: F401
    from distill.config import TrainConfig
    from distill.export import export_chat_jsonl
    from distill.rollout import RolloutCollector, RolloutRequest
    from distill.trainer import load_agent
    from envs.multiagent.selectors import FixedSelector

    if args.env not in gym.registry:
        print(f"error: unknown env id {args.env!r}", file=sys.stderr)
        return 2
    config = TrainConfig(env_id=args.env, max_turns=args.max_turns, seed=args.seed)
    who = "expert" if args.agent == "expert" else "teacher"
    model = "tiny" if who == "expert" else args.agent.split(":", 1)[1]
    # Scripted turns are tokenized by a model's tokenizer; a tiny one does for text export.
    speaker = load_agent(model, config, seed=args.seed, actor=who)
    collector = RolloutCollector(
        args.env,
        student=speaker,
        teacher=speaker if who == "teacher" else None,
        num_envs=args.num_envs,
        env_kwargs={"split": args.split, "expert": who == "expert"},
        mode="sync",
    )
    try:
        task_ids = collector.pool.get_attr("task_ids")[0]
        rng = np.random.default_rng(args.seed)
        selector_agents = ("student", "teacher", "expert", "replay")
        requests = [
            RolloutRequest(
                task_id=task_ids[int(rng.integers(len(task_ids)))],
                seed=args.seed + i,
                selector=FixedSelector(who, agents=selector_agents),
                max_turns=config.turn_cap(),
                group=i,
            )
            for i in range(args.episodes)
        ]
        from tqdm import tqdm

        rollouts = []
        for start in tqdm(range(0, len(requests), args.num_envs), desc="episodes", unit="batch"):
            rollouts.extend(collector.collect(requests[start : start + args.num_envs]))
    finally:
        collector.close()
    lines = export_chat_jsonl(rollouts, args.out, actors=[who], successful_only=not args.all)
    won = sum(r.won for r in rollouts)
    print(f"{won}/{len(rollouts)} episodes won; wrote {lines} turns to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
