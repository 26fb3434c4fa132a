"""A study's results: gathered from its files, summarised with 95% intervals, tabled and plotted.

:func:`gather` reads every evaluation the runner wrote into one JSON-ready
dict; :func:`summarise` averages over seeds (mean and the half-width of a
95% Student-t interval); :func:`markdown` writes the tables and
:func:`plot` the figures that ``docs/study.md`` shows.
"""

from __future__ import annotations

import json
import math
import statistics
import textwrap
from pathlib import Path
from typing import Any

from distill.study.presets import Preset

__all__ = ["CONTRASTS", "ci95", "contrasts", "diff_ci95", "gather", "markdown", "plot", "summarise"]

#: The published claims the study tests: (method, baseline) pairs compared on every panel.
CONTRASTS: tuple[tuple[str, str], ...] = (
    ("guided_opd", "opd"),  # Guided-OPD over vanilla OPD (Score +21.1%, SR +25.5%)
    ("mentor_exact", "sft"),  # MENTOR over SFT, out of domain above all
    ("mentor_f1", "sft"),
    ("mentor_exact", "grpo"),  # MENTOR over sparse-reward RL
    ("mentor_f1", "grpo"),
)

# Two-sided 97.5% quantiles of Student's t for 1..30 degrees of freedom.
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def ci95(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t interval); the half-width is nan for one value."""
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    t = _T975[len(values) - 2] if len(values) - 1 <= len(_T975) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


def diff_ci95(values: list[float], baseline: list[float]) -> tuple[float, float]:
    """(mean(values) - mean(baseline), half-width of Welch's 95% interval); nan half-width
    when either side has fewer than two values."""
    if not values or not baseline:
        return math.nan, math.nan
    diff = statistics.fmean(values) - statistics.fmean(baseline)
    if len(values) < 2 or len(baseline) < 2:
        return diff, math.nan
    a = statistics.variance(values) / len(values)
    b = statistics.variance(baseline) / len(baseline)
    if a + b == 0:
        return diff, 0.0
    # Welch-Satterthwaite degrees of freedom, rounded down (conservative).
    dof = (a + b) ** 2 / (a**2 / (len(values) - 1) + b**2 / (len(baseline) - 1))
    whole = max(1, math.floor(dof))
    t = _T975[whole - 1] if whole <= len(_T975) else 1.96
    return diff, t * math.sqrt(a + b)


def contrasts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each of :data:`CONTRASTS` per (family, size, panel): the difference in SR and Score
    over seeds, with Welch 95% intervals, and the relative change in Score."""
    cells = _by_cell(results)
    values = {
        key: {metric: [float(e[metric]) for e in entries] for metric in ("sr", "score")}
        for key, entries in cells.items()
    }
    domains = {key[3]: entries[0].get("domain", "in") for key, entries in cells.items()}
    rows = []
    groups = dict.fromkeys((family, size, label) for family, size, _, label in values)
    for method, baseline in CONTRASTS:
        for family, size, label in groups:
            ours = values.get((family, size, method, label))
            theirs = values.get((family, size, baseline, label))
            if not ours or not theirs:
                continue
            sr, sr_ci = diff_ci95(ours["sr"], theirs["sr"])
            score, score_ci = diff_ci95(ours["score"], theirs["score"])
            base = statistics.fmean(theirs["score"])
            rows.append(
                {
                    "family": family,
                    "size": size,
                    "method": method,
                    "baseline": baseline,
                    "panel": label,
                    "domain": domains[label],
                    "sr_diff": sr,
                    "sr_diff_ci": sr_ci,
                    "score_diff": score,
                    "score_diff_ci": score_ci,
                    # Relative to a baseline under 5 points, a change is mostly noise.
                    "score_relative": score / base if base >= 5.0 else math.nan,
                    "silent": max(ours["sr"] + theirs["sr"]) == 0.0,
                }
            )
    return rows


def _by_cell(results: dict[str, Any]) -> dict[tuple[str, str, str, str], list[dict[str, Any]]]:
    """(family, size, method, panel) -> that panel's result in each seed's run (with ``run``)."""
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for run in results["runs"]:
        for label, panel in run["panels"].items():
            key = (run["family"], run["size"], run["method"], label)
            groups.setdefault(key, []).append({**panel, "run": run})
    return groups


def _read(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def gather(preset: Preset, out: str | Path) -> dict[str, Any]:
    """Every evaluation under ``out`` for ``preset``: teachers, initial students and cells."""
    from distill.study.runner import EVAL_FILE, cell_dir, teacher_dir

    out = Path(out)
    teachers = {f.name: _read(teacher_dir(out, f) / EVAL_FILE) for f in preset.families}
    rows = []
    seen_initial = set()
    for family, size, method, seed in preset.cells():
        for name in ("initial", method):
            if name == "initial":
                if (family.name, size, seed) in seen_initial:
                    continue
                seen_initial.add((family.name, size, seed))
            record = _read(cell_dir(out, family, size, name, seed) / EVAL_FILE)
            if record is None:
                continue
            rows.append(
                {"family": family.name, "size": size, "method": name, "seed": seed, **record}
            )
    return {
        "preset": preset.name,
        "source": preset.source,
        "seeds": list(preset.seeds),
        "teachers": teachers,
        "runs": rows,
    }


def summarise(results: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (family, size, method, panel): SR and Score mean and 95% CI over seeds."""
    rows = []
    for (family, size, method, label), entries in _by_cell(results).items():
        sr, sr_ci = ci95([e["sr"] for e in entries])
        score, score_ci = ci95([e["score"] for e in entries])
        timings = [e["run"].get("timings") or {} for e in entries]
        rows.append(
            {
                "family": family,
                "size": size,
                "method": method,
                "panel": label,
                "domain": entries[0].get("domain", "in"),
                "seeds": len(entries),
                "sr": sr,
                "sr_ci": sr_ci,
                "score": score,
                "score_ci": score_ci,
                "tokens_trained": _mean([t.get("tokens_trained") for t in timings]),
            }
        )
    return rows


def _mean(values: list[Any]) -> float:
    kept = [float(v) for v in values if v is not None]
    return statistics.fmean(kept) if kept else math.nan


def _cell(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:.1f}" if math.isnan(half) else f"{mean:.1f} ± {half:.1f}"


def _silent(silent: list[dict[str, Any]], shown: list[dict[str, Any]]) -> str:
    """The pairs at 0% on every seed, by panel; "every pair" where no pair of it was shown."""
    parts = []
    for panel in dict.fromkeys(r["panel"] for r in silent):
        if not any(r["panel"] == panel for r in shown):
            parts.append(f"every pair on {panel}")
            continue
        pairs = [
            f"{r['method']} - {r['baseline']} ({r['size']})" for r in silent if r["panel"] == panel
        ]
        parts.append(f"on {panel}, " + ", ".join(pairs))
    return "; ".join(parts)


def _signed(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "n/a"
    return f"{mean:+.1f}" if math.isnan(half) else f"{mean:+.1f} ± {half:.1f}"


def _method_order(results: dict[str, Any]) -> list[str]:
    order = ["initial"]
    for run in results["runs"]:
        if run["method"] not in order:
            order.append(run["method"])
    return order


def markdown(results: dict[str, Any]) -> str:
    """Tables: teachers; SR and Score per family, size, method and panel; time per step."""
    rows = summarise(results)
    lines = [
        "### Teachers",
        "",
        "| family | panel | SR | Score | episodes |",
        "|---|---|---|---|---|",
    ]
    for family, record in results["teachers"].items():
        for label, panel in ((record or {}).get("panels") or {}).items():
            lines.append(
                f"| {family} | {label} | {panel['sr']:.1f} | {panel['score']:.1f} | {panel['episodes']} |"
            )
    lines += _training_table(results)
    methods = _method_order(results)
    for family in dict.fromkeys(r["family"] for r in rows):
        family_rows = [r for r in rows if r["family"] == family]
        panels = list(dict.fromkeys(r["panel"] for r in family_rows))
        sizes = list(dict.fromkeys(r["size"] for r in family_rows))
        for metric in ("sr", "score"):
            name = "Success rate (%)" if metric == "sr" else "Score"
            lines += ["", f"### {family}: {name}, mean ± 95% CI over seeds", ""]
            header = ["size", "method"] + [
                p + (" (OOD)" if _domain(family_rows, p) == "out" else "") for p in panels
            ]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            for size in sizes:
                for method in methods:
                    cells = []
                    found = False
                    for panel in panels:
                        match = [
                            r
                            for r in family_rows
                            if r["size"] == size and r["method"] == method and r["panel"] == panel
                        ]
                        if match:
                            found = True
                            cells.append(_cell(match[0][metric], match[0][f"{metric}_ci"]))
                        else:
                            cells.append("n/a")
                    if found:
                        lines.append(f"| {size} | {method} | " + " | ".join(cells) + " |")
    claims = contrasts(results)
    # A pair where both methods won nothing on any seed says nothing: list it on one line.
    silent = [r for r in claims if r["silent"]]
    claims = [r for r in claims if not r["silent"]]
    if claims:
        lines += [
            "",
            "### The claims: differences between methods (percentage points, 95% Welch CI over seeds)",
            "",
            "| family | size | method - baseline | panel | SR | Score | Score, relative |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in claims:
            panel = row["panel"] + (" (OOD)" if row["domain"] == "out" else "")
            relative = (
                "n/a" if math.isnan(row["score_relative"]) else f"{row['score_relative']:+.0%}"
            )
            lines.append(
                f"| {row['family']} | {row['size']} | {row['method']} - {row['baseline']} | {panel} | "
                f"{_signed(row['sr_diff'], row['sr_diff_ci'])} | "
                f"{_signed(row['score_diff'], row['score_diff_ci'])} | {relative} |"
            )
    if silent:
        lines += [
            "",
            "Both at 0% on every seed (no difference to measure): " + _silent(silent, claims) + ".",
        ]
    failed = [r for r in results["runs"] if r.get("error")]
    if failed:
        lines += ["", "### Runs that could not train", ""]
        for run in failed:
            lines.append(
                f"- {run['family']} / {run['size']} / {run['method']} / seed {run['seed']}: {run['error']}"
            )
    lines += ["", "### Time per training step (seconds, mean over runs)", ""]
    lines.append(
        "| family | method | rollout | of which env | teacher scoring | optimisation | env share | tokens trained |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    for (family, method), timing in _timings(results).items():
        method = "initial (warm start)" if method == "initial" else method
        total = timing["time_rollout_s"] + timing["time_scoring_s"] + timing["time_optimise_s"]
        share = timing["time_env_s"] / total if total else math.nan
        lines.append(
            f"| {family} | {method} | {timing['time_rollout_s']:.2f} | {timing['time_env_s']:.2f} | "
            f"{timing['time_scoring_s']:.2f} | {timing['time_optimise_s']:.2f} | {share:.0%} | "
            f"{timing['tokens_trained']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _training_table(results: dict[str, Any]) -> list[str]:
    """How each teacher and warm start was trained: to a target SR on a dev panel (reached,
    and when) or for fixed steps, with its evaluations along the way."""
    models: list[tuple[str, str, dict[str, Any]]] = []
    for family, record in results["teachers"].items():
        models.append((family, "teacher", record or {}))
    seen = set()
    for run in results["runs"]:
        key = (run["family"], run["size"])
        if run["method"] == "initial" and run.get("training") and key not in seen:
            seen.add(key)
            models.append((run["family"], f"{run['size']} warm start", run))
    lines = [
        "",
        "### How the teachers and initial students were trained",
        "",
        "| family | model | steps | trained to | evaluation SR along the way (step: SR) |",
        "|---|---|---|---|---|",
    ]
    for family, model, record in models:
        training = record.get("training") or {}
        target = training.get("target")
        steps = int((record.get("timings") or {}).get("steps", 0))
        if target is None:
            goal = "fixed steps"
        elif target["reached"]:
            goal = f"{target['eval_sr']:g}% SR: reached at step {target['step']:,}"
        else:
            goal = (
                f"{target['eval_sr']:g}% SR: **missed**; best {target['best_eval_sr']:.1f}% "
                f"(step {target['step']:,}) kept"
            )
        curve = ", ".join(f"{step:,}: {sr:.1f}" for step, sr in training.get("eval_curve", []))
        lines.append(f"| {family} | {model} | {steps:,} | {goal} | {curve or '-'} |")
    return lines if len(lines) > 5 else []


def _domain(rows: list[dict[str, Any]], panel: str) -> str:
    return next((r["domain"] for r in rows if r["panel"] == panel), "in")


def _timings(results: dict[str, Any]) -> dict[tuple[str, str], dict[str, float]]:
    grouped: dict[tuple[str, str], list[dict[str, float]]] = {}
    for run in results["runs"]:
        if run.get("timings"):
            grouped.setdefault((run["family"], run["method"]), []).append(run["timings"])
    keys = ("time_rollout_s", "time_env_s", "time_scoring_s", "time_optimise_s", "tokens_trained")
    return {
        group: {key: _mean([t.get(key) for t in entries]) for key in keys}
        for group, entries in grouped.items()
    }


def kl_curves(results: dict[str, Any]) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(family, size, method) -> [(turn, mean KL over seeds)] on the first in-domain panel."""
    sums: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    for run in results["runs"]:
        curves = run.get("kl_by_turn") or {}
        if not curves:
            continue
        first = next(iter(curves.values()))
        per_turn = sums.setdefault((run["family"], run["size"], run["method"]), {})
        for row in first:
            per_turn.setdefault(int(row["turn"]), []).append(float(row["kl"]))
    return {
        key: [(turn, statistics.fmean(values)) for turn, values in sorted(turns.items())]
        for key, turns in sums.items()
    }


# Why a KL curve can dip below zero: each point averages log p_student - log p_teacher over
# the tokens the student drew, an unbiased estimate of the KL whose single terms may be negative.
KL_CAPTION = (
    "Each point: mean of log p_student - log p_teacher over the tokens the student sampled"
    " (temperature 1). This single-sample estimate of the KL is unbiased but noisy, and"
    " can be negative where the teacher likes the drawn tokens more than the student does."
)


def plot(results: dict[str, Any], folder: str | Path) -> list[Path]:
    """Write the figures (SR per method and panel; per-turn KL) into ``folder``; their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    rows = summarise(results)
    methods = _method_order(results)
    for family in dict.fromkeys(r["family"] for r in rows):
        family_rows = [r for r in rows if r["family"] == family]
        panels = list(dict.fromkeys(r["panel"] for r in family_rows))
        sizes = list(dict.fromkeys(r["size"] for r in family_rows))
        figure, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.6), squeeze=False)
        width = 0.8 / max(len(sizes), 1)
        for ax, panel in zip(axes[0], panels):
            for k, size in enumerate(sizes):
                means, errors = [], []
                for method in methods:
                    match = [
                        r
                        for r in family_rows
                        if r["panel"] == panel and r["size"] == size and r["method"] == method
                    ]
                    means.append(match[0]["sr"] if match else 0.0)
                    half = match[0]["sr_ci"] if match else math.nan
                    errors.append(0.0 if math.isnan(half) else half)
                positions = [i + (k - (len(sizes) - 1) / 2) * width for i in range(len(methods))]
                ax.bar(positions, means, width, yerr=errors, capsize=2, label=size)
            teacher = ((results["teachers"].get(family) or {}).get("panels") or {}).get(panel)
            if teacher is not None:  # the gap the students can close
                ax.axhline(
                    teacher["sr"], color="black", linestyle="--", linewidth=1, label="teacher"
                )
            ax.set_xticks(range(len(methods)))
            ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
            ax.set_title(panel, fontsize=9)
            ax.set_ylim(0, 100)
            ax.set_ylabel("success rate (%)")
            ax.legend(fontsize=7)
        written.append(_save(figure, folder / f"{family}_success.png"))
    curves = kl_curves(results)
    for family in dict.fromkeys(key[0] for key in curves):
        sizes = list(dict.fromkeys(key[1] for key in curves if key[0] == family))
        figure, axes = plt.subplots(
            1, len(sizes), figsize=(5 * len(sizes) + 1.5, 4.0), squeeze=False, layout="constrained"
        )
        for ax, size in zip(axes[0], sizes):
            for method in methods:
                points = curves.get((family, size, method))
                if points:
                    ax.plot(
                        [t + 1 for t, _ in points], [v for _, v in points], marker="o", label=method
                    )
            ax.axhline(0.0, color="grey", linewidth=0.6)
            ax.set_xlabel("turn")
            ax.set_ylabel("sampled KL(student || teacher) per token")
            ax.set_title(f"{family}, student {size}", fontsize=9)
        # One legend beside the panels, clear of the lines.
        handles, labels = axes[0][0].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside right upper", fontsize=7, frameon=False)
        figure.supxlabel(textwrap.fill(KL_CAPTION, 60 + 50 * len(sizes)), fontsize=7)
        written.append(_save(figure, folder / f"{family}_kl_by_turn.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    if figure.get_layout_engine() is None:  # constrained figures lay themselves out
        figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
