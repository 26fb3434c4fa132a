"""Benchmark results as a text table, CSV, Markdown and a PNG plot.

Every function takes the rows ``tools/benchmark.py`` writes to its JSON report
(``env_id``, ``panel``, ``agent`` and a ``summary`` from
``envs.evaluation.summarise``). Files are written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import textwrap
from pathlib import Path
from typing import Any

from envs.fileio import atomic_write_bytes, atomic_write_text

# (header, summary key, digits): the table's columns after env, panel and agent.
# "wall s" is real elapsed time (batched episodes overlap); the rates are per second
# of it, except "env steps/s": time inside env.step alone, the environment's own speed.
COLUMNS: tuple[tuple[str, str, int], ...] = (
    ("episodes", "episodes", 0),
    ("SR %", "success_rate", 1),
    ("SR ±95%", "success_rate_ci95", 1),
    ("Score", "score", 1),
    ("turns", "mean_turns", 1),
    ("invalid %", "invalid_action_rate", 1),
    ("wall s", "wall_s", 1),
    ("ep/s", "episodes_per_s", 2),
    ("turns/s", "turns_per_s", 1),
    ("tok/s", "tokens_per_s", 0),
    ("env steps/s", "steps_per_s", 0),
)
_PERCENT = {"invalid_action_rate"}  # stored as a fraction, shown as a percentage


def _value(summary: dict[str, Any], key: str) -> float | None:
    value = summary.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return 100 * value if key in _PERCENT else value


def _cells(row: dict[str, Any]) -> list[str]:
    summary = row["summary"]
    cells = [row["env_id"], row["panel"], row["agent"]]
    for _, key, digits in COLUMNS:
        value = _value(summary, key)
        cells.append("-" if value is None else f"{value:.{digits}f}")
    return cells


def headers() -> list[str]:
    return ["env", "panel", "agent", *(header for header, _, _ in COLUMNS)]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The aligned text table the benchmark prints ("-" where a value is missing)."""
    names, lines = headers(), [_cells(row) for row in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(names)]

    def render(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join(
        [render(names), render(["-" * w for w in widths])] + [render(line) for line in lines]
    )


def format_markdown(rows: list[dict[str, Any]]) -> str:
    """The same table as GitHub Markdown."""
    names = headers()
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(_cells(row)) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[Any]]]:
    """(columns, one list of cells per row): env, panel, agent, then every summary key at
    full precision ("" where a row lacks it)."""
    keys = sorted({key for row in rows for key in row["summary"]})
    data = [
        [row["env_id"], row["panel"], row["agent"], *(row["summary"].get(k, "") for k in keys)]
        for row in rows
    ]
    return ["env", "panel", "agent", *keys], data


def format_csv(rows: list[dict[str, Any]]) -> str:
    """One line per row: env, panel, agent, then every summary key at full precision."""
    columns, data = summary_table(rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([columns, *data])
    return buffer.getvalue()


def write_tables(rows: list[dict[str, Any]], json_path: Path) -> list[Path]:
    """Write ``<stem>.csv`` and ``<stem>.md`` beside the JSON report; their paths."""
    return [
        atomic_write_text(json_path.with_suffix(".csv"), format_csv(rows)),
        atomic_write_text(json_path.with_suffix(".md"), format_markdown(rows)),
    ]


def _label(row: dict[str, Any], width: int = 18) -> str:
    """A tick label: env, panel and agent, each wrapped so long names do not collide."""
    parts = [row["env_id"], row["panel"], row["agent"]]
    return "\n".join(textwrap.fill(part, width, break_on_hyphens=False) for part in parts)


def write_plot(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Success rate and Score per row with their 95% intervals; None without matplotlib.

    A bar at 0 is marked by its value, so "nothing won" is visible; the legend
    sits above the axes, clear of 100% bars.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None

    def series(key: str) -> tuple[list[float], list[float]]:
        values = [_value(r["summary"], key) or 0.0 for r in rows]  # no episode: an empty bar
        errors = [_value(r["summary"], key + "_ci95") or 0.0 for r in rows]
        return values, errors

    positions = list(range(len(rows)))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows)), 4.8))
    width = 0.4
    for offset, key, label in ((-0.5, "success_rate", "Success rate %"), (0.5, "score", "Score")):
        values, errors = series(key)
        xs = [p + offset * width for p in positions]
        bars = ax.bar(xs, values, width, label=label, yerr=errors, capsize=3)
        colour = bars.patches[0].get_facecolor() if bars.patches else None
        for x, value in zip(xs, values):
            # Values above the bar (and at 0, where there is no bar to see).
            ax.annotate(
                f"{value:.0f}",
                (x, value),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                color=colour,
            )
    ax.set_xticks(positions, [_label(r) for r in rows], fontsize=7)
    ax.set_ylim(0, 112)
    ax.set_ylabel("percent (error bars: 95% interval)")
    ax.set_title("mentorgym benchmark", pad=28)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False, fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buffer.getvalue())
