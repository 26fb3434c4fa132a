"""The full-stack Pitfall confirmation: tiny language-model policies through the trainer.

The Pitfall study (:mod:`distill.study.pitfall`) trains MLP policies on the
vectorised env. This one runs its key arms through everything a user runs:
the registered ``Pitfall-v0`` text env, tiny Qwen3-architecture language
models (``agents.tiny``), :func:`distill.trainer.train` (what
``tools/distill.py`` calls), and evaluation by sampling at the temperature
the training rollouts use, so the policy trained is the policy scored. A
preset (``configs/study/<name>.yaml``)::

    kind: pitfall_lm
    name: pitfall_lm
    seeds: 3                          # seeds 0..2 of every arm
    arms: [opd, guided_opd, guided_masked, sft]
    temperature: 1.0                  # acting temperature, training and evaluation
    prompt: {history_k: 0}            # agents.prompts.PromptConfig fields
    teacher: {student: tiny, total_steps: 400, ...}   # the SFT run of T1 (clean expert data)
    warm: {student: micro, target: 10, total_steps: 600, eval_every: 50,
           eval_episodes: 40, ...}    # the student's warm start (SFT on expert data)
    train: {total_steps: 20, rollouts_per_step: 8, learning_rate: 0.001, ...}   # every arm
    arm_train: {sft: {demo_episodes: 64}}                                       # one arm's
    eval: {panel: test-v1, episodes: 100}   # every model is scored on these episodes
    compare: docs/study/pitfall/results.json   # the MLP study's results, for the comparison

Teacher and warm start are SFT runs (``configs/sft.yaml`` under the preset's
fields). The warm start evaluates its checkpoints on the dev panel every
``eval_every`` steps and keeps them all; the study starts every arm from the
checkpoint whose dev success is closest to ``target`` (percent), ties going to
the better score and then to the later step. Every unit (teacher, warm start,
each arm and seed) writes ``<out>/units/<key>.json`` atomically and is skipped
when it exists; a half-trained run resumes from its newest checkpoint.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ARMS",
    "LMPreset",
    "choose_checkpoint",
    "is_lm_preset",
    "load_lm_preset",
    "run_pitfall_lm",
    "state_accuracy",
]

ENV_ID = "Pitfall-v0"
#: Study arm -> the distillation config fields that make it.
ARMS: dict[str, dict[str, Any]] = {
    "opd": {"method": "opd"},
    "guided_opd": {"method": "guided_opd", "schedule": "cosine"},
    # Guided-OPD's rollouts, but the teacher's turns train nothing: what is left is the
    # effect of the state distribution the teacher's turns lead the student into.
    "guided_masked": {"method": "guided_opd", "schedule": "cosine", "teacher_turn_loss": "none"},
    "sft": {"method": "sft", "demonstrator": "teacher"},
}
_KEYS = {
    "kind", "name", "description", "seeds", "arms", "temperature", "prompt", "teacher", "warm",
    "train", "arm_train", "eval", "compare",
}  # fmt: skip


@dataclass(frozen=True)
class LMPreset:
    """A ``kind: pitfall_lm`` preset (module docstring)."""

    name: str
    source: str
    seeds: tuple[int, ...]
    arms: tuple[str, ...]
    temperature: float
    teacher: dict[str, Any]
    warm: dict[str, Any]
    train: dict[str, Any]
    eval: dict[str, Any]
    prompt: dict[str, Any] = field(default_factory=dict)
    arm_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    compare: str | None = None
    description: str = ""

    @property
    def target(self) -> float:
        return float(self.warm["target"])

    def units(self) -> list[str]:
        """Every unit's key, in run order."""
        return ["teacher", "warm"] + [f"{a}-seed{s}" for s in self.seeds for a in self.arms]


