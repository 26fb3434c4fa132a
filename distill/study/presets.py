"""Study presets: which teachers, students, methods, seeds and panels a study runs.

A preset is a YAML file (``configs/study/<name>.yaml``)::

    name: cpu
    seeds: [0, 1, 2]
    families:                      # one teacher per family
      tool:
        env_id: ToolMath-v0
        env_kwargs: {levels: [2, 3, 4]}
        prompt: {tool_listing: compact}
        teacher: {total_steps: 600}          # overrides of configs/teacher_sft.yaml, or
                                             # `recipe`: the embedded teacher (distill.recipe)
        warm_start: {total_steps: 1500}      # optional: SFT every student size on expert
                                             # trajectories first (configs/teacher_sft.yaml
                                             # with these overrides); all methods and seeds
                                             # start from that one initial student
        students: [micro, mini]              # sizes from agents.tiny.SIZES
        methods: [sft, opd, guided_opd, tcod_f2b, grpo, mentor_exact, mentor_f1]
        train: {total_steps: 30, rollouts_per_step: 8}   # every method
        method_train: {sft: {rollouts_per_step: 24}}     # one method's overrides
        kl_episodes: 20                      # student episodes scored for the per-turn KL
        games: {train: 100, valid_seen: 10}  # ALFWorld only: generate the family's games first
                                             # (tools/generate_alfworld.py; also dev,
                                             # valid_unseen, seed, jobs); every run and
                                             # panel plays them
        eval:
          - {env_id: ToolMath-v0, panel: test-v1, env_kwargs: {levels: [2, 3, 4]},
             episodes: 60, domain: in}
          - {env_id: FunctionCall-v0, panel: test-v1, episodes: 40, domain: out}

Method names are the study's variants of the distillation methods
(:data:`METHOD_VARIANTS`): ``tcod_f2b`` is TCOD front-to-back,
``mentor_exact`` / ``mentor_f1`` are MENTOR with those tool-match variants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "METHOD_VARIANTS",
    "PRESET_DIR",
    "EvalSpec",
    "Family",
    "Preset",
    "load_preset",
]

PRESET_DIR = Path(__file__).resolve().parents[2] / "configs" / "study"

#: Study method name -> the distillation config fields that make it.
METHOD_VARIANTS: dict[str, dict[str, Any]] = {
    "sft": {"method": "sft", "demonstrator": "teacher"},
    "opd": {"method": "opd"},
    "guided_opd": {"method": "guided_opd", "schedule": "cosine"},
    "tcod_f2b": {"method": "tcod", "variant": "f2b"},
    "grpo": {"method": "grpo"},
    "mentor_exact": {"method": "mentor", "match": "exact"},
    "mentor_f1": {"method": "mentor", "match": "f1"},
}


@dataclass(frozen=True)
class EvalSpec:
    """One evaluation panel of a family's students (``domain``: ``in`` or ``out``)."""

    env_id: str
    panel: str
    episodes: int | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    domain: str = "in"
    agent: dict[str, Any] = field(default_factory=dict)  # HFAgent options, e.g. {mode: rank}

    @property
    def label(self) -> str:
        return f"{self.env_id} {self.panel}"


@dataclass(frozen=True)
class Family:
    """A teacher, the students distilled from it, and where they are evaluated."""

    name: str
    env_id: str
    students: tuple[str, ...]
    methods: tuple[str, ...]
    eval: tuple[EvalSpec, ...]
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    teacher: dict[str, Any] | str = field(default_factory=dict)  # overrides, or "recipe"
    warm_start: dict[str, Any] | None = None
    train: dict[str, Any] = field(default_factory=dict)
    method_train: dict[str, dict[str, Any]] = field(default_factory=dict)
    kl_episodes: int = 20
    games: dict[str, int] | None = None  # ALFWorld games to generate: per-split counts, seed, jobs

    def in_domain(self) -> list[EvalSpec]:
        return [spec for spec in self.eval if spec.domain == "in"]


@dataclass(frozen=True)
class Preset:
    """A whole study: families and seeds."""

    name: str
    seeds: tuple[int, ...]
    families: tuple[Family, ...]
    description: str = ""
    source: str = ""

    def cells(self) -> list[tuple[Family, str, str, int]]:
        """Every (family, student size, method, seed) the study trains, in run order."""
        return [
            (family, size, method, seed)
            for family in self.families
            for size in family.students
            for seed in self.seeds
            for method in family.methods
        ]


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be a mapping, not {type(value).__name__}")
    return dict(value)


