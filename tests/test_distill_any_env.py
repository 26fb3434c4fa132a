"""Every method's shipped config runs on every registered env id with `env_id` set alone.

The overrides below only shrink the run (models, steps, episodes, tokens); none of them
says anything about the env, so each env's own settings come from its family's
defaults (distill/env_defaults.py), as they do for `tools/distill.py --set env_id=X`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.config import CONFIG_DIR, load_config
from distill.trainer import train
from tests.conftest import entry_params

METHODS = ["sft", "opd", "guided_opd", "tcod", "grpo", "mentor"]
SMALL = {
    "student": "micro",
    "total_steps": 2,
    "rollouts_per_step": 2,
    "num_envs": 2,
    "env_mode": "sync",
    "max_new_tokens": 4,
    "max_turns": 2,
    "eval_every": 2,
    "eval_episodes": 1,
    "checkpoint_every": 2,
    "tensorboard": False,
}
PER_METHOD = {
    "sft": {"demo_episodes": 2, "successful_only": False},  # 2 turns win few episodes
    "grpo": {"group_size": 2},
    "mentor": {"group_size": 2, "teacher": "tiny"},
    "opd": {"teacher": "tiny"},
    "guided_opd": {"teacher": "tiny"},
    "tcod": {"teacher": "tiny"},
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("env_id", entry_params())
def test_a_shipped_config_runs_on_every_registered_env(
    env_id: str, method: str, tmp_path: Path
) -> None:
    overrides = {**SMALL, **PER_METHOD[method], "env_id": env_id, "run_dir": str(tmp_path)}
    config = load_config(CONFIG_DIR / f"{method}.yaml", overrides)
    summary = train(config, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows if "loss" in row] == [1, 2]
    assert summary["final"]["eval_episodes"] == 1
    assert (tmp_path / "final" / "config.json").exists()


def test_an_env_without_declared_defaults_caps_turns_at_its_registration() -> None:
    import gymnasium as gym

    from distill.env_defaults import env_defaults, register_env_defaults

    gym.register(id="CappedAt7-v0", entry_point="envs.webshop.env:WebShopEnv", max_episode_steps=7)
    try:
        assert env_defaults("CappedAt7-v0").max_turns == 7
        plain = load_config(None, {"method": "sft", "env_id": "CappedAt7-v0", "eval_episodes": 0})
        assert plain.turn_cap() == 7 and plain.prompt_settings() == {}
        register_env_defaults("CappedAt7-v0", max_turns=3, prompt={"history_k": 1})
        declared = load_config(
            None, {"method": "sft", "env_id": "CappedAt7-v0", "eval_episodes": 0}
        )
        assert declared.turn_cap() == 3 and declared.prompt_settings() == {"history_k": 1}
    finally:
        gym.registry.pop("CappedAt7-v0", None)
        from distill import env_defaults as module

        module._DEFAULTS.pop("CappedAt7-v0", None)


def test_a_configs_own_settings_win_over_the_family_defaults() -> None:
    config = load_config(
        CONFIG_DIR / "opd.yaml",
        {"teacher": "tiny", "env_kwargs": {"levels": [5], "train_tasks": None}},
    )
    assert config.env_settings() == {"levels": [5]}  # null removes a default
    assert config.prompt_settings() == {"tool_listing": "compact"}
    assert config.turn_cap() == 6
    other = load_config(CONFIG_DIR / "opd.yaml", {"teacher": "tiny", "env_id": "WebShop-v0"})
    assert other.env_settings() == {} and other.prompt_settings() == {}
    assert other.turn_cap() == 15
