#!/usr/bin/env python
"""Where a distillation step's time goes, and what our loss costs over a plain forward-backward.

1. A few OPD steps on a real env with tiny models: seconds per step in
   rollout collection, teacher scoring and optimisation (from the run's metrics).
2. The optimisation step alone, on the same examples, in interleaved rounds:
   the trainer's loss step (OPD's clipped surrogate on completion tokens, masking,
   completion-only logits) + backward, next to a plain Hugging Face
   forward-backward (``model(input_ids, labels=...)``, cross-entropy on the
   completion tokens) of the same model on the same tokens. Target: our
   overhead under 15% (a ratio >= 0.87).
3. If TRL is installed (``pip install trl``): TRL's GKD trainer step
   (``GKDTrainer.training_step``: teacher forward, student forward, the
   generalised JSD over the full vocabulary, backward; ``lmbda=0`` so no
   generation) next to ours with the exact full-vocabulary reverse KL
   (``reverse_kl="full_vocab"``: teacher forward on the completion positions,
   student forward, KL, backward), same tiny student and teacher, same tokens.
4. SFT's packing: the optimisation step on 8 expert episodes as separate
   turns (``demo_unit: turn``) and as one packed sequence per episode
   (``demo_unit: trajectory``), the same trained tokens in the same contexts;
   packed, with the LM head on the trained positions only (the default) and
   on every completion position (full logits). Trained tokens per second of
   each, on ToolMath (levels 2-4, compact tool listing) and on ALFWorld (chat
   history, no admissible-action list: observations are most of a sequence).

Usage: ``python benchmarks/bench_distill.py [--env WebShop-v0] [--steps 3] [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

import torch  # noqa: E402

from distill.batching import Example  # noqa: E402
from distill.config import load_config  # noqa: E402
from distill.methods import METHODS  # noqa: E402
from distill.trainer import accumulate, train  # noqa: E402


def step_loss(
    model: torch.nn.Module,
    examples: list[Example],
    config,
    *,
    pad_id: int = 0,
    teacher_model: torch.nn.Module | None = None,
) -> None:
    """One optimiser step's forward and backward on ``examples`` (one micro-batch), as the
    trainer runs it: the method's per-token loss, token-mean."""
    ctx = SimpleNamespace(config=config, pad_id=pad_id, teacher_model=teacher_model)
    accumulate(
        METHODS[config.method],
        model,
        examples,
        ctx,
        micro_batch_size=len(examples),
        aggregation=config.aggregation,
        tokens=sum(e.trained_tokens for e in examples),
        sequences=len(examples),
    )


