"""Run a study preset: teachers, then every (family, student size, method, seed) cell, then evaluation.

Everything a stage produces is a file under the output folder, and a stage
whose file exists is skipped, so a killed study continues where it stopped
(a half-trained cell resumes from its newest checkpoint)::

    <out>/<family>/games/                 the family's generated ALFWorld games (`games:`)
    <out>/<family>/teacher/               the SFT teacher run (final/ is the model; a
                                          `teacher: recipe` family copies the embedded
                                          teacher's final/ and metrics here)
    <out>/<family>/teacher/study_eval.json
    <out>/<family>/<size>/warmstart/      the shared initial student, SFT on expert
                                          trajectories (families with `warm_start`)
    <out>/<family>/<size>/initial/seed<k>/study_eval.json   the initial student
    <out>/<family>/<size>/<method>/seed<k>/                 a distillation run
    <out>/<family>/<size>/<method>/seed<k>/study_eval.json  its evaluation
    <out>/results.json                    every evaluation and timing, gathered

Each evaluation plays every panel of the family at the evaluation temperature
and, on the in-domain panels, has the teacher score ``kl_episodes`` student
episodes sampled at temperature 1 for the per-turn KL.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from distill.metrics import read_metrics
from distill.study.presets import METHOD_VARIANTS, EvalSpec, Family, Preset
from envs.fileio import atomic_write_text

__all__ = ["cell_dir", "run_study", "teacher_dir"]

EVAL_FILE = "study_eval.json"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
GAMES_FILE = "games.json"


def teacher_dir(out: Path, family: Family) -> Path:
    return out / family.name / "teacher"


def games_dir(out: Path, family: Family) -> Path:
    return out / family.name / "games"


def _data_dir(out: Path, family: Family) -> dict[str, Any]:
    """``data_dir`` of the family's generated games, or nothing if it has none."""
    return {} if family.games is None else {"data_dir": str(games_dir(out, family))}


def family_env_kwargs(out: Path, family: Family) -> dict[str, Any]:
    """The family's env kwargs, pointing ALFWorld at the family's generated games if it has any."""
    return {**family.env_kwargs, **_data_dir(out, family)}


def warm_start_dir(out: Path, family: Family, size: str) -> Path:
    return out / family.name / size / "warmstart"


def initial_student(out: Path, family: Family, size: str) -> str:
    """What every cell of ``size`` starts from: the warm-started model, or a fresh one."""
    if family.warm_start is None:
        return size
    return str(warm_start_dir(out, family, size) / "final")


def cell_dir(out: Path, family: Family, size: str, method: str, seed: int) -> Path:
    return out / family.name / size / method / f"seed{seed}"


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(value, indent=1, sort_keys=True) + "\n")


# -- training -----------------------------------------------------------------------------


def _recipe_config(family: Family, overrides: dict[str, Any], out: Path | None = None) -> Any:
    """configs/teacher_sft.yaml on ``family``'s env (its games under ``out``), with ``overrides``."""
    from distill.recipe import recipe_config

    return recipe_config(
        family.env_id,
        env_kwargs=family.env_kwargs if out is None else family_env_kwargs(out, family),
        prompt=family.prompt,
        **{"tensorboard": False, **overrides},
    )


def _teacher_config(out: Path, family: Family, device: str) -> Any:
    """The SFT run that trains ``family``'s teacher (the embedded recipe's run for `recipe`)."""
    if family.teacher == "recipe":
        return _recipe_config(family, {"device": device})
    overrides = {"run_dir": str(teacher_dir(out, family)), "device": device, **family.teacher}
    if not overrides.get("eval_every", 1) or overrides.get("eval_episodes") == 0:
        overrides.setdefault("target_eval_sr", None)  # evaluations off: no target to train to
    config = _recipe_config(family, overrides, out)
    if config.target_eval_sr is None and "eval_episodes" not in family.teacher:
        # Nothing to train to: the study evaluates the teacher on every panel itself.
        config = dataclasses.replace(config, eval_episodes=0)
    return config


def _warm_start_config(out: Path, family: Family, size: str, device: str) -> Any:
    """The SFT run that makes ``size``'s shared initial student."""
    return _recipe_config(
        family,
        {
            "student": size,
            "tokenizer": str(teacher_dir(out, family) / "final"),  # the teacher's vocabulary
            "seed": 0,  # one initial student for every seed and method
            "run_dir": str(warm_start_dir(out, family, size)),
            "device": device,
            # Fixed steps unless the preset gives a target; the study evaluates the initial
            # student on its panels itself.
            "eval_every": 0,
            "eval_episodes": 0,
            "target_eval_sr": None,
            **(family.warm_start or {}),
        },
        out,
    )