def _read(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a preset is a mapping")
    return data


def _path(name_or_path: str | Path) -> Path:
    from distill.study.presets import PRESET_DIR

    path = Path(name_or_path)
    return path if path.suffix else PRESET_DIR / f"{name_or_path}.yaml"


def is_lm_preset(name_or_path: str | Path) -> bool:
    """Whether the preset file says ``kind: pitfall_lm``."""
    path = _path(name_or_path)
    return path.is_file() and _read(path).get("kind") == "pitfall_lm"


def _mapping(data: dict[str, Any], key: str, where: str, *, required: bool = True) -> dict:
    value = data.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: {key} must be a mapping of settings")
    return dict(value)


def load_lm_preset(name_or_path: str | Path) -> LMPreset:
    """A ``kind: pitfall_lm`` preset by name or path; a mistake is one ValueError line."""
    path = _path(name_or_path)
    if not path.is_file():
        raise ValueError(f"no study preset {str(name_or_path)!r} ({path} does not exist)")
    data, where = _read(path), str(path)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(_KEYS)}")
    seeds = data.get("seeds")
    if not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"{where}: seeds must be a positive integer (seeds 0..n-1 per arm)")
    arms = data.get("arms")
    if not isinstance(arms, list) or not arms or any(a not in ARMS for a in arms):
        raise ValueError(f"{where}: arms must be a non-empty list from {sorted(ARMS)}; got {arms}")
    temperature = data.get("temperature", 1.0)
    if not isinstance(temperature, int | float) or temperature <= 0:
        raise ValueError(f"{where}: temperature must be a positive number (sampling)")
    warm = _mapping(data, "warm", where)
    for key in ("target", "eval_every", "eval_episodes"):
        if not isinstance(warm.get(key), int | float) or warm[key] <= 0:
            raise ValueError(f"{where}: warm.{key} must be a positive number")
    evaluation = _mapping(data, "eval", where)
    if not isinstance(evaluation.get("episodes"), int) or evaluation["episodes"] < 1:
        raise ValueError(f"{where}: eval.episodes must be a positive integer")
    arm_train = _mapping(data, "arm_train", where, required=False)
    for arm in arm_train:
        if arm not in arms:
            raise ValueError(f"{where}: arm_train.{arm} is not one of the arms {arms}")
    compare = data.get("compare")
    return LMPreset(
        name=str(data.get("name", path.stem)),
        source=str(path),
        seeds=tuple(range(seeds)),
        arms=tuple(arms),
        temperature=float(temperature),
        teacher=_mapping(data, "teacher", where),
        warm=warm,
        train=_mapping(data, "train", where),
        eval={"panel": "test-v1", **evaluation},
        prompt=_mapping(data, "prompt", where, required=False),
        arm_train={a: _mapping(arm_train, a, f"{where}: arm_train") for a in arm_train},
        compare=str(compare) if compare else None,
        description=str(data.get("description", "")),
    )


# -- the states an episode visited -----------------------------------------------------------

_POSITION = re.compile(r"obstacle (\d+) of", re.IGNORECASE)


def state_accuracy(rollouts: list[Any]) -> dict[str, float]:
    """How often the actor's move was the oracle's, on the trail and in pits, over ``rollouts``.

    The state before each turn is read from the observation the actor saw (position and
    pit; an invalid move's reply names neither, and the state is then the previous one);
    the oracle's move follows from the task's context (``envs.pitfall.dynamics``). Returns
    the counts and fractions (nan where there are no such states) and the off-path fraction.
    """
    from envs.pitfall.dynamics import ACTIONS, context, expert_index

    right = {"on": 0, "off": 0}
    seen = {"on": 0, "off": 0}
    for rollout in rollouts:
        if rollout.state is None:
            continue
        mode, obstacles = context(rollout.task_id)
        position, in_pit = 0, False
        for step in rollout.state.steps:
            found = _POSITION.search(step.observation)
            if found:
                position = int(found.group(1)) - 1
                in_pit = "in a pit" in step.observation
            where = "off" if in_pit else "on"
            seen[where] += 1
            move = ACTIONS[int(expert_index(obstacles[position], mode, in_pit))]
            right[where] += int(step.action.strip() == move)
    total = seen["on"] + seen["off"]
    nan = float("nan")
    return {
        "acc_on_path": right["on"] / seen["on"] if seen["on"] else nan,
        "acc_off_path": right["off"] / seen["off"] if seen["off"] else nan,
        "states_on_path": seen["on"],
        "states_off_path": seen["off"],
        "offpath": seen["off"] / total if total else nan,
    }


