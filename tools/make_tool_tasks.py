#!/usr/bin/env python
"""Make and convert task files for ToolMath-v0, FunctionCall-v0 and SearchQA-v0.

Subcommands::

    # rewrite the shipped task files and panels (or check that they are up to date)
    python tools/make_tool_tasks.py shipped [--check]

    # more generated problems for training, as JSONL in the mentorgym task schema
    python tools/make_tool_tasks.py toolmath --split train --count 5000 --seed 1 --out math.jsonl
    python tools/make_tool_tasks.py functioncall --split train --count 2000 --seed 1 --out calls.jsonl
    python tools/make_tool_tasks.py searchqa --split train --count 800 --out qa.jsonl

    # bring your own data
    python tools/make_tool_tasks.py convert-bfcl BFCL_v3_simple.json \\
        --answers possible_answer/BFCL_v3_simple.json --out bfcl_simple.jsonl
    python tools/make_tool_tasks.py convert-qa hotpot_dev_distractor_v1.json \\
        --out hotpot.jsonl --corpus-out hotpot_corpus.jsonl

Every file is written atomically. Use the results with
``gym.make("ToolMath-v0", task_file="math.jsonl")`` (see docs/tool-tasks.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from envs.fileio import atomic_write_json  # noqa: E402
from envs.panels import Panel, panel_path  # noqa: E402
from envs.tooluse import toolmath  # noqa: E402
from envs.tooluse.apitools import API_SCHEMAS  # noqa: E402
from envs.tooluse.generators import functioncall as functioncall_tasks  # noqa: E402
from envs.tooluse.generators import searchqa as searchqa_tasks  # noqa: E402
from envs.tooluse.generators import toolmath as toolmath_tasks  # noqa: E402
from envs.tooluse.mathtools import MATH_TOOL_NAMES  # noqa: E402
from envs.tooluse.searchqa import SHIPPED_CORPUS  # noqa: E402
from envs.tooluse.searchtool import SEARCH_TOOL  # noqa: E402
from envs.tooluse.tasks import (  # noqa: E402
    DATA_DIR,
    TASK_FILE_FORMAT,
    TaskFileError,
    ToolTask,
    load_bfcl,
    load_hotpot,
    write_jsonl_atomic,
)

SEED = 0
#: Tasks shipped per family and split (the generator's seed is SEED).
SHIPPED_COUNTS: dict[str, dict[str, int]] = {
    "toolmath": {"train": 700, "dev": 140, "test": 210},
    "functioncall": {"train": 500, "dev": 100, "test": 100},
    "searchqa": {"train": 600, "dev": 100, "test": 100},
}
ENV_IDS = {"toolmath": "ToolMath-v0", "functioncall": "FunctionCall-v0", "searchqa": "SearchQA-v0"}
GENERATORS = {
    "toolmath": toolmath_tasks.generate_tasks,
    "functioncall": functioncall_tasks.generate_tasks,
    "searchqa": searchqa_tasks.generate_tasks,
}
BUILTIN_TOOLS = {
    "toolmath": (toolmath.BUILTIN_TOOLS, MATH_TOOL_NAMES),
    "functioncall": (API_SCHEMAS, ()),
    "searchqa": ({"search": SEARCH_TOOL}, ("search",)),
}


def task_records(family: str, tasks: list[ToolTask]) -> list[dict[str, Any]]:
    builtin, default = BUILTIN_TOOLS[family]
    return [task.to_dict(builtin, default) for task in tasks]


def shipped_files() -> dict[Path, Any]:
    """Every shipped data file and panel, by path, as it should be."""
    files: dict[Path, Any] = {}
    for family, counts in SHIPPED_COUNTS.items():
        for split, count in counts.items():
            tasks = GENERATORS[family](split, count, seed=SEED)
            files[DATA_DIR / f"{family}_{split}.json"] = {
                "format": TASK_FILE_FORMAT,
                "version": 1,
                "family": family,
                "split": split,
                "generator": {"seed": SEED, "count": count},
                "tasks": task_records(family, tasks),
            }
            if split in ("dev", "test"):
                env_id = ENV_IDS[family]
                panel = Panel(
                    name=f"{split}-v1",
                    env_id=env_id,
                    split=split,
                    version=1,
                    seed=0,
                    task_ids=tuple(task.id for task in tasks),
                    description=f"Every shipped {split} task of {env_id} ({count}), generated with seed {SEED}.",
                    default=split == "test",
                )
                files[panel_path(env_id, panel.name)] = panel.to_dict()
    files[SHIPPED_CORPUS] = searchqa_tasks.corpus_file_data(SEED)
    return files


def command_shipped(args: argparse.Namespace) -> int:
    stale = []
    for path, data in shipped_files().items():
        current = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        if current == data:
            continue
        stale.append(path)
        if not args.check:
            indent = 1 if "panels" in path.parts else None
            atomic_write_json(path, data, indent=indent)
            os.chmod(path, 0o644)
            print(f"wrote {path.relative_to(ROOT)}")
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}", file=sys.stderr)
        print(
            "shipped tool tasks are up to date"
            if not stale
            else f"{len(stale)} file(s) out of date"
        )
        return 1 if stale else 0
    if not stale:
        print("nothing to do: the shipped tool tasks are up to date")
    return 0


def command_generate(args: argparse.Namespace) -> int:
    try:
        tasks = GENERATORS[args.command](args.split, args.count, seed=args.seed)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Ids carry the seed so that files made with different seeds can be concatenated.
    tasks = [dataclasses.replace(task, id=f"seed{args.seed}/{task.id}") for task in tasks]
    write_jsonl_atomic(args.out, task_records(args.command, tasks))
    print(f"wrote {len(tasks)} {ENV_IDS[args.command]} tasks to {args.out}")
    return 0


def command_convert_bfcl(args: argparse.Namespace) -> int:
    try:
        tasks = load_bfcl(args.questions, args.answers)
    except TaskFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Schemas are written in full and meta.executable is false: BFCL functions have no implementation.
    write_jsonl_atomic(args.out, [task.to_dict() for task in tasks])
    print(f"wrote {len(tasks)} FunctionCall-v0 tasks to {args.out}")
    return 0


def command_convert_qa(args: argparse.Namespace) -> int:
    try:
        tasks, documents = load_hotpot(args.questions, search_tools=[SEARCH_TOOL])
    except TaskFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_jsonl_atomic(args.out, task_records("searchqa", tasks))
    print(f"wrote {len(tasks)} SearchQA-v0 tasks to {args.out}")
    if args.corpus_out:
        write_jsonl_atomic(args.corpus_out, documents)
        print(f"wrote {len(documents)} documents to {args.corpus_out}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make_tool_tasks.py",
        description="Make and convert task files for the tool environments.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    shipped = commands.add_parser("shipped", help="rewrite the shipped task files and panels")
    shipped.add_argument(
        "--check", action="store_true", help="only report files that are out of date"
    )
    for family in GENERATORS:
        generate = commands.add_parser(family, help=f"generate {ENV_IDS[family]} tasks as JSONL")
        generate.add_argument("--split", choices=("train", "dev", "test"), default="train")
        generate.add_argument("--count", type=int, required=True)
        generate.add_argument("--seed", type=int, default=1, help="seed 0 makes the shipped tasks")
        generate.add_argument("--out", type=Path, required=True)
    bfcl = commands.add_parser(
        "convert-bfcl", help="BFCL question (+ possible answer) file -> JSONL"
    )
    bfcl.add_argument("questions", type=Path)
    bfcl.add_argument("--answers", type=Path, help="the matching possible_answer file")
    bfcl.add_argument("--out", type=Path, required=True)
    qa = commands.add_parser(
        "convert-qa", help="HotpotQA/2Wiki/FlashRAG questions -> JSONL (+ corpus)"
    )
    qa.add_argument("questions", type=Path)
    qa.add_argument("--out", type=Path, required=True)
    qa.add_argument(
        "--corpus-out", type=Path, help="write the contexts' documents as a JSONL corpus"
    )
    args = parser.parse_args(argv)
    if getattr(args, "count", 1) < 1:
        parser.error("--count must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "shipped":
        return command_shipped(args)
    if args.command == "convert-bfcl":
        return command_convert_bfcl(args)
    if args.command == "convert-qa":
        return command_convert_qa(args)
    return command_generate(args)


if __name__ == "__main__":
    sys.exit(main())
