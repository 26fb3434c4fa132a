"""LoRA students through ``peft`` (the optional ``lora`` extra: ``pip install -e '.[lora]'``).

With ``lora_rank > 0`` the trainer wraps the student in low-rank adapters on the
attention and MLP projections (``apply_lora``): only the adapters' parameters
train (and only they take AdamW state); the base weights stay frozen. Checkpoints
hold the wrapped model's whole state, so resume is exact as for a full student.
``save_final`` writes ``final/`` in the usual ``save_pretrained`` layout with the
adapters merged into the weights (a normal model, no ``peft`` needed to load it),
and the adapter alone under ``final/adapter``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

__all__ = ["LORA_TARGETS", "apply_lora", "is_lora", "peft_problem", "save_final"]

#: The projections that take adapters (Llama/Qwen names).
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def peft_problem() -> str | None:
    """Why LoRA cannot run here (None when ``peft`` imports)."""
    try:
        import peft  # noqa: F401
    except ImportError:
        return "peft is not installed; pip install -e '.[lora]' (or pip install peft)"
    return None


def apply_lora(model: torch.nn.Module, *, rank: int, alpha: float, dropout: float = 0.0) -> Any:
    """``model`` wrapped in LoRA adapters of ``rank``; only the adapters require grad.

    Adapters start as the identity (peft initialises B to zero), so the wrapped
    model's outputs equal the base model's before the first step.
    """
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=list(LORA_TARGETS),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def is_lora(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "merge_and_unload")


def save_final(model: Any, folder: Path) -> None:
    """``model`` as a normal ``save_pretrained`` folder: LoRA adapters merged in (the
    adapter alone under ``folder/adapter``); any other model as it is."""
    folder = Path(folder)
    if not is_lora(model):
        model.save_pretrained(folder)
        return
    model.save_pretrained(folder / "adapter")
    # Merge into a copy: the run's model keeps its adapters (and its trainable state).
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(folder)
