"""The embedded offline teacher: a `tiny` model trained by SFT on an env's expert trajectories.

``configs/teacher_sft.yaml`` is the recipe. A teacher is trained once per env and
env/prompt settings, under ``runs/teachers/<env id>-<digest>/``, and reused by every
config that says ``teacher: recipe`` (tools/distill.py) and by study presets whose
family says ``teacher: recipe`` (tools/study.py).
"""

from __future__ import annotations

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
    """The recipe's SFT run on ``env_id`` with those env and prompt settings, plus ``overrides``."""
    return load_config(
        TEACHER_RECIPE,
        {"env_id": env_id, "env_kwargs": env_kwargs, "prompt": prompt, **overrides},
    )


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
    print(
        f"training the embedded teacher for {config.env_id} (SFT on expert trajectories; runs once) ..."
    )
    teacher_config = recipe_config(
        config.env_id,
        env_kwargs=config.env_kwargs,
        prompt=config.prompt,
        run_dir=str(folder),
        device=config.device,
    )
    summary = train(teacher_config, resume=True, progress=not quiet)
    final_eval = summary.get("final", {})
    print(f"teacher ready: {final}  (eval SR {final_eval.get('eval_sr', float('nan')):.1f}%)")
    return str(final)
