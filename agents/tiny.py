"""Tiny offline language models: a locally trained tokenizer and small Qwen3 models.

Nothing here downloads anything. :func:`train_tokenizer` trains a byte-level
BPE tokenizer with ``tokenizers`` on text the environments produce (the
shipped task and catalogue files, plus the prompt scaffolding of
``agents.prompts``), with Qwen's chat markers (``<|im_start|>``,
``<|im_end|>``, ``<|endoftext|>``) and a tools-aware chat template in Qwen's
layout. :func:`build_model` builds a randomly initialised Qwen3-architecture
causal LM of a named size. Both save and load with the usual
``save_pretrained`` / ``from_pretrained``.

These are the embedded default student and teacher architectures and the
models every offline test uses. Sizes (parameters with the default 4,096-token
vocabulary, embeddings tied)::

    tiny    hidden 128, 2 layers,  4 heads (2 KV)   ~0.9M
    small   hidden 256, 9 layers,  8 heads (4 KV)   ~9.9M
    base    hidden 512, 12 layers, 8 heads (4 KV)   ~40M

Command line: ``python -m agents.tiny --size small --out models/small`` writes
a model folder that ``HFAgent.from_pretrained``, ``tools/serve.py`` and
``tools/benchmark.py --agent hf:models/small`` load.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CHAT_TEMPLATE",
    "SIZES",
    "SPECIAL_TOKENS",
    "TinySize",
    "build_model",
    "build_tiny",
    "count_parameters",
    "env_corpus",
    "load_tiny",
    "save_tiny",
    "train_tokenizer",
]

#: Special tokens, in id order: padding / document end, then Qwen's chat markers.
SPECIAL_TOKENS: tuple[str, ...] = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
#: Tags that stay single tokens (as in Qwen's vocabulary) and survive skip_special_tokens.
TAG_TOKENS: tuple[str, ...] = (
    "<think>",
    "</think>",
    "<tool_call>",
    "</tool_call>",
    "<tool_response>",
    "</tool_response>",
)

# Qwen's chat layout, written for this project: a system turn (with the tool
# schemas when tools are given), user/assistant turns, consecutive tool results
# grouped in one user turn as <tool_response> blocks, structured tool calls
# rendered as <tool_call> blocks. Assistant content is kept verbatim (including
# reasoning), so the prompts of an episode extend each other exactly.
CHAT_TEMPLATE = (
    "{%- if tools %}"
    "{{- '<|im_start|>system\\n' }}"
    "{%- if messages and messages[0]['role'] == 'system' %}"
    "{{- messages[0]['content'] + '\\n\\n' }}"
    "{%- endif %}"
    "{{- '# Tools\\n\\nYou may call one or more functions. Their signatures, as JSON, are inside "
    "<tools></tools>:\\n<tools>' }}"
    "{%- for tool in tools %}"
    "{{- '\\n' + (tool | tojson) }}"
    "{%- endfor %}"
    "{{- '\\n</tools>\\n\\nWrite each call as a JSON object inside <tool_call></tool_call>:\\n"
    '<tool_call>\\n{\\"name\\": <function name>, \\"arguments\\": <arguments object>}\\n'
    "</tool_call><|im_end|>\\n' }}"
    "{%- elif messages and messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{%- if not loop.first %}"
    "{{- '<|im_start|>system\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- elif message['role'] == 'tool' %}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' %}"
    "{{- '<|im_start|>user' }}"
    "{%- endif %}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' }}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- else %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{%- if message['role'] == 'assistant' and message.get('tool_calls') %}"
    "{%- for call in message['tool_calls'] %}"
    "{%- set function = call['function'] if call.get('function') else call %}"
    "{%- if (message['content'] or '') or not loop.first %}{{- '\\n' }}{%- endif %}"
    "{{- '<tool_call>\\n{\"name\": \"' + function['name'] + '\", \"arguments\": ' }}"
    "{%- if function['arguments'] is string %}"
    "{{- function['arguments'] }}"
    "{%- else %}"
    "{{- function['arguments'] | tojson }}"
    "{%- endif %}"
    "{{- '}\\n</tool_call>' }}"
    "{%- endfor %}"
    "{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


@dataclass(frozen=True)
class TinySize:
    """The shape of a named model size (Qwen3 architecture)."""

    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    intermediate_size: int


#: Named sizes, smallest first. ``micro`` (~0.36M parameters) and ``mini`` (~0.61M) are
#: students smaller than a ``tiny`` (~0.9M) teacher; ``small`` (~10M) and ``base`` (~40M)
#: are for a GPU or for patience.
SIZES: dict[str, TinySize] = {
    "micro": TinySize(64, 2, 2, 1, 32, 192),
    "mini": TinySize(96, 2, 3, 1, 32, 288),
    "tiny": TinySize(128, 2, 4, 2, 32, 384),
    "small": TinySize(256, 9, 8, 4, 32, 1024),
    "base": TinySize(512, 12, 8, 4, 64, 1536),
}

_CORPUS_SUFFIXES = (".json", ".jsonl")

#: How the tokenizer splits text before BPE: Qwen2's pattern (contractions, words with one
#: leading non-letter, punctuation runs, whitespace), except that a number splits into
#: right-aligned groups of up to three digits ("73056" and "73,056" both give "73" "056").
#: Every such group is one token (the corpus below holds all 1,110 of them), so a number is
#: the same one or two tokens wherever it appears, which a small model needs to learn to copy
#: it from a question or a tool result into a call (docs/distillation.md). (Qwen's one token per digit makes every
#: digit ambiguous to copy; BPE's merged digit runs split one number differently in two places.)
SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}(?=(?:\p{N}{3})*(?!\p{N}))"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
NUMBER_GROUP_REPEATS = 40
#: Every digit group the pattern can produce: 0-999 and the zero-led "00"-"099".
NUMBER_GROUPS: tuple[str, ...] = tuple(
    dict.fromkeys(
        [str(n) for n in range(1000)]
        + [f"{n:02d}" for n in range(10)]
        + [f"{n:03d}" for n in range(100)]
    )
)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        if value.strip():
            yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _env_data_files() -> list[Path]:
    spec = importlib.util.find_spec("envs")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations)))
    files = [p for p in root.glob("*/data/*") if p.suffix in _CORPUS_SUFFIXES]
    return sorted(files)


def _scaffold_texts() -> Iterator[str]:
    """Prompt scaffolding and well-formed completions, so the format's pieces are short tokens."""
    from agents.prompts import (
        FALLBACK_CHAT_TEMPLATE,  # noqa: F401  (the same markers as CHAT_TEMPLATE)
        REACT_INSTRUCTION,
        TOOL_SYSTEM,
        EpisodeState,
        build_messages,
    )

    examples = {
        "alfworld": (
            "put a clean apple in fridge",
            ["go to countertop 1", "take apple 1 from countertop 1"],
        ),
        "scienceworld": ("boil water", ["look around", "open door to kitchen", "focus on water"]),
        "webshop": ("i need a red shirt", ["search[red shirt]", "click[buy now]"]),
        "text": ("find the key", ["look", "inventory"]),
    }
    for family, (task, actions) in examples.items():
        info = {"task": task, "turn": 0, "admissible_actions": actions, "task_id": family}
        if family == "scienceworld":
            info["objects"] = ["water", "kitchen", "stove", "pot"]
        state = EpisodeState.start(f"You are in the {family} start.", info, family=family)
        for action in actions:
            state.record(f"<think>I should {action}.</think>\n<action>{action}</action>", action)
            state.observe(f"You did {action}.", info)
        for message in build_messages(state):
            yield message["content"]
        for action in actions:
            yield f"<think>\nThe task is to {task}. Next: {action}.\n</think>\n<action>{action}</action>"
    yield REACT_INSTRUCTION
    yield TOOL_SYSTEM
    yield '<tool_call>\n{"name": "add", "arguments": {"a": 1, "b": 2}}\n</tool_call>'
    yield "<tool_response>\n3\n</tool_response>"
    yield "The answer is \\boxed{3}. <answer>3</answer>"


