"""The teacher's intervention probability beta(s) of Guided-OPD.

``intervention_prob(step, total_steps)`` decays from ``start`` to ``end``,
reaching ``end`` at ``ratio * total_steps`` and staying there. The paper's
schedule is the cosine one:

    beta(s) = end + (start - end) * 0.5 * (1 + cos(pi * min(s / (ratio * N), 1)))

so beta = 0.5 at s = 0.4 N with the defaults. Linear and exponential decays
and a constant beta (the paper's ablation) are the options.
"""

from __future__ import annotations

import math

__all__ = ["SCHEDULE_KINDS", "intervention_prob"]

SCHEDULE_KINDS: tuple[str, ...] = ("cosine", "linear", "exponential", "constant")

# The exponential decay falls by a factor e^5 (~150) over the decay window and is
# shifted and rescaled to hit `end` exactly at its close, so the kinds share endpoints.
_EXPONENTIAL_RATE = 5.0


def intervention_prob(
    step: int,
    total_steps: int,
    *,
    kind: str = "cosine",
    start: float = 1.0,
    end: float = 0.0,
    ratio: float = 0.8,
) -> float:
    """The probability that the teacher acts on a turn at global training step ``step``.

    ``kind`` is one of ``cosine`` (default), ``linear``, ``exponential`` or
    ``constant`` (always ``start``). The decay ends at ``ratio * total_steps``.
    """
    if kind not in SCHEDULE_KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; choose one of {list(SCHEDULE_KINDS)}")
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    for name, value in (("start", start), ("end", end)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    if kind == "constant":
        return float(start)
    progress = min(step / (ratio * total_steps), 1.0)
    if kind == "cosine":
        fraction = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif kind == "linear":
        fraction = 1.0 - progress
    else:
        floor = math.exp(-_EXPONENTIAL_RATE)
        fraction = (math.exp(-_EXPONENTIAL_RATE * progress) - floor) / (1.0 - floor)
    return float(end + (start - end) * fraction)
