#!/usr/bin/env python
"""Generate ALFWorld games offline, in ALFWorld's official layout.

Three commands (each has ``--help``)::

    # N games of each of the six task types per split, checked solvable by both experts
    python tools/generate_alfworld.py generate --out data/alfworld --train 500 --valid-seen 20 --valid-unseen 20 --jobs 2
    ALFWORLD_DATA=data/alfworld python -c 'import gymnasium as gym, envs; gym.make("ALFWorld-v0")'

    # alfworld-generate's job: game.tw-pddl for folders with traj_data.json + initial_state.pddl
    python tools/generate_alfworld.py compile data/alfworld/json_2.1.1

    # pack an official-layout folder into one JSON file (the format of the shipped games)
    python tools/generate_alfworld.py pack data/alfworld --out games.json
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from envs.alfworld.data import SPLITS, TASK_TYPES, normalise_task_types, pack_directory  # noqa: E402
from envs.alfworld.paths import OFFICIAL_VERSION_DIR  # noqa: E402


def _numbers(text: str) -> list[int]:
    try:
        return [int(part) for part in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected floor plan numbers like '401,402', got {text!r}"
        ) from None


def _task_types(text: str) -> list[int | str]:
    items: list[int | str] = []
    for part in text.replace(",", " ").split():
        items.append(int(part) if part.isdigit() else part)
    return items


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="generate_alfworld.py",
        description="Generate ALFWorld text games offline in the official layout "
        f"(<out>/{OFFICIAL_VERSION_DIR}/<split>/<task>/<trial>/...), compile game files, or pack a folder.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{generate,compile,pack}"
    )

    gen = commands.add_parser(
        "generate",
        help="write new games (each checked solvable)",
        description="Write N games of each task type per split under OUT (an ALFWORLD_DATA folder). "
        "train, dev and valid_seen use the same floor plans; valid_unseen uses held-out ones. "
        "The same arguments give the same files, whatever --jobs is.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    gen.add_argument(
        "--out", type=Path, required=True, help="output folder (becomes ALFWORLD_DATA)"
    )
    gen.add_argument(
        "--train", type=int, default=10, metavar="N", help="games per task type in train"
    )
    gen.add_argument(
        "--valid-seen", type=int, default=2, metavar="N", help="games per task type in valid_seen"
    )
    gen.add_argument(
        "--dev",
        type=int,
        default=0,
        metavar="N",
        help="games per task type in dev (seen floor plans; for stopping runs, apart from valid)",
    )
    gen.add_argument(
        "--valid-unseen",
        type=int,
        default=2,
        metavar="N",
        help="games per task type in valid_unseen",
    )
    gen.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    gen.add_argument(
        "--task-types",
        type=_task_types,
        metavar="LIST",
        help="task types to generate, as ALFWorld ids 1-6 or names, comma-separated "
        f"(default: all six: {', '.join(f'{k}={v}' for k, v in TASK_TYPES.items())})",
    )
    gen.add_argument(
        "--verify",
        choices=["both", "planner"],
        default="both",
        help="keep a game when the planner wins it ('planner'), or when the hand-coded expert "
        "also wins it within --max-steps ('both')",
    )
    gen.add_argument(
        "--max-steps", type=int, default=50, metavar="N", help="step budget of the check"
    )
    gen.add_argument(
        "--max-attempts", type=int, default=40, metavar="N", help="draws per game before giving up"
    )
    gen.add_argument(
        "--seen-floor-plans",
        type=_numbers,
        metavar="LIST",
        help="floor plans of train, dev and valid_seen, e.g. '1,2,201' (default: all but the held-out ones)",
    )
    gen.add_argument(
        "--unseen-floor-plans",
        type=_numbers,
        metavar="LIST",
        help="floor plans of valid_unseen (default: the held-out 10,219,308,424)",
    )
    gen.add_argument("--jobs", type=int, default=1, metavar="N", help="worker processes")
    gen.add_argument(
        "--planner-memory-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="address-space cap of the planner check; a draw needing more is dropped",
    )
    gen.add_argument(
        "--overwrite", action="store_true", help=f"replace an existing OUT/{OFFICIAL_VERSION_DIR}"
    )
    gen.add_argument(
        "--pack", type=Path, metavar="FILE", help="also pack the games into one JSON file"
    )
    gen.add_argument("--quiet", action="store_true", help="no per-game lines")

    comp = commands.add_parser(
        "compile",
        help="write game.tw-pddl files (alfworld-generate's job)",
        description="For every trial folder under DATA_PATH with traj_data.json and initial_state.pddl "
        "(sorted; [--start:--end]), write game.tw-pddl with the shipped domain and grammar, the "
        "'solvable' flag and the planner's walkthrough. Unlike alfworld-generate, the default range "
        "includes the last trial.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    comp.add_argument("data_path", type=Path, help="folder to search for traj_data.json files")
    comp.add_argument(
        "--start", type=int, default=0, help="index of the first trial (sorted order)"
    )
    comp.add_argument(
        "--end", type=int, default=None, help="index after the last trial (default: all)"
    )
    comp.add_argument("--seed", type=int, default=20240229, help="seed of the goal-sentence draw")
    comp.add_argument("--overwrite", action="store_true", help="rebuild existing game files")

    pack = commands.add_parser(
        "pack",
        help="pack an official-layout folder into one JSON file",
        description="Pack every solvable game under DATA_DIR (ALFWORLD_DATA or its json_2.1.1) into "
        "one JSON file, the format of the games shipped in envs/alfworld/data.",
    )
    pack.add_argument("data_dir", type=Path, help="an ALFWORLD_DATA folder")
    pack.add_argument("--out", type=Path, required=True, help="JSON file to write")

    args = parser.parse_args(argv)
    if args.command == "generate":
        if args.task_types is not None:
            try:
                normalise_task_types(args.task_types)
            except ValueError as error:
                parser.error(str(error))
        for name in (*SPLITS, "max_steps", "max_attempts", "jobs"):
            least = 0 if name in SPLITS else 1
            if getattr(args, name) < least:
                parser.error(f"--{name.replace('_', '-')} must be at least {least}")
    return args


def run_generate(args: argparse.Namespace) -> int:
    from envs.alfworld.generate import generate_dataset, write_public_text

    counts = {
        "train": args.train,
        "dev": args.dev,
        "valid_seen": args.valid_seen,
        "valid_unseen": args.valid_unseen,
    }
    total = sum(counts.values()) * len(args.task_types or TASK_TYPES)
    started = time.perf_counter()
    done = 0

    def progress(game) -> None:
        nonlocal done
        done += 1
        if not args.quiet:
            hand = "-" if game.handcoded_steps is None else str(game.handcoded_steps)
            print(
                f"[{done}/{total}] {game.task_id}  planner {game.planner_steps} steps, "
                f"hand-coded {hand}, {game.attempts} draw(s)",
                flush=True,
            )

    try:
        report = generate_dataset(
            args.out,
            games_per_type=counts,
            seed=args.seed,
            task_types=args.task_types,
            verify=args.verify,
            max_steps=args.max_steps,
            max_attempts=args.max_attempts,
            jobs=args.jobs,
            overwrite=args.overwrite,
            planner_memory_mb=args.planner_memory_mb,
            floor_plans={
                "train": args.seen_floor_plans,
                "dev": args.seen_floor_plans,
                "valid_seen": args.seen_floor_plans,
                "valid_unseen": args.unseen_floor_plans,
            },
            progress=progress,
        )
    except (ValueError, FileExistsError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(
        f"\n{len(report.games)} games in {time.perf_counter() - started:.0f} s under {args.out / OFFICIAL_VERSION_DIR}"
    )
    for split, per_type in report.counts().items():
        print(f"  {split}: " + ", ".join(f"{t} {n}" for t, n in sorted(per_type.items())))
    if args.pack:
        packed = pack_directory(args.out, generator=report.config)
        write_public_text(args.pack, json.dumps(packed) + "\n")
        print(f"packed {len(packed['games'])} games into {args.pack}")
    print(
        f"play them: ALFWORLD_DATA={args.out} (or gym.make('ALFWorld-v0', data_dir='{args.out}'))"
    )
    return 0


def run_compile(args: argparse.Namespace) -> int:
    from envs.alfworld.generate import compile_directory

    if not args.data_path.is_dir():
        print(f"error: {args.data_path} is not a folder", file=sys.stderr)
        return 1
    results = compile_directory(
        args.data_path, start=args.start, end=args.end, seed=args.seed, overwrite=args.overwrite
    )
    for result in results:
        print(f"{result.status:<28} {result.trial_dir}")
    print("\n" + compile_summary([r.status for r in results]))
    return 0


def compile_summary(statuses: list[str]) -> str:
    """One line counting every outcome, e.g. ``66 trials: 0 compiled (0 solvable, 0 unsolvable),
    66 skipped (66 game file exists)`` (a skip is not a failure to solve)."""
    solvable = statuses.count("solvable")
    unsolvable = statuses.count("unsolvable")
    skipped = collections.Counter(s.split(": ", 1)[-1] for s in statuses if s.startswith("skipped"))
    line = (
        f"{len(statuses)} trials: {solvable + unsolvable} compiled "
        f"({solvable} solvable, {unsolvable} unsolvable)"
    )
    if skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in skipped.most_common())
        line += f", {sum(skipped.values())} skipped ({reasons})"
        if "game file exists" in skipped:
            line += "; --overwrite recompiles existing games"
    return line


def run_pack(args: argparse.Namespace) -> int:
    from envs.alfworld.generate import write_public_text

    try:
        packed = pack_directory(args.data_dir)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    write_public_text(args.out, json.dumps(packed) + "\n")
    print(
        f"packed {len(packed['games'])} games into {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return {"generate": run_generate, "compile": run_compile, "pack": run_pack}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
