#!/usr/bin/env python
"""Record trajectories of an agent on an env as a chat-format JSONL dataset.

    python tools/collect.py --env ALFWorld-v0 --agent expert --episodes 200 --out data/alfworld-expert.jsonl
    python tools/collect.py --env ToolMath-v0 --agent hf:runs/opd/final --out tm.jsonl
    python tools/collect.py --env WebShop-v0 --agent openai:http://127.0.0.1:8000/v1#teacher --out ws.jsonl
    python tools/collect.py --env MyEnv-v0 --import mypkg.envs --agent mypkg.agents:MyAgent --out my.jsonl

Any agent spec works (``expert``, ``random``, ``hf:<folder-or-hub-name>``,
``tiny:<size>``, ``openai:<base-url>#<model>``, ``package.module:ClassName``).
Each line is one turn: the exact prompt messages the agent saw plus its
completion (``messages``), with ``tools`` for tool tasks, so
``datasets.load_dataset("json", data_files=...)`` and TRL's SFT trainer read
it unchanged (see distill/export.py). Scripted agents' actions are written in
the student format (``<think></think><action>...</action>``, or the tool call).
Only won episodes are kept unless ``--all``; the summary says how many were dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from agents.factory import SPEC_GRAMMAR, canonical_spec  # noqa: E402
from tools._cli import HelpFormatter, add_device, add_max_turns  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="collect.py",
        description=__doc__.split("\n\n")[0],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--env", required=True, metavar="ID", help="registered env id")
    parser.add_argument(
        "--agent", default="expert", metavar="SPEC", help=f"the agent: {SPEC_GRAMMAR}"
    )
    parser.add_argument(
        "--agent-kwargs",
        default="{}",
        metavar="JSON",
        help='options for the agent, e.g. \'{"temperature": 0.4, "max_new_tokens": 128}\'',
    )
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable), e.g. one that registers your own env ids",
    )
    parser.add_argument("--episodes", type=int, default=100, metavar="N", help="episodes to play")
    parser.add_argument(
        "--split", default="train", metavar="NAME", help="split the tasks are drawn from"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seeds the agent and the task draws"
    )
    add_max_turns(parser, "turn cap per episode (default: the env family's)")
    add_device(
        parser, "where hf: and tiny: agents run: cpu, cuda, cuda:N or mps (their device option)"
    )
    parser.add_argument("--all", action="store_true", help="keep failed episodes too")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="PATH", help="JSONL file to write"
    )
    parser.add_argument(
        "--num-envs", type=int, default=4, metavar="N", help="envs played side by side"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.num_envs < 1:
        parser.error("--num-envs must be at least 1")
    if args.max_turns is not None and args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    try:
        args.agent_kwargs = json.loads(args.agent_kwargs)
        if not isinstance(args.agent_kwargs, dict):
            raise ValueError
    except ValueError:
        parser.error(f"--agent-kwargs must be a JSON object, got {args.agent_kwargs!r}")
    if args.device is not None:
        from distill.config import device_problem

        if device_problem(args.device):
            parser.error(f"--device: {device_problem(args.device)}")
        args.agent_kwargs["device"] = args.device
    args.agent = canonical_spec(args.agent)
    return args


def _actor(spec: str, args: argparse.Namespace):
    """(speaker, actor name, teacher actor or None, env kwargs the agent asks for).

    The speaker is the student of the collector: it tokenizes scripted turns (a
    language model speaks for itself; a tiny tokenizer does for everyone else).
    """
    from agents import agent_env_kwargs, make_agent
    from agents.hf import HFAgent
    from distill.rollout import AgentTurns

    agent = make_agent(spec, seed=args.seed, options=args.agent_kwargs)
    kwargs = agent_env_kwargs(agent)
    if isinstance(agent, HFAgent):
        return agent, "student", None, kwargs
    speaker = make_agent("tiny:micro", seed=args.seed)
    if spec == "expert":
        return speaker, "expert", None, {**kwargs, "expert": True}
    if hasattr(agent, "take_turns"):  # a served model
        return speaker, "teacher", agent, kwargs

    def fresh():  # one instance per episode, seeded alike
        return make_agent(spec, seed=args.seed, options=args.agent_kwargs)

    return speaker, "teacher", AgentTurns(speaker, fresh), kwargs


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    import numpy as np

    from agents.openai_agent import ServerError
    from distill.env_defaults import env_defaults
    from distill.export import export_chat_jsonl
    from distill.rollout import RolloutCollector, RolloutRequest
    from envs.imports import import_modules
    from envs.multiagent.selectors import FixedSelector
    from envs.registration import check_env_id, env_class

    try:
        import_modules(args.imports)
        check_env_id(args.env)
        splits = getattr(env_class(args.env), "splits", None)
        if isinstance(splits, tuple | list) and args.split not in splits:
            raise ValueError(
                f"--split: {args.env} has no split {args.split!r}; choose one of {list(splits)}"
            )
        speaker, who, actor, kwargs = _actor(args.agent, args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    cap = args.max_turns or env_defaults(args.env).max_turns or 30
    try:
        collector = RolloutCollector(
            args.env,
            student=speaker,
            teacher=actor,
            num_envs=args.num_envs,
            env_kwargs={**kwargs, "split": args.split},
            mode="sync",
        )
    except (TypeError, ValueError) as error:
        print(f"error: cannot make {args.env}: {error}", file=sys.stderr)
        return 2
    try:
        task_ids = collector.pool.get_attr("task_ids")[0]
        rng = np.random.default_rng(args.seed)
        selector_agents = ("student", "teacher", "expert", "replay")
        requests = [
            RolloutRequest(
                task_id=task_ids[int(rng.integers(len(task_ids)))],
                seed=args.seed + i,
                selector=FixedSelector(who, agents=selector_agents),
                max_turns=cap,
                group=i,
            )
            for i in range(args.episodes)
        ]
        print(f"collecting {args.episodes} episodes of {args.agent} on {args.env} ({args.split})")
        rollouts = collector.collect(requests, progress=None if args.quiet else "episodes")
    except ServerError as error:
        print(f"error: agent {args.agent}: {error}", file=sys.stderr)
        return 3
    finally:
        collector.close()
    prompt = getattr(actor if actor is not None else speaker, "prompt_config", None)
    lines = export_chat_jsonl(
        rollouts, args.out, actors=[who], successful_only=not args.all, prompt=prompt
    )
    won = sum(r.won for r in rollouts)
    kept = len(rollouts) if args.all else won
    dropped = (
        "" if args.all else f"; {len(rollouts) - won} failed episodes dropped (--all keeps them)"
    )
    print(
        f"{won}/{len(rollouts)} episodes won (turn cap {cap}); wrote {lines} turns of {kept} "
        f"episodes to {args.out}{dropped}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
