#!/usr/bin/env python
"""Run a reproducible distillation study: teachers, students of two sizes, every method, seeds.

    python tools/study.py --preset cpu                 # the 2-core CPU preset (docs/study.md)
    python tools/study.py --preset smoke --out /tmp/s  # every stage in a minute (the test suite's)
    python tools/study.py --preset gpu --device cuda   # the larger preset
    python tools/study.py --preset cpu --report-only   # tables and plots from what is there
    python tools/study.py --preset pitfall             # the Pitfall study (kind: pitfall)
    python tools/study.py --preset pitfall_lm          # its full-stack confirmation (LM policies)

Presets live in ``configs/study/`` (``distill/study/presets.py`` documents
the format). Every stage writes its files under ``--out`` and is skipped
when they exist, so running the same command again continues a stopped
study. The study writes ``results.json`` (every evaluation, raw),
``summary.md`` (the tables) and ``plots/`` (success rates, per-turn KL);
``calls.json`` (when each call of the command started, how long it ran, whether
it finished: the elapsed time of a study resumed over several calls);
``--docs docs/study.md`` also puts the tables and plots into that page,
between its ``<!-- study:begin -->`` and ``<!-- study:end -->`` markers, and
copies the plots and the raw ``results.json`` into ``docs/study/``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from distill.study.presets import PRESET_DIR, load_preset  # noqa: E402
from tools._cli import HelpFormatter, add_device  # noqa: E402

BEGIN, END = "<!-- study:begin -->", "<!-- study:end -->"
CALLS = "calls.json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    presets = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
    parser = argparse.ArgumentParser(
        prog="study.py",
        description=__doc__.split("\n\n")[0],
        epilog="Presets: " + ", ".join(presets),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--preset", required=True, help="a preset name or a YAML path")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="output folder (default: runs/study-<preset>)"
    )
    add_device(parser, "where the students train: cpu, cuda, cuda:N or mps", default="cpu")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable), e.g. one that registers your own env ids",
    )
    parser.add_argument("--docs", type=Path, help="a Markdown page to put the tables and plots in")
    parser.add_argument(
        "--report-only", action="store_true", help="only gather, table and plot what exists"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="train and evaluate N students at once, the cores shared out between them "
        "(on 2 cores, 2 jobs get through the cells faster: docs/study.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    return args


def write_docs(
    page: Path,
    table: str,
    plots: list[Path],
    out: Path,
    command: str,
    *,
    markers: tuple[str, str] = (BEGIN, END),
    folder: str | None = None,
) -> None:
    """Replace the block between the ``markers`` of ``page`` with the tables and the plots
    (copied, with ``results.json``, into ``<page stem>/`` or ``<page stem>/<folder>/``)."""
    from envs.fileio import atomic_write_text

    begin, end = markers
    relative = page.stem if folder is None else f"{page.stem}/{folder}"
    figures = page.parent / relative
    figures.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out / "results.json", figures / "results.json")
    images = [f"Raw results: [{relative}/results.json]({relative}/results.json).", ""]
    for plot in plots:
        shutil.copyfile(plot, figures / plot.name)
        images.append(f"![{plot.stem}]({relative}/{plot.name})")
    block = "\n".join(
        [
            begin,
            f"<!-- written by: {command} (results in {_shown(out)}) -->",
            "",
            table,
            *images,
            end,
        ]
    )
    text = page.read_text() if page.is_file() else f"# Study\n\n{begin}\n{end}\n"
    if begin not in text or end not in text:
        raise ValueError(f"{page} lacks the {begin} ... {end} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write_text(page, head + block + tail)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = parse_args(argv)
    from distill.config import device_problem
    from envs.imports import import_modules

    problem = device_problem(args.device)
    if problem:
        print(f"error: --device: {problem}", file=sys.stderr)
        return 2
    from distill.study.pitfall import is_pitfall_preset

    if is_pitfall_preset(args.preset):
        return main_pitfall(args)
    from distill.study.pitfall_lm import is_lm_preset

    if is_lm_preset(args.preset):
        return main_pitfall_lm(args)
    try:
        import_modules(args.imports)
        preset = load_preset(args.preset)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from transformers.utils import logging as hf_logging

    from distill.study.report import gather, markdown, plot
    from distill.study.runner import run_study

    hf_logging.disable_progress_bar()  # one bar per model load would bury the study's own

    out = args.out or ROOT / "runs" / f"study-{preset.name}"
    started = time.perf_counter()
    if args.report_only:
        results = gather(preset, out)
        if not results["runs"] and not any(results["teachers"].values()):
            print(
                f"error: {out} holds no evaluated run of preset {preset.name!r} to report; "
                "run the study first (without --report-only)",
                file=sys.stderr,
            )
            return 2
        from envs.fileio import atomic_write_text

        atomic_write_text(
            out / "results.json", json.dumps(results, indent=1, sort_keys=True) + "\n"
        )
    else:
        calls = _begin_call(out, args.jobs)
        finished = False
        try:
            results = run_study(
                preset, out, device=args.device, progress=not args.quiet, jobs=args.jobs
            )
            finished = True
        finally:  # an interrupted call still says how long it ran
            _end_call(out, calls, time.perf_counter() - started, finished)
    table = markdown(results)
    calls = _read_calls(out)
    jobs = args.jobs
    if args.report_only:  # it trained nothing: the calls that did say how many ran at once
        jobs = max([call.get("jobs", 1) for call in calls], default=args.jobs)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch threads {_threads()}"
    if jobs > 1:
        machine += f" ({jobs} students at once, {max(1, _threads() // jobs)} each)"
    header = (
        f"Preset `{preset.name}` ({_shown(preset.source)}), seeds {list(preset.seeds)}; machine: {machine}; "
        f"{_study_wall(results, jobs)}{_elapsed(calls)}.\n\n"
    )
    from envs.fileio import atomic_write_text

    atomic_write_text(out / "summary.md", header + table)
    plots = plot(results, out / "plots")
    if args.docs:
        command = f"python tools/study.py --preset {args.preset}" + (
            f" --device {args.device}" if args.device != "cpu" else ""
        )
        command += f" --jobs {jobs}" if jobs > 1 else ""
        write_docs(args.docs, header + table, plots, out, command)
    print(header + table)
    print(f"results: {out / 'results.json'}  tables: {out / 'summary.md'}  plots: {out / 'plots'}")
    print(f"this call: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def main_pitfall(args: argparse.Namespace) -> int:
    """A ``kind: pitfall`` preset: MLP policies on the vectorised Pitfall-v0 (CPU, one thread);
    ``--docs`` fills the page's ``<!-- <preset name>:begin -->`` block (plots and raw results
    in ``<page stem>/<preset name>/``), so each Pitfall preset has its own block."""
    from distill.study.pitfall import gather, load_pitfall_preset, run_pitfall
    from distill.study.pitfall_report import markdown, plots
    from envs.fileio import atomic_write_text

    if args.jobs != 1 or args.device != "cpu":
        print("error: a pitfall preset runs on one CPU thread (no --jobs, no --device)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        preset = load_pitfall_preset(args.preset)
    except (ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "runs" / f"study-{preset.name}"
    started = time.perf_counter()
    if args.report_only:
        results = gather(preset, out)
        if not results["units"]:
            print(f"error: {out} holds no unit of preset {preset.name!r}; run it first",
                  file=sys.stderr)  # fmt: skip
            return 2
    else:
        calls = _begin_call(out, 1)
        finished = False
        try:
            results = run_pitfall(preset, out, progress=not args.quiet)
            finished = True
        finally:
            _end_call(out, calls, time.perf_counter() - started, finished)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, one torch thread"
    header = (
        f"Preset `{preset.name}` ({_shown(preset.source)}): {len(preset.seeds)} seeds per cell, "
        f"{preset.panels['test']} held-out contexts; machine: {machine}; the units' compute "
        f"{results['seconds'] / 60:.1f} min{_elapsed(_read_calls(out))}.\n\n"
    )
    table = markdown(results, preset.students)
    atomic_write_text(out / "summary.md", header + table)
    paths = plots(results, out / "plots")
    if args.docs:
        command = f"python tools/study.py --preset {args.preset}"
        markers = (f"<!-- {preset.name}:begin -->", f"<!-- {preset.name}:end -->")
        # The page's block sits under its own heading: the tables' headings go one level down.
        nested = header + table.replace("### ", "#### ")
        write_docs(args.docs, nested, paths, out, command, markers=markers,
                   folder=preset.name)  # fmt: skip
    print(header + table)
    print(f"results: {out / 'results.json'}  tables: {out / 'summary.md'}  plots: {out / 'plots'}")
    print(f"this call: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def main_pitfall_lm(args: argparse.Namespace) -> int:
    """A ``kind: pitfall_lm`` preset: tiny LM policies on Pitfall-v0 through the trainer (CPU,
    one torch thread); ``--docs`` fills the page's ``<!-- <preset name>:begin -->`` block."""
    from distill.study.pitfall_lm import gather, load_lm_preset, run_pitfall_lm
    from distill.study.pitfall_lm_report import markdown
    from envs.fileio import atomic_write_text

    if args.jobs != 1 or args.device != "cpu":
        print("error: a pitfall_lm preset runs on one CPU thread (no --jobs, no --device)",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        preset = load_lm_preset(args.preset)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or ROOT / "runs" / f"study-{preset.name}"
    started = time.perf_counter()
    if args.report_only:
        results = gather(preset, out)
        if not results["units"]:
            print(f"error: {out} holds no unit of preset {preset.name!r}; run it first",
                  file=sys.stderr)  # fmt: skip
            return 2
    else:
        calls = _begin_call(out, 1)
        finished = False
        try:
            results = run_pitfall_lm(preset, out, progress=not args.quiet)
            finished = True
        finally:
            _end_call(out, calls, time.perf_counter() - started, finished)
    atomic_write_text(out / "results.json", json.dumps(results, indent=1, sort_keys=True) + "\n")
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, one torch thread"
    header = (
        f"Preset `{preset.name}` ({_shown(preset.source)}): {len(preset.seeds)} seeds per arm, "
        f"{preset.eval['episodes']} held-out episodes ({preset.eval['panel']}) at temperature "
        f"{preset.temperature:g}; machine: {machine}; the units' compute "
        f"{results['seconds'] / 60:.1f} min{_elapsed(_read_calls(out))}.\n\n"
    )
    table = markdown(results, preset)
    atomic_write_text(out / "summary.md", header + table)
    if args.docs:
        command = f"python tools/study.py --preset {args.preset}"
        markers = (f"<!-- {preset.name}:begin -->", f"<!-- {preset.name}:end -->")
        write_docs(args.docs, header + table, [], out, command, markers=markers,
                   folder=preset.name)  # fmt: skip
    print(header + table)
    print(f"results: {out / 'results.json'}  tables: {out / 'summary.md'}")
    print(f"this call: {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def _read_calls(out: Path) -> list[dict]:
    """The calls recorded in ``out/calls.json``; none when it is missing or unreadable."""
    path = out / CALLS
    if not path.is_file():
        return []
    try:
        calls = json.loads(path.read_text())
    except json.JSONDecodeError:
        calls = None
    if not isinstance(calls, list):
        print(f"warning: {path} is not a list of calls; the elapsed time restarts", file=sys.stderr)
        return []
    return calls


def _write_calls(out: Path, calls: list[dict]) -> None:
    from envs.fileio import atomic_write_text

    atomic_write_text(out / CALLS, json.dumps(calls, indent=1) + "\n")


def _begin_call(out: Path, jobs: int) -> list[dict]:
    """Append this call to ``out/calls.json``. Written before any work, so a call killed
    outright still shows, as one without an end."""
    out.mkdir(parents=True, exist_ok=True)
    calls = _read_calls(out)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    calls.append({"started": started, "jobs": jobs})
    _write_calls(out, calls)
    return calls


def _end_call(out: Path, calls: list[dict], seconds: float, finished: bool) -> None:
    """Record how long the last call of ``calls`` ran and whether its stages all finished."""
    calls[-1].update(elapsed_s=round(seconds, 1), finished=finished)
    _write_calls(out, calls)


def _elapsed(calls: list[dict]) -> str:
    """The header's elapsed time: what the output folder's calls took, one after another
    (stages copied in from elsewhere are not in it)."""
    if not calls:
        return ""
    timed = [call["elapsed_s"] for call in calls if "elapsed_s" in call]
    n = len(calls)
    text = f"; elapsed {sum(timed) / 60:.1f} min in {n} call{'s' if n > 1 else ''} of this folder"
    notes = []
    stopped = sum(1 for call in calls if call.get("finished") is False)
    if stopped:
        notes.append(f"{stopped} stopped before the end")
    if n - len(timed):
        notes.append(f"{n - len(timed)} killed before it could record its time, not counted")
    return text + (f" ({'; '.join(notes)})" if notes else "")


def _shown(path: str | Path) -> str:
    """``path`` relative to the repository when it lies inside it (docs stay machine-free)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _study_wall(results: dict, jobs: int = 1) -> str:
    """The wall time the study's stages took: games (if generated), training, and evaluation
    where it was timed. With several jobs the stages overlapped, and the sum says so."""
    records = [t or {} for t in results["teachers"].values()] + list(results["runs"])
    training = sum(record.get("wall_s", 0.0) for record in records) / 60
    games = sum(record.get("games_s", 0.0) for record in records) / 60
    parts = [f"{games:.1f} games"] if games else []
    parts.append(f"{training:.1f} training")
    timed = [record["eval_s"] for record in records if "eval_s" in record]
    overlap = (
        f"; students' times summed over {jobs} at once, so the elapsed time was shorter"
        if jobs > 1
        else ""
    )
    if not timed:
        total = games + training
        return f"wall time {total:.1f} min ({', '.join(parts)}; evaluation not timed{overlap})"
    evaluation = sum(timed) / 60
    parts.append(f"{evaluation:.1f} evaluation")
    return f"wall time {games + training + evaluation:.1f} min ({', '.join(parts)}{overlap})"


if __name__ == "__main__":
    sys.exit(main())
