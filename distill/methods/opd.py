"""Vanilla on-policy distillation (spec section 2): the student alone acts; each of its
tokens gets A = log pi_T - log pi_old under the PPO-clip surrogate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distill.batching import Example
from distill.config import ConfigError, TrainConfig, setting
from distill.methods.common import collect, rollout_metrics, scored, turn_examples
from envs.multiagent.selectors import FixedSelector


@dataclass
class OPDConfig(TrainConfig):
    """Vanilla on-policy distillation."""

    method: str = setting("opd", "the algorithm")
    reverse_kl: str = setting(
        "sampled",
        "sampled (PPO-clip surrogate on sampled tokens) or full_vocab (exact; in-process teacher)",
        choices=("sampled", "full_vocab"),
    )

    def check(self) -> None:
        super().check()
        if not self.teacher:
            raise ConfigError(
                f"teacher: {self.method} needs a teacher (a size, a folder, hf:<name>, "
                "openai:<base-url>#<model>, or recipe)"
            )
        if self.reverse_kl == "full_vocab" and self.served_teacher:
            raise ConfigError(
                "reverse_kl: full_vocab needs the teacher's whole distribution at every position; "
                "a served teacher returns sampled-token log-probs only (use sampled)"
            )


NEEDS_TEACHER = True
NEEDS_SHARED_VOCAB = True


def make_examples(ctx: Any, step: int) -> tuple[list[Example], dict[str, float]]:
    tasks = ctx.sample_tasks(step, ctx.config.rollouts_per_step)
    rollouts = collect(ctx, step, tasks, lambda _i: FixedSelector("student"))
    scoring = scored(ctx, rollouts)
    examples = turn_examples(rollouts, {"student": ("reverse_kl", 1.0)})
    return examples, {**rollout_metrics(rollouts), "time_scoring_s": scoring}


Config = OPDConfig
