"""Activation checkpointing: the same loss and gradients, fewer activations kept."""

from __future__ import annotations

import copy

import pytest
import torch

from distill.memory import decoder_layers, enable_activation_checkpointing


@pytest.fixture(scope="module")
def model():
    from agents.tiny import build_model, train_tokenizer

    return build_model("micro", train_tokenizer(), seed=0).eval()


def _step(model: torch.nn.Module, ids: torch.Tensor) -> tuple[float, list[torch.Tensor], int]:
    """Loss, gradients and the bytes autograd kept for the backward."""
    kept = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal kept
        kept += tensor.numel() * tensor.element_size()
        return tensor

    model.zero_grad(set_to_none=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        mask = torch.ones_like(ids)
        mask[0, :5] = 0  # left padding, as the trainer's batches have
        logits = model(input_ids=ids, attention_mask=mask).logits
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1)
        )
    loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in model.parameters()], kept


def test_checkpointing_keeps_loss_and_gradients_and_saves_activations(model) -> None:
    ids = torch.randint(
        3, model.config.vocab_size, (4, 48), generator=torch.Generator().manual_seed(0)
    )
    plain_loss, plain_grads, plain_kept = _step(model, ids)
    wrapped = copy.deepcopy(model)
    assert enable_activation_checkpointing(wrapped) == len(decoder_layers(wrapped))
    assert enable_activation_checkpointing(wrapped) == 0  # idempotent
    loss, grads, kept = _step(wrapped, ids)
    assert loss == pytest.approx(plain_loss, rel=1e-6)
    for got, expected in zip(grads, plain_grads, strict=True):
        assert torch.allclose(got, expected, atol=1e-6, rtol=1e-5)
    assert kept < plain_kept  # the layers' inner activations are recomputed, not kept
    with torch.no_grad():  # generation and scoring: a plain call
        assert torch.equal(wrapped(input_ids=ids).logits, model(input_ids=ids).logits)


def test_config_takes_activation_checkpointing() -> None:
    from distill.config import ConfigError, load_config

    values = {"method": "sft", "env_id": "WebShop-v0", "student": "micro", "eval_episodes": 0}
    assert load_config(None, {**values, "activation_checkpointing": True}).activation_checkpointing
    with pytest.raises(ConfigError, match="activation_checkpointing"):
        load_config(None, {**values, "activation_checkpointing": "often"})


def test_bfloat16_on_a_device_without_it_is_one_line(monkeypatch) -> None:
    from distill.config import ConfigError, load_config

    values = {"method": "sft", "env_id": "WebShop-v0", "student": "micro", "eval_episodes": 0}
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    with pytest.raises(ConfigError, match="dtype: bfloat16 cannot run here .*use dtype: float32"):
        load_config(None, {**values, "dtype": "bfloat16"})
    assert load_config(None, values).dtype == "float32"
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    assert load_config(None, {**values, "dtype": "bfloat16"}).dtype == "bfloat16"
