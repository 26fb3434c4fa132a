"""The Pitfall study: presets, the plan of runs, and running it resumably with progress.

A Pitfall preset is a YAML file in ``configs/study/`` with ``kind: pitfall``::

    kind: pitfall
    name: pitfall
    seeds: 10                     # main seeds 0..9 per cell (the held-out evaluation)
    lr_seeds: 3                   # seeds 100.. for choosing each arm's learning rate on dev
    lrs: [0.01, 0.03, 0.1]
    arms: [opd_sampled, opd_full, guided_opd, guided_masked, guided_constant, sft]
    teachers: {T1: 0.0, T2: 0.3}  # DART noise of each teacher's expert data (0: clean)
    teacher: {hidden: 64, steps: 1500, lr: 0.01, contexts: 512}
    students: {small: 8, large: 32}           # hidden units
    warm: {target: 0.05, lr: 0.01, max_steps: 400, demos: 50}
    train: {steps: 80, episodes: 16, probe_every: 10, pool: 5000}
    panels: {dev: 200, test: 1000}            # first N contexts of Pitfall-v0's dev / test
    mentor: {length: 10, max_turns: 12, steps: 80, groups: 4, group_size: 8, attempts: 4,
             teacher: T1, student: small, pool: 256, seeds: 50,
             arms: [...]}   # or null: no MENTOR arms (seeds: default the study's)

Every unit of work (a teacher, a warm start, a learning-rate trial, a run)
writes one JSON file under ``<out>/units/`` atomically (models under
``<out>/models/``) and is skipped when that file exists, so the same command
continues a stopped study. Seeds fix everything, so a resumed study gives the
numbers an uninterrupted one would.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PitfallPreset", "is_pitfall_preset", "load_pitfall_preset", "plan", "run_pitfall"]

_KEYS = {
    "kind", "name", "description", "seeds", "lr_seeds", "lrs", "arms", "teachers", "teacher",
    "students", "warm", "train", "panels", "mentor",
}  # fmt: skip
_LR_SEED_BASE = 100


@dataclass(frozen=True)
class PitfallPreset:
    """A Pitfall study preset (module docstring)."""

    name: str
    source: str
    seeds: tuple[int, ...]
    lr_seeds: tuple[int, ...]
    lrs: tuple[float, ...]
    arms: tuple[str, ...]
    teachers: dict[str, float]
    teacher: dict[str, Any]
    students: dict[str, int]
    warm: dict[str, Any]
    train: dict[str, Any]
    panels: dict[str, int]
    mentor: dict[str, Any] | None
    description: str = ""


def _path(name_or_path: str | Path) -> Path:
    from distill.study.presets import PRESET_DIR

    path = Path(name_or_path)
    return path if path.suffix else PRESET_DIR / f"{name_or_path}.yaml"


def is_pitfall_preset(name_or_path: str | Path) -> bool:
    """Whether the preset file says ``kind: pitfall``."""
    path = _path(name_or_path)
    if not path.is_file():
        return False
    data = yaml.safe_load(path.read_text()) or {}
    return isinstance(data, dict) and data.get("kind") == "pitfall"


def _need(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
    return value


def load_pitfall_preset(name_or_path: str | Path) -> PitfallPreset:
    """Read and check a Pitfall preset; a mistake is one ValueError naming the key."""
    from distill.study.pitfall_train import ARMS, MENTOR_ARMS

    path = _path(name_or_path)
    data = yaml.safe_load(path.read_text()) or {}
    where = str(path)
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(_KEYS)}")
    arms = tuple(_need(data, "arms", list, where))
    bad = [a for a in arms if a not in ARMS]
    if bad or not arms:
        raise ValueError(f"{where}: arms {bad or arms} unknown; choose from {list(ARMS)}")
    mentor = data.get("mentor")
    if mentor is not None:
        mentor = dict(_need(data, "mentor", dict, where))
        bad = [a for a in mentor.get("arms", MENTOR_ARMS) if a not in MENTOR_ARMS]
        if bad:
            raise ValueError(f"{where}: mentor.arms {bad} unknown; choose from {list(MENTOR_ARMS)}")
        mentor.setdefault("arms", list(MENTOR_ARMS))
        mentor["seeds"] = int(mentor.get("seeds", data.get("seeds", 10)))
        if not 1 <= mentor["seeds"] <= _LR_SEED_BASE:
            raise ValueError(f"{where}: mentor.seeds must be 1 to {_LR_SEED_BASE}")
    teachers = {str(k): float(v) for k, v in _need(data, "teachers", dict, where).items()}
    students = {str(k): int(v) for k, v in _need(data, "students", dict, where).items()}
    seeds, lr_seeds = int(data.get("seeds", 10)), int(data.get("lr_seeds", 3))
    if not (1 <= seeds <= _LR_SEED_BASE and lr_seeds >= 1):
        raise ValueError(f"{where}: seeds must be 1 to {_LR_SEED_BASE}, lr_seeds at least 1")
    return PitfallPreset(
        name=str(data.get("name", path.stem)),
        source=where,
        seeds=tuple(range(seeds)),
        lr_seeds=tuple(range(_LR_SEED_BASE, _LR_SEED_BASE + lr_seeds)),
        lrs=tuple(float(x) for x in _need(data, "lrs", list, where)),
        arms=arms,
        teachers=teachers,
        teacher=dict(_need(data, "teacher", dict, where)),
        students=students,
        warm=dict(_need(data, "warm", dict, where)),
        train=dict(_need(data, "train", dict, where)),
        panels={str(k): int(v) for k, v in _need(data, "panels", dict, where).items()},
        mentor=mentor,
        description=str(data.get("description", "")),
    )


# -- the plan --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """One resumable piece of work: its key (file name) and its relative cost."""

    key: str
    kind: str
    params: dict[str, Any]
    cost: float


def plan(preset: PitfallPreset) -> list[Unit]:
    """Every unit of the study, in an order where each one's inputs come first."""
    units = [Unit(f"teacher-{t}", "teacher", {"teacher": t}, 2.0) for t in preset.teachers]
    every_seed = preset.seeds + preset.lr_seeds
    units += [
        Unit(f"warm-{c}-{s}", "warm", {"capacity": c, "seed": s}, 3.0)
        for c in preset.students
        for s in every_seed
    ]
    run_cost = preset.train["steps"] * preset.train["episodes"] / 1600
    for t in preset.teachers:
        for c in preset.students:
            for arm in preset.arms:
                base = {"teacher": t, "capacity": c, "arm": arm}
                units += [
                    Unit(
                        f"lr-{t}-{c}-{arm}-{lr:g}-{s}",
                        "lr",
                        {**base, "lr": lr, "seed": s},
                        run_cost,
                    )  # fmt: skip
                    for lr in preset.lrs
                    for s in preset.lr_seeds
                ]
                units += [
                    Unit(f"run-{t}-{c}-{arm}-{s}", "run", {**base, "seed": s}, run_cost + 0.1)
                    for s in preset.seeds
                ]
    if preset.mentor:
        m = preset.mentor
        m_cost = m["steps"] * m["groups"] * m["group_size"] / 3200
        units.append(Unit("mentor-refs", "mentor_refs", {}, 1.0))
        mentor_seeds = tuple(range(m["seeds"]))
        units += [
            Unit(f"mwarm-{s}", "mentor_warm", {"seed": s}, 2.5)
            for s in mentor_seeds + preset.lr_seeds
        ]
        for arm in m["arms"]:
            units += [
                Unit(
                    f"mlr-{arm}-{lr:g}-{s}", "mentor_lr", {"arm": arm, "lr": lr, "seed": s}, m_cost
                )  # fmt: skip
                for lr in preset.lrs
                for s in preset.lr_seeds
            ]
            units += [
                Unit(f"mrun-{arm}-{s}", "mentor_run", {"arm": arm, "seed": s}, m_cost + 0.2)
                for s in mentor_seeds
            ]
    return units


