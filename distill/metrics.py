"""Training metrics: JSONL (always), TensorBoard (when installed), and a learning-curve PNG.

``MetricsLog(run_dir)`` appends one JSON object per ``log(step, **values)``
to ``run_dir/metrics.jsonl`` and mirrors scalars to TensorBoard under
``run_dir/tensorboard`` (and, with ``track="wandb"``, to a Weights & Biases
run under ``run_dir/wandb``: ``envs.tracking``). On resume, rows after the checkpoint's step are
dropped first, so the file reads as one uninterrupted run. ``plot_curves``
draws every numeric metric against the step into ``run_dir/curves.png``.
"""

from __future__ import annotations

import io
import json
import math
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write_bytes, atomic_write_text

__all__ = ["MetricsLog", "StepLog", "curve_order", "plot_curves", "read_metrics", "rollout_rows"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a metrics.jsonl file (a torn last line, from a kill mid-write, is skipped)."""
    rows = []
    path = Path(path)
    if not path.exists():
        return rows
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class StepLog:
    """A JSONL file of rows keyed by ``step``, appended as a run goes. On resume, rows after
    the checkpoint's step are dropped first (a fresh run starts the file anew), so the file
    reads as one uninterrupted run."""

    def __init__(self, path: str | Path, *, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is not None:
            kept = [row for row in read_metrics(self.path) if row.get("step", -1) <= resume_step]
            atomic_write_text(
                self.path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in kept)
            )
        elif self.path.exists():
            self.path.unlink()
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        self._file.write(json.dumps(row, default=float, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class MetricsLog:
    """Append-only metrics of one run (see the module docstring)."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        resume_step: int | None = None,
        tensorboard: bool = True,
        track: str = "none",
        track_config: dict[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self._rows = StepLog(self.path, resume_step=resume_step)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(
                    log_dir=str(self.run_dir / "tensorboard"), purge_step=resume_step
                )
            except ImportError:  # tensorboard is optional
                self._writer = None
        from envs.tracking import open_run

        self._tracking = open_run(
            track,
            folder=self.run_dir,
            name=self.run_dir.name,
            config=track_config,
            resume=resume_step is not None,
        )

    def log(self, step: int, **values: Any) -> None:
        self._rows.write({"step": int(step), **values})
        if self._writer is not None:
            for key, value in values.items():
                if (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                ):
                    self._writer.add_scalar(key, value, step)
        if self._tracking is not None:
            self._tracking.log(values, step=int(step))

    def close(self) -> None:
        self._rows.close()
        if self._writer is not None:
            self._writer.close()
        if self._tracking is not None:
            self._tracking.close()


def rollout_rows(step: int, rollouts: Any) -> list[dict[str, Any]]:
    """One ``trajectories.jsonl`` row per turn of ``rollouts`` (``distill.rollout.Rollout``):
    who acted, what was said and done, what the env answered, and the token log-probs
    (the sampler's and the teacher's, where kept). Prompts are left out: they are long
    and rebuilt from the turns before."""
    rows = []
    for index, rollout in enumerate(rollouts):
        for number, turn in enumerate(rollout.turns):
            rows.append(
                {
                    "step": int(step),
                    "rollout": index,
                    "env_id": rollout.env_id,
                    "task_id": rollout.task_id,
                    "seed": rollout.seed,
                    "group": rollout.group,
                    "turn": number,
                    "actor": turn.actor,
                    "completion": turn.completion,
                    "action": turn.action,
                    "observation": turn.observation,
                    "reward": turn.reward,
                    "score": turn.score,
                    "invalid_action": turn.invalid_action,
                    "finished": turn.finished,
                    "trained": turn.trained,
                    "won": rollout.won,
                    "completion_tokens": len(turn.completion_ids),
                    "logprobs": turn.sample_logprobs,
                    "teacher_logprobs": turn.teacher_logprobs,
                }
            )
    return rows


# What a reader looks at first: the loss, success rates, then KL; other metrics follow.
_LEADING = ("loss", "eval_sr", "train_sr", "eval_score", "train_score")


def curve_order(series: dict[str, list[tuple[int, float]]]) -> tuple[list[str], dict[str, float]]:
    """The panels of ``curves.png`` in order, and the constants left out (name -> value).

    Loss and success rates lead, then every metric whose name holds ``kl``, then
    the rest alphabetically. Any other metric that never changes (``lr``
    without a schedule, ``eval_episodes``) gets no panel; its value is listed.
    """

    def rank(name: str) -> tuple[int, int, str]:
        if name in _LEADING:
            return (0, _LEADING.index(name), name)
        return (1 if "kl" in name.split("_") else 2, 0, name)

    constants = {
        name: points[0][1]
        for name, points in series.items()
        if rank(name)[0] == 2 and len({value for _, value in points}) == 1
    }
    shown = [name for name in series if name not in constants]

    return sorted(shown, key=rank), constants


def plot_curves(run_dir: str | Path, *, title: str = "") -> Path | None:
    """Plot the metrics of ``run_dir/metrics.jsonl`` against the step into ``curves.png``.

    One panel per metric that varies, in ``curve_order``; constants are listed below.
    """
    rows = read_metrics(Path(run_dir) / "metrics.jsonl")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in rows:
        for key, value in row.items():
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                series[key].append((row["step"], float(value)))
    if not series:
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    names, constants = curve_order(series)
    if not names:  # every metric constant: still show them
        names, constants = sorted(series), {}
    columns = min(3, len(names))
    rows_count = math.ceil(len(names) / columns)
    # Constrained layout keeps the title and the constants' note clear of the panels.
    fig, axes = plt.subplots(
        rows_count,
        columns,
        figsize=(4.5 * columns, 3 * rows_count + 0.8),
        squeeze=False,
        layout="constrained",
    )
    every_step = [step for points in series.values() for step, _ in points]
    span = (min(every_step) - 0.5, max(every_step) + 0.5)  # one x range: points line up
    for ax, name in zip(axes.flat, names):
        steps, values = zip(*series[name])
        ax.set_xlim(*span)
        ax.plot(steps, values, marker="o" if len(steps) < 30 else None, markersize=3)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    if constants:
        note = ", ".join(f"{name}={value:g}" for name, value in sorted(constants.items()))
        fig.supxlabel("constant: " + textwrap.fill(note, 160), fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return atomic_write_bytes(Path(run_dir) / "curves.png", buffer.getvalue())
