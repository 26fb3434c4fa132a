#!/usr/bin/env python
"""An FSDP2 training step against a DDP step on CPU (gloo), in the same run.

Each of ``--world`` processes builds the same randomly initialised student
(``agents.tiny`` size, vocabulary ``--vocab``) and takes ``--steps`` AdamW steps
on the same random tokens, once wrapped in ``DistributedDataParallel`` (every rank
holds the whole model and its AdamW state: the baseline) and once sharded per
decoder layer with ``torch.distributed.fsdp.fully_shard`` (FSDP2; ``distill.fsdp.shard``,
what the trainer does with ``parallelism: fsdp``). It prints,
per contender: the median step time, the ratio FSDP / DDP, each rank's bytes of
parameters + gradients + AdamW state (FSDP's should be about 1/world of DDP's),
the process's peak resident memory, and the largest loss difference between
the two (the same step on the same tokens: float tolerance).

Usage: ``python benchmarks/bench_fsdp.py [--size small] [--world 2] [--steps 6] [--json F]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


def _local_bytes(tensor: torch.Tensor) -> int:
    local = tensor.to_local() if hasattr(tensor, "to_local") else tensor
    return local.numel() * local.element_size()


def _state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """This rank's parameters, gradients and AdamW moments, in bytes."""
    total = 0
    for parameter in model.parameters():
        total += _local_bytes(parameter)
        if parameter.grad is not None:
            total += _local_bytes(parameter.grad)
    for state in optimizer.state.values():
        total += sum(_local_bytes(v) for v in state.values() if torch.is_tensor(v) and v.dim())
    return total


def _run(kind: str, args: argparse.Namespace, rank: int, world: int) -> dict:
    from agents.tiny import build_model
    from distill.fsdp import shard

    model = build_model(args.size, vocab_size=args.vocab, seed=0).train()
    if kind == "ddp":
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    else:
        wrapped = shard(model)  # as the trainer shards with parallelism: fsdp
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    # The same global batch on both contenders and every step (so the loss falls);
    # each rank takes its share.
    tokens = torch.randint(3, args.vocab, (world * args.batch, args.length), generator=generator)
    ids = tokens[rank * args.batch : (rank + 1) * args.batch]
    times, losses = [], []
    for _ in range(args.steps):
        dist.barrier()
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        logits = wrapped(input_ids=ids).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
        )
        loss.backward()
        optimizer.step()
        dist.barrier()
        times.append(time.perf_counter() - started)
        reduced = loss.detach().clone()
        dist.all_reduce(reduced)
        losses.append(float(reduced) / world)
    state = _state_bytes(model, optimizer)
    return {
        "seconds": statistics.median(times[1:] or times),
        "losses": losses,
        "state_bytes": state,
    }


def _worker(rank: int, world: int, port: int, args: argparse.Namespace, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        results = {kind: _run(kind, args, rank, world) for kind in ("ddp", "fsdp")}
        results["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        Path(out, f"rank{rank}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def measure(args: argparse.Namespace) -> list[dict]:
    """Both contenders on ``args.world`` processes; one result dict per rank."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_worker, args=(args.world, port, args, out), nprocs=args.world, join=True)
        return [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(args.world)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", help="agents.tiny size (micro ... base)")
    parser.add_argument("--vocab", type=int, default=4096, help="vocabulary size")
    parser.add_argument("--world", type=int, default=2, help="processes (gloo)")
    parser.add_argument("--steps", type=int, default=6, help="optimiser steps per contender")
    parser.add_argument("--batch", type=int, default=4, help="sequences per rank per step")
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence")
    parser.add_argument("--json", help="also write each rank's figures to this JSON file")
    args = parser.parse_args(argv)
    if args.world < 2:
        parser.error("--world: FSDP against DDP needs at least 2 processes")
    ranks = measure(args)
    if args.json:
        Path(args.json).write_text(json.dumps(ranks, indent=1))
    ddp_s = max(r["ddp"]["seconds"] for r in ranks)
    fsdp_s = max(r["fsdp"]["seconds"] for r in ranks)
    ddp_b = max(r["ddp"]["state_bytes"] for r in ranks)
    fsdp_b = max(r["fsdp"]["state_bytes"] for r in ranks)
    gap = max(abs(a - b) for a, b in zip(ranks[0]["ddp"]["losses"], ranks[0]["fsdp"]["losses"]))
    print(
        f"size {args.size}, vocab {args.vocab}, {args.world} ranks (gloo), "
        f"{args.batch}x{args.length} tokens per rank, {args.steps} steps"
    )
    print(f"{'':6}{'step s':>10}{'params+grads+adam MiB/rank':>30}")
    print(f"{'ddp':6}{ddp_s:>10.3f}{ddp_b / 2**20:>30.2f}")
    print(f"{'fsdp':6}{fsdp_s:>10.3f}{fsdp_b / 2**20:>30.2f}")
    print(f"step time fsdp/ddp: {fsdp_s / ddp_s:.2f}x")
    print(f"state per rank fsdp/ddp: {fsdp_b / ddp_b:.3f} (1/world = {1 / args.world:.3f})")
    rss = max(r["peak_rss_bytes"] for r in ranks) / 2**20
    print(f"peak resident memory per rank (both contenders, one process): {rss:.0f} MiB")
    print(f"largest loss difference fsdp vs ddp over {args.steps} steps: {gap:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
