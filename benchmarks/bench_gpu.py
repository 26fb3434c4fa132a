#!/usr/bin/env python
"""Throughput and peak memory of Qwen3-0.6B- and 1.7B-shaped students on one GPU.

Randomly initialised models with Qwen3's shapes (no weights are downloaded),
for each of: the plain model (what each DDP rank holds) and the model sharded by
FSDP2 (``fully_shard`` per decoder layer, one process), each in bfloat16 autocast
with and without activation checkpointing. Per row: optimiser-step tokens/s
(AdamW, fp32 master weights), HF batched generation tokens/s at batch 8, 32 and
64, teacher-scoring tokens/s (a no-grad forward over whole sequences, as the
teacher scores trajectories), and peak memory. Prints a table.

``--dry-run`` runs the same code on CPU with tiny shapes (seconds), so the
script is tested where no GPU is. Usage:
``python benchmarks/bench_gpu.py [--dry-run] [--models 0.6b,1.7b]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

#: hidden, layers, heads, kv heads, head dim, intermediate, vocabulary (Qwen3's configs).
SHAPES = {
    "0.6b": (1024, 28, 16, 8, 128, 3072, 151936),
    "1.7b": (2048, 28, 16, 8, 128, 6144, 151936),
    "dry": (64, 2, 2, 1, 32, 192, 512),
}


def build(shape: tuple[int, ...], device: str) -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    hidden, layers, heads, kv, head_dim, inter, vocab = shape
    config = Qwen3Config(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=kv,
        head_dim=head_dim,
        intermediate_size=inter,
        vocab_size=vocab,
        tie_word_embeddings=True,
        max_position_embeddings=4096,
    )
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config).to(device).eval()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_gb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def measure(shape, *, fsdp: bool, checkpointing: bool, args, device: str) -> dict[str, float]:
    from distill.memory import decoder_layers, enable_activation_checkpointing

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = build(shape, device)
    if checkpointing:
        enable_activation_checkpointing(model)
    if fsdp:
        from torch.distributed.fsdp import fully_shard

        for layer in decoder_layers(model):
            fully_shard(layer)
        fully_shard(model)
    vocab = shape[-1]
    autocast = torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids = torch.randint(3, vocab, (args.train_batch, args.length), device=device)
    row: dict[str, float] = {}
    times = []
    for _ in range(args.steps + 1):  # the first step warms up
        _sync(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            logits = model(input_ids=ids).logits
            loss = torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, vocab).float(), ids[:, 1:].reshape(-1)
            )
        loss.backward()
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - started)
        del logits, loss
    row["train tok/s"] = ids.numel() / (sum(times[1:]) / args.steps)
    optimizer.zero_grad(set_to_none=True)
    del optimizer
    with torch.no_grad():
        for batch in args.gen_batches:
            prompt = torch.randint(3, vocab, (batch, args.prompt), device=device)
            _sync(device)
            started = time.perf_counter()
            with autocast:
                model.generate(
                    input_ids=prompt,
                    attention_mask=torch.ones_like(prompt),
                    max_new_tokens=args.new_tokens,
                    min_new_tokens=args.new_tokens,
                    do_sample=True,
                    pad_token_id=0,
                )
            _sync(device)
            row[f"gen b{batch} tok/s"] = batch * args.new_tokens / (time.perf_counter() - started)
        score = torch.randint(3, vocab, (args.train_batch, args.length), device=device)
        _sync(device)
        started = time.perf_counter()
        with autocast:
            model(input_ids=score).logits.float().log_softmax(-1)
        _sync(device)
        row["score tok/s"] = score.numel() / (time.perf_counter() - started)
    row["peak GB"] = _peak_gb(device)
    del model
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes, seconds")
    parser.add_argument("--models", default="0.6b,1.7b", help="comma-separated: 0.6b, 1.7b")
    parser.add_argument("--length", type=int, default=1024, help="tokens per trained sequence")
    parser.add_argument("--train-batch", type=int, default=8, help="sequences per step")
    parser.add_argument("--steps", type=int, default=3, help="timed optimiser steps")
    parser.add_argument("--prompt", type=int, default=512, help="prompt tokens for generation")
    parser.add_argument("--new-tokens", type=int, default=128, help="generated tokens")
    args = parser.parse_args(argv)
    args.gen_batches = (8, 32, 64)
    if args.dry_run:
        device, models = "cpu", ["dry"]
        args.length, args.train_batch, args.steps = 32, 2, 1
        args.prompt, args.new_tokens, args.gen_batches = 8, 4, (2, 4)
    else:
        if not torch.cuda.is_available():
            parser.error("no CUDA GPU here; --dry-run runs the tiny shapes on CPU")
        device, models = "cuda", [m.strip() for m in args.models.split(",")]
        unknown = [m for m in models if m not in SHAPES or m == "dry"]
        if unknown:
            parser.error(f"--models: {unknown} unknown; choose from 0.6b, 1.7b")
    # FSDP2 needs a process group, even of one process.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(probe.getsockname()[1]))
    backend = "nccl" if device == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, rank=0, world_size=1)
    rows = []
    try:
        for name in models:
            for fsdp in (False, True):
                for checkpointing in (False, True):
                    row = measure(
                        SHAPES[name],
                        fsdp=fsdp,
                        checkpointing=checkpointing,
                        args=args,
                        device=device,
                    )
                    label = f"{name} {'fsdp' if fsdp else 'ddp'} bf16{' +ckpt' if checkpointing else ''}"
                    rows.append((label, row))
                    print(label, {k: round(v, 1) for k, v in row.items()}, flush=True)
    finally:
        torch.distributed.destroy_process_group()
    columns = list(rows[0][1])
    memory = "peak GB" if device == "cuda" else "peak RSS GB"
    print()
    print("| run | " + " | ".join(c if c != "peak GB" else memory for c in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for label, row in rows:
        print(f"| {label} | " + " | ".join(f"{row[c]:,.1f}" for c in columns) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
