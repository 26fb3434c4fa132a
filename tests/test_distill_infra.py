"""distill.checkpoint and distill.metrics: resumable, atomic, and readable runs."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from distill.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    remove_staging,
    resume,
    save_checkpoint,
)
from distill.metrics import MetricsLog, plot_curves, read_metrics


def tiny_model(hidden_size: int = 16) -> torch.nn.Module:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(
        vocab_size=64,
        hidden_size=hidden_size,
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


# -- damaged checkpoints, stale staging, full and read-only disks ------------------------


def two_checkpoints(run_dir: Path) -> torch.nn.Module:
    model = tiny_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    config = {"student": "tiny", "tokenizer": None}
    for step in (1, 2):
        train_step(model, optimizer)
        save_checkpoint(run_dir, step=step, model=model, optimizer=optimizer, config=config)
    return model


@pytest.mark.parametrize(
    "damage",
    ["truncate-weights", "flip-a-byte", "delete-trainer-state", "garbage-trainer-state"],
)
def test_resume_passes_over_a_damaged_checkpoint_naming_it(tmp_path: Path, damage: str) -> None:
    two_checkpoints(tmp_path)
    newest = tmp_path / "checkpoints" / "step-00000002"
    weights = next((newest / "model").glob("*.safetensors"))
    if damage == "truncate-weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "flip-a-byte":
        data = bytearray(weights.read_bytes())
        data[-10] ^= 0xFF  # in the tensor data: safetensors itself would load it silently
        weights.write_bytes(bytes(data))
    elif damage == "delete-trainer-state":
        (newest / "trainer_state.pt").unlink()
    else:
        (newest / "trainer_state.pt").write_bytes(b"not a torch file")
    assert (newest / "COMPLETE").exists()  # it still looks finished
    model = tiny_model()
    with pytest.warns(UserWarning, match="step-00000002 is damaged"):
        state = resume(tmp_path, model=model, config={"student": "tiny", "tokenizer": None})
    assert state is not None and state.step == 1 and state.path.name == "step-00000001"
    with pytest.raises(CheckpointError, match="is damaged"):
        load_checkpoint(newest, model=model)


def test_resume_refuses_when_every_checkpoint_is_damaged(tmp_path: Path) -> None:
    two_checkpoints(tmp_path)
    for folder in (tmp_path / "checkpoints").iterdir():
        (folder / "trainer_state.pt").write_bytes(b"")
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="every checkpoint"):
        resume(tmp_path, model=tiny_model())
    assert resume(tmp_path / "fresh", model=tiny_model()) is None  # no checkpoint: start anew


def test_resume_with_a_changed_shape_field_names_it(tmp_path: Path) -> None:
    two_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="trained with student='tiny' .* student='small'"):
        resume(tmp_path, model=tiny_model(), config={"student": "small", "tokenizer": None})


def test_a_checkpoint_that_does_not_fit_the_model_says_so_in_one_line(tmp_path: Path) -> None:
    two_checkpoints(tmp_path)
    with pytest.raises(CheckpointError, match="does not fit the model") as caught:
        load_checkpoint(latest_checkpoint(tmp_path), model=tiny_model(hidden_size=32))
    assert "\n" not in str(caught.value)


def test_a_checkpoint_of_an_older_version_still_loads(tmp_path: Path) -> None:
    two_checkpoints(tmp_path)
    newest = tmp_path / "checkpoints" / "step-00000002"
    (newest / "COMPLETE").write_text("2")  # the marker before manifests
    state = resume(tmp_path, model=tiny_model(), config={"student": "other"})
    assert state is not None and state.step == 2


def test_stale_staging_folders_are_removed(tmp_path: Path) -> None:
    two_checkpoints(tmp_path)
    stale = tmp_path / "checkpoints" / ".step-00000003.abc123"
    (stale / "model").mkdir(parents=True)
    (stale / "model" / "half.safetensors").write_bytes(b"\0" * 100)
    assert remove_staging(tmp_path) == [stale]
    assert not stale.exists() and latest_checkpoint(tmp_path).name == "step-00000002"


DISK_SCRIPT = """
import ctypes, os, sys
sys.path.insert(0, {root!r})
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000 | 0x00020000) != 0 and libc.unshare(0x00020000) != 0:
    sys.exit(77)  # no mount namespace here
uid, gid = {uid}, {gid}
for name, text in (("setgroups", "deny"), ("uid_map", f"0 {{uid}} 1"), ("gid_map", f"0 {{gid}} 1")):
    try:
        open(f"/proc/self/{{name}}", "w").write(text)
    except OSError:
        pass
libc.mount(None, b"/", None, 0x4000 | 0x40000, None)
from tests.test_distill_infra import tiny_model
from distill.checkpoint import CheckpointError, save_checkpoint
for folder, options, flags in (("full", b"size=16k", 0), ("read-only", b"size=1m", 1)):
    target = os.path.join({target!r}, folder)
    os.makedirs(target)
    if libc.mount(b"tmpfs", target.encode(), b"tmpfs", flags, options) != 0:
        sys.exit(77)
    try:
        save_checkpoint(target, step=1, model=tiny_model())
    except CheckpointError as error:
        print(error)
    else:
        print("saved")
"""


@pytest.mark.slow
def test_a_full_or_read_only_disk_is_one_clear_line(tmp_path: Path) -> None:
    """On real small disks: a tmpfs of 16 KB, and a read-only one (a private mount)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    script = DISK_SCRIPT.format(
        root=str(root), uid=os.getuid(), gid=os.getgid(), target=str(tmp_path)
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=root
    )
    if result.returncode == 77:
        pytest.skip("this machine allows no private mount (needed for a small disk)")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    for line, message in zip(lines, ("no space left on device", "read-only file system")):
        assert line.startswith("cannot write checkpoint step-00000001") and message in line, line


def test_torch_s_disk_full_error_becomes_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """torch's writer reports a full disk as 'enforce fail ... unexpected pos', nothing more."""
    import distill.checkpoint as checkpoint

    def full_disk_save(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    class Full:
        f_flag, f_bavail, f_frsize = 0, 3, 4096

    monkeypatch.setattr(checkpoint.torch, "save", full_disk_save)
    monkeypatch.setattr(checkpoint.os, "statvfs", lambda path: Full())
    with pytest.raises(CheckpointError, match="no space left on device") as caught:
        save_checkpoint(tmp_path, step=4, model=tiny_model())
    assert str(caught.value).startswith("cannot write checkpoint step-00000004")
    assert list((tmp_path / "checkpoints").iterdir()) == []  # no half-written folder


def test_curves_lead_with_loss_success_and_kl_and_leave_constants_out() -> None:
    from distill.metrics import curve_order

    steps = [1, 2, 3]
    series = {
        "a_metric": [(s, float(s)) for s in steps],
        "lr": [(s, 0.002) for s in steps],
        "eval_episodes": [(3, 50.0)],
        "reverse_kl": [(s, 0.1 * s) for s in steps],
        "train_sr": [(s, 100.0) for s in steps],  # constant, but a leading metric: kept
        "loss": [(s, 1.0 / s) for s in steps],
        "eval_sr": [(3, 0.0)],
    }
    names, constants = curve_order(series)
    assert names == ["loss", "eval_sr", "train_sr", "reverse_kl", "a_metric"]
    assert constants == {"lr": 0.002, "eval_episodes": 50.0}
