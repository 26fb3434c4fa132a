"""LoRA students: only the adapters train; final/ is the merged model (base + adapter)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("peft")

from distill.lora import apply_lora, save_final  # noqa: E402


def _model():
    from agents.tiny import build_model

    return build_model("micro", vocab_size=256, seed=0).eval()


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_only_the_adapter_trains_and_the_merged_model_equals_base_plus_adapter(
    tmp_path: Path,
) -> None:
    from transformers import AutoModelForCausalLM

    ids = torch.randint(3, 256, (2, 24), generator=torch.Generator().manual_seed(0))
    base = _model()
    before = {name: p.detach().clone() for name, p in base.named_parameters()}
    model = apply_lora(_model(), rank=4, alpha=8.0)
    assert torch.allclose(_logits(model, ids), _logits(base, ids))  # adapters start at zero
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(3):
        optimizer.zero_grad()
        logits = model(input_ids=ids).logits
        torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, 256), ids[:, 1:].reshape(-1)
        ).backward()
        optimizer.step()
    for name, p in model.named_parameters():  # the base weights did not move
        if not p.requires_grad:
            key = name.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(p, before[key]), name
    trained = _logits(model, ids)
    assert not torch.allclose(trained, _logits(base, ids))
    save_final(model, tmp_path / "final")
    assert (tmp_path / "final" / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "final").eval()
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert torch.allclose(_logits(merged, ids), trained, atol=1e-5, rtol=1e-4)


def test_lora_without_peft_is_one_line(monkeypatch) -> None:
    from distill.config import ConfigError, load_config

    monkeypatch.setitem(sys.modules, "peft", None)  # import peft raises ImportError
    values = {"method": "sft", "env_id": "WebShop-v0", "student": "micro", "eval_episodes": 0}
    with pytest.raises(ConfigError, match=r"lora_rank: peft is not installed; pip install"):
        load_config(None, {**values, "lora_rank": 8})
    assert load_config(None, values).lora_rank == 0


def test_a_lora_run_trains_and_exports_a_merged_model(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM

    sys.path.insert(0, str(Path(__file__).parent))
    from test_distill_methods import small_config

    from distill.trainer import train

    config = small_config(
        "sft", tmp_path, eval_episodes=0, lora_rank=4, lora_alpha=8.0, activation_checkpointing=True
    )
    train(config, progress=False)
    assert (tmp_path / "final" / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "final")
    assert not any("lora" in name for name, _ in merged.named_parameters())


@pytest.mark.slow
def test_a_resumed_lora_run_ends_where_an_uninterrupted_one_does(tmp_path: Path) -> None:
    import shutil

    from safetensors.torch import load_file

    sys.path.insert(0, str(Path(__file__).parent))
    from test_distill_methods import small_config

    from distill.trainer import train

    def run(folder: Path, **overrides):
        values = dict(eval_episodes=0, lora_rank=4, lora_alpha=8.0, total_steps=2)
        train(small_config("sft", folder, **values, **overrides), progress=False)

    run(tmp_path / "whole")
    run(tmp_path / "cut", keep_checkpoints=3)
    cut = tmp_path / "cut"
    # As if killed after the first checkpoint: the second and final/ never written.
    shutil.rmtree(cut / "checkpoints" / "step-00000002")
    shutil.rmtree(cut / "final")
    train(
        small_config(
            "sft",
            cut,
            eval_episodes=0,
            lora_rank=4,
            lora_alpha=8.0,
            total_steps=2,
            keep_checkpoints=3,
        ),
        resume=True,
        progress=False,
    )
    whole = load_file(tmp_path / "whole" / "final" / "model.safetensors")
    resumed = load_file(cut / "final" / "model.safetensors")
    assert whole.keys() == resumed.keys()
    for key in whole:
        assert torch.equal(whole[key], resumed[key]), key