def env_corpus(max_chars_per_file: int = 150_000) -> list[str]:
    """Text the environments produce: strings of their shipped data files, and prompt scaffolding.

    At most ``max_chars_per_file`` characters from each data file, so
    training stays fast; the order is fixed, so the tokenizer is reproducible.
    """
    texts = list(_scaffold_texts())
    # Each digit group often enough that BPE keeps all of them as tokens.
    texts.extend([" ".join(NUMBER_GROUPS)] * NUMBER_GROUP_REPEATS)
    for path in _env_data_files():
        budget = max_chars_per_file
        try:
            raw = path.read_text(encoding="utf-8")
            documents = (
                [json.loads(line) for line in raw.splitlines() if line.strip()]
                if path.suffix == ".jsonl"
                else [json.loads(raw)]
            )
        except (OSError, ValueError):
            continue  # a file being rewritten by someone else: skip it rather than fail
        for document in documents:
            for text in _strings(document):
                if budget <= 0:
                    break
                texts.append(text[:budget])
                budget -= len(text)
    return texts


@functools.lru_cache(maxsize=4)
def _trained_tokenizer_json(vocab_size: int, texts: tuple[str, ...] | None) -> str:
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(TAG_TOKENS),
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    corpus = list(texts) if texts is not None else env_corpus()
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.add_tokens(list(TAG_TOKENS))
    return tokenizer.to_str()