def _build_teacher(out: Path, family: Family, device: str, *, progress: bool) -> None:
    """Train the family's teacher into ``teacher_dir``, or copy the embedded one there."""
    folder = teacher_dir(out, family)
    config = _teacher_config(out, family, device)
    if family.teacher != "recipe":
        _train(config, progress=progress)
        return
    from distill.recipe import ensure_recipe_teacher

    final = Path(ensure_recipe_teacher(config, quiet=not progress))
    folder.mkdir(parents=True, exist_ok=True)
    # Copy (not link): the study's folder stays whole if runs/teachers is cleaned up.
    shutil.copytree(final, folder / "final.partial", dirs_exist_ok=True)
    for name in ("metrics.jsonl", "summary.json"):
        if (final.parent / name).is_file():
            shutil.copy2(final.parent / name, folder / name)
    (folder / "final.partial").rename(folder / "final")


def _ensure_warm_start(
    out: Path, family: Family, size: str, *, device: str, progress: bool
) -> float:
    """Train ``size``'s shared initial student if the family has one; the wall seconds spent."""
    if family.warm_start is None:
        return 0.0
    if (warm_start_dir(out, family, size) / "final" / "config.json").is_file():
        return 0.0
    tqdm.write(f"[{family.name}] warm-starting the {size} student (SFT on expert trajectories)")
    return _train(_warm_start_config(out, family, size, device), progress=progress)


def _cell_config(out: Path, family: Family, size: str, method: str, seed: int, device: str) -> Any:
    from distill.config import load_config

    return load_config(
        None,
        {
            "env_id": family.env_id,
            "env_kwargs": family_env_kwargs(out, family),
            "prompt": family.prompt,
            "student": initial_student(out, family, size),
            "teacher": str(teacher_dir(out, family) / "final"),
            "seed": seed,
            "run_dir": str(cell_dir(out, family, size, method, seed)),
            "device": device,
            "eval_every": 0,  # the study evaluates every panel itself, after training
            "eval_episodes": 0,
            "tensorboard": False,
            **family.train,
            **METHOD_VARIANTS[method],
            **family.method_train.get(method, {}),
        },
    )


def _train(config: Any, *, progress: bool) -> float:
    """Train (or finish) ``config``'s run; the wall seconds this call spent."""
    from distill.checkpoint import latest_checkpoint
    from distill.trainer import train

    started = time.perf_counter()
    train(config, resume=latest_checkpoint(config.run_dir) is not None, progress=progress)
    return time.perf_counter() - started


def _run_timings(run_dir: Path) -> dict[str, float]:
    """Mean seconds per step in each part, and the tokens trained, from a run's metrics."""
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "time_optimise_s" in r]
    if not rows:
        return {}
    parts = ("time_rollout_s", "time_env_s", "time_scoring_s", "time_optimise_s")
    timings = {key: sum(r.get(key, 0.0) for r in rows) / len(rows) for key in parts}
    timings["steps"] = float(len(rows))
    timings["tokens_trained"] = float(sum(r.get("tokens", 0.0) for r in rows))
    return timings


def _training_record(run_dir: Path) -> dict[str, Any]:
    """How a teacher or warm start was trained: its target (if any: reached, at which step)
    and its evaluations along the way, from the run's summary and metrics."""
    summary = _read_json(run_dir / "summary.json") or {}
    rows = read_metrics(run_dir / "metrics.jsonl")
    curve = [[r["step"], r["eval_sr"]] for r in rows if "eval_sr" in r and r["step"] > 0]
    record: dict[str, Any] = {"eval_curve": curve}
    if summary.get("target"):
        record["target"] = summary["target"]
    return record


# -- evaluation ---------------------------------------------------------------------------


def _agent(folder_or_size: str, family: Family, *, tokenizer_dir: Path, seed: int, **options: Any):
    """An HFAgent from a model folder, or a fresh student of a local size (the initial student),
    prompting as the family's training runs do (the env family's defaults under its own)."""
    from agents.factory import make_agent, model_spec
    from agents.prompts import PromptConfig
    from distill.env_defaults import env_defaults, merged

    prompt = PromptConfig(**merged(env_defaults(family.env_id).prompt, family.prompt))
    spec = model_spec(folder_or_size)
    if spec.startswith("tiny:"):
        options["tokenizer"] = str(tokenizer_dir)
    return make_agent(spec, seed=seed, options={"prompt": prompt, **options})


