"""Run configurations: one dataclass per method, every default documented here once.

Defaults follow the papers (spec/algorithms.md) where they name a value;
those marked *(our default)* are choices the spec leaves open. YAML files in
``configs/`` set any subset of these fields; unknown keys are an error.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CONFIGS",
    "GRPOConfig",
    "GuidedOPDConfig",
    "MentorConfig",
    "OPDConfig",
    "SFTConfig",
    "TCODConfig",
    "TrainConfig",
    "load_config",
]

#: Turn caps per env family (Guided-OPD's setting).
DEFAULT_TURN_CAPS = {"ALFWorld-v0": 30, "ScienceWorld-v0": 30, "WebShop-v0": 15}
#: Tool tasks: MENTOR's 5 tool turns (the env ends an episode after them) plus the final answer.
TOOL_TURN_CAP = 6
#: How a student may act in evaluations (agents.hf.HFAgent's modes).
EVAL_MODES = ("generate", "rank")


@dataclass
class TrainConfig:
    """What every method shares."""

    method: str = ""
    env_id: str = "ToolMath-v0"  # any registered id
    env_kwargs: dict[str, Any] = field(default_factory=dict)  # extra gym.make kwargs
    # agents.prompts.PromptConfig fields for student and teacher, e.g. {tool_listing: compact}
    prompt: dict[str, Any] = field(default_factory=dict)
    student: str = (
        "tiny"  # a folder or hub name for from_pretrained, or "tiny"/"small" (built locally)
    )
    teacher: str | None = None  # same forms; None where the method needs no teacher
    tokenizer: str | None = (
        None  # folder of the tokenizer for "tiny"/"small" students (built if None)
    )
    run_dir: str = "runs/default"
    seed: int = 0
    total_steps: int = 250  # Guided-OPD: 250 steps
    rollouts_per_step: int = 64  # episodes collected per optimiser step (paper: batch 64)
    num_envs: int = 8  # envs stepped side by side during collection
    env_mode: str = "async"  # async: a process per env (JVMs, TextWorld); sync: in-process
    # Episodes in a row an env failure may end (a crashed or hung worker, a simulator error)
    # before the run stops; each such episode ends early, is kept untrained and is counted in
    # the metrics' env_errors. (our default)
    max_env_errors: int = 10
    max_turns: int | None = None  # None: ALFWorld, ScienceWorld 30; WebShop 15; tools 5 + answer
    learning_rate: float = 1e-6  # both papers
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float = 1.0
    lr_schedule: str = "constant"  # constant | cosine | linear (after warmup)
    warmup_steps: int = 0
    micro_batch_size: int = 16  # turns per forward/backward; gradients accumulate over a step
    dtype: str = "float32"  # float32 | bfloat16 (autocast of the student's forward)
    device: str = "cpu"
    train_temperature: float = 1.0  # sampling temperature of training rollouts
    eval_temperature: float = 0.4  # pure-student evaluation
    # How the student acts in evaluations: "generate", or "rank" (score every admissible
    # action and take the likeliest, as the study evaluates ALFWorld students).
    eval_mode: str = "generate"
    max_new_tokens: int = 512  # responses capped at 512 tokens
    eval_every: int = 50  # steps between evaluations (0: only at the end)
    eval_panel: str | None = None  # panel name or JSON path; None: the env's default panel
    eval_episodes: int | None = None  # first N tasks of the panel (0: never evaluate)
    # Train to a target (distill/target.py): stop at the first evaluation whose SR (percent)
    # reaches it, total_steps being the cap; if the cap comes first, final/ holds the best
    # evaluated weights. None: train total_steps and keep the last weights.
    target_eval_sr: float | None = None
    checkpoint_every: int = 25
    keep_checkpoints: int = 2
    train_split: str = "train"
    tensorboard: bool = True
    aggregation: str = "token-mean"  # or seq-mean-token-mean
    clip: float = 0.2  # PPO-clip epsilon

    def __post_init__(self) -> None:
        if isinstance(self.max_env_errors, bool) or not (
            isinstance(self.max_env_errors, int) and self.max_env_errors >= 0
        ):
            raise ValueError(f"max_env_errors must be an integer >= 0, not {self.max_env_errors!r}")
        if self.eval_mode not in EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {list(EVAL_MODES)}, not {self.eval_mode!r}")
        if self.target_eval_sr is not None:
            if not 0 < self.target_eval_sr <= 100:
                raise ValueError(
                    f"target_eval_sr is a success rate in percent (0, 100], not {self.target_eval_sr}"
                )
            if not self.eval_every or self.eval_episodes == 0:
                raise ValueError(
                    "target_eval_sr needs evaluations: set eval_every > 0 and eval_episodes != 0"
                )

    def turn_cap(self) -> int:
        if self.max_turns is not None:
            return int(self.max_turns)
        return DEFAULT_TURN_CAPS.get(self.env_id, TOOL_TURN_CAP)

    def prompt_config(self) -> Any:
        """The ``PromptConfig`` both agents build their prompts with."""
        from agents.prompts import PromptConfig

        try:
            return PromptConfig(**self.prompt)
        except TypeError as error:
            raise ValueError(f"prompt: {error} (see agents.prompts.PromptConfig)") from None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class SFTConfig(TrainConfig):
    """SFT on teacher or expert trajectories (spec section 1)."""

    method: str = "sft"
    demonstrator: str = "expert"  # expert (the env's oracle) or teacher
    successful_only: bool = True
    demo_episodes: int = 256  # trajectories collected once before training
    # (our default) what one of the rollouts_per_step demonstrations is: a "turn" (its
    # prompt and completion), or a whole "trajectory" packed in one sequence (every
    # completion trained, observations masked out: about turns-per-episode times fewer
    # tokens run per trained token)
    demo_unit: str = "turn"
    learning_rate: float = 1e-4  # (our default) SFT from scratch needs a far larger step than 1e-6

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.demo_unit not in ("turn", "trajectory"):
            raise ValueError(f"demo_unit must be 'turn' or 'trajectory', not {self.demo_unit!r}")


@dataclass
class OPDConfig(TrainConfig):
    """Vanilla on-policy distillation (spec section 2)."""

    method: str = "opd"
    reverse_kl: str = "sampled"  # sampled (PPO-clip surrogate) | full_vocab (exact, shared vocab)


@dataclass
class GuidedOPDConfig(OPDConfig):
    """Guided-OPD (spec section 3): teacher and student turns mixed within a rollout."""

    method: str = "guided_opd"
    schedule: str = "cosine"  # cosine | linear | exponential | constant
    beta_start: float = 1.0
    beta_end: float = 0.0
    beta_ratio: float = 0.8  # beta reaches beta_end at this fraction of total_steps
    student_turn_loss: str = "reverse_kl"  # reverse_kl | forward_kl | none
    teacher_turn_loss: str = "forward_kl"  # forward_kl | reverse_kl | none
    teacher_weight: float = 1.0  # (our default) equal weight per token


@dataclass
class TCODConfig(OPDConfig):
    """TCOD (spec section 4): temporal curricula over the horizon."""

    method: str = "tcod"
    variant: str = "f2b"  # f2b (front to back) | b2f (back to front)
    pace: int = 2  # eta
    reference: str = "expert"  # b2f's reference trajectories: expert | teacher


@dataclass
class GRPOConfig(TrainConfig):
    """GRPO with the sparse reward: the "standard RL" baseline (spec section 5)."""

    method: str = "grpo"
    group_size: int = 5  # G: 5 to 10
    kl_coef: float = 0.001
    epochs: int = 1  # optimiser passes over each step's rollouts
    graded: bool = False  # use the env's graded score as `correct` where it has one


@dataclass
class MentorConfig(GRPOConfig):
    """MENTOR: GRPO with the teacher-guided composite reward (spec section 5)."""

    method: str = "mentor"
    match: str = "exact"  # exact | overlap | f1 | none
    reference: str = "teacher"  # whose trajectory gives the reference tool set: teacher | expert
    reward_weights: dict[str, float] = field(
        default_factory=dict
    )  # overrides of the 0.7/0.3/0.2/0.1 weights
    epochs: int = 2  # MENTOR: 2 epochs


CONFIGS: dict[str, type[TrainConfig]] = {
    "sft": SFTConfig,
    "opd": OPDConfig,
    "guided_opd": GuidedOPDConfig,
    "tcod": TCODConfig,
    "grpo": GRPOConfig,
    "mentor": MentorConfig,
}


def load_config(
    path: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read a YAML config (``method:`` picks the dataclass) and apply ``overrides``."""
    data: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a config is a mapping of field names to values")
        data.update(loaded)
    data.update(overrides or {})
    method = data.get("method")
    if method not in CONFIGS:
        raise ValueError(f"unknown or missing method {method!r}; choose one of {sorted(CONFIGS)}")
    cls = CONFIGS[method]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {method} config keys {unknown}; see distill/config.py for the fields"
        )
    if "adam_betas" in data:
        data["adam_betas"] = tuple(data["adam_betas"])
    config = cls(**data)
    config.prompt_config()  # a bad prompt setting fails here, not after the teacher is built
    return config
