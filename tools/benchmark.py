#!/usr/bin/env python
"""Benchmark agents on mentorgym environments over fixed task panels.

With no arguments (the README's main job): the scripted expert and random
agents on every registered environment that can run on this machine, each
on its default panel. Prints a table, writes a JSON result file and a plot.
When an agent or an env fails mid-run (a model server dies), what finished
is still written, marked ``"incomplete": true`` with the error, and the exit
status is non-zero (3 for a server failure, 1 otherwise).

Examples::

    python tools/benchmark.py
    python tools/benchmark.py --env ScienceWorld-v0 --panel test-v1 --agent random
    python tools/benchmark.py --env ScienceWorld-v0 --agent mypkg.agents:MyAgent --episodes 5
    python tools/benchmark.py --env WebShop-v0 --agent hf:models/tiny --batch 8 \
        --agent-kwargs '{"temperature": 0.4, "max_new_tokens": 128}' --trajectories runs/t.jsonl
    python tools/benchmark.py --env WebShop-v0 --agent openai:http://127.0.0.1:8000/v1#my-model
    python tools/benchmark.py --list

``--trajectories PATH`` writes one JSON line per turn (schema:
``agents/trajectory.py``): env id, task id, turn, actor, prompt, completion,
action, observation, reward, score, won, token counts and log-probs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402
from agents import agent_env_kwargs, make_agent  # noqa: E402
from agents.factory import SPEC_GRAMMAR, canonical_spec, is_model_spec  # noqa: E402
from agents.openai_agent import ServerError  # noqa: E402
from agents.trajectory import TrajectoryWriter, actor_of, turn_record  # noqa: E402
from envs.benchmark_report import (  # noqa: E402
    format_table,
    summary_table,
    write_plot,
    write_tables,
)
from envs.evaluation import (  # noqa: E402
    TurnEvent,
    evaluate_panel,
    evaluate_panel_batched,
    panel_tasks,
    summarise,
    supports_batched,
)
from envs.fileio import atomic_write_json  # noqa: E402
from envs.imports import import_modules  # noqa: E402
from envs.panels import default_panels, list_panels, load_panel  # noqa: E402
from envs.registration import ENV_ENTRIES, check_env_id  # noqa: E402
from envs.tracking import TrackingError, check_tracker, open_run  # noqa: E402
from tools._cli import HelpFormatter, add_device, add_max_turns, add_track  # noqa: E402

gym.register_envs(envs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmark.py",
        description="Run agents on mentorgym environments over fixed task panels; print a table "
        "and write a JSON result file (per episode and per env/agent) and a PNG plot.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="ID",
        help="environment id (repeatable). Default: every mentorgym id that can run here "
        "(ids needing Java are skipped when no Java runtime is found).",
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
        "--panel",
        metavar="NAME|PATH",
        help="task panel: a panel name of each env (see --list) or a panel JSON file. "
        "Default: each env's default panel.",
    )
    parser.add_argument(
        "--agent",
        action="append",
        metavar="SPEC",
        help=f"agent to run (repeatable): {SPEC_GRAMMAR}. Default: expert and random.",
    )
    parser.add_argument(
        "--agent-kwargs",
        default="{}",
        metavar="JSON",
        help='options for model agents, e.g. \'{"temperature": 0.4, "max_new_tokens": 128, '
        '"mode": "rank", "device": "cuda"}\'',
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        metavar="N",
        help="play N episodes at once (N envs, one act_batch call per round) with agents that "
        "have act_batch(..., slots=...), such as hf: and openai: ones; others play one at a time",
    )
    parser.add_argument(
        "--trajectories",
        type=Path,
        metavar="PATH",
        help="write per-turn trajectory records to this JSONL file (schema: agents/trajectory.py)",
    )
    parser.add_argument(
        "--trajectory-ids",
        action="store_true",
        help="also write prompt and completion token ids in the trajectory records",
    )
    parser.add_argument(
        "--episodes", type=int, metavar="N", help="play only the first N tasks of each panel"
    )
    parser.add_argument(
        "--seed", type=int, default=0, metavar="N", help="seed given to agents that take one"
    )
    add_max_turns(parser, "turn cap per episode (default: the id's registered max_episode_steps)")
    add_device(
        parser, "where hf: and tiny: agents run: cpu, cuda, cuda:N or mps (their device option)"
    )
    parser.add_argument(
        "--env-kwargs",
        default="{}",
        metavar="JSON",
        help='extra gym.make keyword arguments, e.g. \'{"simplifications": "easy"}\'; they '
        "override what an agent asks for",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="result JSON path (default: results/benchmark-<date>-<time>.json); "
        "the plot goes beside it with a .png suffix",
    )
    parser.add_argument("--no-plot", action="store_true", help="do not write the PNG plot")
    add_track(
        parser,
        "also log the result table to an experiment tracker (wandb: offline, beside --out; "
        "needs the tracking extra)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--list", action="store_true", help="list env ids and their panels, then exit"
    )
    args = parser.parse_args(argv)
    try:
        args.env_kwargs = json.loads(args.env_kwargs)
        if not isinstance(args.env_kwargs, dict):
            raise ValueError
    except ValueError:
        parser.error(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    try:
        args.agent_kwargs = json.loads(args.agent_kwargs)
        if not isinstance(args.agent_kwargs, dict):
            raise ValueError
    except ValueError:
        parser.error(f"--agent-kwargs must be a JSON object, got {args.agent_kwargs!r}")
    if args.batch < 1:
        parser.error("--batch must be at least 1")
    if args.episodes is not None and args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.max_turns is not None and args.max_turns < 1:
        parser.error("--max-turns must be at least 1")
    if args.device is not None:
        from distill.config import device_problem

        if device_problem(args.device):
            parser.error(f"--device: {device_problem(args.device)}")
        args.agent_kwargs["device"] = args.device
    args.agent = [canonical_spec(spec) for spec in args.agent or []] or None
    try:
        import_modules(args.imports)
        for env_id in args.env or []:
            check_env_id(env_id)
    except ValueError as error:
        parser.error(str(error))
    return args


def runnable_env_ids(requested: list[str] | None) -> tuple[list[str], list[str]]:
    """(ids to run, notes about skipped ids)."""
    needs = {entry.id: entry.needs for entry in ENV_ENTRIES}
    notes, ids = [], []
    for env_id in requested or list(needs):
        if "java" in needs.get(env_id, ()) and shutil.which("java") is None:
            notes.append(f"skipped {env_id}: no Java runtime on this machine")
            continue
        ids.append(env_id)
    return ids, notes


def resolve_panels(env_id: str, panel: str | None) -> list:
    """The named panel (or JSON file) of ``env_id``, else all of its default panels."""
    if panel and panel.endswith(".json"):
        loaded = load_panel(panel)
        if loaded.env_id != env_id:
            raise SystemExit(f"panel {panel} is for {loaded.env_id}, not {env_id}")
        return [loaded]
    if panel:
        return [load_panel(env_id, panel)]
    return default_panels(env_id)


def _trajectory_hook(writer: TrajectoryWriter, spec: str, actor: str, keep_ids: bool) -> Any:
    def on_turn(event: TurnEvent) -> None:
        record = turn_record(
            env_id=event.env_id,
            task_id=event.task_id,
            seed=event.seed,
            episode=event.episode,
            turn=event.turn,
            actor=actor,
            action=event.action,
            observation=event.observation,
            reward=event.reward,
            info=event.info,
            terminated=event.terminated,
            truncated=event.truncated,
            agent_turn=event.agent_turn,
            keep_ids=keep_ids,
        )
        record["agent"] = spec
        writer.write(record)

    return on_turn


def track_results(kind: str, rows: list[dict], out: Path, command: str) -> str:
    """Log the result table (and each row's numbers as summary scalars) to a tracker run
    named after ``out``, written beside it; where the run is."""
    columns, data = summary_table(rows)
    run = open_run(kind, folder=out.parent, name=out.stem, config={"command": command})
    try:
        run.table("results", columns, data)
        for row in rows:
            prefix = f"{row['env_id']}/{row['panel']}/{row['agent']}"
            run.summary({f"{prefix}/{key}": value for key, value in row["summary"].items()})
    finally:
        run.close()
    return run.where()


#: Seconds between redraws of the bar's turn count.
REDRAW_S = 0.5


def _turn_counter(progress: Any, label: str) -> Any:
    """An ``on_turn`` hook that shows the turns played so far in the bar's postfix.

    Batched episodes often end together (every one at the turn cap), so the episode
    count alone would sit at 0 until the end; the turn count moves each round. The bar
    is redrawn at most every ``REDRAW_S`` seconds (scripted agents play thousands of
    turns a second).
    """
    turns, shown = 0, time.perf_counter()
    every_s = REDRAW_S

    def on_turn(event: TurnEvent) -> None:
        nonlocal turns, shown
        turns += 1
        progress.set_postfix_str(f"{label} {turns} turn{'s' * (turns != 1)}", refresh=False)
        now = time.perf_counter()
        if now - shown >= every_s:
            shown = now
            progress.refresh()

    return on_turn


def _chain(hooks: list[Any]) -> Any:
    def on_turn(event: TurnEvent) -> None:
        for hook in hooks:
            hook(event)

    return on_turn


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for entry in ENV_ENTRIES:
            panels = ", ".join(
                f"{p.name}{' (default)' if p.default else ''} [{len(p.task_ids)}]"
                for p in list_panels(entry.id)
            )
            needs = f"  needs: {', '.join(entry.needs)}" if entry.needs else ""
            print(f"{entry.id}  cap={entry.max_episode_steps}{needs}\n    panels: {panels}")
        return 0

    try:
        check_tracker(args.track or "none")  # before any episode: a missing extra is one line
    except TrackingError as error:
        print(f"error: --track {args.track}: {error}", file=sys.stderr)
        return 2
    env_ids, notes = runnable_env_ids(args.env)
    for note in notes:
        print(note, file=sys.stderr)
    if not env_ids:
        print("nothing to run", file=sys.stderr)
        return 1
    agent_specs = args.agent or ["expert", "random"]
    if any(spec.startswith("hf:") for spec in agent_specs):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a bar per weight load would break up the table's
    built: dict[str, Any] = {}
    for spec in agent_specs:  # fail on a bad spec before any env starts
        try:
            built[spec] = make_agent(spec, seed=args.seed, options=args.agent_kwargs)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    panels = {}
    for env_id in env_ids:
        try:
            panels[env_id] = resolve_panels(env_id, args.panel)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    from tqdm import tqdm

    total = sum(len(p.task_ids[: args.episodes]) for e in env_ids for p in panels[e]) * len(
        agent_specs
    )
    progress = tqdm(total=total, desc="episodes", unit="ep", disable=args.quiet, dynamic_ncols=True)
    writer = TrajectoryWriter(args.trajectories) if args.trajectories else None
    rows, started = [], time.perf_counter()
    failure: tuple[int, str] | None = None  # (exit code, message) of a run that broke off
    try:
        for env_id, panel in [(e, p) for e in env_ids for p in panels[e]]:
            for spec in agent_specs:
                # Model agents are built once (loading weights is slow); scripted ones afresh
                # per env, so their seeded behaviour does not depend on the env order.
                agent = built.pop(spec, None) if not is_model_spec(spec) else built[spec]
                if agent is None:
                    agent = make_agent(spec, seed=args.seed, options=args.agent_kwargs)
                env_kwargs = {**agent_env_kwargs(agent), **args.env_kwargs}
                if args.max_turns is not None:
                    env_kwargs["max_episode_steps"] = args.max_turns
                progress.set_postfix_str(f"{env_id} {spec}")
                hooks = [_turn_counter(progress, f"{env_id} {spec}")]
                if writer is not None:
                    hooks.append(
                        _trajectory_hook(writer, spec, actor_of(agent), args.trajectory_ids)
                    )
                on_turn = _chain(hooks)
                # Agents that cannot batch (the scripted ones) play one episode at a time.
                batch = args.batch if supports_batched(agent) else 1
                batch = min(batch, len(panel.task_ids[: args.episodes]))
                try:
                    envs_made = [
                        gym.make(env_id, split=panel.split, **env_kwargs)
                        for _ in range(max(1, batch))
                    ]
                except (TypeError, ValueError) as error:  # bad --env-kwargs: say which
                    print(f"error: cannot make {env_id}: {error}", file=sys.stderr)
                    return 2
                # A narrowed env (ToolMath's levels) plays only its own tasks of the panel.
                playable = getattr(envs_made[0].unwrapped, "task_ids", None)
                planned = len(panel.task_ids[: args.episodes])
                playing = len(panel_tasks(panel, args.episodes, playable))
                if playing == 0:
                    print(
                        f"error: none of the tasks of panel {panel.name!r} is playable by "
                        f"{env_id} with env kwargs {args.env_kwargs}",
                        file=sys.stderr,
                    )
                    return 2
                if playing < planned:
                    progress.total -= planned - playing
                    progress.refresh()
                finished: list = []  # episodes kept even if a later one breaks the run

                def on_episode(result: Any, finished: list = finished) -> None:
                    finished.append(result)
                    progress.update()

                row = {
                    "env_id": env_id,
                    "panel": panel.name,
                    "split": panel.split,
                    "agent": spec,
                    "batch": batch,
                    "env_kwargs": env_kwargs,
                }
                row_started = time.perf_counter()  # real time: batched episodes overlap
                try:
                    if batch > 1:
                        results = evaluate_panel_batched(
                            envs_made,
                            agent,
                            panel,
                            limit=args.episodes,
                            on_episode=on_episode,
                            on_turn=on_turn,
                            playable=playable,
                        )
                    else:
                        results = evaluate_panel(
                            envs_made[0],
                            agent,
                            panel,
                            limit=args.episodes,
                            on_episode=on_episode,
                            on_turn=on_turn,
                            playable=playable,
                        )
                except Exception as error:
                    # What finished is written (marked incomplete) before the run stops.
                    if isinstance(error, ServerError):  # a served model failed: no traceback
                        message, code = f"agent {spec}: {error}", 3
                    else:
                        message, code = f"{env_id} / {spec}: {type(error).__name__}: {error}", 1
                        traceback.print_exc()
                    failure = (code, message)
                    finished.sort(key=lambda result: panel.task_ids.index(result.task_id))
                    row.update(incomplete=True, error=message)
                    results = finished
                finally:
                    for env in envs_made:
                        env.close()
                row["summary"] = summarise(results, time.perf_counter() - row_started)
                row["episodes"] = [r.to_dict() for r in results]
                rows.append(row)
                if failure is not None:
                    break
            if failure is not None:
                break
    finally:
        progress.close()
        if writer is not None:
            writer.close()

    out = args.out or ROOT / "results" / f"benchmark-{time.strftime('%Y%m%d-%H%M%S')}.json"
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(["tools/benchmark.py", *(argv if argv is not None else sys.argv[1:])]),
        "wall_s": time.perf_counter() - started,
        "results": rows,
    }
    if failure is not None:
        report.update(incomplete=True, error=failure[1])
    if writer is not None:
        report["trajectories"] = str(writer.path)
    atomic_write_json(out, report)
    tables = write_tables(rows, out) if rows else []
    print()
    if rows:
        print(format_table(rows))
    print(f"\nresults: {out}" + (" (incomplete)" if failure is not None else ""))
    for table in tables:
        print(f"         {table}")
    if writer is not None:
        print(f"trajectories: {writer.path} ({writer.count} turns)")
    if not args.no_plot and rows:
        plot = write_plot(rows, out.with_suffix(".png"))
        if plot:
            print(f"plot:    {plot}")
    if args.track and args.track != "none" and rows:
        print(f"tracked: {track_results(args.track, rows, out, report['command'])}")
    if failure is not None:
        print(f"error: {failure[1]}", file=sys.stderr)
        return failure[0]
    return 0


if __name__ == "__main__":
    sys.exit(main())
