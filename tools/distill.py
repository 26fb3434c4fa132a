#!/usr/bin/env python
"""Run a distillation method (SFT, OPD, Guided-OPD, TCOD, GRPO, MENTOR) on any registered env.

    python tools/distill.py --config configs/guided_opd.yaml
    python tools/distill.py --config opd --set total_steps=50 --env WebShop-v0
    python tools/distill.py --config sft --out runs/sft-s1 --seed 1 --device cuda --track wandb
    python tools/distill.py --config configs/guided_opd.yaml --resume     # continue a killed run
    python tools/distill.py --config opd --import mypkg.envs --env MyEnv-v0
    python tools/distill.py --config opd --set teacher='openai:http://127.0.0.1:8000/v1#teacher'

A config names a method and its settings; ``--set`` overrides any field
(``--help-fields`` lists them with their defaults), and the common flags
override theirs: ``--env`` (env_id), ``--out`` (run_dir), ``--seed``,
``--max-turns``, ``--split`` (train_split), ``--panel`` (eval_panel),
``--episodes`` (eval_episodes), ``--device`` and ``--track``. ``teacher: recipe`` (the
shipped configs' default) is the embedded offline teacher: a tiny model trained
by SFT on expert trajectories of the config's env, built once into the cache
(``$MENTORGYM_CACHE``, default ``~/.cache/mentorgym``) and reused.

The run writes to ``run_dir``: config.json, metrics.jsonl, tensorboard/,
checkpoints/, curves.png, final/ (the trained student) and summary.json
(with ``--track wandb`` also wandb/, an offline Weights & Biases run), and prints the student's success rate and score before and after.
A mistaken value is one line naming the field (exit status 2); a teacher
server that fails mid-run stops the run with the newest checkpoint intact
(exit status 3): ``--resume`` continues once it is back.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from distill.config import CONFIG_DIR, ConfigError, describe_fields, load_config  # noqa: E402
from envs.imports import import_modules  # noqa: E402
from tools._cli import HelpFormatter, add_alias, add_device, add_max_turns, add_track  # noqa: E402

#: The common flags that stand for a config field: (flag's dest, field).
FLAG_FIELDS = (
    ("env", "env_id"),
    ("out", "run_dir"),
    ("seed", "seed"),
    ("max_turns", "max_turns"),
    ("split", "train_split"),
    ("panel", "eval_panel"),
    ("episodes", "eval_episodes"),
    ("device", "device"),
    ("track", "track"),
)


def parse_value(text: str) -> Any:
    """``--set key=value``: the value is read as YAML (numbers, booleans, lists, null)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text  # not YAML: the config check says what the field wants


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="distill.py",
        description=__doc__.split("\n\n")[0],
        epilog="Configs: " + ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))),
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--config", help="YAML config file, or the name of a shipped one (e.g. guided_opd)"
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
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable), e.g. one that registers your own env ids",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from run_dir's newest checkpoint"
    )
    parser.add_argument("--env", metavar="ID", help="the env id to train on (the config's env_id)")
    parser.add_argument("--out", metavar="DIR", help="where the run writes (the config's run_dir)")
    add_alias(parser, "--run-dir", "--out")
    parser.add_argument("--seed", type=int, metavar="N", help="the config's seed")
    add_max_turns(parser, "turn cap of an episode (the config's max_turns)")
    parser.add_argument(
        "--split", metavar="NAME", help="the env split training tasks come from (train_split)"
    )
    parser.add_argument(
        "--panel", metavar="NAME|PATH", help="the panel evaluations play (eval_panel)"
    )
    parser.add_argument(
        "--episodes", type=int, metavar="N", help="evaluate on the panel's first N tasks"
    )
    add_device(parser, "where the models train and run: cpu, cuda, cuda:N or mps")
    add_track(parser, "also log metrics to an experiment tracker (wandb: offline, run_dir/wandb)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--help-fields",
        nargs="?",
        const="",
        metavar="METHOD",
        help="list every config field (or one method's) with its default and description, then exit",
    )
    args = parser.parse_args(argv)
    if args.help_fields is not None:
        return args
    if args.config is None:
        parser.error("--config is required (e.g. --config guided_opd)")
    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            parser.error(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key.strip()] = parse_value(value)
    for dest, name in FLAG_FIELDS:  # a flag wins over --set of the same field
        if getattr(args, dest) is not None:
            overrides[name] = getattr(args, dest)
    args.override_values = overrides
    return args


def _show(values: dict) -> str:
    if not values:
        return "not evaluated"
    return (
        f"SR {values['eval_sr']:.1f}%  Score {values['eval_score']:.1f}  "
        f"({values['eval_episodes']} episodes)"
    )


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    if args.help_fields is not None:
        try:
            print(describe_fields(args.help_fields or None), end="")
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    try:
        import_modules(args.imports)
        config = load_config(args.config, args.override_values)
    except ValueError as error:  # ConfigError, or a module that cannot be imported
        print(f"error: {error}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    from agents.openai_agent import ServerError
    from distill.checkpoint import latest_checkpoint
    from distill.trainer import train

    hf_logging.disable_progress_bar()  # a bar per model load would break up the run's own
    from distill.checkpoint import CheckpointError
    from distill.rollout import EnvErrorLimit

    try:
        summary = train(config, resume=args.resume, progress=not args.quiet)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except ServerError as error:
        newest = latest_checkpoint(config.run_dir)
        kept = (
            f"the newest checkpoint, {newest.name}, is intact; once the server is back, "
            "run the same command with --resume"
            if newest
            else "no checkpoint was written yet; run the same command once the server is back"
        )
        print(f"error: the teacher's server failed: {error}; {kept}", file=sys.stderr)
        return 3
    except (CheckpointError, EnvErrorLimit) as error:  # the disk or the env: one clear line
        print(f"error: {error}", file=sys.stderr)
        return 1
    before, after = summary.get("initial", {}), summary.get("final", {})
    print(f"\n{config.method} on {config.env_id}: student before: {_show(before)}")
    print(f"{config.method} on {config.env_id}: student after:  {_show(after)}")
    print(f"run: {config.run_dir} (metrics.jsonl, curves.png, checkpoints/, final/)")
    if config.track == "wandb":
        print(f"tracked: {Path(config.run_dir) / 'wandb'} (`wandb sync` uploads an offline run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