# -- choosing the warm start --------------------------------------------------------------


def choose_checkpoint(curve: list[tuple[int, float, float]], target: float) -> tuple[int, float]:
    """(step, dev success) of the evaluation closest to ``target`` among ``curve``'s
    (step, success %, score %) rows after step 0. Evaluations with some success come first
    (a student that never wins gives the arms nothing to compare: success jumps steeply
    with training here, so 0% can sit nearer the target than the first non-zero value);
    ties go to the higher score (further along the trail), then to the later step."""
    rows = [row for row in curve if row[0] > 0]
    if not rows:
        raise ValueError("the warm start has no evaluation after step 0 to choose from")
    rows = [row for row in rows if row[1] > 0] or rows
    step, success, _score = min(rows, key=lambda r: (abs(r[1] - target), -r[2], -r[0]))
    return step, success


# -- the runner -----------------------------------------------------------------------------


class _Study:
    def __init__(self, preset: LMPreset, out: Path, *, progress: bool) -> None:
        self.preset, self.out, self.progress = preset, out, progress
        (out / "units").mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.out / "units" / f"{key}.json"

    def done(self, key: str) -> bool:
        return self.path(key).is_file()

    def write(self, key: str, value: dict[str, Any]) -> None:
        from envs.fileio import atomic_write_text

        atomic_write_text(self.path(key), json.dumps(_rounded(value), indent=1) + "\n")

    @property
    def teacher_final(self) -> Path:
        return self.out / "teacher" / "final"

    @property
    def initial(self) -> Path:
        return self.out / "warm" / "chosen"

    def config(self, overrides: dict[str, Any]) -> Any:
        from distill.config import load_config

        base = {
            "env_id": ENV_ID,
            "prompt": self.preset.prompt,
            "env_mode": "sync",
            "tensorboard": False,
            "train_temperature": self.preset.temperature,
            "eval_temperature": self.preset.temperature,
            "eval_mode": "generate",
        }
        return load_config(None, {**base, **overrides})

    def fit(self, config: Any) -> float:
        from distill.checkpoint import latest_checkpoint
        from distill.trainer import train

        started = time.perf_counter()
        train(config, resume=latest_checkpoint(config.run_dir) is not None, progress=False)
        return time.perf_counter() - started

    def evaluate(self, model: Path, seed: int) -> dict[str, Any]:
        """``model`` plays the preset's evaluation episodes at the acting temperature."""
        from agents.factory import make_agent, model_spec
        from agents.prompts import PromptConfig
        from distill.env_defaults import env_defaults, merged
        from distill.evaluation import find_panel, play_panel, summarise_rollouts
        from distill.rollout import RolloutCollector

        started = time.perf_counter()
        prompt = PromptConfig(**merged(env_defaults(ENV_ID).prompt, self.preset.prompt))
        tokens = int(self.preset.train.get("max_new_tokens", 16))
        agent = make_agent(
            model_spec(str(model)), seed=seed, options={"prompt": prompt, "max_new_tokens": tokens}
        )
        panel = find_panel(ENV_ID, self.preset.eval["panel"])
        collector = RolloutCollector(
            ENV_ID, student=agent, num_envs=8, env_kwargs={"split": panel.split}, mode="sync"
        )
        try:
            rollouts = play_panel(
                collector,
                panel,
                temperature=self.preset.temperature,
                episodes=self.preset.eval["episodes"],
                max_turns=env_defaults(ENV_ID).max_turns or 30,
            )
        finally:
            collector.close()
        summary = summarise_rollouts(rollouts)
        return {
            "success": summary["sr"],
            "score": summary["score"],
            "episodes": summary["episodes"],
            "won": [bool(r.won) for r in rollouts],
            "invalid_fraction": _invalid(rollouts),
            **state_accuracy(rollouts),
            "eval_s": time.perf_counter() - started,
        }

    # -- units --------------------------------------------------------------------------

    def teacher(self) -> dict[str, Any]:
        fields = {"method": "sft", "demonstrator": "expert", "successful_only": True,
                  "eval_every": 0, "eval_episodes": 0, "target_eval_sr": None,
                  "seed": 0, **self.preset.teacher,
                  "run_dir": str(self.out / "teacher")}  # fmt: skip
        wall = 0.0
        if not (self.teacher_final / "config.json").is_file():
            wall = self.fit(self.config(fields))
        return {"wall_s": wall, "test": self.evaluate(self.teacher_final, seed=0)}

    def warm(self) -> dict[str, Any]:
        from distill.metrics import read_metrics

        run_dir = self.out / "warm"
        warm = {k: v for k, v in self.preset.warm.items() if k != "target"}
        steps = int(warm.get("total_steps", 250))
        every = int(warm["eval_every"])
        fields = {"method": "sft", "demonstrator": "expert", "successful_only": True,
                  "tokenizer": str(self.teacher_final), "seed": 0, "eval_panel": "dev-v1",
                  "checkpoint_every": every, "keep_checkpoints": steps // every + 2,
                  "target_eval_sr": None, **warm, "run_dir": str(run_dir)}  # fmt: skip
        started = time.perf_counter()
        if not (run_dir / "final" / "config.json").is_file():
            self.fit(self.config(fields))
        wall = time.perf_counter() - started
        curve = [
            (int(r["step"]), float(r["eval_sr"]), float(r.get("eval_score", 0.0)))
            for r in read_metrics(run_dir / "metrics.jsonl")
            if "eval_sr" in r
        ]
        step, dev = choose_checkpoint(curve, self.preset.target)
        self._install(run_dir / "checkpoints" / f"step-{step:08d}" / "model")
        return {
            "wall_s": wall,
            "curve": [list(row) for row in curve],
            "step": step,
            "dev_success": dev,
            "test": self.evaluate(self.initial, seed=0),
        }

    def _install(self, model: Path) -> None:
        """The chosen checkpoint's weights with the teacher's tokenizer, as a model folder."""
        if not (model / "config.json").is_file():
            raise RuntimeError(f"the warm start's checkpoint {model.parent.name} was not kept")
        partial = self.initial.with_name("chosen.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(model, partial)
        for item in self.teacher_final.iterdir():
            if "token" in item.name or item.name == "chat_template.jinja":
                shutil.copy2(item, partial / item.name)
        shutil.rmtree(self.initial, ignore_errors=True)
        partial.rename(self.initial)

    def arm(self, arm: str, seed: int) -> dict[str, Any]:
        run_dir = self.out / "arms" / arm / f"seed{seed}"
        fields = {
            **self.preset.train,
            **ARMS[arm],
            **self.preset.arm_train.get(arm, {}),
            "student": str(self.initial),
            "teacher": str(self.teacher_final),
            "seed": seed,
            "eval_every": 0,
            "eval_episodes": 0,  # scored below, on the same episodes as every model
            "run_dir": str(run_dir),
        }
        wall = 0.0
        if not (run_dir / "final" / "config.json").is_file():
            wall = self.fit(self.config(fields))
        return {"arm": arm, "seed": seed, "wall_s": wall,
                "test": self.evaluate(run_dir / "final", seed=seed)}  # fmt: skip


def _invalid(rollouts: list[Any]) -> float:
    turns = [t for r in rollouts for t in r.turns]
    return sum(t.invalid_action for t in turns) / len(turns) if turns else float("nan")


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 5)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def _minutes(preset: LMPreset, key: str) -> float:
    """Rough minutes a unit takes on a loaded 2-core machine (one torch thread), from the
    first full run's times: optimiser steps, episodes played and evaluations."""
    playing = 0.012 * preset.eval["episodes"]  # minutes per evaluation episode, about
    if key == "teacher":
        return 0.02 * preset.teacher.get("total_steps", 250) + playing
    if key == "warm":
        steps = preset.warm.get("total_steps", 250)
        evaluations = steps // preset.warm["eval_every"] + 1
        return 0.005 * steps + 0.012 * evaluations * preset.warm["eval_episodes"] + playing
    arm = key.rpartition("-seed")[0]
    fields = {**preset.train, **preset.arm_train.get(arm, {})}
    steps = fields.get("total_steps", 10) * min(fields.get("rollouts_per_step", 8), 8)
    return 0.012 * steps + playing