def _eval_spec(data: Any, where: str) -> EvalSpec:
    data = _mapping(data, where)
    known = {"env_id", "panel", "episodes", "env_kwargs", "domain", "agent"}
    unknown = sorted(set(data) - known)
    if unknown or "env_id" not in data or "panel" not in data:
        raise ValueError(f"{where}: needs env_id and panel, may have {sorted(known)}; got {data}")
    if data.get("domain", "in") not in ("in", "out"):
        raise ValueError(f"{where}: domain must be 'in' or 'out'")
    return EvalSpec(
        env_id=str(data["env_id"]),
        panel=str(data["panel"]),
        episodes=int(data["episodes"]) if data.get("episodes") is not None else None,
        env_kwargs=_mapping(data.get("env_kwargs"), f"{where}.env_kwargs"),
        domain=str(data.get("domain", "in")),
        agent=_mapping(data.get("agent"), f"{where}.agent"),
    )


def _family(name: str, data: Any, where: str) -> Family:
    from agents.tiny import SIZES

    data = _mapping(data, where)
    known = {
        "env_id", "env_kwargs", "prompt", "teacher", "students", "methods", "train",
        "method_train", "kl_episodes", "eval", "warm_start", "games",
    }  # fmt: skip
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    for key in ("env_id", "students", "methods", "eval"):
        if not data.get(key):
            raise ValueError(f"{where}: {key} is required")
    sizes = SIZES
    students = tuple(str(s) for s in data["students"])
    for size in students:
        if size not in sizes:
            raise ValueError(f"{where}: unknown student size {size!r}; choose from {list(sizes)}")
    methods = tuple(str(m) for m in data["methods"])
    for method in methods:
        if method not in METHOD_VARIANTS:
            raise ValueError(
                f"{where}: unknown method {method!r}; choose from {sorted(METHOD_VARIANTS)}"
            )
    method_train = _mapping(data.get("method_train"), f"{where}.method_train")
    for method in method_train:
        if method not in methods:
            raise ValueError(f"{where}.method_train: {method!r} is not one of the methods")
    teacher = data.get("teacher")
    if teacher != "recipe":
        teacher = _mapping(teacher, f"{where}.teacher (overrides of the recipe, or `recipe`)")
    warm_start = data.get("warm_start")
    if warm_start is not None:
        warm_start = _mapping(warm_start, f"{where}.warm_start")
    games = _games(data.get("games"), str(data["env_id"]), f"{where}.games")
    if games is not None and teacher == "recipe":
        raise ValueError(
            f"{where}: a family with games trains its own teacher on them (teacher: {{...}}), "
            "not the embedded recipe's"
        )
    evals = data["eval"]
    if not isinstance(evals, list):
        raise ValueError(f"{where}.eval must be a list of panels")
    return Family(
        name=name,
        env_id=str(data["env_id"]),
        students=students,
        methods=methods,
        eval=tuple(_eval_spec(e, f"{where}.eval[{i}]") for i, e in enumerate(evals)),
        env_kwargs=_mapping(data.get("env_kwargs"), f"{where}.env_kwargs"),
        prompt=_mapping(data.get("prompt"), f"{where}.prompt"),
        teacher=teacher,
        warm_start=warm_start,
        train=_mapping(data.get("train"), f"{where}.train"),
        method_train={m: _mapping(v, f"{where}.method_train.{m}") for m, v in method_train.items()},
        kl_episodes=int(data.get("kl_episodes", 20)),
        games=games,
    )


GAME_KEYS = ("train", "dev", "valid_seen", "valid_unseen", "seed", "jobs")


def _games(value: Any, env_id: str, where: str) -> dict[str, int] | None:
    """A family's ``games:``: counts per task type and split, the seed and worker processes."""
    if value is None:
        return None
    games = _mapping(value, where)
    if env_id != "ALFWorld-v0":
        raise ValueError(f"{where}: only ALFWorld-v0 families generate games, not {env_id}")
    unknown = sorted(set(games) - set(GAME_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {list(GAME_KEYS)}")
    if not all(isinstance(v, int) and v >= 0 for v in games.values()):
        raise ValueError(f"{where}: counts, seed and jobs are non-negative integers; got {games}")
    if not games.get("train"):
        raise ValueError(f"{where}: train (games per task type) is required")
    return games


def load_preset(name_or_path: str | Path) -> Preset:
    """A preset by name (``configs/study/<name>.yaml``) or from a YAML path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PRESET_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no study preset {name_or_path!r} (presets: {known})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a preset is a mapping")
    families = _mapping(data.get("families"), f"{path}: families")
    if not families:
        raise ValueError(f"{path}: no families")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not all(isinstance(s, int) for s in seeds) or not seeds:
        raise ValueError(f"{path}: seeds must be a non-empty list of integers")
    return Preset(
        name=str(data.get("name", path.stem)),
        seeds=tuple(seeds),
        families=tuple(_family(n, f, f"{path}: families.{n}") for n, f in families.items()),
        description=str(data.get("description", "")),
        source=str(path),
    )
