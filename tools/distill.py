#!/usr/bin/env python
"""Run a distillation method (SFT, OPD, Guided-OPD, TCOD, GRPO, MENTOR) on any registered env.

    python tools/distill.py --config configs/guided_opd.yaml
    python tools/distill.py --config configs/opd.yaml --set total_steps=50 --set env_id=WebShop-v0
    python tools/distill.py --config configs/guided_opd.yaml --resume     # continue a killed run

A config's ``teacher: recipe`` (the shipped configs' default) means "the
embedded offline teacher": a tiny model trained by SFT on expert
trajectories of the config's env (``configs/teacher_sft.yaml``), built once
under ``runs/teachers/<env>`` and reused. Every field is documented in
``distill/config.py``; ``--help-fields`` lists them.

The run writes to ``run_dir``: config.json, metrics.jsonl, tensorboard/,
checkpoints/, curves.png, final/ (the trained student) and summary.json,
and prints the student's success rate and score before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from distill.config import CONFIGS, load_config  # noqa: E402
from distill.recipe import ensure_recipe_teacher  # noqa: E402


def parse_value(text: str) -> Any:
    """``--set key=value``: the value is read as YAML (numbers, booleans, lists, null)."""
    return yaml.safe_load(text)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="distill.py",
        description=__doc__.split("\n\n")[0],
        epilog="Configs: " + ", ".join(sorted(p.name for p in (ROOT / "configs").glob("*.yaml"))),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", type=Path, help="YAML config (its `method:` picks the algorithm)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field (repeatable), e.g. --set total_steps=10",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from run_dir's newest checkpoint"
    )
    parser.add_argument("--run-dir", help="where the run writes (overrides the config's run_dir)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--help-fields", action="store_true", help="list every config field and exit"
    )
    args = parser.parse_args(argv)
    if args.help_fields:
        return args
    if args.config is None:
        parser.error("--config is required (e.g. configs/guided_opd.yaml)")
    if not args.config.is_file():
        parser.error(f"no config file {args.config}")
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(value)
    if args.run_dir:
        overrides["run_dir"] = args.run_dir
    args.override_values = overrides
    return args


def print_fields() -> None:
    for name, cls in CONFIGS.items():
        print(f"[{name}] {cls.__doc__.strip().splitlines()[0]}")
        for field in dataclasses.fields(cls):
            print(f"    {field.name} = {getattr(cls(), field.name)!r}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    if args.help_fields:
        print_fields()
        return 0
    try:
        config = load_config(args.config, args.override_values)
    except (ValueError, TypeError, yaml.YAMLError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    from distill.trainer import train

    hf_logging.disable_progress_bar()  # a bar per model load would break up the run's own

    if config.teacher == "recipe":
        config.teacher = ensure_recipe_teacher(config, quiet=args.quiet)
    if config.student == "recipe-teacher":  # e.g. SFT further, or evaluate the teacher itself
        config.student = ensure_recipe_teacher(config, quiet=args.quiet)
    from distill.checkpoint import CheckpointError
    from distill.rollout import EnvErrorLimit

    try:
        summary = train(config, resume=args.resume, progress=not args.quiet)
    except (CheckpointError, EnvErrorLimit) as error:  # the disk or the env: one clear line
        print(f"error: {error}", file=sys.stderr)
        return 1
    before, after = summary.get("initial", {}), summary.get("final", {})

    def show(values: dict) -> str:
        if not values:
            return "not evaluated"
        return f"SR {values['eval_sr']:.1f}%  Score {values['eval_score']:.1f}  ({values['eval_episodes']} episodes)"

    print(f"\n{config.method} on {config.env_id}: student before: {show(before)}")
    print(f"{config.method} on {config.env_id}: student after:  {show(after)}")
    print(f"run: {config.run_dir} (metrics.jsonl, curves.png, checkpoints/, final/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
