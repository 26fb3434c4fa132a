"""Tables, claims and plots of the Pitfall study, from its gathered ``results.json``.

Every cell is a mean over the preset's seeds with its 95% t interval
(``distill.study.report.ci95``); a difference between arms is a Welch 95%
interval (``diff_ci95``). A claim "A beats B" is *supported* when the whole
interval of A - B lies above 0, *refuted* when it lies below 0, and *not
decidable* when it holds 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distill.study.report import ci95, diff_ci95

__all__ = ["CLAIMS", "MENTOR_CLAIMS", "markdown", "plots", "verdict"]

#: (label, arm, baseline): "arm beats baseline" on held-out success, per teacher and size.
CLAIMS: tuple[tuple[str, str, str], ...] = (
    ("Guided-OPD > OPD (sampled-token)", "guided_opd", "opd_sampled"),
    ("Guided-OPD > OPD (full-vocabulary)", "guided_opd", "opd_full"),
    ("Guided-OPD > Guided-OPD, teacher turns masked", "guided_opd", "guided_masked"),
    ("Guided-OPD > SFT on teacher trajectories", "guided_opd", "sft"),
    ("Guided-OPD (cosine) > constant beta = 0.5", "guided_opd", "guided_constant"),
    ("masked arm > OPD (sampled): the state distribution alone helps", "guided_masked",
     "opd_sampled"),
)  # fmt: skip
MENTOR_CLAIMS: tuple[tuple[str, str, str, str], ...] = (
    ("MENTOR exact > sparse GRPO (held-out success)", "mentor_exact", "grpo_sparse", "final"),
    ("MENTOR f1 > sparse GRPO (held-out success)", "mentor_f1", "grpo_sparse", "final"),
    ("MENTOR exact learns faster than sparse GRPO (mean dev success over training)",
     "mentor_exact", "grpo_sparse", "auc"),
    ("MENTOR exact > shuffled reference (the reference's content matters)", "mentor_exact",
     "mentor_shuffled", "final"),
)  # fmt: skip
NAMES = {
    "opd_sampled": "OPD (sampled)",
    "opd_full": "OPD (full vocab)",
    "guided_opd": "Guided-OPD (cosine)",
    "guided_masked": "Guided-OPD, teacher turns masked",
    "guided_constant": "Guided-OPD, constant beta 0.5",
    "sft": "SFT on teacher trajectories",
    "grpo_sparse": "GRPO, sparse reward",
    "mentor_exact": "MENTOR exact",
    "mentor_f1": "MENTOR f1",
    "mentor_shuffled": "MENTOR exact, shuffled reference",
}


def verdict(mean: float, half: float) -> str:
    if math.isnan(mean) or math.isnan(half):
        return "not decidable"
    if mean - half > 0:
        return "supported"
    if mean + half < 0:
        return "refuted"
    return "not decidable"


def _units(results: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [u for u in results["units"].values() if u["kind"] == kind]


def _runs(results: dict[str, Any], teacher: str, capacity: str, arm: str) -> list[dict[str, Any]]:
    return sorted(
        (
            u
            for u in _units(results, "run")
            if (u["teacher"], u["capacity"], u["arm"]) == (teacher, capacity, arm)
        ),
        key=lambda u: u["seed"],
    )


def _pct(values: Sequence[float]) -> list[float]:
    return [100.0 * v for v in values]


def _cell(values: Sequence[float], digits: int = 1) -> str:
    if not values:
        return "-"
    mean, half = ci95(list(values))
    if math.isnan(half):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def _signed(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "-"
    if math.isnan(half):
        return f"{mean:+.1f}"
    return f"{mean:+.1f} ± {half:.1f}"


def _order(results: dict[str, Any], key: str) -> list[str]:
    return list(dict.fromkeys(u[key] for u in _units(results, "run")))


def _teacher_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| teacher | DART noise | held-out success (%) | P(expert move), on path | "
        "P(expert move), off path (pits) | P(expert move) on its own states (dev) | "
        "off-path fraction of its own states |",
        "|---|---|---|---|---|---|---|",
    ]
    for u in sorted(_units(results, "teacher"), key=lambda u: u["teacher"]):
        lines.append(
            f"| {u['teacher']} | {u['noise']:g} | {100 * u['test_success']:.1f} | "
            f"{u['acc_on_path']:.3f} | {u['acc_off_path']:.3f} | "
            f"{u['dev_visited']['teacher_acc']:.3f} | {u['dev_visited']['offpath']:.3f} |"
        )
    return lines


def _warm_table(results: dict[str, Any], sizes: dict[str, int]) -> list[str]:
    lines = [
        "| student | hidden units | SFT steps to the target (mean) | dev success at the start (%) |",
        "|---|---|---|---|",
    ]
    for capacity in _order(results, "capacity"):
        warm = [u for u in _units(results, "warm") if u["capacity"] == capacity and u["seed"] < 100]
        if not warm:
            continue
        steps = sum(u["warm_steps"] for u in warm) / len(warm)
        lines.append(
            f"| {capacity} | {sizes.get(capacity, '?')} | {steps:.0f} | "
            f"{_cell(_pct([u['warm_dev_success'] for u in warm]))} |"
        )
    return lines


def _success_table(results: dict[str, Any], teacher: str) -> list[str]:
    capacities = _order(results, "capacity")
    lines = [
        "| arm | " + " | ".join(f"{c}: success (%) [lr]" for c in capacities) + " |",
        "|---|" + "---|" * len(capacities),
    ]
    for arm in _order(results, "arm"):
        cells = []
        for c in capacities:
            runs = _runs(results, teacher, c, arm)
            lr = f" [{runs[0]['lr']:g}]" if runs else ""
            cells.append(_cell(_pct([r["test"]["success"] for r in runs])) + lr)
        lines.append(f"| {NAMES.get(arm, arm)} | " + " | ".join(cells) + " |")
    return lines


def _premise_table(results: dict[str, Any], teacher: str) -> list[str]:
    lines = [
        "| student | arm | off-path fraction of student states: start → end | teacher's "
        "P(expert move) on student states: start → end | reverse KL per turn (nats): start "
        "→ end | same on held-out contexts at the end: off-path / teacher P / KL |",
        "|---|---|---|---|---|---|",
    ]
    for c in _order(results, "capacity"):
        for arm in _order(results, "arm"):
            runs = _runs(results, teacher, c, arm)
            if not runs:
                continue

            def span(key: str, runs: list[dict[str, Any]] = runs) -> str:
                first = sum(r["curve"][0][key] for r in runs) / len(runs)
                last = sum(r["curve"][-1][key] for r in runs) / len(runs)
                return f"{first:.3f} → {last:.3f}"

            held = [
                sum(r["test"][k] for r in runs) / len(runs)
                for k in ("offpath", "teacher_acc", "reverse_kl")
            ]
            lines.append(
                f"| {c} | {NAMES.get(arm, arm)} | {span('offpath')} | {span('teacher_acc')} | "
                f"{span('reverse_kl')} | {held[0]:.3f} / {held[1]:.3f} / {held[2]:.3f} |"
            )
    return lines


def _success(results: dict[str, Any], t: str, c: str, arm: str) -> list[float]:
    return _pct([r["test"]["success"] for r in _runs(results, t, c, arm)])


def _claims_table(results: dict[str, Any]) -> list[str]:
    teachers = _order(results, "teacher")
    capacities = _order(results, "capacity")
    columns = [(t, c) for t in teachers for c in capacities]
    lines = [
        "| claim (held-out success, points) | "
        + " | ".join(f"{t}, {c}" for t, c in columns)
        + " |",
        "|---|" + "---|" * len(columns),
    ]
    for label, arm, base in CLAIMS:
        cells = []
        for t, c in columns:
            a, b = _success(results, t, c, arm), _success(results, t, c, base)
            if not a or not b:
                cells.append("-")
                continue
            mean, half = diff_ci95(a, b)
            cells.append(f"{_signed(mean, half)}: **{verdict(mean, half)}**")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if len(teachers) >= 2:
        t1, t2 = teachers[0], teachers[1]
        lines += ["", "| claim (points) | " + " | ".join(capacities) + " |",
                  "|---|" + "---|" * len(capacities)]  # fmt: skip
        cells = []
        for c in capacities:
            parts = [_success(results, t, c, arm) for t in (t1, t2)
                     for arm in ("guided_opd", "opd_sampled")]  # fmt: skip
            if not all(len(p) >= 2 for p in parts):
                cells.append("-")
                continue
            mean1, half1 = diff_ci95(parts[0], parts[1])
            mean2, half2 = diff_ci95(parts[2], parts[3])
            # Independent differences: half-widths combine in quadrature (normal approximation).
            mean, half = mean1 - mean2, math.hypot(half1, half2)
            cells.append(f"{_signed(mean, half)}: **{verdict(mean, half)}**")
        label = f"the Guided-OPD − OPD (sampled) gap is larger under {t1} than under {t2}"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _mentor_values(results: dict[str, Any], arm: str, measure: str) -> list[float]:
    runs = sorted((u for u in _units(results, "mentor_run") if u["arm"] == arm),
                  key=lambda u: u["seed"])  # fmt: skip
    if measure == "final":
        return _pct([r["test"]["success"] for r in runs])
    return _pct([sum(p["success"] for p in r["curve"]) / len(r["curve"]) for r in runs])


def _mentor_tables(results: dict[str, Any]) -> list[str]:
    arms = list(dict.fromkeys(u["arm"] for u in _units(results, "mentor_run")))
    if not arms:
        return []
    refs = results["units"].get("mentor-refs", {})
    warm = [u for u in _units(results, "mentor_warm") if u["seed"] < 100]
    lines = [
        f"Reference tool sets: the teacher's first successful episode per training context "
        f"({100 * refs.get('with_reference', float('nan')):.0f}% of the pool has one); "
        f"students start at {_cell(_pct([u['warm_dev_success'] for u in warm]))}% dev success; "
        f"{len(warm)} seeds per arm.",
        "",
        "| arm | held-out success (%) [lr] | mean dev success over training (%) |",
        "|---|---|---|",
    ]
    for arm in arms:
        runs = [u for u in _units(results, "mentor_run") if u["arm"] == arm]
        lines.append(
            f"| {NAMES.get(arm, arm)} | {_cell(_mentor_values(results, arm, 'final'))} "
            f"[{runs[0]['lr']:g}] | {_cell(_mentor_values(results, arm, 'auc'))} |"
        )
    lines += ["", "| claim (points) | difference | verdict |", "|---|---|---|"]
    for label, arm, base, measure in MENTOR_CLAIMS:
        if arm not in arms or base not in arms:
            continue
        mean, half = diff_ci95(
            _mentor_values(results, arm, measure), _mentor_values(results, base, measure)
        )
        lines.append(f"| {label} | {_signed(mean, half)} | **{verdict(mean, half)}** |")
    return lines


def markdown(results: dict[str, Any], sizes: dict[str, int]) -> str:
    """Every table of the study, in Markdown."""
    out = ["### Teachers", "", *_teacher_table(results), "", "### Warm-started students", ""]
    out += [*_warm_table(results, sizes), ""]
    for teacher in _order(results, "teacher"):
        out += [f"### Held-out success under {teacher} (mean ± 95% CI over seeds)", ""]
        out += [*_success_table(results, teacher), ""]
        out += [f"### The premise, measured during training under {teacher} (dev contexts)", ""]
        out += [*_premise_table(results, teacher), ""]
    out += ["### Claims (difference in held-out success, Welch 95% CI over seeds)", ""]
    out += [*_claims_table(results), ""]
    mentor = _mentor_tables(results)
    if mentor:
        out += ["### MENTOR on the tool-selection variant", "", *mentor, ""]
    if results.get("missing_units"):
        out += [f"**{results['missing_units']} units of the preset have not run yet.**", ""]
    return "\n".join(out)


# -- plots -----------------------------------------------------------------------------------

_CURVES = (
    ("success", "dev success (student alone)"),
    ("offpath", "off-path fraction of student states"),
    ("teacher_acc", "teacher P(expert move) on student states"),
    ("reverse_kl", "reverse KL per turn (nats)"),
)


def _mean_curve(runs: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    steps = [p["step"] for p in runs[0]["curve"]]
    values = [sum(r["curve"][i][key] for r in runs) / len(runs) for i in range(len(steps))]
    return steps, values


def plots(results: dict[str, Any], folder: str | Path) -> list[Path]:
    """One PNG per (teacher, student size) of the curves over training, one of the per-turn
    KL at the end, and one of MENTOR's dev success; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    teachers, capacities = _order(results, "teacher"), _order(results, "capacity")
    arms = _order(results, "arm")
    for t in teachers:
        for c in capacities:
            figure, axes = plt.subplots(1, 4, figsize=(17, 3.6))
            for arm in arms:
                runs = _runs(results, t, c, arm)
                if not runs:
                    continue
                for ax, (key, title) in zip(axes, _CURVES):
                    steps, values = _mean_curve(runs, key)
                    ax.plot(steps, values, label=NAMES.get(arm, arm))
                    ax.set_title(title, fontsize=9)
                    ax.set_xlabel("training step")
            teacher_unit = results["units"].get(f"teacher-{t}")
            if teacher_unit:
                axes[2].axhline(teacher_unit["dev_visited"]["teacher_acc"], color="k",
                                linestyle="--", label="on the teacher's own states")  # fmt: skip
            axes[2].legend(fontsize=7)
            figure.suptitle(f"Pitfall, teacher {t}, {c} student (mean over seeds)")
            figure.tight_layout()
            paths.append(_save(figure, folder / f"pitfall_{t}_{c}.png"))
            plt.close(figure)
    if teachers and capacities:
        figure, axes = plt.subplots(1, len(teachers), figsize=(6 * len(teachers), 3.6))
        axes = axes if hasattr(axes, "__len__") else [axes]
        for ax, t in zip(axes, teachers):
            for arm in arms:
                runs = _runs(results, t, capacities[0], arm)
                if not runs:
                    continue
                for when, style in ((0, ":"), (-1, "-")):
                    turns = len(runs[0]["curve"][when]["kl_per_turn"])
                    means = []
                    for k in range(turns):
                        vals = [r["curve"][when]["kl_per_turn"][k] for r in runs]
                        vals = [v for v in vals if not math.isnan(v)]
                        means.append(sum(vals) / len(vals) if vals else math.nan)
                    if when == 0 and arm != arms[0]:
                        continue  # every arm starts from the same students
                    label = "start (all arms)" if when == 0 else NAMES.get(arm, arm)
                    ax.plot(range(1, turns + 1), means, style, label=label)
            ax.set_title(f"reverse KL by turn, teacher {t}, {capacities[0]} student", fontsize=9)
            ax.set_xlabel("turn")
            ax.legend(fontsize=7)
        figure.tight_layout()
        paths.append(_save(figure, folder / "pitfall_kl_by_turn.png"))
        plt.close(figure)
    mentor = _units(results, "mentor_run")
    if mentor:
        figure, ax = plt.subplots(figsize=(6, 3.6))
        for arm in dict.fromkeys(u["arm"] for u in mentor):
            runs = [u for u in mentor if u["arm"] == arm]
            steps, values = _mean_curve(runs, "success")
            ax.plot(steps, values, label=NAMES.get(arm, arm))
        ax.set_title("tool-selection variant: dev success (mean over seeds)", fontsize=9)
        ax.set_xlabel("training step")
        ax.legend(fontsize=7)
        figure.tight_layout()
        paths.append(_save(figure, folder / "pitfall_mentor.png"))
        plt.close(figure)
    return paths


def _save(figure: Any, path: Path) -> Path:
    import io

    from envs.fileio import atomic_write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    atomic_write_bytes(path, buffer.getvalue())
    return path