def _demo_offset(seed: int) -> int:
    """Where a seed's warm-start demonstrations start among the train contexts: past the
    training pool (0-4999), apart for the first 20 main and 20 learning-rate seeds."""
    slot = seed if seed < _LR_SEED_BASE else 20 + seed - _LR_SEED_BASE
    return 5000 + 60 * (slot % 40)


# -- running ---------------------------------------------------------------------------------


class _Study:
    """Runs units, loading what earlier units wrote (models, chosen learning rates)."""

    def __init__(self, preset: PitfallPreset, out: Path) -> None:
        from distill.study.pitfall_train import split_tasks

        self.preset, self.out = preset, out
        (out / "units").mkdir(parents=True, exist_ok=True)
        (out / "models").mkdir(parents=True, exist_ok=True)
        self.dev = split_tasks("dev", preset.panels["dev"])
        self.test = split_tasks("test", preset.panels["test"])
        self._models: dict[str, Any] = {}

    def unit_path(self, key: str) -> Path:
        return self.out / "units" / f"{key}.json"

    def done(self, key: str) -> bool:
        return self.unit_path(key).is_file()

    def read(self, key: str) -> dict[str, Any]:
        return json.loads(self.unit_path(key).read_text())

    def write(self, key: str, value: dict[str, Any]) -> None:
        from envs.fileio import atomic_write_text

        atomic_write_text(self.unit_path(key), json.dumps(value, sort_keys=True) + "\n")

    def save_model(self, key: str, model: Any) -> None:
        import io

        import torch

        from envs.fileio import atomic_write_bytes

        buffer = io.BytesIO()
        torch.save(model.state_dict(), buffer)
        atomic_write_bytes(self.out / "models" / f"{key}.pt", buffer.getvalue())
        self._models[key] = model

    def model(self, key: str, hidden: int) -> Any:
        import torch

        from distill.study.pitfall_train import make_policy

        if key not in self._models:
            model = make_policy(hidden, 0)
            model.load_state_dict(torch.load(self.out / "models" / f"{key}.pt"))
            self._models[key] = model
        return self._models[key]

    def teacher(self, name: str) -> Any:
        return self.model(f"teacher-{name}", self.preset.teacher["hidden"])

    # -- the units ----------------------------------------------------------------------------

    def run_unit(self, unit: Unit) -> dict[str, Any]:
        return getattr(self, f"_{unit.kind}")(**unit.params)

    def _teacher(self, teacher: str) -> dict[str, Any]:
        from distill.study.pitfall_train import (
            fixed,
            play,
            probe,
            split_tasks,
            train_imitation,
        )

        t = self.preset.teacher
        noise = self.preset.teachers[teacher]
        model = train_imitation(
            t["hidden"], split_tasks("train", t["contexts"]), noise, t["steps"], t["lr"], seed=0
        )
        self.save_model(f"teacher-{teacher}", model)
        # Accuracy on and off the path over the states a DART-noisy expert visits on test.
        visits = play(self.test, None, None, fixed("expert", len(self.test)), 31, expert_noise=0.3)
        import torch

        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(visits.features)), -1).numpy()
        right = probs[range(len(visits.expert)), visits.expert]
        alone = probe(None, model, self.test, 41, who="teacher")
        on_dev = probe(None, model, self.dev, 43, who="teacher")
        return {
            "noise": noise,
            "test_success": alone["success"],
            "acc_on_path": float(right[~visits.in_pit].mean()),
            "acc_off_path": float(right[visits.in_pit].mean()),
            "dev_visited": on_dev,
        }

    def _warm(self, capacity: str, seed: int) -> dict[str, Any]:
        from distill.study.pitfall_train import split_tasks, warm_start

        w = self.preset.warm
        model, info = warm_start(
            self.preset.students[capacity], seed, self.dev,
            split_tasks("train", w["demos"], offset=_demo_offset(seed)),
            target=w["target"], lr=w["lr"], max_steps=w["max_steps"],
        )  # fmt: skip
        self.save_model(f"warm-{capacity}-{seed}", model)
        return info

    def _train(self, teacher: str, capacity: str, arm: str, lr: float, seed: int) -> Any:
        from distill.study.pitfall_train import ARMS, train_arm

        tr = self.preset.train
        return train_arm(
            ARMS[arm],
            self.model(f"warm-{capacity}-{seed}", self.preset.students[capacity]),
            self.teacher(teacher),
            steps=tr["steps"], episodes=tr["episodes"], lr=lr, seed=seed,
            train_pool=tr["pool"], dev=self.dev, probe_every=tr["probe_every"],
            teacher_dev=self.read(f"teacher-{teacher}")["dev_visited"],
        )  # fmt: skip

    def _lr(self, teacher: str, capacity: str, arm: str, lr: float, seed: int) -> dict[str, Any]:
        _, curve = self._train(teacher, capacity, arm, lr, seed)
        return {"dev_success": curve[-1]["success"], "lr": lr}

    def chosen_lr(self, prefix: str, lrs: tuple[float, ...]) -> tuple[float, dict[str, float]]:
        """The learning rate with the best mean final dev success (ties: the smaller one)."""
        means = {}
        for lr in lrs:
            values = [
                self.read(f"{prefix}-{lr:g}-{s}")["dev_success"] for s in self.preset.lr_seeds
            ]
            means[f"{lr:g}"] = sum(values) / len(values)
        best = max(lrs, key=lambda lr: (means[f"{lr:g}"], -lr))
        return best, means

    def _run(self, teacher: str, capacity: str, arm: str, seed: int) -> dict[str, Any]:
        from distill.study.pitfall_train import probe

        lr, trials = self.chosen_lr(f"lr-{teacher}-{capacity}-{arm}", self.preset.lrs)
        student, curve = self._train(teacher, capacity, arm, lr, seed)
        final = probe(student, self.teacher(teacher), self.test, 2024)
        return {"lr": lr, "lr_trials": trials, "curve": curve, "test": final}

    # -- MENTOR --------------------------------------------------------------------------------

    def _variant(self) -> dict[str, Any]:
        m = self.preset.mentor or {}
        return {"length": m["length"], "max_turns": m["max_turns"]}

    def _mentor_refs(self) -> dict[str, Any]:
        from distill.study.pitfall_train import reference_types, split_tasks

        m = self.preset.mentor or {}
        pool = split_tasks("train", m["pool"], offset=8000)
        refs = reference_types(self.teacher(m["teacher"]), pool, m["attempts"], 99,
                               **self._variant())  # fmt: skip
        return {"pool": pool, "references": refs,
                "with_reference": sum(bool(r) for r in refs.values()) / len(refs)}  # fmt: skip

    def _mentor_warm(self, seed: int) -> dict[str, Any]:
        from distill.study.pitfall_train import split_tasks, warm_start

        m, w = self.preset.mentor or {}, self.preset.warm
        model, info = warm_start(
            self.preset.students[m["student"]], seed, self.dev,
            split_tasks("train", w["demos"], offset=_demo_offset(seed)),
            target=m.get("warm_target", w["target"]), lr=w["lr"], max_steps=w["max_steps"],
            **self._variant(),
        )  # fmt: skip
        self.save_model(f"mwarm-{seed}", model)
        return info

    def _mentor_train(self, arm: str, lr: float, seed: int) -> Any:
        from distill.study.pitfall_train import mentor_train

        m = self.preset.mentor or {}
        refs = self.read("mentor-refs")
        return mentor_train(
            arm, self.model(f"mwarm-{seed}", self.preset.students[m["student"]]),
            refs["references"], steps=m["steps"], groups=m["groups"],
            group_size=m["group_size"], lr=lr, seed=seed, pool=refs["pool"], dev=self.dev,
            probe_every=self.preset.train["probe_every"], variant=self._variant(),
        )  # fmt: skip

    def _mentor_lr(self, arm: str, lr: float, seed: int) -> dict[str, Any]:
        _, curve = self._mentor_train(arm, lr, seed)
        return {"dev_success": curve[-1]["success"], "lr": lr}

    def _mentor_run(self, arm: str, seed: int) -> dict[str, Any]:
        from distill.study.pitfall_train import fixed, play

        lr, trials = self.chosen_lr(f"mlr-{arm}", self.preset.lrs)
        student, curve = self._mentor_train(arm, lr, seed)
        trace = play(self.test, student, None, fixed("student", len(self.test)), 2024,
                     **self._variant())  # fmt: skip
        return {"lr": lr, "lr_trials": trials, "curve": curve,
                "test": {"success": float(trace.won.mean()), "score": float(trace.score.mean())}}  # fmt: skip


