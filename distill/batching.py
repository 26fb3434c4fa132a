"""From recorded turns to padded tensors, and the student's log-probs of completion tokens.

Every method's loss works on ``Example`` objects: one turn's prompt and
completion ids, who wrote the completion (``actor``: the student, the
teacher, the expert ...), and the per-token quantities a loss may need (the
sampler's and the teacher's log-probs, the rollout's advantage). ``collate``
right-pads completions into ``[batch, tokens]`` tensors with a mask that is 1
exactly on the completion tokens trained (prompts, observations and tool
responses never are); ``Batch.actor_mask`` restricts it to one actor's turns.
``completion_logprobs`` runs a model over prompt + completion and returns the
log-probs of the completion tokens, aligned with those tensors (with gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["Batch", "Example", "collate", "completion_logprobs"]


@dataclass
class Example:
    """One trained turn (or, packed, several turns of one actor in one sequence)."""

    prompt_ids: list[int]
    completion_ids: list[int]
    actor: str = "student"  # who wrote the completion: student, teacher, expert, replay
    logp_old: list[float] | None = None  # the sampling student's log-probs (student turns)
    logp_teacher: list[float] | None = None  # the teacher's log-probs of these tokens
    advantage: float = 0.0  # GRPO: the rollout's group-normalised advantage
    meta: dict = field(default_factory=dict)
    # 1 for the completion tokens trained, 0 for those only read (a packed trajectory's
    # observations between its turns); None: every token is trained
    token_mask: list[float] | None = None

    @property
    def trained_tokens(self) -> float:
        """How many completion tokens the loss trains (the token-mean's denominator)."""
        return float(len(self.completion_ids) if self.token_mask is None else sum(self.token_mask))

    def __post_init__(self) -> None:
        n = len(self.completion_ids)
        for name in ("logp_old", "logp_teacher", "token_mask"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} values for {n} completion tokens")


@dataclass
class Batch:
    """Padded ``[batch, tokens]`` tensors over completion tokens."""

    examples: list[Example]
    mask: torch.Tensor  # 1 on the trained completion tokens
    logp_old: torch.Tensor  # 0 where a row has none (``has_old``)
    has_old: torch.Tensor  # [batch] bool: the row carries its sampler's log-probs
    logp_teacher: torch.Tensor
    advantages: torch.Tensor  # [batch]
    actors: list[str]

    def actor_mask(self, actor: str) -> torch.Tensor:
        """``mask`` on the rows whose completion ``actor`` wrote, 0 elsewhere."""
        rows = torch.tensor([a == actor for a in self.actors], dtype=self.mask.dtype)
        return self.mask * rows.to(self.mask.device)[:, None]

    def old_logprobs(self, logp: torch.Tensor) -> torch.Tensor:
        """log pi_old: the sampler's log-probs where recorded; elsewhere (turns sampled by
        someone else) the current student's, detached: with one update per rollout that
        is the sampling policy."""
        has_old = self.has_old.to(logp.device)[:, None]
        return torch.where(has_old, self.logp_old.to(logp.device), logp.detach())


def collate(examples: Sequence[Example]) -> Batch:
    examples = [e for e in examples if e.completion_ids]
    width = max((len(e.completion_ids) for e in examples), default=0)
    n = len(examples)
    mask = torch.zeros(n, width)
    logp_old = torch.zeros(n, width)
    logp_teacher = torch.zeros(n, width)
    for i, example in enumerate(examples):
        length = len(example.completion_ids)
        mask[i, :length] = 1.0 if example.token_mask is None else torch.tensor(example.token_mask)
        if example.logp_old is not None:
            logp_old[i, :length] = torch.tensor(example.logp_old)
        if example.logp_teacher is not None:
            logp_teacher[i, :length] = torch.tensor(example.logp_teacher)
    has_old = torch.tensor([e.logp_old is not None for e in examples], dtype=torch.bool)
    advantages = torch.tensor([e.advantage for e in examples], dtype=torch.float32)
    return Batch(
        examples, mask, logp_old, has_old, logp_teacher, advantages, [e.actor for e in examples]
    )


#: Model types whose logits are exactly ``lm_head(last hidden state)`` (no soft-capping or
#: scaling), so the head may be applied to the trained positions alone.
PLAIN_HEAD_MODEL_TYPES = frozenset({"qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "llama", "mistral"})


def completion_logprobs(
    model: torch.nn.Module,
    examples: Batch | Sequence[Example],
    *,
    pad_id: int = 0,
    return_logits: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs ``[batch, tokens]`` of each example's completion tokens under ``model``
    (``examples``: a ``Batch`` or its examples, rows in the same order).

    Rows are left-padded with explicit position ids, so every completion ends
    at the last position and the model computes logits only for the last
    ``longest completion + 1`` positions (prompts are long, completions short:
    full-length logits would dominate memory and time). With ``return_logits``
    those logits come back too (``[batch, tokens, vocab]``, aligned with the
    completion tokens), for the full-vocabulary KL.

    Packed trajectories train a minority of their completion tokens (the
    observations between turns are read, not trained): then, for plain-head
    models, the head runs on the trained positions alone, and the log-prob of
    a token outside ``token_mask`` is 0 (every loss masks it out).
    """
    if isinstance(examples, Batch):
        examples = examples.examples
    examples = [e for e in examples if e.completion_ids]
    sequences = [e.prompt_ids + e.completion_ids for e in examples]
    longest = max(len(s) for s in sequences)
    width = max(len(e.completion_ids) for e in examples)
    device = next(model.parameters()).device
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention = torch.zeros(len(sequences), longest, dtype=torch.long)
    for i, sequence in enumerate(sequences):
        input_ids[i, longest - len(sequence) :] = torch.tensor(sequence)
        attention[i, longest - len(sequence) :] = 1
    positions = (attention.cumsum(-1) - 1).clamp(min=0)
    inputs = {
        "input_ids": input_ids.to(device),
        "attention_mask": attention.to(device),
        "position_ids": positions.to(device),
    }
    keep = width + 1
    trained = sum(e.trained_tokens for e in examples)
    if not return_logits and trained < 0.75 * len(examples) * keep and _plain_head(model):
        return _trained_logprobs(model, examples, inputs, longest, width), None
    logits = model(**inputs, logits_to_keep=keep).logits.float()
    logits = logits[:, -keep:]  # models that ignore logits_to_keep return every position
    out = torch.zeros(len(examples), width, device=device)
    picked = (
        torch.zeros(len(examples), width, logits.shape[-1], device=device)
        if return_logits
        else None
    )
    for i, example in enumerate(examples):
        length = len(example.completion_ids)
        # Position p predicts token p + 1: the completion's tokens (the last `length`)
        # are predicted from the `length` positions before the final one.
        step_logits = logits[i, keep - 1 - length : keep - 1]
        targets = torch.tensor(example.completion_ids, device=device)
        out[i, :length] = (
            torch.log_softmax(step_logits, dim=-1).gather(-1, targets[:, None]).squeeze(-1)
        )
        if picked is not None:
            picked[i, :length] = step_logits
    return out, picked


def _plain_head(model: torch.nn.Module) -> bool:
    """Whether the head may run on chosen positions: a plain-head causal LM, not wrapped
    (a DistributedDataParallel wrapper must see the forward to synchronise gradients, and
    an FSDP-sharded root to gather its embeddings and head)."""
    from torch.distributed.fsdp import FSDPModule

    if isinstance(model, FSDPModule):
        return False
    config = getattr(model, "config", None)
    return (
        getattr(config, "model_type", None) in PLAIN_HEAD_MODEL_TYPES
        and hasattr(model, "get_decoder")
        and model.get_output_embeddings() is not None
    )


def _trained_logprobs(
    model: torch.nn.Module,
    examples: Sequence[Example],
    inputs: dict[str, torch.Tensor],
    longest: int,
    width: int,
) -> torch.Tensor:
    """``completion_logprobs`` with the head applied only where ``token_mask`` trains."""
    device = inputs["input_ids"].device
    hidden = model.get_decoder()(**inputs, use_cache=False).last_hidden_state
    rows, columns, slots, targets = [], [], [], []
    for i, example in enumerate(examples):
        length = len(example.completion_ids)
        mask = (
            torch.ones(length) if example.token_mask is None else torch.tensor(example.token_mask)
        )
        kept = mask.nonzero().squeeze(-1)  # completion indices that are trained
        rows.append(torch.full_like(kept, i))
        columns.append(kept + (longest - 1 - length))  # position p predicts token p + 1
        slots.append(kept)
        targets.append(torch.tensor(example.completion_ids)[kept])
    out = torch.zeros(len(examples), width, device=device)
    row, slot = torch.cat(rows).to(device), torch.cat(slots).to(device)
    if not len(row):
        return out + 0.0 * hidden.sum()  # keeps the graph for a backward call
    logits = model.get_output_embeddings()(hidden[row, torch.cat(columns).to(device)])
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(-1, torch.cat(targets).to(device)[:, None]).squeeze(-1)
    return out.index_put((row, slot), picked)
