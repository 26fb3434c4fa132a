"""parallelism: fsdp: a student sharded with FSDP2 over 2 gloo processes under torchrun trains,
checkpoints (torch.distributed.checkpoint) and resumes as the 1-process run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from distill.config import ConfigError, load_config
from tests.test_distill_methods import weights_of

ROOT = Path(__file__).resolve().parents[1]

# One torchrun launch runs every (method, run, total_steps, resume, parallelism) job in turn:
# starting the processes costs more than the tiny runs.
SCRIPT = """
import json, os, sys
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from pathlib import Path
from distill.checkpoint import CheckpointError
from tests.test_distill_methods import small_config
from distill.trainer import train

if __name__ == "__main__":
    # torchrun starts each rank in its own session: the test kills them by these ids.
    Path(__file__).with_name(f"pid-rank{{os.environ['RANK']}}").write_text(str(os.getpid()))
    for method, run, steps, resume, parallelism, *options in json.loads(sys.argv[1]):
        # 3 rollouts over 2 ranks, one turn per micro-batch: the ranks run different numbers
        # of micro-batches, so the placeholder path runs.
        config = small_config(
            method, Path(run), total_steps=steps, rollouts_per_step=3, micro_batch_size=1,
            eval_every=0, eval_episodes=0, checkpoint_every=1, keep_checkpoints=5,
            parallelism=parallelism, **(options[0] if options else {{}}),
        )
        try:
            train(config, resume=resume, progress=False)
        except CheckpointError as error:
            print("refused:", error, flush=True)
"""


def torchrun(folder: Path, processes: int, jobs: list) -> subprocess.Popen:
    """The jobs on ``processes`` ranks; each rank writes its process id to ``folder``."""
    folder.mkdir(exist_ok=True)
    script = folder / "fsdp_run.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += [f"--nproc_per_node={processes}", str(script), json.dumps(jobs)]
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(process: subprocess.Popen, timeout: float = 900) -> str:
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]
    return output


def losses(run: Path) -> list[float]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [row["loss"] for row in rows if "loss" in row]


def test_a_bad_parallelism_is_one_line() -> None:
    with pytest.raises(ConfigError, match="parallelism: 'zero3' is not one of ddp, fsdp"):
        load_config(None, {"method": "sft", "parallelism": "zero3"})
    assert load_config(None, {"method": "sft"}).parallelism == "ddp"
    assert load_config(None, {"method": "opd", "teacher": "tiny", "parallelism": "fsdp"})


def test_two_process_fsdp_trains_checkpoints_resumes_and_matches_one_process(
    tmp_path: Path,
) -> None:
    from transformers import AutoModelForCausalLM

    run = tmp_path / "run"
    jobs = [
        ["opd", str(run), 1, False, "fsdp"],
        ["opd", str(run), 2, True, "fsdp"],
        ["opd", str(run), 3, True, "ddp"],  # not sharded: refused in one line
    ]
    # The same run on one process, uninterrupted: the sharded, resumed run must match it.
    whole = tmp_path / "whole"
    single = torchrun(tmp_path / "p1", 1, [["opd", str(whole), 2, False, "fsdp"]])
    output = finish(torchrun(tmp_path, 2, jobs))
    finish(single)
    step = run / "checkpoints" / "step-00000002"
    manifest = json.loads((step / "COMPLETE").read_text())
    assert manifest["parallelism"] == "fsdp" and manifest["world_size"] == 2
    assert (step / "rng-rank0.pt").exists() and (step / "rng-rank1.pt").exists()
    assert any(name.startswith("dcp/") for name in manifest["files"])
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]  # the second job resumed after step 1
    assert all(torch.isfinite(torch.tensor(row["loss"])) and row["tokens"] > 0 for row in rows)
    assert "refused: cannot resume from" in output and "--nproc_per_node 2" in output
    assert losses(run) == pytest.approx(losses(whole), rel=1e-4, abs=1e-6)
    sharded, one_process = weights_of(run / "final"), weights_of(whole / "final")
    assert sharded.keys() == one_process.keys()
    for name in sharded:
        assert torch.allclose(sharded[name], one_process[name], atol=1e-5), name
    # final/ is one consolidated model in the usual layout.
    model = AutoModelForCausalLM.from_pretrained(run / "final")
    assert sum(p.numel() for p in model.parameters()) > 0


@pytest.mark.slow
def test_fsdp_on_two_processes_matches_one_process(tmp_path: Path) -> None:
    methods = ["sft", "opd", "guided_opd"]
    runs = {}
    for processes in (1, 2):
        jobs = [[m, str(tmp_path / f"{m}-{processes}"), 3, False, "fsdp"] for m in methods]
        runs[processes] = torchrun(tmp_path / f"p{processes}", processes, jobs)
    for process in runs.values():
        finish(process)
    for method in methods:
        one, two = tmp_path / f"{method}-1", tmp_path / f"{method}-2"
        assert len(losses(one)) == 3
        assert losses(two) == pytest.approx(losses(one), rel=1e-4, abs=1e-6), method
        a, b = weights_of(one / "final"), weights_of(two / "final")
        assert a.keys() == b.keys()
        for name in a:
            assert torch.allclose(a[name], b[name], atol=1e-5), (method, name)


@pytest.mark.slow
def test_a_killed_fsdp_run_resumes_to_the_same_state(tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    finish(torchrun(tmp_path / "a", 2, [["opd", str(whole), 4, False, "fsdp"]]))
    process = torchrun(tmp_path / "b", 2, [["opd", str(killed), 4, False, "fsdp"]])
    marker = killed / "checkpoints" / "step-00000002" / "COMPLETE"
    deadline = time.time() + 600
    while not marker.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the run never reached its second checkpoint"
    # kill -9 both ranks, then the launcher.
    for rank in (0, 1):
        os.kill(int((tmp_path / "b" / f"pid-rank{rank}").read_text()), signal.SIGKILL)
    process.kill()
    process.communicate()
    assert not (killed / "final").exists()  # it really died before the end
    finish(torchrun(tmp_path / "c", 2, [["opd", str(killed), 4, True, "fsdp"]]))
    a, b = weights_of(whole / "final"), weights_of(killed / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit-identical
    assert losses(killed) == losses(whole)


@pytest.mark.slow
def test_fsdp_takes_lora_bfloat16_and_activation_checkpointing(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    from distill.config import bfloat16_problem

    options = {"lora_rank": 4, "activation_checkpointing": True}
    if bfloat16_problem("cpu") is None:
        options["dtype"] = "bfloat16"
    run = tmp_path / "run"
    finish(torchrun(tmp_path, 2, [["opd", str(run), 2, False, "fsdp", options]]))
    assert all(torch.isfinite(torch.tensor(loss)) for loss in losses(run))
    assert (run / "final" / "adapter").is_dir()  # the adapter alone, and merged into final/
    merged = AutoModelForCausalLM.from_pretrained(run / "final")
    assert not any("lora" in name for name, _ in merged.named_parameters())
