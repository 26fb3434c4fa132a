"""The embedded offline teacher: a `tiny` model trained by SFT on an env's expert trajectories.

``configs/teacher_sft.yaml`` is the recipe. A teacher is trained once per env and
env/prompt settings and reused by every run whose config says ``teacher: recipe``
(and by study presets whose family says so). Teachers live in a cache outside the
repository: ``$MENTORGYM_CACHE/teachers/<env id>-<digest>/``, where
``MENTORGYM_CACHE`` defaults to ``$XDG_CACHE_HOME/mentorgym`` (``~/.cache/mentorgym``).
Before building one, the run says what it builds, where, and roughly for how long.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from distill.config import TrainConfig, load_config

__all__ = [
    "BUILD_TIME_2_CPUS",
    "TEACHER_RECIPE",
    "cache_dir",
    "ensure_recipe_teacher",
    "recipe_config",
    "recipe_teacher_name",
    "teachers_dir",
]

ROOT = Path(__file__).resolve().parents[1]
TEACHER_RECIPE = ROOT / "configs" / "teacher_sft.yaml"
#: What a whole build takes on a 2-core CPU (demonstrations, training, evaluations), per env,
#: as announced before it starts. ToolMath: measured alone, target reached at step 4,500.
#: ALFWorld: its parts measured (16,000 demonstrations in 45 min, 0.35 to 1.1 s a step,
#: about 3 min an evaluation of dev-v1) and added up to the 6,000-step cap, the target
#: being out of a tiny model's reach there. Other envs: the progress bars estimate it.
BUILD_TIME_2_CPUS = {
    "ToolMath-v0": "about 28 min (measured)",
    "ALFWorld-v0": "2 to 3.5 hours (estimated from its measured parts)",
}


def cache_dir() -> Path:
    """Where mentorgym keeps what it builds once: ``$MENTORGYM_CACHE``, else
    ``$XDG_CACHE_HOME/mentorgym``, else ``~/.cache/mentorgym``."""
    if os.environ.get("MENTORGYM_CACHE"):
        return Path(os.environ["MENTORGYM_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mentorgym"


def teachers_dir() -> Path:
    """The folder holding one subfolder per embedded teacher built."""
    return cache_dir() / "teachers"


def recipe_config(
    env_id: str, *, env_kwargs: dict[str, Any], prompt: dict[str, Any], **overrides: Any
) -> TrainConfig:
    """The recipe's SFT run on ``env_id`` with those env and prompt settings, plus ``overrides``.

    The recipe trains to a target SR on the env's dev panel (``target_eval_sr``,
    ``eval_panel``). An env that ships no such panel (WebShop) gets no target:
    its teacher trains the recipe's ``total_steps`` and keeps the last weights.
    """
    values = {"env_id": env_id, "env_kwargs": env_kwargs, "prompt": prompt, **overrides}
    if "eval_panel" not in overrides and not _has_panel(env_id, "dev-v1"):
        values.update(eval_panel=None, target_eval_sr=None)
        if not _has_panel(env_id, None):  # an env without panels: no evaluations
            values.update(eval_episodes=0)
    return load_config(TEACHER_RECIPE, values)


def _has_panel(env_id: str, name: str | None) -> bool:
    from envs.panels import PanelNotFound, load_panel

    try:
        load_panel(env_id, name)
    except PanelNotFound:
        return False
    return True


def recipe_teacher_name(config: TrainConfig) -> str:
    """The teacher's folder name: the env id, plus a digest of the env and prompt settings
    (the env family's defaults included) and of the recipe itself (a teacher trained on
    other levels, another prompt layout or by an older recipe is another teacher)."""
    settings = {
        "env_kwargs": config.env_settings(),
        "prompt": config.prompt_settings(),
        "recipe": hashlib.sha256(TEACHER_RECIPE.read_bytes()).hexdigest(),
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.env_id}-{digest}"


def ensure_recipe_teacher(config: TrainConfig, *, quiet: bool) -> str:
    """The ``final/`` folder of the embedded teacher for ``config``'s env, env kwargs and
    prompt; trained by SFT (resuming a stopped build) if it is missing."""
    from distill.checkpoint import latest_checkpoint
    from distill.trainer import train

    folder = teachers_dir() / recipe_teacher_name(config)
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
        f"until it solves {teacher_config.target_eval_sr:g}% of panel {teacher_config.eval_panel}"
        f", at most {teacher_config.total_steps:,} steps"
        if teacher_config.target_eval_sr is not None
        else f"{teacher_config.total_steps:,} steps"
    )
    known = BUILD_TIME_2_CPUS.get(config.env_id)
    duration = (
        f"{known} on a 2-core CPU"
        if known
        else "not measured for this env: the progress bars estimate it"
    )
    resumed = latest_checkpoint(folder) is not None
    print(
        f"{'resuming' if resumed else 'building'} the embedded teacher for {config.env_id} in "
        f"{folder} (SFT on {teacher_config.demo_episodes:,} expert demonstrations {goal}; "
        f"{duration}; built once, then reused; set MENTORGYM_CACHE to keep teachers "
        "elsewhere)",
        flush=True,
    )
    summary = train(teacher_config, resume=resumed, progress=not quiet)
    final_eval = summary.get("final", {})
    print(f"teacher ready: {final}  (eval SR {final_eval.get('eval_sr', float('nan')):.1f}%)")
    return str(final)
