#!/usr/bin/env python
"""Rollout throughput and teacher-scoring speed of ``HFAgent`` on CPU, offline.

Two measurements, each against a baseline measured in the same run:

1. **Rollouts**: one ``HFAgent`` (a random ``small`` Qwen3 from
   ``agents.tiny``) plays ``--envs`` WebShop-v0 episodes for ``--turns`` turns,
   first one episode at a time (``act``), then all at once (``act_batch``).
   Sampling is seeded per episode and turn, so both runs generate the same
   tokens; the rate is completion tokens per second, env steps included.
2. **Scoring**: ``--trajectories`` episodes of ``--traj-turns`` turns in the
   chat layout (each prompt extends the previous prompt and completion) are
   scored per turn (``logprobs``, batched) and per trajectory
   (``logprobs_trajectories``, one forward pass per trajectory); the results
   must agree to 1e-4.

Prints a table; the last line is the headline. Example::

    python benchmarks/bench_rollout.py --threads 1          # small model, 8 envs, ~4 minutes
    python benchmarks/bench_rollout.py --size tiny --turns 2 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gymnasium as gym  # noqa: E402
import torch  # noqa: E402

import envs  # noqa: E402
from agents.hf import HFAgent  # noqa: E402
from agents.prompts import EpisodeState  # noqa: E402
from agents.tiny import build_tiny, count_parameters  # noqa: E402

gym.register_envs(envs)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small", help="agents.tiny size (tiny, small, base)")
    parser.add_argument("--env", default="WebShop-v0")
    parser.add_argument("--envs", type=int, default=8, help="episodes played together")
    parser.add_argument("--turns", type=int, default=1, help="turns per episode")
    parser.add_argument(
        "--max-new-tokens", type=int, default=512, help="the agent's default and the papers' cap"
    )
    parser.add_argument("--trajectories", type=int, default=3)
    parser.add_argument("--traj-turns", type=int, default=10)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="alternate the two cases this many times and keep each one's fastest run "
        "(other work on the machine slows runs unevenly)",
    )
    return parser.parse_args()


def make_envs(env_id: str, n: int, admissible: str) -> list[gym.Env]:
    return [gym.make(env_id, split="test", admissible_actions=admissible) for _ in range(n)]


def task_ids(env: gym.Env, n: int) -> list[str]:
    return list(env.unwrapped.task_ids[:n])


def rollout_sequential(
    agent: HFAgent, envs_: list[gym.Env], tasks: list[str], turns: int
) -> tuple[int, float]:
    tokens, started = 0, time.perf_counter()
    agent.restart()
    for env, task in zip(envs_, tasks):
        observation, info = env.reset(seed=0, options={"task_id": task})
        agent.reset(info["task"], info)
        for _ in range(turns):
            action = agent.act(observation, info)
            tokens += len(agent.last_turn.completion_ids)
            observation, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
    return tokens, time.perf_counter() - started


def rollout_batched(
    agent: HFAgent, envs_: list[gym.Env], tasks: list[str], turns: int
) -> tuple[int, float]:
    tokens, started = 0, time.perf_counter()
    agent.restart()
    pairs = [env.reset(seed=0, options={"task_id": task}) for env, task in zip(envs_, tasks)]
    live = list(range(len(envs_)))
    for _ in range(turns):
        actions = agent.act_batch(
            [pairs[k][0] for k in live], [pairs[k][1] for k in live], slots=live
        )
        tokens += sum(len(turn.completion_ids) for turn in agent.last_turns)
        still = []
        for k, action in zip(live, actions):
            observation, _, terminated, truncated, info = envs_[k].step(action)
            pairs[k] = (observation, info)
            if not (terminated or truncated):
                still.append(k)
        live = still
        if not live:
            break
    return tokens, time.perf_counter() - started


def chat_trajectories(
    agent: HFAgent, envs_: list[gym.Env], tasks: list[str], turns: int
) -> tuple[list[list[list[int]]], list[list[list[int]]]]:
    """Episodes in the chat layout with scripted completions, as (prompt ids, completion ids)."""
    agent.prompt_config.history = "chat"
    prompts_all, completions_all = [], []
    for number, (env, task) in enumerate(zip(envs_, tasks)):
        observation, info = env.reset(seed=0, options={"task_id": task})
        state = EpisodeState.start(observation, info)
        prompts, completions = [], []
        for turn in range(turns):
            choices = [a for a in info["admissible_actions"] if a != "click[buy now]"] or [
                "search[item]"
            ]
            action = choices[(number + turn) % len(choices)]
            completion = f"<think>Step {turn + 1}: the page shows what I need; I will {action}.</think>\n<action>{action}</action>"
            _, ids = agent.prompt_ids(state)
            completion_ids = agent.encode(completion)
            agent._remember_completion(state, completion_ids, completion)
            prompts.append(ids)
            completions.append(completion_ids)
            state.record(completion, action)
            observation, _, terminated, truncated, info = env.step(action)
            state.observe(observation, info)
            if terminated or truncated:
                break
        prompts_all.append(prompts)
        completions_all.append(completions)
    agent.prompt_config.history = "window"
    return prompts_all, completions_all


def main() -> int:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, tokenizer = build_tiny(args.size, seed=0)
    agent = HFAgent(model, tokenizer, temperature=1.0, max_new_tokens=args.max_new_tokens, seed=0)
    envs_ = make_envs(args.env, args.envs, "compact")
    tasks = task_ids(envs_[0], args.envs)
    # Warm-up: the first forward passes pay one-off costs (allocations, kernels).
    agent.act_batch([envs_[0].reset(seed=0)[0]], [envs_[0].reset(seed=0)[1]], slots=["warm-up"])

    load_before = os.getloadavg()[0]
    seq_s = bat_s = float("inf")
    for _ in range(args.repeats):
        seq_tokens, seconds = rollout_sequential(agent, envs_, tasks, args.turns)
        seq_s = min(seq_s, seconds)
        bat_tokens, seconds = rollout_batched(agent, envs_, tasks, args.turns)
        bat_s = min(bat_s, seconds)
    for env in envs_:
        env.close()

    score_envs = make_envs(args.env, args.trajectories, "full")
    prompts, completions = chat_trajectories(
        agent, score_envs, task_ids(score_envs[0], args.trajectories), args.traj_turns
    )
    for env in score_envs:
        env.close()
    flat_prompts = [p for trajectory in prompts for p in trajectory]
    flat_completions = [c for trajectory in completions for c in trajectory]
    agent.logprobs(flat_prompts[:2], flat_completions[:2])  # warm-up
    per_turn_s = whole_s = float("inf")
    for _ in range(args.repeats):
        started = time.perf_counter()
        per_turn = agent.logprobs(flat_prompts, flat_completions)
        per_turn_s = min(per_turn_s, time.perf_counter() - started)
        started = time.perf_counter()
        whole = agent.logprobs_trajectories(prompts, completions)
        whole_s = min(whole_s, time.perf_counter() - started)
    flat_whole = [values for trajectory in whole for values in trajectory]
    gap = max(abs(a - b) for x, y in zip(per_turn, flat_whole) for a, b in zip(x, y))
    scored = sum(len(c) for c in flat_completions)
    prompt_tokens = sum(len(p) + len(c) for p, c in zip(flat_prompts, flat_completions))
    chain_tokens = sum(len(t[-1]) + len(c[-1]) for t, c in zip(prompts, completions))

    params = count_parameters(model) / 1e6
    print(
        f"model {args.size} ({params:.1f}M params, vocab {len(tokenizer)}), torch threads "
        f"{torch.get_num_threads()}, {args.env}, {args.envs} episodes x {args.turns} turns, "
        f"max_new_tokens {args.max_new_tokens}, best of {args.repeats}, load average "
        f"{load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    rows = [
        ("rollout, one episode at a time", seq_tokens, seq_s, seq_tokens / seq_s, 1.0),
        (
            f"rollout, act_batch over {args.envs}",
            bat_tokens,
            bat_s,
            bat_tokens / bat_s,
            (bat_tokens / bat_s) / (seq_tokens / seq_s),
        ),
        (
            f"scoring per turn ({len(flat_prompts)} turns, {prompt_tokens} tokens in)",
            scored,
            per_turn_s,
            scored / per_turn_s,
            1.0,
        ),
        (
            f"scoring per trajectory ({len(prompts)} passes, {chain_tokens} tokens in)",
            scored,
            whole_s,
            scored / whole_s,
            per_turn_s / whole_s,
        ),
    ]
    print(f"{'case':<58} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'ratio':>6}")
    for name, tokens, seconds, rate, ratio in rows:
        print(f"{name:<58} {tokens:>7} {seconds:>8.2f} {rate:>9.1f} {ratio:>5.2f}x")
    print(f"max |per-turn - trajectory| log-prob difference: {gap:.2e}")
    if seq_tokens != bat_tokens:
        print(
            f"note: the two rollouts generated different token counts ({seq_tokens} vs {bat_tokens})"
        )
    print(
        f"headline: act_batch over {args.envs} envs {rows[1][4]:.1f}x the one-at-a-time rollout rate; "
        f"whole-trajectory scoring {rows[3][4]:.1f}x per-turn ({args.size}, {torch.get_num_threads()} threads)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