def train_tokenizer(texts: Iterable[str] | None = None, *, vocab_size: int = 4096) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` with Qwen's chat markers and template.

    ``texts`` default to :func:`env_corpus`. Training on the default corpus
    takes about a second and is cached per process.
    """
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 300:
        raise ValueError("vocab_size must be at least 300 (256 bytes plus special tokens)")
    frozen = tuple(texts) if texts is not None else None
    backend = Tokenizer.from_str(_trained_tokenizer_json(int(vocab_size), frozen))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=8192,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(
    size: str | TinySize = "tiny",
    tokenizer: Any | None = None,
    *,
    vocab_size: int | None = None,
    seed: int = 0,
    max_position_embeddings: int = 8192,
) -> Any:
    """A randomly initialised ``Qwen3ForCausalLM`` of the named size (seeded, float32).

    The vocabulary is the tokenizer's (or ``vocab_size``); end of sequence is
    ``<|im_end|>`` (and ``<|endoftext|>``), as in Qwen's chat models.
    """
    import torch
    from transformers import AutoModelForCausalLM, Qwen3Config

    if isinstance(size, str):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}; choose one of {list(SIZES)}")
        shape = SIZES[size]
    else:
        shape = size
    if tokenizer is None and vocab_size is None:
        tokenizer = train_tokenizer()
    vocab = int(vocab_size if vocab_size is not None else len(tokenizer))

    def token_id(token: str, fallback: int) -> int:
        if tokenizer is None:
            return fallback
        value = tokenizer.convert_tokens_to_ids(token)
        return int(value) if value is not None else fallback

    pad_id, eos_id = token_id("<|endoftext|>", 0), token_id("<|im_end|>", 2)
    config = Qwen3Config(
        vocab_size=vocab,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads,
        head_dim=shape.head_dim,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.generation_config.eos_token_id = [eos_id, pad_id]
    model.generation_config.pad_token_id = pad_id
    model.eval()
    return model


def build_tiny(size: str = "tiny", *, seed: int = 0, vocab_size: int = 4096) -> tuple[Any, Any]:
    """(model, tokenizer) of a named size, built offline."""
    tokenizer = train_tokenizer(vocab_size=vocab_size)
    return build_model(size, tokenizer, seed=seed), tokenizer


def save_tiny(
    path: str | Path, size: str = "tiny", *, seed: int = 0, vocab_size: int = 4096
) -> Path:
    """Build a model of ``size`` and save it with its tokenizer to the folder ``path``."""
    model, tokenizer = build_tiny(size, seed=seed, vocab_size=vocab_size)
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def load_tiny(path: str | Path) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder written by :func:`save_tiny` (or any local model)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tokenizer


def count_parameters(model: Any) -> int:
    """Distinct parameters (tied embeddings counted once)."""
    seen, total = set(), 0
    for parameter in model.parameters():
        if id(parameter) not in seen:
            seen.add(id(parameter))
            total += parameter.numel()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m agents.tiny",
        description="Build a tiny offline Qwen3 model and tokenizer and save them to a folder.",
    )
    parser.add_argument("--size", default="tiny", choices=list(SIZES))
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=4096)
    args = parser.parse_args(argv)
    path = save_tiny(args.out, args.size, seed=args.seed, vocab_size=args.vocab_size)
    model, _ = load_tiny(path)
    print(f"saved {args.size} model ({count_parameters(model) / 1e6:.2f}M parameters) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
