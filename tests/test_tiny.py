"""Tiny offline models: tokenizer training, chat template, named sizes, save/load round trip."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from agents.hf import HFAgent  # noqa: E402
from agents.tiny import (  # noqa: E402
    NUMBER_GROUPS,
    SIZES,
    SPECIAL_TOKENS,
    build_model,
    build_tiny,
    count_parameters,
    env_corpus,
    load_tiny,
    main,
    save_tiny,
    train_tokenizer,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_corpus_is_env_text_and_tokenizer_has_qwen_markers() -> None:
    corpus = env_corpus()
    joined = "\n".join(corpus[:2000])
    assert "<action>" in joined and "Prior to this step" in joined
    assert len(corpus) > 1000  # the shipped data files were read
    tokenizer = train_tokenizer()
    assert len(tokenizer) == 4096
    for token in SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) == SPECIAL_TOKENS.index(token)
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    text = "<think>go</think>\n<action>take apple 1 from fridge 1</action>"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids) == text
    assert len(ids) < len(text) / 2  # BPE merged the env's words
    assert tokenizer.convert_tokens_to_ids("<think>") in ids  # the tag is one token
    assert tokenizer.decode(ids + [tokenizer.eos_token_id], skip_special_tokens=True) == text


def test_small_vocabulary_and_own_texts() -> None:
    tokenizer = train_tokenizer(["go north", "go south", "take lamp"] * 50, vocab_size=300)
    assert len(tokenizer) <= 300
    assert tokenizer.decode(tokenizer.encode("go north", add_special_tokens=False)) == "go north"
    with pytest.raises(ValueError, match="vocab_size"):
        train_tokenizer(vocab_size=100)


def test_chat_template_renders_system_tools_and_tool_turns() -> None:
    tokenizer = train_tokenizer()
    messages = [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "add", "arguments": {"a": 1}}}
            ],
        },
        {"role": "tool", "content": "3"},
        {"role": "tool", "content": "4"},
    ]
    tools = [{"type": "function", "function": {"name": "add", "parameters": {}}}]
    text = tokenizer.apply_chat_template(
        messages, tools=tools, tokenize=False, add_generation_prompt=True
    )
    assert text.startswith("<|im_start|>system\nS\n\n# Tools")
    assert (
        '<tools>\n{"type": "function", "function": {"name": "add", "parameters": {}}}\n</tools>'
        in text
    )
    assert (
        '<|im_start|>assistant\n<tool_call>\n{"name": "add", "arguments": {"a": 1}}\n</tool_call><|im_end|>'
        in text
    )
    assert (
        "<|im_start|>user\n<tool_response>\n3\n</tool_response>\n<tool_response>\n4\n</tool_response><|im_end|>"
        in text
    )
    assert text.endswith("<|im_start|>assistant\n")
    plain = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False)
    assert plain == "<|im_start|>user\nhi<|im_end|>\n"


def test_named_sizes_have_the_advertised_parameter_counts() -> None:
    tokenizer = train_tokenizer()
    counts = {size: count_parameters(build_model(size, tokenizer)) for size in ("tiny", "small")}
    assert 0.5e6 < counts["tiny"] < 1.5e6
    assert 8e6 < counts["small"] < 12e6
    assert set(SIZES) >= {"tiny", "small"}
    model = build_model("tiny", tokenizer)
    assert model.config.model_type == "qwen3" and model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tokenizer)
    with pytest.raises(ValueError, match="unknown size"):
        build_model("huge", tokenizer)


def test_models_are_seeded() -> None:
    tokenizer = train_tokenizer()
    a, b, c = (build_model("tiny", tokenizer, seed=s) for s in (0, 0, 1))
    weight = "model.layers.0.mlp.up_proj.weight"
    assert torch.equal(a.state_dict()[weight], b.state_dict()[weight])
    assert not torch.equal(a.state_dict()[weight], c.state_dict()[weight])


def test_save_load_round_trip(tmp_path: Path) -> None:
    model, tokenizer = build_tiny("tiny", seed=3)
    path = save_tiny(tmp_path / "tiny", "tiny", seed=3)
    assert (path / "config.json").exists() and (path / "tokenizer.json").exists()
    loaded, loaded_tokenizer = load_tiny(path)
    text = "<|im_start|>user\nsearch[red shirt]<|im_end|>\n<|im_start|>assistant\n"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert loaded_tokenizer.encode(text, add_special_tokens=False) == ids
    assert loaded_tokenizer.chat_template == tokenizer.chat_template
    assert loaded_tokenizer.eos_token_id == tokenizer.eos_token_id
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits
        got = loaded(torch.tensor([ids])).logits
    assert torch.allclose(expected, got, atol=1e-6)
    agent = HFAgent.from_pretrained(str(path), max_new_tokens=4, temperature=0)
    assert agent.eos_token_ids >= {tokenizer.eos_token_id}
    assert (
        agent.generate([ids])[0].token_ids
        == HFAgent(model, tokenizer, max_new_tokens=4, temperature=0).generate([ids])[0].token_ids
    )


def test_command_line_writes_a_loadable_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["--size", "tiny", "--out", str(tmp_path / "m"), "--seed", "1"]) == 0
    assert "saved tiny model" in capsys.readouterr().out
    model, _ = load_tiny(tmp_path / "m")
    assert count_parameters(model) < 1.5e6


def test_from_pretrained_reports_a_missing_model_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot load"):
        HFAgent.from_pretrained(str(tmp_path / "nothing-here"))


def test_numbers_split_into_right_aligned_digit_groups_that_are_single_tokens() -> None:
    """A number is the same tokens with or without thousands separators, so it can be copied."""
    tokenizer = train_tokenizer()
    vocab = tokenizer.get_vocab()
    assert all(group in vocab for group in NUMBER_GROUPS) and len(NUMBER_GROUPS) == 1110

    def pieces(text: str) -> list[str]:
        return [tokenizer.decode([i]) for i in tokenizer.encode(text, add_special_tokens=False)]

    assert pieces("73056") == ["73", "056"]
    assert [p for p in pieces("73,056") if p != ","] == ["73", "056"]
    assert pieces(" 1234567") == [" ", "1", "234", "567"]
    assert pieces("0.05") == ["0", ".", "05"]
    for text in ("x = 12.50, 1,000,000 and 007", "It's 3 o'clock"):
        assert tokenizer.decode(tokenizer.encode(text, add_special_tokens=False)) == text
