"""Memory options of the student being trained: activation (gradient) checkpointing.

``enable_activation_checkpointing(model)`` makes each decoder layer keep only its
input during the forward and recompute its activations in the backward, so a
step's activation memory grows with one layer rather than with the model's depth;
the cost is one more forward per layer in the backward. It wraps every decoder
layer with ``torch.utils.checkpoint`` (non-reentrant) rather than using the
Hugging Face switch, because that switch is inert in eval mode and the trainer
keeps the student in eval mode (no dropout, the same forward as generation).
Gradients and losses are those of the unwrapped model; under ``no_grad``
(generation, scoring) the wrapper is a plain call, and with gradients on the
layer runs without a KV cache (a training forward reads none).
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

__all__ = ["decoder_layers", "enable_activation_checkpointing"]


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The decoder layers of a causal LM (``model.model.layers`` in the Llama/Qwen layout)."""
    base = getattr(model, "base_model", model)
    inner = getattr(base, "model", base)
    for candidate in (inner, getattr(inner, "model", None)):
        layers = getattr(candidate, "layers", None)
        if isinstance(layers, torch.nn.ModuleList) and len(layers) > 0:
            return list(layers)
    raise ValueError(f"{type(model).__name__} has no decoder layers (model.layers) to wrap")


def enable_activation_checkpointing(model: torch.nn.Module) -> int:
    """Recompute each decoder layer's activations in the backward; returns the layers wrapped.

    Idempotent: a layer already wrapped is left as it is.
    """
    wrapped = 0
    for layer in decoder_layers(model):
        if getattr(layer, "_activation_checkpointed", False):
            continue
        layer.forward = functools.partial(_checkpointed, layer.forward)
        layer._activation_checkpointed = True
        wrapped += 1
    return wrapped


def _checkpointed(forward: Any, *args: Any, **kwargs: Any) -> Any:
    if not torch.is_grad_enabled():
        return forward(*args, **kwargs)
    # A KV cache would take the layer's keys twice (forward and recomputation); a
    # forward that trains reads no cache, so the checkpointed layer runs without one.
    for key in ("cache", "past_key_value", "past_key_values"):
        if key in kwargs:
            kwargs[key] = None
    return checkpoint(forward, *args, use_reentrant=False, **kwargs)
