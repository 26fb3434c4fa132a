"""The embedded offline teacher: a `tiny` model trained by SFT on an env's expert trajectories.

``configs/teacher_sft.yaml`` is the recipe. A teacher is trained once per env and
env/prompt settings, under ``runs/teachers/<env id>-<digest>/``, and reused by every
config that says ``teacher: recipe`` (tools/distill.py) and by study presets whose
family says ``teacher: recipe`` (tools/study.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from distill.config import TrainConfig, load_config

__all__ = [
    "TEACHER_RECIPE",
    "TEACHERS_DIR",
    "ensure_recipe_teacher",
    "recipe_config",
    "recipe_teacher_name",
]

ROOT = Path(__file__).resolve().parents[1]
TEACHER_RECIPE = ROOT / "configs" / "teacher_sft.yaml"
TEACHERS_DIR = ROOT / "runs" / "teachers"


def recipe_config(
    env_id: str, *, env_kwargs: dict[str, Any], prompt: dict[str, Any], **overrides: Any
) -> TrainConfig:
    """The recipe's SFT run on ``env_id`` with those env and prompt settings, plus ``overrides``.

    The recipe trains to a target SR on the env's dev panel (``target_eval_sr``,
    ``eval_panel``). An env that ships no such panel (WebShop) gets no target:
    its teacher trains the recipe's ``total_steps`` and keeps the last weights.
    """
    config = load_config(
        TEACHER_RECIPE,
        {"env_id": env_id, "env_kwargs": env_kwargs, "prompt": prompt, **overrides},
    )
    if "eval_panel" not in overrides and not _has_panel(env_id, config.eval_panel):
        config = dataclasses.replace(config, eval_panel=None, target_eval_sr=None)
    return config


def _has_panel(env_id: str, name: str | None) -> bool:
    from envs.panels import panel_path

    return name is None or name.endswith(".json") or panel_path(env_id, name).is_file()


def recipe_teacher_name(config: TrainConfig) -> str:
    """The teacher's folder name: the env id, plus a digest of the env and prompt settings
    and of the recipe itself (a teacher trained on other levels, another prompt layout or
    by an older recipe is another teacher)."""
    settings = {
        "env_kwargs": config.env_kwargs,
        "prompt": config.prompt,
        "recipe": hashlib.sha256(TEACHER_RECIPE.read_bytes()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.env_id}-{digest}"


def ensure_recipe_teacher(config: TrainConfig, *, quiet: bool) -> str:
    """The ``final/`` folder of the embedded teacher for ``config``'s env, env kwargs and
    prompt; trained by SFT (resuming a stopped build) if it is missing."""
    from distill.trainer import train

    folder = TEACHERS_DIR / recipe_teacher_name(config)
    final = folder / "final"
    if (final / "config.json").exists():
        return str(final)
    teacher_config = recipe_config(
        config.env_id,
        env_kwargs=config.env_kwargs,
        prompt=config.prompt,
        run_dir=str(folder),
        device=config.device,
    )
    goal = (
        f"until it solves {teacher_config.target_eval_sr:g}% of panel {teacher_config.eval_panel}, "
        f"at most {teacher_config.total_steps} steps"
        if teacher_config.target_eval_sr is not None
        else f"{teacher_config.total_steps} steps"
    )
    print(
        f"training the embedded teacher for {config.env_id} "
        f"(SFT on expert trajectories, {goal}; runs once) ..."
    )
    summary = train(teacher_config, resume=True, progress=not quiet)
    final_eval = summary.get("final", {})
    print(f"teacher ready: {final}  (eval SR {final_eval.get('eval_sr', float('nan')):.1f}%)")
    return str(final)