def step_split(env_id: str, steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as run_dir:
        config = load_config(
            None,
            {
                "method": "opd", "env_id": env_id, "student": "micro", "teacher": "tiny",
                "run_dir": run_dir, "total_steps": steps, "rollouts_per_step": 8, "num_envs": 8,
                "env_mode": "sync", "max_new_tokens": 32, "max_turns": 5, "eval_every": 0,
                "checkpoint_every": 1000, "tensorboard": False,
            },
        )  # fmt: skip
        train(config, progress=False)
        rows = [json.loads(x) for x in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "time_rollout_s" in r]
    return {
        key: sum(r[key] for r in rows) / len(rows)
        for key in ("time_rollout_s", "time_scoring_s", "time_optimise_s")
    }


def random_examples(vocab: int, count: int = 16) -> list[Example]:
    """``count`` turns of a 300-token prompt and a 48-token completion, with sampled log-probs."""
    generator = torch.Generator().manual_seed(0)
    examples = []
    for _ in range(count):
        prompt = torch.randint(10, vocab, (300,), generator=generator).tolist()
        completion = torch.randint(10, vocab, (48,), generator=generator).tolist()
        logp_old = (-torch.rand(48, generator=generator) * 5).tolist()
        logp_teacher = (-torch.rand(48, generator=generator) * 5).tolist()
        examples.append(
            Example(prompt, completion, "student", logp_old=logp_old, logp_teacher=logp_teacher)
        )
    return examples


def interleaved(contenders: dict, rounds: int, model: torch.nn.Module) -> dict[str, float]:
    """Seconds each contender took over ``rounds`` interleaved rounds (after one warm-up)."""
    elapsed = dict.fromkeys(contenders, 0.0)
    for fn in contenders.values():
        fn()
    for _ in range(rounds):  # interleaved, so machine noise hits both alike
        for name, fn in contenders.items():
            model.zero_grad(set_to_none=True)
            started = time.perf_counter()
            fn()
            elapsed[name] += time.perf_counter() - started
    return elapsed


def gkd_ratio(rounds: int) -> tuple[float, float, int] | None:
    """(our full-vocab OPD step tokens/s, TRL GKD step tokens/s, tokens), or None without TRL."""
    try:
        from trl.experimental.gkd import GKDConfig, GKDTrainer
    except ImportError:
        return None
    from agents.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer()
    student = build_model("tiny", tokenizer, seed=0).train()
    teacher = build_model("tiny", tokenizer, seed=1).eval()
    examples = random_examples(len(tokenizer))
    input_ids = torch.tensor([e.prompt_ids + e.completion_ids for e in examples])
    labels = input_ids.clone()
    labels[:, :300] = -100
    inputs = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "prompts": input_ids[:, :300],
    }
    with tempfile.TemporaryDirectory() as out:
        args = GKDConfig(
            output_dir=out, lmbda=0.0, seq_kd=False, beta=1.0, report_to=[], use_cpu=True,
            per_device_train_batch_size=len(examples), max_length=512, disable_dropout=True,
            gradient_checkpointing=False,  # neither contender recomputes activations
        )  # fmt: skip
        from datasets import Dataset

        # The trainer wants a dataset; the timed steps get the same tensors as ours instead.
        chats = Dataset.from_list(
            [
                {
                    "messages": [
                        {"role": "user", "content": "hi"},
                        {"role": "assistant", "content": "ok"},
                    ]
                }
            ]
        )
        trainer = GKDTrainer(
            model=student,
            teacher_model=teacher,
            args=args,
            train_dataset=chats,
            processing_class=tokenizer,
        )
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train's loop otherwise
        config = load_config(
            None,
            {"method": "opd", "teacher": "tiny", "reverse_kl": "full_vocab", "eval_episodes": 0},
        )

        def ours() -> None:
            step_loss(student, examples, config, teacher_model=teacher)

        def trl_gkd() -> None:
            trainer.training_step(student, {k: v.clone() for k, v in inputs.items()})

        elapsed = interleaved({"ours": ours, "trl": trl_gkd}, rounds, student)
    tokens = int(input_ids.numel())
    return tokens * rounds / elapsed["ours"], tokens * rounds / elapsed["trl"], tokens


def optimisation_ratio(rounds: int) -> tuple[float, float, int]:
    from agents.tiny import build_model, train_tokenizer

    tokenizer = train_tokenizer()
    model = build_model("tiny", tokenizer, seed=0).train()
    examples = random_examples(len(tokenizer))
    config = load_config(None, {"method": "opd", "teacher": "tiny", "eval_episodes": 0})
    input_ids = torch.tensor([e.prompt_ids + e.completion_ids for e in examples])
    labels = input_ids.clone()
    labels[:, :300] = -100  # the same completion tokens are the targets
    tokens = sum(len(e.prompt_ids) + len(e.completion_ids) for e in examples)

    def ours() -> None:
        step_loss(model, examples, config)

    def plain() -> None:
        model(input_ids=input_ids, labels=labels).loss.backward()

    elapsed = interleaved({"ours": ours, "plain": plain}, rounds, model)
    return tokens * rounds / elapsed["ours"], tokens * rounds / elapsed["plain"], tokens


