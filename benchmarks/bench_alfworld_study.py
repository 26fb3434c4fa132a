#!/usr/bin/env python
"""Time in the environments of ALFWorld study cells, disk cache of translations warm vs off.

Trains cells of an existing ``cpu_alfworld`` study (its games, teacher and warm
starts must be there: ``python tools/study.py --preset cpu_alfworld`` makes them)
into temporary folders, once with ``MENTORGYM_ALFWORLD_TRANSLATIONS=off`` (every
game's first reset translates its PDDL problem, as before the disk cache) and once
with a disk cache filled beforehand from the study's training games (as the generator
leaves it), and prints each method's env seconds per step, its env share of the step,
and the ratio. The two modes run back to back in the same process, so a noisy
neighbour slows both alike. The study's limit is an env share under one third.

Usage: ``python benchmarks/bench_alfworld_study.py [--out runs/study-cpu_alfworld]
[--size micro] [--seed 0] [--methods opd guided_opd tcod_f2b]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from distill.study import runner  # noqa: E402
from distill.study.presets import load_preset  # noqa: E402
from envs.alfworld import disk_cache  # noqa: E402


def prefill(games: Path) -> float:
    """Translate every training game once into the (current) disk cache; seconds spent."""
    from envs.alfworld.engine import AlfredEngine, clear_caches

    engine = AlfredEngine()
    started = time.perf_counter()
    try:
        for path in sorted(games.rglob("game.tw-pddl")):
            engine.load(json.loads(path.read_text()))
            engine.reset()
    finally:
        engine.close()
        clear_caches()
    return time.perf_counter() - started


def env_timing(out: Path, family, size: str, method: str, seed: int) -> tuple[float, float]:
    """(env seconds, whole seconds) per training step of one cell trained from scratch."""
    from envs.alfworld.engine import clear_caches

    clear_caches()  # nothing in memory: each mode starts as a new process would
    with tempfile.TemporaryDirectory(prefix=f"bench-{method}-") as run_dir:
        # The runner's own cell settings, so the step is the study's step.
        config = runner._cell_config(out, family, size, method, seed, "cpu")
        runner._train(dataclasses.replace(config, run_dir=run_dir), progress=False)
        timings = runner._run_timings(Path(run_dir))
    whole = timings["time_rollout_s"] + timings["time_scoring_s"] + timings["time_optimise_s"]
    return timings["time_env_s"], whole


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="runs/study-cpu_alfworld", help="the study's folder")
    parser.add_argument("--preset", default="cpu_alfworld")
    parser.add_argument("--size", default="micro")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", nargs="+", default=["opd", "guided_opd", "tcod_f2b"])
    args = parser.parse_args()

    out = Path(args.out)
    family = next(f for f in load_preset(args.preset).families if f.env_id == "ALFWorld-v0")
    warm_start = runner.warm_start_dir(out, family, args.size) / "final" / "config.json"
    teacher = runner.teacher_dir(out, family) / "final" / "config.json"
    if not (warm_start.is_file() and teacher.is_file()):
        sys.exit(
            f"error: {out} has no {family.name} teacher or {args.size} warm start; "
            f"run `python tools/study.py --preset {args.preset} --out {out}` first"
        )

    with tempfile.TemporaryDirectory(prefix="bench-translations-") as translations:
        os.environ[disk_cache.ENV_VAR] = translations
        train_games = runner.games_dir(out, family) / "json_2.1.1" / "train"
        print(f"disk cache filled from {train_games} in {prefill(train_games):.0f} s\n")
        rows = {}
        for method in args.methods:
            for mode in ("off", "disk"):
                os.environ[disk_cache.ENV_VAR] = translations if mode == "disk" else "off"
                rows[method, mode] = env_timing(out, family, args.size, method, args.seed)

    print(f"{'method':<12} {'cache':<6} {'env s/step':>10} {'step s':>7} {'env share':>10}")
    for (method, mode), (env, whole) in rows.items():
        print(f"{method:<12} {mode:<6} {env:>10.2f} {whole:>7.2f} {100 * env / whole:>9.0f}%")
    print()
    for method in args.methods:
        (env_off, whole_off), (env_disk, whole_disk) = rows[method, "off"], rows[method, "disk"]
        print(
            f"headline: {method}: env time x{env_off / env_disk:.1f} shorter with the disk cache; "
            f"env share {100 * env_off / whole_off:.0f}% -> {100 * env_disk / whole_disk:.0f}% "
            f"(limit 33%)"
        )


if __name__ == "__main__":
    main()
