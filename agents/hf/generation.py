"""Batched sampling with a KV cache: ``generate`` completes token-id prompts.

Rows are sorted by length and run in batches within :class:`~agents.hf.model.BatchLimits`,
left-padded, with one KV cache per batch. Each row samples from its own seeded
generator and every sampling operation works row by row, so a row's completion
does not depend on the other rows of its batch. A row stops at an end-of-sequence
token, a stop string, or ``max_new_tokens``, and then leaves the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from agents.hf.model import BatchLimits, CausalLM, cache_tensors, pad_left

__all__ = ["Generation", "SamplingParams", "StopMatcher", "generate", "sample"]


@dataclass(frozen=True)
class SamplingParams:
    """How one completion is sampled.

    ``temperature=0`` is greedy decoding. ``top_p`` < 1 keeps the smallest set
    of tokens whose probability reaches ``top_p``; ``top_k`` > 0 keeps the
    ``top_k`` most likely. ``stop`` strings end the completion (the token that
    completes one is kept). ``seed`` makes the draw reproducible.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (self.temperature >= 0 and math.isfinite(self.temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, not {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, not {self.top_k}")
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, not {self.max_new_tokens}")


@dataclass
class Generation:
    """One sampled completion.

    ``logprobs[i]``: log-probability at temperature 1 of ``token_ids[i]``.
    ``finish_reason``: ``"stop"`` (a stop string or end of sequence) or
    ``"length"``. ``stop_reason``: the stop string matched, the end-of-sequence
    token id, or None (length). ``top_logprobs[i]``: the most likely tokens at
    step i with their log-probs, when asked for.
    """

    token_ids: list[int]
    logprobs: list[float]
    text: str
    finish_reason: str
    stop_reason: str | int | None = None
    top_logprobs: list[dict[int, float]] | None = None


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    top: list[dict[int, float]] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: str | int | None = None


class StopMatcher:
    """Finds stop strings at the end of a completion's tokens (keeps a per-token text cache)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self._token_texts: dict[int, str] = {}

    def match(self, ids: list[int], stops: tuple[str, ...], longest: int) -> str | None:
        """The stop string the last tokens of ``ids`` complete, if any (``longest``: the
        longest stop string's length in bytes)."""
        endings = {stop[-1] for stop in stops if stop}
        if all(ending.isascii() for ending in endings):
            # An ASCII character never splits across tokens: a token that does not hold the
            # last character of a stop string cannot complete one (saves a decode per row).
            text = self._token_texts.get(ids[-1])
            if text is None:
                text = self._token_texts[ids[-1]] = self.tokenizer.decode(
                    [ids[-1]], skip_special_tokens=False
                )
            if not any(ending in text for ending in endings):
                return None
        # A token holds at least one byte, so the last `longest + 1` tokens cover any stop string.
        tail = self.tokenizer.decode(ids[-(longest + 1) :], skip_special_tokens=False)
        for stop in stops:
            if stop and stop in tail:
                return stop
        return None


def generate(
    lm: CausalLM,
    stops: StopMatcher,
    prompt_ids: Sequence[Sequence[int]],
    params: SamplingParams | Sequence[SamplingParams],
    *,
    eos_token_ids: set[int],
    limits: BatchLimits,
    fresh_seed: Callable[[], int],
    top_logprobs: int = 0,
) -> list[Generation]:
    """Complete each prompt (token ids); rows are batched, left-padded, with a KV cache.

    ``params``: one ``SamplingParams`` for all rows or one per row; a row without a seed
    gets ``fresh_seed()``. ``top_logprobs``: also return the n most likely tokens at each
    step. ``stops.tokenizer`` decodes the completions.
    """
    prompts = lm.check_ids(prompt_ids, "prompt_ids")
    if any(not p for p in prompts):
        raise ValueError("generate: every prompt needs at least one token")
    row_params = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
    if len(row_params) != len(prompts):
        raise ValueError("generate: one SamplingParams per prompt, or a single one")
    row_params = [
        p if p.seed is not None else SamplingParams(**{**p.__dict__, "seed": fresh_seed()})
        for p in row_params
    ]
    results: list[Generation | None] = [None] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for chunk in limits.chunks(
        order, [len(p) + q.max_new_tokens for p, q in zip(prompts, row_params)]
    ):
        generations = _generate_batch(
            lm,
            stops,
            [prompts[i] for i in chunk],
            [row_params[i] for i in chunk],
            top_logprobs,
            eos_token_ids,
        )
        for i, generation in zip(chunk, generations):
            results[i] = generation
    return [g for g in results if g is not None]


@torch.inference_mode()
def _generate_batch(
    lm: CausalLM,
    stops: StopMatcher,
    prompts: list[list[int]],
    params: list[SamplingParams],
    top_n: int,
    eos_token_ids: set[int],
) -> list[Generation]:
    device = lm.device
    cache, logits, mask = _prefill(lm, prompts)
    next_position = mask.sum(-1)
    rows = [_Row() for _ in prompts]
    active = list(range(len(prompts)))
    generators = [torch.Generator().manual_seed(int(p.seed or 0) & ((1 << 63) - 1)) for p in params]
    longest_stop = max((len(s.encode()) for p in params for s in p.stop), default=0)
    for _step in range(max(p.max_new_tokens for p in params)):
        logprobs = torch.log_softmax(logits, dim=-1)
        tokens = sample(logits, [params[r] for r in active], [generators[r] for r in active])
        chosen = logprobs.gather(1, tokens[:, None]).squeeze(1).tolist()
        if top_n:
            top_values, top_ids = logprobs.topk(min(top_n, logprobs.shape[-1]), dim=-1)
        keep: list[int] = []
        for j, row_index in enumerate(active):
            row, p = rows[row_index], params[row_index]
            token = int(tokens[j])
            row.ids.append(token)
            row.logprobs.append(float(chosen[j]))
            if top_n:
                row.top.append(
                    {int(t): float(v) for t, v in zip(top_ids[j].tolist(), top_values[j].tolist())}
                )
            if token in eos_token_ids:
                row.finish_reason, row.stop_reason = "stop", token
            elif p.stop and (matched := stops.match(row.ids, p.stop, longest_stop)):
                row.finish_reason, row.stop_reason = "stop", matched
            elif len(row.ids) >= p.max_new_tokens:
                row.finish_reason = "length"
            else:
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(active):
            # Finished rows leave the batch: the remaining rows do less work.
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_position, tokens = mask[index], next_position[index], tokens[index]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        step_logits, cache = lm.forward(
            tokens[:, None].to(device),
            attention_mask=mask,
            position_ids=next_position[:, None],
            cache=cache,
        )
        next_position = next_position + 1
        logits = step_logits[:, -1, :].float()
    generations = []
    for row in rows:
        generations.append(
            Generation(
                token_ids=row.ids,
                logprobs=row.logprobs,
                text=stops.tokenizer.decode(row.ids, skip_special_tokens=True),
                finish_reason=row.finish_reason or "length",
                stop_reason=row.stop_reason,
                top_logprobs=row.top if top_n else None,
            )
        )
    return generations


def _prefill(lm: CausalLM, prompts: list[list[int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """(KV cache, last logits, attention mask) of left-padded prompts.

    Rows of different lengths are run one by one and their caches padded on
    the left: an unpadded row takes the model's fast unmasked attention path,
    and its cache is exactly that of a prompt run alone. Models whose cache
    is not plain (sliding windows, other layouts) are run as one padded batch.
    """
    ids, mask = lm.left_pad(prompts)
    width = ids.shape[1]
    if len(prompts) > 1 and len({len(p) for p in prompts}) > 1 and lm.plain_cache():
        caches, last = [], []
        for prompt in prompts:
            logits, cache = lm.forward(
                torch.tensor([prompt], device=lm.device), cache=lm.new_cache(), keep_last=True
            )
            caches.append(cache_tensors(cache))
            last.append(logits[:, -1, :])
        cache = lm.new_cache()
        for layer in range(len(caches[0])):
            keys = torch.cat([pad_left(c[layer][0], width) for c in caches], dim=0)
            values = torch.cat([pad_left(c[layer][1], width) for c in caches], dim=0)
            cache.update(keys, values, layer)
        return cache, torch.cat(last, dim=0).float(), mask
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits, cache = lm.forward(
        ids, attention_mask=mask, position_ids=positions, cache=lm.new_cache(), keep_last=True
    )
    return cache, logits[:, -1, :].float(), mask


def sample(
    logits: torch.Tensor, params: list[SamplingParams], generators: list[torch.Generator]
) -> torch.Tensor:
    """One token per row: greedy rows take the argmax, the others draw from their own
    generator after temperature, top-k and top-p. Every operation works row by row,
    so a row's token does not depend on the other rows."""
    tokens = logits.argmax(dim=-1).cpu()
    rows = [j for j, p in enumerate(params) if p.temperature > 0]
    if not rows:
        return tokens
    index = torch.tensor(rows)
    scores = logits.detach().float().cpu()[index]
    vocab = scores.shape[-1]
    scores = scores / torch.tensor([params[j].temperature for j in rows])[:, None]
    top_k = [params[j].top_k if 0 < params[j].top_k < vocab else 0 for j in rows]
    if any(top_k):
        best = scores.topk(max(top_k), dim=-1).values
        floor = torch.tensor(
            [best[r, k - 1].item() if k else float("-inf") for r, k in enumerate(top_k)]
        )
        scores = scores.masked_fill(scores < floor[:, None], float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    top_p = torch.tensor([params[j].top_p if params[j].top_p < 1 else 2.0 for j in rows])
    if bool((top_p < 1).any()):
        ordered, order = probs.sort(dim=-1, descending=True)
        before = ordered.cumsum(dim=-1) - ordered
        ordered = ordered.masked_fill(before >= top_p[:, None], 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, ordered)
    cdf = probs.double().cumsum(dim=-1)
    draws = torch.stack(
        [torch.rand((), generator=generators[j], dtype=torch.float64) for j in rows]
    )
    picked = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None], right=True).squeeze(1)
    picked = picked.clamp(max=vocab - 1)
    empty = probs.gather(1, picked[:, None]).squeeze(1) <= 0  # rounding at the very top
    if bool(empty.any()):
        picked[empty] = probs[empty].argmax(dim=-1)
    tokens[index] = picked
    return tokens
