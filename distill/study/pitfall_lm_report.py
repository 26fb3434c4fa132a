"""Tables and claims of the full-stack Pitfall confirmation, and its comparison with the MLP study.

Per arm: held-out success, mean over seeds with its 95% t interval; per claim,
Guided-OPD minus a baseline with Welch's 95% interval and a verdict
(:func:`distill.study.pitfall_report.verdict`). The comparison reads the MLP
study's ``results.json`` (its T1 teacher, small students) and says, claim by
claim, whether the two settings agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from distill.study.pitfall_report import verdict
from distill.study.report import ci95, diff_ci95

__all__ = ["CLAIMS", "markdown"]

NAMES = {
    "opd": "OPD (sampled-token)",
    "guided_opd": "Guided-OPD (cosine)",
    "guided_masked": "Guided-OPD, teacher turns masked",
    "sft": "SFT on teacher trajectories",
}
#: (label, arm, baseline, the MLP study's names of the two arms).
CLAIMS: tuple[tuple[str, str, str, tuple[str, str]], ...] = (
    ("Guided-OPD > OPD", "guided_opd", "opd", ("guided_opd", "opd_sampled")),
    ("Guided-OPD > masked arm", "guided_opd", "guided_masked", ("guided_opd", "guided_masked")),
    ("Guided-OPD > SFT", "guided_opd", "sft", ("guided_opd", "sft")),
)


def _success(results: dict[str, Any], arm: str) -> list[float]:
    return [
        u["test"]["success"]
        for key, u in sorted(results["units"].items())
        if key.startswith(f"{arm}-seed")
    ]


def _cell(values: list[float], digits: int = 1) -> str:
    if not values:
        return "-"
    mean, half = ci95(values)
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def _mean(units: list[dict[str, Any]], key: str, digits: int = 2) -> str:
    values = [u["test"][key] for u in units if not math.isnan(u["test"].get(key, math.nan))]
    return _cell(values, digits) if values else "-"


def _signed(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:+.1f}" if math.isnan(half) else f"{mean:+.1f} ± {half:.1f}"


def _model_row(label: str, unit: dict[str, Any]) -> str:
    test = unit["test"]

    def fraction(key: str) -> str:
        value = test.get(key, math.nan)
        return "-" if value is None or math.isnan(value) else f"{value:.2f}"

    return (
        f"| {label} | {test['success']:.1f} | {test['score']:.1f} | {fraction('acc_on_path')} "
        f"({test['states_on_path']}) | {fraction('acc_off_path')} ({test['states_off_path']}) | "
        f"{fraction('offpath')} | {fraction('invalid_fraction')} |"
    )


def _mlp(path: str | None) -> dict[str, list[float]] | None:
    """The MLP study's held-out success (percent) per arm under T1, small students."""
    if not path or not Path(path).is_file():
        return None
    units = json.loads(Path(path).read_text()).get("units", {}).values()
    found: dict[str, list[float]] = {}
    for u in units:
        if u.get("kind") == "run" and u.get("teacher") == "T1" and u.get("capacity") == "small":
            found.setdefault(u["arm"], []).append(100.0 * u["test"]["success"])
    return found or None


def markdown(results: dict[str, Any], preset: Any) -> str:
    """The confirmation's tables: models, arms, claims, and the comparison with the MLP study."""
    units = results["units"]
    lines = ["#### The teacher and the initial student", ""]
    lines += [
        "| model | held-out success (%) | score (%) | P(expert move), on path (states) | "
        "P(expert move), off path (states) | off-path fraction | invalid-move fraction |",
        "|---|---|---|---|---|---|---|",
    ]
    if "teacher" in units:
        student = preset.teacher.get("student", "?")
        lines.append(_model_row(f"T1 (`{student}`, SFT on clean expert data)", units["teacher"]))
    if "warm" in units:
        warm = units["warm"]
        label = (
            f"initial student (`{preset.warm.get('student', '?')}`, SFT step {warm['step']}, "
            f"dev {warm['dev_success']:.1f}%)"
        )
        lines.append(_model_row(label, warm))
    lines += [
        "",
        "P(expert move) is the fraction of the model's own sampled moves that were the oracle's, "
        f"over the states it visited in the {preset.eval['episodes']} held-out episodes "
        f"(sampling at temperature {preset.temperature:g}).",
    ]
    if "warm" in units:
        curve = ", ".join(f"{s}: {sr:.1f}" for s, sr, _ in units["warm"]["curve"])
        lines += ["", f"Warm start, dev success (%) by SFT step: {curve}."]
    lines += ["", "#### Held-out success of each arm (mean ± 95% CI over seeds)", ""]
    lines += [
        "| arm | seeds | success (%) | score (%) | P(expert move) on path | "
        "P(expert move) off path | off-path fraction | training min per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for arm in preset.arms:
        runs = [u for k, u in sorted(units.items()) if k.startswith(f"{arm}-seed")]
        if not runs:
            lines.append(f"| {NAMES[arm]} | 0 | - | - | - | - | - | - |")
            continue
        minutes = sum(u["wall_s"] for u in runs) / len(runs) / 60
        lines.append(
            f"| {NAMES[arm]} | {len(runs)} | {_cell(_success(results, arm))} | "
            f"{_mean(runs, 'score', 1)} | {_mean(runs, 'acc_on_path')} | "
            f"{_mean(runs, 'acc_off_path')} | {_mean(runs, 'offpath')} | {minutes:.1f} |"
        )
    lines += ["", "#### Claims (difference in held-out success, Welch 95% CI over seeds)", ""]
    mlp = _mlp(preset.compare)
    header = "| claim (points) | language models, T1 | MLP study, T1, small students |"
    lines += [header, "|---|---|---|"] if mlp else ["| claim (points) | T1 |", "|---|---|"]
    verdicts: list[tuple[str, str, str]] = []
    for label, arm, base, (mlp_arm, mlp_base) in CLAIMS:
        if arm not in preset.arms or base not in preset.arms:
            continue
        mean, half = diff_ci95(_success(results, arm), _success(results, base))
        lm = f"{_signed(mean, half)}: **{verdict(mean, half)}**"
        row = f"| {label} | {lm} |"
        if mlp:
            other_mean, other_half = diff_ci95(mlp.get(mlp_arm, []), mlp.get(mlp_base, []))
            other = f"{_signed(other_mean, other_half)}: **{verdict(other_mean, other_half)}**"
            row += f" {other} |"
            verdicts.append((label, verdict(mean, half), verdict(other_mean, other_half)))
        lines.append(row)
    if verdicts:
        differ = [v for v in verdicts if v[1] != v[2]]
        lines.append("")
        if differ:
            lines.append(
                "**The two settings disagree** on: "
                + "; ".join(
                    f"{label} ({lm} here, {other} with MLPs)" for label, lm, other in differ
                )
                + "."
            )
        else:
            lines.append("The two settings agree on every claim's verdict.")
    missing = results.get("missing_units") or []
    if missing:
        lines += ["", f"Not run (yet): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"
