"""benchmarks/bench_gpu.py --dry-run: the GPU benchmark's code, on CPU with tiny shapes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_dry_run_prints_every_contender_with_positive_figures() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| dry ")]
    labels = [row.split("|")[1].strip() for row in rows]
    assert labels == ["dry ddp bf16", "dry ddp bf16 +ckpt", "dry fsdp bf16", "dry fsdp bf16 +ckpt"]
    for row in rows:
        figures = [float(cell.replace(",", "")) for cell in row.split("|")[2:-1]]
        assert len(figures) == 5 and all(value > 0 for value in figures), row


def test_without_a_gpu_the_full_run_says_so() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and "no CUDA GPU here; --dry-run" in done.stderr
