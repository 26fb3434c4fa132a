"""benchmarks/bench_fsdp.py: FSDP2 on 2 gloo processes trains as DDP does, on half the state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_fsdp_matches_ddp_on_half_the_state_per_rank(tmp_path) -> None:
    out = tmp_path / "ranks.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_fsdp.py"), "--size", "micro"]
    command += ["--vocab", "512", "--steps", "3", "--batch", "2", "--length", "16"]
    done = subprocess.run(
        [*command, "--json", str(out)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "step time fsdp/ddp:" in done.stdout
    ranks = json.loads(out.read_text())
    assert len(ranks) == 2
    for rank in ranks:
        ddp, fsdp = rank["ddp"], rank["fsdp"]
        assert fsdp["losses"] == pytest.approx(ddp["losses"], rel=1e-5, abs=1e-6)
        assert ddp["losses"][-1] < ddp["losses"][0]  # the steps train
        # Parameters, gradients and AdamW moments: each rank holds 1/world of them.
        assert fsdp["state_bytes"] == pytest.approx(ddp["state_bytes"] / 2, rel=0.05)