def plan_text(preset: LMPreset, out: Path) -> str:
    """What the study will do, what is already done, and roughly how long the rest takes."""
    left = [k for k in preset.units() if not (out / "units" / f"{k}.json").is_file()]
    minutes = sum(_minutes(preset, k) for k in left)
    return (
        f"pitfall_lm study {preset.name!r}: T1 (SFT of a {preset.teacher.get('student')} LM on "
        f"clean expert Pitfall-v0 episodes), a {preset.warm.get('student')} student warm-started "
        f"to ~{preset.target:g}% dev success, then {len(preset.arms)} arms "
        f"({', '.join(preset.arms)}) x {len(preset.seeds)} seeds, each scored on "
        f"{preset.eval['episodes']} {preset.eval['panel']} episodes at temperature "
        f"{preset.temperature:g}. {len(left)} of {len(preset.units())} units left, roughly "
        f"{max(1, round(minutes))} min on a loaded 2-core machine."
    )


def run_pitfall_lm(preset: LMPreset, out: str | Path, *, progress: bool = True) -> dict:
    """Run (or finish) every unit of ``preset`` under ``out``; returns the gathered results."""
    import torch
    from tqdm.auto import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(1)  # tiny models gain little from a second thread on a shared machine
    out = Path(out)
    study = _Study(preset, out, progress=progress)
    print(plan_text(preset, out), flush=True)
    keys = preset.units()
    bar = tqdm(total=len(keys), desc=f"study {preset.name}", disable=not progress)
    for key in keys:
        bar.set_postfix_str(key)
        if not study.done(key):
            started = time.perf_counter()
            if key == "teacher":
                record = study.teacher()
            elif key == "warm":
                record = study.warm()
            else:
                arm, _, seed = key.rpartition("-seed")
                record = study.arm(arm, int(seed))
            record["unit_s"] = time.perf_counter() - started
            study.write(key, record)
            tqdm.write(f"[{preset.name}] {key}: {_line(record)}")
        bar.update(1)
    bar.close()
    return gather(preset, out)


def _line(record: dict[str, Any]) -> str:
    test = record["test"]
    return (
        f"test success {test['success']:.1f}%, off-path {test['offpath']:.2f}, "
        f"P(expert) on/off path {test['acc_on_path']:.2f}/{test['acc_off_path']:.2f} "
        f"({record['unit_s'] / 60:.1f} min)"
    )


def gather(preset: LMPreset, out: str | Path) -> dict[str, Any]:
    """Every finished unit's record, plus the preset and the compute they took."""
    out = Path(out)
    units = {}
    for key in preset.units():
        path = out / "units" / f"{key}.json"
        if path.is_file():
            units[key] = json.loads(path.read_text())
    return {
        "preset": preset.name,
        "units": units,
        "missing_units": [k for k in preset.units() if k not in units],
        "seconds": sum(u.get("unit_s", 0.0) for u in units.values()),
    }