def run_pitfall(
    preset: PitfallPreset, out: Path, *, progress: bool = True, say: Callable[[str], Any] = print
) -> dict[str, Any]:
    """Run every unit not yet done (saying first what and roughly how long), then gather
    everything into ``out/results.json``; returns the gathered results."""
    import torch

    torch.set_num_threads(1)  # tiny MLPs: one thread is fastest, and the machine is shared
    study = _Study(preset, out)
    units = plan(preset)
    todo = [u for u in units if not study.done(u.key)]
    seconds = sum(u.cost for u in todo) * _SECONDS_PER_COST
    counts: dict[str, int] = {}
    for unit in units:
        counts[unit.kind] = counts.get(unit.kind, 0) + 1
    say(
        f"Pitfall study '{preset.name}': {len(preset.teachers)} teachers x "
        f"{len(preset.students)} student sizes x {len(preset.arms)} arms x {len(preset.seeds)} "
        f"seeds (+ {len(preset.lrs)} learning rates x {len(preset.lr_seeds)} seeds each on dev)"
        + (
            f", {len(preset.mentor['arms'])} MENTOR arms x {preset.mentor['seeds']} seeds"
            if preset.mentor
            else ""
        )
        + f": {len(units)} units ({', '.join(f'{v} {k}' for k, v in counts.items())}); "
        f"{len(units) - len(todo)} done already, {len(todo)} to run, roughly "
        f"{seconds / 60:.0f} min on one free core."
    )
    from tqdm import tqdm

    bar = tqdm(total=len(todo), disable=not progress, unit="unit", smoothing=0.05)
    started = time.perf_counter()
    for unit in todo:
        bar.set_description(unit.key[:40])
        began = time.perf_counter()
        value = study.run_unit(unit)
        value["seconds"] = time.perf_counter() - began
        study.write(unit.key, value)
        bar.update(1)
    bar.close()
    if todo:
        say(f"ran {len(todo)} units in {(time.perf_counter() - started) / 60:.1f} min")
    return gather(preset, out)


#: Seconds per unit of ``Unit.cost`` on one free core of the development machine.
_SECONDS_PER_COST = 0.9


def gather(preset: PitfallPreset, out: Path) -> dict[str, Any]:
    """Every finished unit of the preset, keyed by kind, written to ``out/results.json``."""
    from envs.fileio import atomic_write_text

    study = _Study(preset, out)
    results: dict[str, Any] = {"preset": preset.name, "units": {}}
    missing = 0
    for unit in plan(preset):
        if study.done(unit.key):
            record = {"kind": unit.kind, **unit.params, **study.read(unit.key)}
            for point in record.get("curve", [])[1:-1]:
                point.pop("kl_per_turn", None)  # the report reads it at the start and the end
            results["units"][unit.key] = record
        else:
            missing += 1
    results["missing_units"] = missing
    results["seconds"] = sum(u.get("seconds", 0.0) for u in results["units"].values())
    results = _rounded(results)
    atomic_write_text(out / "results.json", json.dumps(results, sort_keys=True) + "\n")
    return results


def _rounded(value: Any) -> Any:
    """Floats to 5 significant digits (the tables show 3): a results file half the size."""
    if isinstance(value, float):
        return float(f"{value:.5g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value
