"""Ranking admissible actions: each candidate completion scored by its log-likelihood.

Instead of generating, an agent in rank mode scores every admissible action as a
completion after the prompt and takes the best. Each prompt runs once; its KV
cache is shared by all its candidates, which run in batches within the limits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from agents.hf.model import BatchLimits, CausalLM
from agents.prompts import action_completion

__all__ = ["rank_completions", "ranked_completion"]

#: (score, completion ids, per-token log-probs) of one candidate.
Ranked = tuple[float, list[int], list[float]]


def ranked_completion(
    action: str,
    family: str,
    *,
    encode: Callable[[str], list[int]],
    prefix: str | None = None,
    suffix: str | None = None,
    turn_end_id: int | None = None,
) -> tuple[str, list[int]]:
    """(text, token ids) of ``action`` as the completion rank mode scores.

    With ``prefix``/``suffix`` given, the action between them; else the format this
    project's models learn (``agents.prompts.action_completion``; a tool turn ends
    with ``turn_end_id``, the end-of-sequence token, as a generated one does).
    """
    if prefix is not None or suffix is not None:
        text = f"{prefix or ''}{action}{suffix or ''}"
        return text, encode(text)
    text = action_completion(action, family)
    ids = encode(text)
    if family == "tool" and turn_end_id is not None:
        ids = ids + [turn_end_id]
    return text, ids


@torch.inference_mode()
def rank_completions(
    lm: CausalLM,
    prompt_ids: Sequence[Sequence[int]],
    completions: Sequence[Sequence[list[int]]],
    *,
    normalise: str,
    limits: BatchLimits,
) -> list[list[Ranked]]:
    """Score every candidate completion (token ids) of every prompt.

    A candidate's score is the sum (``normalise="sum"``) or mean (``"mean"``) of its
    token log-probs after its prompt; results keep the candidates' order.
    """
    prompts = lm.check_ids(prompt_ids, "prompt_ids")
    if len(prompts) != len(completions):
        raise ValueError("rank_actions: one candidate list per prompt")
    ids, mask = lm.left_pad(prompts)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    logits, cache = lm.forward(
        ids, attention_mask=mask, position_ids=positions, cache=lm.new_cache(), keep_last=True
    )
    first_logprobs = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
    lengths = mask.sum(-1)
    items = [(p, list(c)) for p, candidates in enumerate(completions) for c in candidates]
    scored: list[Ranked] = []
    width = ids.shape[1]
    order = list(range(len(items)))
    for chunk in limits.chunks(order, [width + len(c) for _, c in items]):
        owners = torch.tensor([items[i][0] for i in chunk], device=lm.device)
        candidates = [items[i][1] for i in chunk]
        longest = max(len(c) for c in candidates)
        tokens = torch.full((len(chunk), longest), lm.pad_token_id, dtype=torch.long)
        token_mask = torch.zeros((len(chunk), longest), dtype=torch.long)
        for row, completion in enumerate(candidates):
            tokens[row, : len(completion)] = torch.tensor(completion)
            token_mask[row, : len(completion)] = 1
        tokens, token_mask = tokens.to(lm.device), token_mask.to(lm.device)
        later_logits, _ = lm.forward(
            tokens,
            attention_mask=torch.cat([mask[owners], token_mask], dim=1),
            position_ids=lengths[owners][:, None] + torch.arange(longest, device=lm.device)[None],
            cache=lm.select_rows(cache, owners),
        )
        later = torch.log_softmax(later_logits.float(), dim=-1)
        for row, completion in enumerate(candidates):
            values = [float(first_logprobs[owners[row], completion[0]])]
            for j in range(1, len(completion)):
                values.append(float(later[row, j - 1, completion[j]]))
            total = sum(values)
            score = total / len(values) if normalise == "mean" else total
            scored.append((score, completion, values))
    out: list[list[Ranked]] = [[] for _ in prompts]
    for (owner, _), result in zip(items, scored):
        out[owner].append(result)
    return out