def _play(
    agent: Any,
    spec: EvalSpec,
    *,
    temperature: float,
    episodes: int | None,
    settings: dict,
    env_kwargs: dict[str, Any],
) -> list[Any]:
    """``agent`` plays ``spec``'s panel (its first ``episodes`` playable tasks) at ``temperature``;
    ``env_kwargs`` come before the panel's own."""
    from agents.base import agent_env_kwargs
    from distill.env_defaults import env_defaults
    from distill.evaluation import find_panel, play_panel
    from distill.rollout import RolloutCollector

    panel = find_panel(spec.env_id, spec.panel)
    collector = RolloutCollector(
        spec.env_id,
        student=agent,
        num_envs=settings["num_envs"],
        env_kwargs={
            **agent_env_kwargs(agent),
            **env_kwargs,
            **spec.env_kwargs,
            "split": panel.split,
        },
        mode=settings["env_mode"],
    )
    try:
        return play_panel(
            collector,
            panel,
            temperature=temperature,
            episodes=episodes,
            max_turns=env_defaults(spec.env_id).max_turns or 30,
        )
    finally:
        collector.close()


def _games_kwargs(out: Path, family: Family, spec: EvalSpec) -> dict[str, Any]:
    """A panel of the family's own env plays the family's generated games (if it has any)."""
    return _data_dir(out, family) if spec.env_id == family.env_id else {}


