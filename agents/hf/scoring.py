"""Teacher scoring: per-token log-probs of given completions, and of whole trajectories.

``score_segments`` is the one entry point: log-probs of the tokens of given
(start, length) segments of given sequences, in batches whose composition and
padding do not change the result. ``logprobs`` scores completions after their
prompts; ``logprobs_trajectories`` scores the turns of trajectories, chaining
turns whose prompt extends the previous prompt and completion into one sequence,
so a trajectory costs as few forward passes as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from agents.hf.model import BatchLimits, CausalLM

__all__ = ["logprobs", "logprobs_trajectories", "score_segments"]


def logprobs(
    lm: CausalLM,
    prompt_ids: Sequence[Sequence[int]],
    completion_ids: Sequence[Sequence[int]],
    *,
    limits: BatchLimits,
) -> list[list[float]]:
    """Per-token log-probs (temperature 1) of each completion given its prompt.

    Items are batched by length within ``limits``; the result for an item does
    not depend on the other items (to 1e-4 in float32).
    """
    prompts = lm.check_ids(prompt_ids, "prompt_ids")
    completions = lm.check_ids(completion_ids, "completion_ids")
    if len(prompts) != len(completions):
        raise ValueError("logprobs: prompt_ids and completion_ids differ in length")
    for index, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"logprobs: prompt_ids[{index}] is empty; scoring needs context")
    sequences = [p + c for p, c in zip(prompts, completions)]
    segments = [[(len(p), len(c))] for p, c in zip(prompts, completions)]
    return [row[0] for row in _score(lm, sequences, segments, limits)]


def logprobs_trajectories(
    lm: CausalLM,
    prompt_ids: Sequence[Sequence[Sequence[int]]],
    completion_ids: Sequence[Sequence[Sequence[int]]],
    *,
    limits: BatchLimits,
) -> list[list[list[float]]]:
    """``logprobs`` for the turns of many trajectories, in as few forward passes as possible.

    Consecutive turns whose prompt starts with the previous prompt and
    completion form a chain, scored as one sequence (the last turn's prompt
    and completion); a turn that breaks the chain starts a new one. Chains of
    all trajectories are batched together. The result equals per-turn
    ``logprobs`` (to float32 noise).
    """
    if len(prompt_ids) != len(completion_ids):
        raise ValueError("logprobs_trajectories: prompt_ids and completion_ids differ in length")
    sequences: list[list[int]] = []
    segments: list[list[tuple[int, int]]] = []
    where: list[list[tuple[int, int]]] = []  # per trajectory, per turn: (sequence, segment)
    for t, (prompts, completions) in enumerate(zip(prompt_ids, completion_ids)):
        prompts = lm.check_ids(prompts, f"prompt_ids[{t}]")
        completions = lm.check_ids(completions, f"completion_ids[{t}]")
        if len(prompts) != len(completions):
            raise ValueError(f"trajectory {t}: prompts and completions differ in length")
        turn_places = []
        chained = False  # whether the last sequence belongs to this trajectory
        for prompt, completion in zip(prompts, completions):
            if not prompt:
                raise ValueError(f"trajectory {t}: a prompt is empty; scoring needs context")
            full = prompt + completion
            if chained and _extends(prompt, sequences[-1]):
                sequences[-1] = full  # earlier tokens are unchanged, so earlier spans hold
            else:
                sequences.append(full)
                segments.append([])
                chained = True
            segments[-1].append((len(prompt), len(completion)))
            turn_places.append((len(sequences) - 1, len(segments[-1]) - 1))
        where.append(turn_places)
    scored = _score(lm, sequences, segments, limits)
    return [[scored[s][k] for s, k in places] for places in where]


def score_segments(
    lm: CausalLM,
    sequences: Sequence[Sequence[int]],
    segments: Sequence[Sequence[tuple[int, int]]],
    *,
    limits: BatchLimits,
    top_n: int | None = None,
) -> list[list[list[Any]]]:
    """Log-probs of the tokens of each (start, length) segment of each sequence.

    ``result[i][k][j]`` is the log-prob of ``sequences[i][start + j]`` for the k-th
    segment of sequence i (``start`` >= 1: a token needs context). With ``top_n``
    (an int), each value is ``(logprob, rank, {token: logprob})``: the token's rank
    (1 = most likely) and the ``top_n`` most likely tokens at that position.
    """
    checked = lm.check_ids(sequences, "sequences")
    if len(segments) != len(checked):
        raise ValueError("score_segments: one list of segments per sequence")
    spans = [
        _checked_spans(index, len(seq), row)
        for index, (seq, row) in enumerate(zip(checked, segments))
    ]
    if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 0):
        raise ValueError(f"score_segments: top_n must be None or an integer >= 0, not {top_n!r}")
    return _score(lm, checked, spans, limits, top_n)


def _checked_spans(
    index: int, size: int, segments: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    spans = []
    for segment in segments:
        try:
            start, length = (int(x) for x in segment)
        except (TypeError, ValueError):
            raise ValueError(
                f"score_segments: sequence {index} has a segment {segment!r} that is not "
                "a (start, length) pair of integers"
            ) from None
        if not (start >= 1 and length >= 0 and start + length <= size):
            raise ValueError(
                f"score_segments: segment ({start}, {length}) of sequence {index} is not "
                f"within its {size} tokens after the first"
            )
        spans.append((start, length))
    return spans


def _score(
    lm: CausalLM,
    sequences: list[list[int]],
    segments: list[list[tuple[int, int]]],
    limits: BatchLimits,
    top_n: int | None = None,
) -> list[list[list[Any]]]:
    results: list[list[list[Any]] | None] = [None] * len(sequences)
    scored = [i for i in range(len(sequences)) if any(length for _, length in segments[i])]
    for i in set(range(len(sequences))) - set(scored):
        results[i] = [[] for _ in segments[i]]
    order = sorted(scored, key=lambda i: len(sequences[i]))
    for chunk in limits.chunks(order, [len(s) for s in sequences]):
        rows = _score_rows(lm, [sequences[i] for i in chunk], [segments[i] for i in chunk], top_n)
        for i, row in zip(chunk, rows):
            results[i] = row
    return [r if r is not None else [] for r in results]


@torch.inference_mode()
def _score_rows(
    lm: CausalLM,
    sequences: list[list[int]],
    segments: list[list[tuple[int, int]]],
    top_n: int | None = None,
) -> list[list[list[Any]]]:
    """Log-probs of the segments' tokens of one batch (the contract of ``score_segments``).

    Rows are right-padded and run without an attention mask: causal
    attention never lets a real token see the padding after it, so each
    row's values are those of the row alone, and the model keeps its fast
    unmasked attention path (a padding mask costs twice the time on long
    rows). Only the positions that predict a scored token go through the
    LM head (a boolean ``logits_to_keep`` where the model supports it, else
    the shortest tail that covers them).
    """
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), lm.pad_token_id, dtype=torch.long)
    select = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, (sequence, spans) in enumerate(zip(sequences, segments)):
        ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
        for start, length in spans:
            if length:
                select[row, start - 1 : start + length - 1] = True
    ids, select = ids.to(lm.device), select.to(lm.device)
    targets = torch.zeros_like(ids)
    targets[:, :-1] = ids[:, 1:]
    wanted = targets[select]
    logits = lm.selected_logits(ids, select)
    table = torch.log_softmax(logits.float(), dim=-1)
    chosen = table.gather(1, wanted[:, None]).squeeze(1)
    values: list[Any] = chosen.tolist()
    if top_n is not None:
        ranks = ((table > chosen[:, None]).sum(dim=-1) + 1).tolist()
        if top_n > 0:
            top_values, top_ids = table.topk(min(top_n, table.shape[-1]), dim=-1)
            tops = [dict(zip(i, v)) for i, v in zip(top_ids.tolist(), top_values.tolist())]
        else:
            tops = [{} for _ in values]
        values = list(zip(values, ranks, tops))
    out: list[list[list[float]]] = []
    cursor = 0
    for row, spans in enumerate(segments):
        # The boolean selection is read row by row, left to right (ascending positions).
        selected = select[row].nonzero().flatten().tolist()
        at = {position: values[cursor + k] for k, position in enumerate(selected)}
        cursor += len(selected)
        out.append([[at[start - 1 + j] for j in range(length)] for start, length in spans])
    return out


def _extends(prompt: list[int], previous: list[int]) -> bool:
    """Whether ``prompt`` starts with all of ``previous`` (the last prompt plus completion)."""
    return len(prompt) >= len(previous) and prompt[: len(previous)] == previous
