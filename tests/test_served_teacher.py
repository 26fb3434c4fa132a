"""A teacher behind an OpenAI-compatible server: the project's own tools/serve.py, a real
HTTP server in its own process. It gives the losses of the same weights in-process, is
checked to tokenize as the student does, and its death mid-run stops the run cleanly,
`--resume` then finishing it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distill.config import load_config
from distill.metrics import read_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def teacher_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from agents.tiny import save_tiny

    return save_tiny(tmp_path_factory.mktemp("teacher") / "tiny", "tiny", seed=5)


class Server:
    """``tools/serve.py`` serving a folder in a subprocess."""

    def __init__(self, folder: Path, port: int = 0) -> None:
        command = [sys.executable, str(ROOT / "tools" / "serve.py"), str(folder)]
        command += ["--port", str(port), "--served-model-name", "teacher"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        line = self.process.stdout.readline()
        match = re.search(r"at (http://\S+)", line)
        assert match, f"the server did not start: {line!r}"
        self.url = match.group(1)
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])

    @property
    def spec(self) -> str:
        return f"openai:{self.url}#teacher"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()


@pytest.fixture
def server(teacher_folder: Path):
    running = Server(teacher_folder)
    yield running
    running.kill()


def small(method: str, run_dir: Path, teacher: str, tokenizer: Path, **overrides):
    values = {
        "method": method,
        "env_id": "WebShop-v0",
        "student": "micro",
        "teacher": teacher,
        "tokenizer": str(tokenizer),
        "run_dir": str(run_dir),
        "total_steps": 2,
        "rollouts_per_step": 3,
        "num_envs": 3,
        "env_mode": "sync",
        "max_new_tokens": 12,
        "max_turns": 3,
        "eval_every": 0,
        "eval_episodes": 0,
        "checkpoint_every": 1,
        "tensorboard": False,
        "learning_rate": 1e-3,
        **overrides,
    }
    return load_config(None, values)


def teacher_scores(run_dir: Path) -> list[tuple[int, int, int, list[float]]]:
    rows = read_metrics(run_dir / "trajectories.jsonl")
    return [
        (row["step"], row["rollout"], row["turn"], row["teacher_logprobs"])
        for row in rows
        if row["teacher_logprobs"] is not None
    ]


@pytest.mark.parametrize("method", ["opd", "guided_opd"])
def test_a_served_teacher_gives_the_losses_of_the_same_weights_in_process(
    method: str, server: Server, teacher_folder: Path, tmp_path: Path
) -> None:
    from distill.trainer import train

    runs = {}
    for where, teacher in (("local", str(teacher_folder)), ("served", server.spec)):
        run_dir = tmp_path / where
        train(small(method, run_dir, teacher, teacher_folder), progress=False)
        runs[where] = run_dir
    local, served = teacher_scores(runs["local"]), teacher_scores(runs["served"])
    assert local and [key[:3] for key in local] == [key[:3] for key in served]
    for (*_, a), (*_, b) in zip(local, served):
        assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-5
    rows = {where: read_metrics(run_dir / "metrics.jsonl") for where, run_dir in runs.items()}
    for a, b in zip(rows["local"], rows["served"]):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    if method == "guided_opd":  # beta is 1 at step 0: the server generated teacher turns
        actors = {r["actor"] for r in read_metrics(runs["served"] / "trajectories.jsonl")}
        assert "teacher" in actors


def test_a_teacher_that_tokenizes_otherwise_is_refused_before_the_run(
    server: Server, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from agents.tiny import train_tokenizer
    from distill.config import ConfigError
    from distill.trainer import train

    other = tmp_path / "other-tokenizer"
    train_tokenizer(["a completely different corpus"] * 50, vocab_size=600).save_pretrained(other)
    AutoTokenizer.from_pretrained(other)
    config = small("opd", tmp_path / "run", server.spec, other)
    with pytest.raises(ConfigError, match="teacher: the server at .* tokenizes differently"):
        train(config, progress=False)
    assert not (tmp_path / "run").exists()


def distill_command(run_dir: Path, teacher: str, tokenizer: Path, *extra: str) -> list[str]:
    settings = {
        "env_id": "WebShop-v0",
        "student": "micro",
        "teacher": teacher,
        "tokenizer": str(tokenizer),
        "total_steps": 5,
        "rollouts_per_step": 2,
        "num_envs": 2,
        "max_new_tokens": 12,
        "max_turns": 3,
        "eval_every": 0,
        "eval_episodes": 0,
        "checkpoint_every": 1,
        "tensorboard": False,
        "teacher_options": json.dumps({"max_retries": 1, "backoff": 0.1, "timeout": 10}),
    }
    command = [sys.executable, str(ROOT / "tools" / "distill.py"), "--config", "opd", "--quiet"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return [*command, "--out", str(run_dir), *extra]


def test_a_teacher_server_that_dies_stops_the_run_and_resume_finishes_it(
    teacher_folder: Path, tmp_path: Path
) -> None:
    server = Server(teacher_folder)
    run_dir = tmp_path / "run"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    command = distill_command(run_dir, server.spec, teacher_folder)
    try:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        marker = run_dir / "checkpoints" / "step-00000001" / "COMPLETE"
        deadline = time.time() + 300
        while not marker.exists() and process.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert marker.exists(), process.stderr.read()[-2000:]
        server.kill()
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 3, stderr[-2000:]
        message = stderr.strip().splitlines()[-1]
        assert message.startswith("error: the teacher's server failed:")
        assert "is intact" in message and "--resume" in message
        assert not (run_dir / "final").exists()
        server = Server(teacher_folder, port=server.port)  # back at the same address
        resumed = subprocess.run(
            [*command, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        assert resumed.returncode == 0, resumed.stderr[-2000:]
    finally:
        server.kill()
    steps = [row["step"] for row in read_metrics(run_dir / "metrics.jsonl") if "loss" in row]
    assert steps == [1, 2, 3, 4, 5]
    assert (run_dir / "final" / "config.json").exists()


def test_collect_takes_any_agent_spec_a_served_model_included(
    server: Server, tmp_path: Path
) -> None:
    from tools import collect

    for spec, name in ((server.spec, "served"), ("random", "random"), ("tiny:micro", "tiny")):
        out = tmp_path / f"{name}.jsonl"
        argv = ["--env", "WebShop-v0", "--agent", spec, "--episodes", "2", "--all"]
        argv += ["--max-turns", "2", "--out", str(out), "--num-envs", "2"]
        argv += ["--agent-kwargs", '{"max_new_tokens": 8}'] if spec != "random" else []
        assert collect.main(argv) == 0, spec
        lines = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(lines) == 4 and all(
            line["messages"][-1]["role"] == "assistant" for line in lines
        )