def _evaluate(
    model: str,
    family: Family,
    *,
    out: Path,
    seed: int,
    teacher: Any | None,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Every panel of ``family`` for ``model`` (a folder or a local size), plus the per-turn KL."""
    from distill.evaluation import per_turn_kl, summarise_rollouts

    started = time.perf_counter()
    tokenizer_dir = teacher_dir(out, family) / "final"

    def play(agent: Any, spec: EvalSpec, temperature: float, episodes: int | None) -> list[Any]:
        games = _games_kwargs(out, family, spec)
        return _play(
            agent,
            spec,
            temperature=temperature,
            episodes=episodes,
            settings=settings,
            env_kwargs=games,
        )

    panels: dict[str, Any] = {}
    for spec in family.eval:
        agent = _agent(
            model,
            family,
            tokenizer_dir=tokenizer_dir,
            seed=seed,
            max_new_tokens=settings["max_new_tokens"],
            **spec.agent,
        )
        rollouts = play(agent, spec, 0.4, spec.episodes)
        panels[spec.label] = {
            "domain": spec.domain,
            **summarise_rollouts(rollouts),
            "won": [bool(r.won) for r in rollouts],
        }
    kl: dict[str, Any] = {}
    if teacher is not None and family.kl_episodes > 0:
        student = _agent(
            model,
            family,
            tokenizer_dir=tokenizer_dir,
            seed=seed,
            max_new_tokens=settings["max_new_tokens"],
        )
        for spec in family.in_domain():
            # Temperature 1 samples the student's own distribution: the sampled KL is unbiased.
            rollouts = play(student, spec, 1.0, family.kl_episodes)
            kl[spec.label] = per_turn_kl(teacher, rollouts)
    return {"panels": panels, "kl_by_turn": kl, "eval_s": time.perf_counter() - started}


# -- the study ----------------------------------------------------------------------------


def _family_settings(family: Family) -> dict[str, Any]:
    from distill.config import TrainConfig

    defaults = TrainConfig()
    return {
        "max_new_tokens": int(family.train.get("max_new_tokens", defaults.max_new_tokens)),
        "num_envs": int(family.train.get("num_envs", defaults.num_envs)),
        "env_mode": str(family.train.get("env_mode", defaults.env_mode)),
    }


def _ensure_games(out: Path, family: Family, *, progress: bool) -> float:
    """Generate the family's ALFWorld games (if it has ``games:``); the wall seconds spent.

    They are written to ``games.partial/`` and renamed when complete, so an interrupted
    generation starts again rather than leaving a half set that looks finished.
    """
    folder = games_dir(out, family)
    if family.games is None or (folder / GAMES_FILE).is_file():
        return 0.0
    from envs.alfworld.data import SPLITS, TASK_TYPES
    from envs.alfworld.generate import generate_dataset

    settings = family.games
    counts = {s: settings.get(s, 0) for s in SPLITS}
    partial = folder.with_name(folder.name + ".partial")
    per_type = sum(counts.values())
    tqdm.write(f"[{family.name}] generating ALFWorld games: {counts} per task type")
    started = time.perf_counter()
    with tqdm(total=len(TASK_TYPES) * per_type, desc="games", disable=not progress) as bar:
        report = generate_dataset(
            partial,
            games_per_type=counts,
            seed=settings.get("seed", 0),
            jobs=max(1, settings.get("jobs", 1)),
            overwrite=True,
            progress=lambda _game: bar.update(1),
        )
    wall = time.perf_counter() - started
    summary = {**report.config, "games": len(report.games), "wall_s": wall}
    _write_json(partial / GAMES_FILE, summary)
    if folder.exists():
        shutil.rmtree(folder)
    partial.rename(folder)
    return wall


def _ensure_teacher(out: Path, family: Family, *, device: str, progress: bool) -> dict[str, Any]:
    folder = teacher_dir(out, family)
    record = _read_json(folder / EVAL_FILE)
    if record is not None:
        return record
    games_wall = _ensure_games(out, family, progress=progress)
    wall = 0.0
    if not (folder / "final" / "config.json").is_file():
        where = (
            "the embedded recipe's, built once" if family.teacher == "recipe" else "trained here"
        )
        tqdm.write(f"[{family.name}] the teacher: SFT on expert trajectories ({where})")
        started = time.perf_counter()
        _build_teacher(out, family, device, progress=progress)
        wall = time.perf_counter() - started
    settings = _family_settings(family)
    evaluation = _evaluate(
        str(folder / "final"), family, out=out, seed=0, teacher=None, settings=settings
    )
    record = {
        **evaluation,
        "wall_s": wall,
        "timings": _run_timings(folder),
        "training": _training_record(folder),
    }
    if family.games is not None:
        generated = _read_json(games_dir(out, family) / GAMES_FILE) or {}
        record["games_s"] = games_wall or generated.get("wall_s", 0.0)
    _write_json(folder / EVAL_FILE, record)
    return record


_LOADED_TEACHERS: dict[str, Any] = {}  # per process: a worker loads each teacher once


def _teacher_agent(out: Path, family: Family) -> Any:
    """The family's teacher as an agent (it scores student episodes for the per-turn KL)."""
    folder = teacher_dir(out, family) / "final"
    if str(folder) not in _LOADED_TEACHERS:
        _LOADED_TEACHERS[str(folder)] = _agent(str(folder), family, tokenizer_dir=folder, seed=0)
    return _LOADED_TEACHERS[str(folder)]


def _initial_size(
    out: Path, family: Family, size: str, seeds: list[int], *, device: str, progress: bool
) -> None:
    """Warm-start ``size`` (if the family says so) and evaluate it for each seed lacking a record."""
    for seed in seeds:
        path = cell_dir(out, family, size, "initial", seed) / EVAL_FILE
        if path.is_file():
            continue
        warm_wall = _ensure_warm_start(out, family, size, device=device, progress=progress)
        record = _evaluate(
            initial_student(out, family, size),
            family,
            out=out,
            seed=seed,
            teacher=_teacher_agent(out, family),
            settings=_family_settings(family),
        )
        if family.warm_start is not None:
            folder = warm_start_dir(out, family, size)
            record.update(
                wall_s=warm_wall,
                timings=_run_timings(folder),
                training=_training_record(folder),
            )
        _write_json(path, record)


def _cell(out: Path, family: Family, size: str, method: str, seed: int, *, device: str) -> None:
    """Train (or finish) one cell and evaluate it, unless its record exists."""
    folder = cell_dir(out, family, size, method, seed)
    if (folder / EVAL_FILE).is_file():
        return
    wall = 0.0
    if not (folder / "final" / "config.json").is_file():
        config = _cell_config(out, family, size, method, seed, device)
        try:
            wall = _train(config, progress=False)
        except RuntimeError as error:
            # A method that cannot run here (SFT on a teacher that wins no episode has
            # no demonstrations) is a result to report, not a reason to stop the study.
            tqdm.write(f"[{family.name}/{size}/{method}/seed{seed}] failed: {error}")
            _write_json(folder / EVAL_FILE, {"error": str(error), "panels": {}})
            return
    record = _evaluate(
        str(folder / "final"),
        family,
        out=out,
        seed=seed,
        teacher=_teacher_agent(out, family),
        settings=_family_settings(family),
    )
    record.update(wall_s=wall, timings=_run_timings(folder))
    _write_json(folder / EVAL_FILE, record)


def _start_worker(threads: int) -> None:
    """A worker's setup: its share of the cores, and no model-loading progress bars (one per
    checkpoint read or written would bury the study's own, as tools/study.py does for itself)."""
    import torch
    from transformers.utils import logging as hf_logging

    torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()


#: A unit of the study's work: (label, progress-bar units, function, args, kwargs).
Task = tuple[str, int, Any, tuple, dict]


def _run_all(stages: list[tuple[Task, list[Task]]], *, jobs: int, bar: Any) -> None:
    """Run each stage's task, then its follow-ups (a size's warm start, then its cells).

    One job runs them here: every stage's task in order, then every follow-up in
    order. More run them in that many spawned worker processes with the cores
    shared out (torch threads = threads // jobs), and a stage's follow-ups start as
    soon as its own task is done, so a worker never waits for another size's warm
    start. Tiny models use a second thread poorly, so two runs side by side get
    through more steps per second than one run with both threads
    (benchmarks/bench_threads.py). A task that raises stops the study, as with one job.
    """
    if jobs == 1:
        for label, units, function, args, kwargs in [task for task, _ in stages] + [
            follow for _, follows in stages for follow in follows
        ]:
            bar.set_postfix_str(label)
            function(*args, **kwargs)
            bar.update(units)
        return
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    # Spawned workers start from this process's sys.path and import this project by name; a
    # folder ahead of the project on the path (tools/, which has a distill.py script) would
    # shadow the `distill` package there, so the project's root goes first while they start.
    saved_path = list(sys.path)
    sys.path.insert(0, str(PROJECT_ROOT))
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(threads,),
    )
    pending: dict[Any, tuple[int, list[Task]]] = {}

    def submit(task: Task, follows: list[Task]) -> None:
        _label, units, function, args, kwargs = task
        pending[pool.submit(function, *args, **kwargs)] = (units, follows)

    try:
        for task, follows in stages:
            submit(task, follows)
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                units, follows = pending.pop(future)
                future.result()  # re-raises a worker's exception here
                bar.update(units)
                for follow in follows:
                    submit(follow, [])
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        sys.path[:] = saved_path


