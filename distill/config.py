"""Run configurations: the fields every method shares, checked when a config is built.

Each method's own config class (``GuidedOPDConfig`` ...) lives in the method's
file, ``distill/methods/<method>.py``, and extends ``TrainConfig``; every field
is documented once, in its dataclass.

Defaults follow the papers (docs/algorithms.md) where they name a value;
those marked *(our default)* are choices the papers leave open. A config
checks every value when it is built (types, ranges, choices, the env id, the
panel, the device, the models) and a mistake is one :class:`ConfigError`
line naming the field, what was given and what is allowed. YAML files in
``configs/`` set any subset of these fields; ``tools/distill.py
--help-fields`` prints them with their descriptions and defaults.

Env-specific settings are not part of a method config: each env family's
defaults (``distill.env_defaults``) sit under the config's ``env_kwargs``
and ``prompt``, so ``env_id`` alone selects a sensible run on any registered id.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from distill.env_defaults import env_defaults, merged

__all__ = [
    "ConfigError",
    "TrainConfig",
    "config_path",
    "describe_fields",
    "bfloat16_problem",
    "device_problem",
    "load_config",
]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"
#: How a student may act in evaluations (agents.hf.HFAgent's modes).
EVAL_MODES = ("generate", "rank")
#: Models named by these words are built by the run itself (distill/recipe.py).
RECIPE_TEACHER = "recipe"
RECIPE_STUDENT = "recipe-teacher"


class ConfigError(ValueError):
    """A config value that cannot run; the message names the field and what is allowed."""


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    factory: Any = dataclasses.MISSING,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    allowed: str | None = None,
) -> Any:
    """A config field with its one-line description and the values it allows (``allowed``
    says them in words for the error message when the bare bounds would not)."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "above": above}
    metadata.update(maximum=maximum, allowed=allowed)
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """What every method shares."""

    method: str = setting("", "the algorithm; set by the config's class (sft, opd, ...)")
    env_id: str = setting("ToolMath-v0", "any registered env id (--import registers your own)")
    env_kwargs: dict[str, Any] = setting(
        factory=dict, help="gym.make keyword arguments, over the env family's defaults"
    )
    prompt: dict[str, Any] = setting(
        factory=dict,
        help="agents.prompts.PromptConfig fields for both agents, over the env family's defaults",
    )
    student: str = setting(
        "tiny",
        "the student: a size (micro, mini, tiny, small, base), a model folder, hf:<hub name>, "
        "or recipe-teacher (the embedded teacher, trained further)",
    )
    teacher: str | None = setting(
        None,
        "the teacher: a size, a model folder, hf:<hub name>, openai:<base-url>#<model> (served), "
        "or recipe (the embedded offline teacher); null where the method needs none",
    )
    teacher_options: dict[str, Any] = setting(
        factory=dict,
        help="extra options for the teacher agent, e.g. {concurrency: 16, timeout: 120} served",
    )
    tokenizer: str | None = setting(
        None, "tokenizer folder for a student built from a size (default: the teacher's folder's)"
    )
    run_dir: str = setting("runs/default", "where the run writes (checkpoints, metrics, final/)")
    seed: int = setting(0, "seeds sampling, task draws and model initialisation", minimum=0)
    total_steps: int = setting(250, "optimiser steps (Guided-OPD: 250)", minimum=1)
    rollouts_per_step: int = setting(
        64, "episodes collected per optimiser step (the papers' batch: 64)", minimum=1
    )
    num_envs: int = setting(8, "envs stepped side by side while collecting", minimum=1)
    env_mode: str = setting(
        "async",
        "async: a process per env (JVMs, TextWorld); sync: in this process",
        choices=("async", "sync"),
    )
    # (our default) each such episode ends early, is kept untrained and is counted in the
    # metrics' env_errors; a crashed or hung worker is replaced
    max_env_errors: int = setting(
        10,
        "episodes in a row an env failure may end before the run stops",
        minimum=0,
    )
    max_turns: int | None = setting(
        None, "turn cap of an episode; null: the env family's (distill.env_defaults)", minimum=1
    )
    learning_rate: float = setting(1e-6, "AdamW learning rate (both papers: 1e-6)", above=0)
    weight_decay: float = setting(0.0, "AdamW weight decay", minimum=0)
    adam_betas: tuple[float, float] = setting((0.9, 0.999), "AdamW betas, each in [0, 1)")
    max_grad_norm: float = setting(1.0, "gradient clipping norm", above=0)
    lr_schedule: str = setting(
        "constant",
        "after warmup: constant, cosine or linear",
        choices=("constant", "cosine", "linear"),
    )
    warmup_steps: int = setting(0, "linear warmup steps", minimum=0)
    micro_batch_size: int = setting(
        16, "turns per forward/backward; gradients accumulate over a step", minimum=1
    )
    dtype: str = setting(
        "float32",
        "float32, or bfloat16: forward and backward autocast to bfloat16, weights and AdamW "
        "state stay float32 (fp32 master weights)",
        choices=("float32", "bfloat16"),
    )
    device: str = setting("cpu", "cpu, cuda, cuda:N or mps")
    parallelism: str = setting(
        "ddp",
        "under torchrun: ddp (each rank holds the whole student and its AdamW state) or fsdp "
        "(FSDP2: parameters, gradients and AdamW state sharded per decoder layer; "
        "docs/scaling.md)",
        choices=("ddp", "fsdp"),
    )
    lora_rank: int = setting(
        0, "0: train every weight; r > 0: train LoRA adapters of rank r (needs peft)", minimum=0
    )
    lora_alpha: float = setting(16.0, "LoRA scale numerator (adapter scale: alpha / rank)", above=0)
    activation_checkpointing: bool = setting(
        False,
        "recompute each decoder layer's activations in the backward (less memory, ~1/3 more "
        "compute per step; distill.memory)",
    )
    train_temperature: float = setting(1.0, "sampling temperature of training rollouts", above=0)
    eval_temperature: float = setting(0.4, "sampling temperature of evaluations", minimum=0)
    eval_mode: str = setting(
        "generate",
        "how the student acts in evaluations: generate, or rank the admissible actions",
        choices=EVAL_MODES,
    )
    max_new_tokens: int = setting(512, "tokens per completion at most (the papers: 512)", minimum=1)
    eval_every: int = setting(50, "steps between evaluations (0: only at the end)", minimum=0)
    eval_panel: str | None = setting(
        None, "panel name or JSON path to evaluate on; null: the env's default panel"
    )
    eval_episodes: int | None = setting(
        None, "play the panel's first N tasks (null: all; 0: never evaluate)", minimum=0
    )
    target_eval_sr: float | None = setting(
        None,
        "stop at the first evaluation with this SR (percent); total_steps is then a cap",
        above=0,
        maximum=100,
        allowed="a success rate in percent, in (0, 100]",
    )
    checkpoint_every: int = setting(25, "steps between checkpoints", minimum=1)
    keep_checkpoints: int = setting(2, "checkpoints kept (the newest)", minimum=1)
    train_split: str = setting("train", "the env split training tasks come from")
    tensorboard: bool = setting(True, "also log to TensorBoard (run_dir/tensorboard)")
    track: str = setting(
        "none",
        "also log to an experiment tracker: none, or wandb (offline unless WANDB_MODE says "
        "otherwise; run_dir/wandb; needs the tracking extra)",
        choices=("none", "wandb"),  # envs.tracking.TRACKERS
    )
    save_trajectories: bool = setting(
        True, "write every training rollout's turns, with token log-probs, to trajectories.jsonl"
    )
    aggregation: str = setting(
        "token-mean",
        "loss over tokens: token-mean, or seq-mean-token-mean",
        choices=("token-mean", "seq-mean-token-mean"),
    )
    clip: float = setting(0.2, "PPO-clip epsilon", above=0)

    # -- checks ----------------------------------------------------------------------

    def __post_init__(self) -> None:
        _check_values(self)
        self.check()

    def check(self) -> None:
        """Cross-field and world checks (env, panel, device, models); methods extend this."""
        from envs.registration import check_env_id

        try:
            check_env_id(self.env_id)
        except ValueError as error:
            raise ConfigError(f"env_id: {error}") from None
        self._check_env_kwargs()
        if not all(0 <= beta < 1 for beta in self.adam_betas):
            raise ConfigError(f"adam_betas: each must be in [0, 1), not {list(self.adam_betas)}")
        self._check_device()
        self._check_models()
        if self.track != "none":
            from envs.tracking import TrackingError, check_tracker

            try:
                check_tracker(self.track)
            except TrackingError as error:
                raise ConfigError(f"track: {error}") from None
        run_dir = Path(self.run_dir)
        if run_dir.exists() and not run_dir.is_dir():
            raise ConfigError(f"run_dir: {self.run_dir} is a file; give a folder")
        self.prompt_config()
        if self.target_eval_sr is not None and (not self.eval_every or self.eval_episodes == 0):
            raise ConfigError(
                "target_eval_sr: needs evaluations; set eval_every > 0 and eval_episodes != 0"
            )
        if self.eval_episodes != 0:
            self._check_panel()

    def _check_env_kwargs(self) -> None:
        from envs.registration import accepted_kwargs, env_class

        allowed = accepted_kwargs(self.env_id)
        given = {**self.env_settings(), "split": self.train_split}
        if allowed is not None:
            unknown = sorted(set(given) - allowed)
            if unknown:
                raise ConfigError(
                    f"env_kwargs: {self.env_id} takes no {unknown}; it takes {sorted(allowed)}"
                )
        splits = getattr(env_class(self.env_id), "splits", None)
        if isinstance(splits, tuple | list) and self.train_split not in splits:
            raise ConfigError(
                f"train_split: {self.env_id} has no split {self.train_split!r}; "
                f"choose one of {list(splits)}"
            )

    def _check_device(self) -> None:
        problem = device_problem(self.device)
        if problem:
            raise ConfigError(f"device: {problem}")
        if self.parallelism == "fsdp" and self.device.startswith("mps"):
            raise ConfigError("parallelism: fsdp runs on cpu or cuda, not mps; use ddp")
        if self.lora_rank:
            from distill.lora import peft_problem

            problem = peft_problem()
            if problem:
                raise ConfigError(f"lora_rank: {problem}")
        problem = bfloat16_problem(self.device) if self.dtype == "bfloat16" else None
        if problem:
            raise ConfigError(f"dtype: bfloat16 cannot run here ({problem}); use dtype: float32")

    def _check_models(self) -> None:
        from agents.factory import check_agent_spec, model_spec

        for name in ("student", "teacher"):
            value = getattr(self, name)
            if value is None or value in (RECIPE_TEACHER, RECIPE_STUDENT):
                if name == "teacher" and value == RECIPE_STUDENT:
                    raise ConfigError(f"teacher: {value!r} names a student; use {RECIPE_TEACHER!r}")
                if name == "student" and value == RECIPE_TEACHER:
                    raise ConfigError(f"student: {value!r} names a teacher; use {RECIPE_STUDENT!r}")
                continue
            try:
                spec = model_spec(value)
                if name == "student" and spec.startswith("openai:"):
                    raise ValueError("the student is trained here: it cannot be a served model")
                check_agent_spec(spec, models_only=True)
            except ValueError as error:
                raise ConfigError(f"{name}: {error}") from None
        if self.tokenizer is not None and not Path(self.tokenizer).is_dir():
            raise ConfigError(f"tokenizer: no folder {self.tokenizer}")

    def _check_panel(self) -> None:
        from distill.evaluation import find_panel

        try:
            panel = find_panel(self.env_id, self.eval_panel)
        except (FileNotFoundError, ValueError) as error:
            raise ConfigError(
                f"eval_panel: {error} (set eval_panel to a panel name or JSON path, or "
                "eval_episodes: 0 to train without evaluations)"
            ) from None
        if panel.env_id != self.env_id:
            raise ConfigError(f"eval_panel: {self.eval_panel} is a panel of {panel.env_id}")

    # -- what the run uses -----------------------------------------------------------

    def env_settings(self) -> dict[str, Any]:
        """``env_kwargs`` over the env family's defaults (what ``gym.make`` gets)."""
        return merged(env_defaults(self.env_id).env_kwargs, self.env_kwargs)

    def prompt_settings(self) -> dict[str, Any]:
        """``prompt`` over the env family's defaults."""
        return merged(env_defaults(self.env_id).prompt, self.prompt)

    def turn_cap(self) -> int:
        if self.max_turns is not None:
            return int(self.max_turns)
        cap = env_defaults(self.env_id).max_turns
        return int(cap) if cap else 30

    def prompt_config(self) -> Any:
        """The ``PromptConfig`` both agents build their prompts with."""
        from agents.prompts import PromptConfig

        try:
            return PromptConfig(**self.prompt_settings())
        except (TypeError, ValueError) as error:
            raise ConfigError(f"prompt: {error} (see agents.prompts.PromptConfig)") from None

    @property
    def served_teacher(self) -> bool:
        """Whether the teacher is behind an OpenAI-compatible server."""
        return bool(self.teacher) and str(self.teacher).startswith("openai:")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def __getattr__(name: str) -> Any:
    # Each method's config class lives in its method's file (distill/methods/<method>.py);
    # CONFIGS and the class names stay reachable from here.
    if name.startswith("__"):  # the import system asks for __path__ and the like
        raise AttributeError(name)
    if name == "CONFIGS":
        from distill.methods import METHODS

        return {method: module.Config for method, module in METHODS.items()}
    from distill.methods import CONFIG_CLASSES

    if name in CONFIG_CLASSES:
        return CONFIG_CLASSES[name]
    raise AttributeError(f"module 'distill.config' has no attribute {name!r}")


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot run here (None when it can): ``cpu``, ``cuda``, ``cuda:N``, ``mps``."""
    if device == "cpu":
        return None
    import torch

    kind, _, index = device.partition(":")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        wanted = int(index) if index.isdigit() else 0 if not index else None
        if wanted is None or wanted >= count:
            have = f"{count} CUDA device(s)" if count else "no CUDA device"
            return f"{device!r} is not available (this machine has {have})"
        return None
    if kind == "mps":
        return None if torch.backends.mps.is_available() else "'mps' is not available here"
    return f"{device!r} is not a device; use cpu, cuda, cuda:N or mps"


def bfloat16_problem(device: str) -> str | None:
    """Why ``device`` cannot compute in bfloat16 (None when it can).

    A CPU without bfloat16 instructions (oneDNN's AVX512-BF16/AMX support) would
    emulate every bfloat16 operation, slower than float32; a CUDA GPU before Ampere
    has no bfloat16 arithmetic.
    """
    import torch

    if device == "cpu":
        supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
        return None if supported() else "this CPU has no bfloat16 instructions"
    if device.startswith("cuda"):
        return None if torch.cuda.is_bf16_supported() else f"{device} has no bfloat16 arithmetic"
    return None


# -- value checks ------------------------------------------------------------------------


def _type_name(kind: Any) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    if kind in names:
        return names[kind]
    origin = typing.get_origin(kind)
    if origin in (dict,):
        return "a mapping"
    if origin in (tuple, list):
        return "a list"
    return getattr(kind, "__name__", str(kind))


def _coerce(value: Any, kind: Any) -> tuple[bool, Any]:
    """(fits, value as stored) of ``value`` for the annotation ``kind``."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return True, None
        for option in options:
            if option is type(None):
                continue
            fits, coerced = _coerce(value, option)
            if fits:
                return True, coerced
        return False, value
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return math.isfinite(value), float(value)
        return False, value
    if kind is str:
        return isinstance(value, str), value
    if origin is dict:
        return isinstance(value, dict), value
    if origin is tuple:
        items = typing.get_args(kind)
        if not isinstance(value, list | tuple) or len(value) != len(items):
            return False, value
        coerced = []
        for item, item_kind in zip(value, items):
            fits, converted = _coerce(item, item_kind)
            if not fits:
                return False, value
            coerced.append(converted)
        return True, tuple(coerced)
    return True, value


def _check_values(config: TrainConfig) -> None:
    """Types, choices and ranges of every field (the dataclass's annotations and metadata)."""
    hints = typing.get_type_hints(type(config))
    for spec in dataclasses.fields(config):
        value = getattr(config, spec.name)
        kind = hints[spec.name]
        fits, coerced = _coerce(value, kind)
        if not fits:
            length = len(typing.get_args(kind)) if typing.get_origin(kind) is tuple else 0
            wanted = f"a list of {length} numbers" if length else _type_name(_non_none(kind))
            if value is not None and _allows_none(kind):
                wanted += " or null"
            raise ConfigError(f"{spec.name}: expected {wanted}, got {value!r}")
        setattr(config, spec.name, coerced)
        if coerced is None:
            continue
        meta = spec.metadata
        if meta.get("choices") and coerced not in meta["choices"]:
            raise ConfigError(
                f"{spec.name}: {coerced!r} is not one of {', '.join(map(str, meta['choices']))}"
            )
        if isinstance(coerced, int | float) and not isinstance(coerced, bool):
            low, above, high = meta.get("minimum"), meta.get("above"), meta.get("maximum")
            outside = (
                (low is not None and coerced < low)
                or (above is not None and coerced <= above)
                or (high is not None and coerced > high)
            )
            if outside and meta.get("allowed"):
                raise ConfigError(f"{spec.name}: {coerced!r} is not {meta['allowed']}")
            if low is not None and coerced < low:
                raise ConfigError(f"{spec.name}: {coerced!r} is below the minimum {low:g}")
            if above is not None and coerced <= above:
                raise ConfigError(f"{spec.name}: must be greater than {above:g}, got {coerced!r}")
            if high is not None and coerced > high:
                raise ConfigError(f"{spec.name}: {coerced!r} is above the maximum {high:g}")


def _allows_none(kind: Any) -> bool:
    return type(None) in typing.get_args(kind)


def _non_none(kind: Any) -> Any:
    options = [option for option in typing.get_args(kind) if option is not type(None)]
    return options[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) else kind


# -- loading -----------------------------------------------------------------------------


def config_path(name: str | Path) -> Path:
    """A config file by path, or by the name of a shipped one (``guided_opd`` or
    ``guided_opd.yaml`` finds ``configs/guided_opd.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    for candidate in (CONFIG_DIR / path.name, CONFIG_DIR / f"{path.name}.yaml"):
        if candidate.is_file() and len(path.parts) == 1:
            return candidate
    names = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    close = difflib.get_close_matches(path.stem, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ConfigError(f"no config file {name} ({hint}shipped configs: {', '.join(names)})")


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML config (``method:`` picks the dataclass) and apply ``overrides``.

    Every value is checked; a mistake raises :class:`ConfigError` (one line).
    """
    data: dict[str, Any] = {}
    if path is not None:
        source = config_path(path)
        try:
            loaded = yaml.safe_load(source.read_text()) or {}
        except yaml.YAMLError as error:
            problem = str(error).splitlines()[0]
            raise ConfigError(f"{source}: not valid YAML ({problem})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: a config is a mapping of field names to values")
        data.update(loaded)
    data.update(overrides or {})
    from distill.methods import METHODS

    CONFIGS = {name: module.Config for name, module in METHODS.items()}
    method = data.get("method")
    if method not in CONFIGS:
        raise ConfigError(
            f"method: {method!r} is not one of {', '.join(CONFIGS)}"
            if method is not None
            else f"method: missing; choose one of {', '.join(CONFIGS)}"
        )
    cls = CONFIGS[method]
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        guess = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise ConfigError(
            f"unknown {method} field {unknown[0]!r}{hint} "
            "(tools/distill.py --help-fields lists every field)"
        )
    return cls(**data)


def describe_fields(method: str | None = None) -> str:
    """The fields every method shares, then each method's own (or every field of ``method``),
    each with its default and description."""
    from distill.methods import METHODS

    CONFIGS = {name: module.Config for name, module in METHODS.items()}
    if method is not None and method not in CONFIGS:
        raise ConfigError(f"method: {method!r} is not one of {', '.join(CONFIGS)}")
    base = {spec.name: spec for spec in dataclasses.fields(TrainConfig)}

    def line(spec: dataclasses.Field) -> str:
        default = (
            spec.default_factory()  # type: ignore[misc]
            if spec.default_factory is not dataclasses.MISSING
            else spec.default
        )
        return f"    {spec.name} = {default!r}  # {spec.metadata.get('help', '')}"

    def own(spec: dataclasses.Field) -> bool:
        shared = base.get(spec.name)
        return shared is None or (spec.default, spec.metadata) != (shared.default, shared.metadata)

    lines = []
    if method is None:
        lines.append("[every method]")
        lines += [line(spec) for spec in base.values() if spec.name != "method"]
        lines.append("")
    for name, cls in CONFIGS.items():
        if method is not None and name != method:
            continue
        lines.append(f"[{name}] {cls.__doc__.strip().splitlines()[0]}")
        specs = [s for s in dataclasses.fields(cls) if s.name != "method"]
        lines += [line(spec) for spec in specs if method is not None or own(spec)]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
