"""Optional experiment tracking (envs/tracking.py): an offline Weights & Biases run whose
numbers read back from wandb's own files, and one line when the extra is missing."""

from __future__ import annotations

import json
import shutil
import struct
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No WANDB_MODE set (the default is what is tested), wandb's own folders in tmp_path."""
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "unset")  # recorded, so the teardown removes what runs set
    monkeypatch.delenv("WANDB_MODE")
    for name in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home" / name.lower()))
    monkeypatch.setenv("WANDB_DISABLE_WEAVE", "true")


def wandb_records(folder: Path) -> list[Any]:
    """The records of the one offline run under ``folder/wandb``: its ``run-<id>.wandb`` file,
    a LevelDB-style log (32 KiB blocks; each chunk a 7-byte header: CRC, length, type) of
    wandb's protobuf ``Record`` messages after a 7-byte ``:W&B`` file header."""
    from wandb.proto import wandb_internal_pb2

    (path,) = (folder / "wandb").glob("offline-run-*/run-*.wandb")
    data, block, position, pending, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B"
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def items(entries: Any) -> dict[str, Any]:
    """A history row's or a summary update's items as {key: value} (wandb's own keys, which
    start with "_", left out); a key is in ``key`` or, split at "/", in ``nested_key``."""
    values = {(e.key or "/".join(e.nested_key)): json.loads(e.value_json) for e in entries}
    return {key: value for key, value in values.items() if not key.startswith("_")}


def logged_history(folder: Path) -> dict[int, dict[str, Any]]:
    """{step: {key: value}} of what the run logged."""
    return {
        record.history.step.num: items(record.history.item)
        for record in wandb_records(folder)
        if record.WhichOneof("record_type") == "history"
    }


def run_ids(folder: Path) -> set[str]:
    return {r.run.run_id for r in wandb_records(folder) if r.WhichOneof("record_type") == "run"}


def test_an_offline_run_keeps_the_logged_numbers(tmp_path: Path, offline: None) -> None:
    import os

    from envs.tracking import open_run

    run = open_run("wandb", folder=tmp_path, name="t", config={"lr": 0.5})
    assert os.environ["WANDB_MODE"] == "offline"  # nothing leaves the machine by default
    run.log({"loss": 2.0, "eval_sr": 25.0, "note": "text", "nan": float("nan")}, step=1)
    run.log({"loss": 1.5, "flag": True}, step=2)
    run.close()
    assert "wandb sync" in run.where()
    history = logged_history(tmp_path)
    assert history[1] == {"loss": 2.0, "eval_sr": 25.0}  # numbers only: no text, NaN, bool
    assert history[2] == {"loss": 1.5}


def test_distill_metrics_go_to_wandb_beside_jsonl_and_a_resume_keeps_the_run_id(
    tmp_path: Path, offline: None
) -> None:
    from distill.metrics import MetricsLog, read_metrics

    log = MetricsLog(tmp_path, tensorboard=False, track="wandb", track_config={"seed": 3})
    log.log(0, eval_sr=10.0)
    log.log(1, loss=0.75, kl=0.25)
    log.close()
    assert [row["step"] for row in read_metrics(tmp_path / "metrics.jsonl")] == [0, 1]
    assert logged_history(tmp_path) == {0: {"eval_sr": 10.0}, 1: {"loss": 0.75, "kl": 0.25}}
    run_id = (tmp_path / "wandb" / "run-id").read_text().strip()
    assert run_ids(tmp_path) == {run_id}
    shutil.rmtree(next((tmp_path / "wandb").glob("offline-run-*")))
    MetricsLog(tmp_path, resume_step=1, tensorboard=False, track="wandb").close()
    assert run_ids(tmp_path) == {run_id}  # the resumed run continues the same one


def test_benchmark_tracks_its_result_table(
    tmp_path: Path, offline: None, capsys: pytest.CaptureFixture
) -> None:
    from tools import benchmark

    out = tmp_path / "r.json"
    argv = ["--env", "ToolMath-v0", "--episodes", "2", "--no-plot", "--quiet", "--out", str(out)]
    assert benchmark.main([*argv, "--track", "wandb"]) == 0
    assert "tracked: " in capsys.readouterr().out
    (table,) = (tmp_path / "wandb").glob("offline-run-*/files/media/table/results_*.table.json")
    logged = json.loads(table.read_text())
    rows = json.loads(out.read_text())["results"]
    sr = logged["columns"].index("success_rate")
    assert [(r[0], r[2], r[sr]) for r in logged["data"]] == [
        (row["env_id"], row["agent"], row["summary"]["success_rate"]) for row in rows
    ]
    summary = {}
    for record in wandb_records(tmp_path):
        if record.WhichOneof("record_type") == "summary":
            summary.update(items(record.summary.update))
    assert summary["ToolMath-v0/test-v1/expert/success_rate"] == 100.0


def test_without_the_extra_each_way_in_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from distill.config import ConfigError, load_config
    from envs.tracking import TrackingError, check_tracker, open_run
    from tools import benchmark
    from tools import distill as distill_tool

    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` now raises ImportError
    expected = "wandb is not installed: install the tracking extra"
    with pytest.raises(TrackingError, match=expected):
        check_tracker("wandb")
    with pytest.raises(TrackingError, match="unknown tracker 'mlflow'; choose one of"):
        open_run("mlflow", folder=tmp_path, name="x")
    assert open_run("none", folder=tmp_path, name="x") is None
    with pytest.raises(ConfigError, match=f"track: {expected}"):
        load_config("sft", {"track": "wandb", "run_dir": str(tmp_path / "run")})
    assert distill_tool.main(["--config", "sft", "--track", "wandb", "--out", str(tmp_path)]) == 2
    assert benchmark.main(["--env", "ToolMath-v0", "--track", "wandb", "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: track: {expected} (.venv/bin/python -m pip install -e '.[tracking]') or "
        "track none",
        f"error: --track wandb: {expected} (.venv/bin/python -m pip install -e '.[tracking]') "
        "or track none",
    ]