def run_study(
    preset: Preset,
    out: str | Path,
    *,
    device: str = "cpu",
    progress: bool = True,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run (or finish) every stage of ``preset`` under ``out``; returns the gathered results.

    ``jobs`` > 1 trains and evaluates that many initial students and cells at once, in
    worker processes (teachers and games come first, one at a time). A cell's numbers then
    differ from a one-job run's in float rounding (fewer threads per run), not in kind.
    """
    from distill.study.report import gather

    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    _LOADED_TEACHERS.clear()  # a teacher retrained since an earlier call must be read again
    teachers: dict[str, Any] = {}
    for family in preset.families:
        teachers[family.name] = _ensure_teacher(out, family, device=device, progress=progress)

    cells = preset.cells()
    sizes: dict[tuple[str, str], tuple[Family, str, list[int]]] = {}
    for family, size, _method, seed in cells:
        entry = sizes.setdefault((family.name, size), (family, size, []))
        if seed not in entry[2]:
            entry[2].append(seed)
    bar = tqdm(
        total=sum(len(seeds) for *_, seeds in sizes.values()) + len(cells),
        desc=f"study {preset.name}",
        disable=not progress,
    )
    # A worker's own progress bars would garble the study's: with jobs, only the study's shows.
    inner_progress = progress and jobs == 1
    stages = [
        (
            (
                f"{family.name}/{size}/initial",
                len(seeds),
                _initial_size,
                (out, family, size, seeds),
                {"device": device, "progress": inner_progress},
            ),
            [
                (
                    f"{family.name}/{size}/{method}/seed{seed}",
                    1,
                    _cell,
                    (out, family, size, method, seed),
                    {"device": device},
                )
                for cell_family, cell_size, method, seed in cells
                if (cell_family.name, cell_size) == (family.name, size)
            ],
        )
        for family, size, seeds in sizes.values()
    ]
    _run_all(stages, jobs=jobs, bar=bar)
    bar.close()
    results = gather(preset, out)
    results["wall_s_this_call"] = time.perf_counter() - started
    _write_json(out / "results.json", results)
    return results
