#!/usr/bin/env python
"""Rollout generation for an FSDP2-sharded student: a whole copy per rank vs gathering.

Each of ``--world`` gloo processes builds the same student (``agents.tiny`` size)
and shards a copy of it per decoder layer with ``fully_shard`` (``distill.fsdp.shard``).
Then, ``--steps`` times, it takes one AdamW step on the sharded model and
generates ``--prompts`` completions of ``--new-tokens`` tokens with the student's
``HFAgent`` (batched, KV cache, sampling), rank ``r`` on ``--prompts + r``
prompts (ranks' rollouts differ), in two ways:

* ``copy``: generate on a whole, gradient-free copy of the weights each rank
  keeps, after ``distill.fsdp.refresh`` copies the new weights into it (what
  the trainer does);
* ``gather``: all-gather the sharded model's parameters (``unshard``, kept
  unsharded through the forwards), generate on it, then ``reshard``.

It prints each contender's median seconds per step (refresh or gather +
generation, the slowest rank), the refresh's share, the ratio gather / copy,
and whether both generated the same tokens (same weights, same seeds).

Usage: ``python benchmarks/bench_fsdp_generation.py [--size tiny] [--world 2] [--steps 4]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def _train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, ids: torch.Tensor):
    optimizer.zero_grad(set_to_none=True)
    logits = model(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
    )
    loss.backward()
    optimizer.step()


def _generate(agent, prompts, args, step):
    from agents.hf.generation import SamplingParams

    params = [
        SamplingParams(temperature=1.0, max_new_tokens=args.new_tokens, seed=1000 * step + i)
        for i in range(len(prompts))
    ]
    return [list(g.token_ids) for g in agent.generate(prompts, params)]


def _run(kind: str, args: argparse.Namespace, rank: int, world: int) -> dict:
    from torch.distributed.fsdp import FSDPModule

    from agents.hf import HFAgent
    from agents.tiny import build_model, train_tokenizer
    from distill.fsdp import refresh, shard

    tokenizer = train_tokenizer()
    whole = build_model(args.size, tokenizer, seed=0).eval()
    sharded = shard(copy.deepcopy(whole))
    whole.requires_grad_(False)
    optimizer = torch.optim.AdamW(sharded.parameters(), lr=1e-3)
    agent = HFAgent(whole if kind == "copy" else sharded, tokenizer)
    generator = torch.Generator().manual_seed(rank)
    vocab = whole.get_input_embeddings().weight.shape[0]
    ids = torch.randint(3, vocab, (2, 64), generator=generator)
    prompts = [
        torch.randint(3, vocab, (16 + 4 * i,), generator=generator).tolist()
        for i in range(args.prompts + rank)
    ]
    times, refresh_times, tokens = [], [], []
    for step in range(args.steps):
        sharded.train()
        _train_step(sharded, optimizer, ids)
        sharded.eval()
        dist.barrier()
        started = time.perf_counter()
        if kind == "copy":
            refresh(whole, sharded)
            refresh_times.append(time.perf_counter() - started)
            tokens.append(_generate(agent, prompts, args, step))
        else:
            groups = [m for m in sharded.modules() if isinstance(m, FSDPModule)]
            sharded.set_reshard_after_forward(False)
            for module in groups:
                module.unshard()
            with torch.no_grad():
                tokens.append(_generate(agent, prompts, args, step))
            for module in groups:
                module.reshard()
            sharded.set_reshard_after_forward(True)
        times.append(time.perf_counter() - started)
        dist.barrier()
    return {
        "seconds": statistics.median(times[1:] or times),
        "refresh_seconds": statistics.median(refresh_times[1:] or refresh_times or [0.0]),
        "tokens": tokens,
    }


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = {kind: _run(kind, args, rank, world) for kind in ("copy", "gather")}
        Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", help="agents.tiny size (micro ... base)")
    parser.add_argument("--world", type=int, default=2, help="processes (gloo)")
    parser.add_argument("--steps", type=int, default=4, help="optimiser steps per contender")
    parser.add_argument("--prompts", type=int, default=8, help="prompts rank 0 completes a step")
    parser.add_argument("--new-tokens", type=int, default=48, help="tokens per completion")
    args = parser.parse_args(argv)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(args.world, port, args, out), nprocs=args.world, join=True)
        ranks = [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(args.world)]
    copy_s = max(r["copy"]["seconds"] for r in ranks)
    gather_s = max(r["gather"]["seconds"] for r in ranks)
    refresh_s = max(r["copy"]["refresh_seconds"] for r in ranks)
    same = all(r["copy"]["tokens"] == r["gather"]["tokens"] for r in ranks)
    print(
        f"size {args.size}, {args.world} ranks (gloo), {args.prompts}+rank prompts x "
        f"{args.new_tokens} new tokens per rank, {args.steps} steps"
    )
    print(f"copy   (refresh + generate): {copy_s:.3f} s/step (refresh {refresh_s:.3f} s)")
    print(f"gather (unshard + generate + reshard): {gather_s:.3f} s/step")
    print(f"gather / copy: {gather_s / copy_s:.2f}x")
    print(f"same tokens generated: {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