def packing_ratio(
    rounds: int, env_id: str, env_kwargs: dict, prompt: dict, per_turn: bool
) -> tuple[dict[str, float], int]:
    """Trained tokens/s of an SFT step on 8 expert episodes: packed (head on the trained
    positions), packed with full logits (the head on every completion position), and with
    ``per_turn`` one example per turn (all in one batch: too big for long chat histories)."""
    from unittest import mock

    from agents.hf import HFAgent
    from agents.prompts import PromptConfig
    from agents.tiny import build_model, train_tokenizer
    from distill import batching
    from distill.methods.common import trajectory_examples, turn_examples
    from distill.rollout import RolloutCollector, RolloutRequest
    from envs.multiagent.selectors import FixedSelector

    tokenizer = train_tokenizer()
    model = build_model("tiny", tokenizer, seed=0).train()
    student = HFAgent(model, tokenizer, prompt=PromptConfig(**prompt))
    collector = RolloutCollector(
        env_id, student=student, num_envs=8, env_kwargs={"expert": True, **env_kwargs}, mode="sync"
    )
    try:
        tasks = collector.pool.get_attr("task_ids")[0][:8]
        expert = FixedSelector("expert", agents=("student", "expert"))
        rollouts = collector.collect(
            [RolloutRequest(t, seed=k, selector=expert, max_turns=50) for k, t in enumerate(tasks)]
        )
    finally:
        collector.close()
    turns, packed = turn_examples(rollouts, ["expert"]), trajectory_examples(rollouts, ["expert"])
    config = load_config(None, {"method": "sft", "eval_episodes": 0})

    def step(examples: list[Example], full_logits: bool = False):
        def run() -> None:
            with mock.patch.object(batching, "_plain_head", lambda _model: not full_logits):
                step_loss(model, examples, config, pad_id=student.pad_token_id)

        return run

    contenders = {"packed": step(packed), "packed_full": step(packed, full_logits=True)}
    if per_turn:
        contenders["turns"] = step(turns)
    elapsed = interleaved(contenders, rounds, model)
    trained = int(sum(e.trained_tokens for e in turns))
    return {name: trained * rounds / seconds for name, seconds in elapsed.items()}, trained


PACKING_ENVS = (
    ("ToolMath-v0", {"levels": [2, 3, 4]}, {"tool_listing": "compact"}, True),
    ("ALFWorld-v0", {"split": "valid_seen"}, {"history": "chat", "max_admissible": 0}, False),
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="WebShop-v0")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    split = step_split(args.env, args.steps)
    total = sum(split.values())
    print(
        f"OPD step on {args.env} (micro student, tiny teacher, 8 rollouts, mean of {args.steps} steps)\n"
    )
    print(f"{'part':<14} {'s/step':>8} {'share':>7}")
    for key, value in split.items():
        print(f"{key[5:-2]:<14} {value:>8.2f} {value / total:>7.0%}")

    ours, plain, tokens = optimisation_ratio(args.rounds)
    print(
        f"\noptimisation, 16 turns of 348 tokens ({tokens} tokens), {args.rounds} interleaved rounds\n"
    )
    print(f"{'contender':<44} {'tokens/s':>9} {'x plain':>8}")
    print(f"{'plain HF forward-backward (labels=...)':<44} {plain:>9.0f} {1.0:>8.2f}")
    print(f"{'OPD loss step (surrogate) + backward':<44} {ours:>9.0f} {ours / plain:>8.2f}")
    gkd = gkd_ratio(args.rounds)
    if gkd is None:
        print("\nTRL is not installed: no GKD comparison (pip install trl)")
    else:
        ours_fv, trl_fv, fv_tokens = gkd
        print(
            f"\nfull-vocabulary distillation step, tiny student and tiny teacher, {fv_tokens} tokens\n"
        )
        print(f"{'contender':<44} {'tokens/s':>9} {'x TRL':>8}")
        print(f"{'TRL GKDTrainer.training_step (lmbda=0)':<44} {trl_fv:>9.0f} {1.0:>8.2f}")
        print(
            f"{'ours, reverse_kl=full_vocab + backward':<44} {ours_fv:>9.0f} {ours_fv / trl_fv:>8.2f}"
        )
    for env_id, env_kwargs, prompt, per_turn in PACKING_ENVS:
        speeds, trained = packing_ratio(args.rounds, env_id, env_kwargs, prompt, per_turn)
        print(
            f"\nSFT step on 8 expert {env_id} episodes ({trained} trained tokens), "
            f"{args.rounds} interleaved rounds\n"
        )
        baseline = "turns" if per_turn else "packed_full"
        print(f"{'contender':<48} {'trained tok/s':>13} {'x ' + baseline:>13}")
        names = {
            "turns": "one example per turn (demo_unit: turn)",
            "packed_full": "packed episodes, full logits",
            "packed": "packed episodes, head on trained positions",
        }
        for key, name in names.items():
            if key in speeds:
                print(f"{name:<48} {speeds[key]:>13.0f} {speeds[key] / speeds[baseline]:>13.2f}")
        print(
            f"trained-positions head over full logits: x{speeds['packed'] / speeds['packed_full']:.2f}"
        )
    print(
        f"\nheadline: our loss step runs at {ours / plain:.2f}x a plain forward-backward "
        f"(target >= 0.87, i.e. overhead under 15%); rollout is {split['time_rollout_s'] / total:.0%} of a step"
    )


if __name__ == "__main__":
    main()
