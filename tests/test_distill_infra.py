"""distill.checkpoint and distill.metrics: resumable, atomic, and readable runs."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from distill.metrics import MetricsLog, plot_curves, read_metrics


def tiny_model() -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=8,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    return Qwen3ForCausalLM(config)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> float:
    ids = torch.randint(0, 64, (2, 6))
    loss = model(input_ids=ids, labels=ids).loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def test_checkpoint_round_trip_resumes_the_same_trajectory(tmp_path: Path) -> None:
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1.0 / (1 + s))
    for _ in range(2):
        train_step(model, optimizer)
        scheduler.step()
    save_checkpoint(
        tmp_path,
        step=2,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        data_position=7,
        extra={"k": 1},
    )
    random.random(), np.random.rand()
    reference = [train_step(model, optimizer) for _ in range(2)]

    resumed = tiny_model()
    resumed_optimizer = torch.optim.AdamW(resumed.parameters(), lr=1e-2)
    resumed_scheduler = torch.optim.lr_scheduler.LambdaLR(
        resumed_optimizer, lambda s: 1.0 / (1 + s)
    )
    state = load_checkpoint(
        latest_checkpoint(tmp_path),
        model=resumed,
        optimizer=resumed_optimizer,
        scheduler=resumed_scheduler,
    )
    assert (state.step, state.data_position, state.extra) == (2, 7, {"k": 1})
    assert resumed_scheduler.last_epoch == 2
    again = [train_step(resumed, resumed_optimizer) for _ in range(2)]
    assert again == pytest.approx(reference, abs=1e-6)


def test_only_complete_checkpoints_count_and_old_ones_are_pruned(tmp_path: Path) -> None:
    model = tiny_model()
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step=step, model=model, keep=2)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step-00000002", "step-00000003"]
    # a half-written folder (a kill mid-save) is ignored
    (tmp_path / "checkpoints" / "step-00000009").mkdir()
    assert latest_checkpoint(tmp_path).name == "step-00000003"
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "checkpoints" / "step-00000009", model=model)


def test_metrics_log_resume_truncates_and_plots(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, tensorboard=True)
    for step in range(5):
        log.log(step, loss=1.0 / (step + 1), sr=0.1 * step)
    log.close()
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 5, "loss"')  # a torn line from a kill
    resumed = MetricsLog(tmp_path, resume_step=2, tensorboard=False)
    resumed.log(3, loss=0.3)
    resumed.close()
    rows = read_metrics(tmp_path / "metrics.jsonl")
    assert [row["step"] for row in rows] == [0, 1, 2, 3]
    assert rows[-1]["loss"] == 0.3
    assert (tmp_path / "tensorboard").is_dir()
    plot = plot_curves(tmp_path, title="test")
    assert plot is not None and plot.stat().st_size > 1000
