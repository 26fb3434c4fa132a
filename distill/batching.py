"""From recorded turns to padded tensors, and the student's log-probs of completion tokens.

Every loss works on ``Example`` objects: one turn's prompt and completion ids,
which loss it gets, and the per-token quantities that loss needs. ``collate``
right-pads completions into ``[batch, tokens]`` tensors with a mask that is 1
exactly on completion tokens (prompts, observations and tool responses are
never trained on). ``completion_logprobs`` runs the student over
prompt + completion and returns the log-probs of the completion tokens,
aligned with those tensors (with gradient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

__all__ = ["Batch", "Example", "collate", "completion_logprobs"]

#: Loss kinds a turn can get: on-policy reverse KL (OPD's surrogate), forward KL
#: (NLL of the turn's tokens), GRPO's policy gradient, or nothing.
LOSS_KINDS = ("reverse_kl", "forward_kl", "policy_gradient", "none")


@dataclass
class Example:
    """One trained turn."""

    prompt_ids: list[int]
    completion_ids: list[int]
    loss: str  # one of LOSS_KINDS
    weight: float = 1.0
    logp_old: list[float] | None = None  # sampling log-probs of the completion (pi_old)
    logp_teacher: list[float] | None = None
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
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"unknown loss kind {self.loss!r}; choose one of {list(LOSS_KINDS)}")
        n = len(self.completion_ids)
        for name in ("logp_old", "logp_teacher", "token_mask"):
            values = getattr(self, name)
            if values is not None and len(values) != n:
                raise ValueError(f"{name} has {len(values)} values for {n} completion tokens")


@dataclass
class Batch:
    """Padded ``[batch, tokens]`` tensors over completion tokens."""

    examples: list[Example]
    mask: torch.Tensor
    logp_old: torch.Tensor
    logp_teacher: torch.Tensor
    advantages: torch.Tensor  # [batch]
    weights: torch.Tensor  # [batch, tokens]: the example's weight on its tokens
    kinds: list[str]

    def kind_mask(self, kind: str) -> torch.Tensor:
        rows = torch.tensor([k == kind for k in self.kinds], dtype=self.mask.dtype)
        return self.mask * rows[:, None]


def collate(examples: Sequence[Example]) -> Batch:
    examples = [e for e in examples if e.completion_ids and e.loss != "none"]
    width = max((len(e.completion_ids) for e in examples), default=0)
    n = len(examples)
    mask = torch.zeros(n, width)
    logp_old = torch.zeros(n, width)
    logp_teacher = torch.zeros(n, width)
    weights = torch.zeros(n, width)
    for i, example in enumerate(examples):
        length = len(example.completion_ids)
        mask[i, :length] = 1.0 if example.token_mask is None else torch.tensor(example.token_mask)
        weights[i, :length] = example.weight * mask[i, :length]
        if example.logp_old is not None:
            logp_old[i, :length] = torch.tensor(example.logp_old)
        if example.logp_teacher is not None:
            logp_teacher[i, :length] = torch.tensor(example.logp_teacher)
    advantages = torch.tensor([e.advantage for e in examples], dtype=torch.float32)
    return Batch(
        examples, mask, logp_old, logp_teacher, advantages, weights, [e.loss for e in examples]
    )


#: Model types whose logits are exactly ``lm_head(last hidden state)`` (no soft-capping or
#: scaling), so the head may be applied to the trained positions alone.
PLAIN_HEAD_MODEL_TYPES = frozenset({"qwen2", "qwen3", "qwen2_moe", "qwen3_moe", "llama", "mistral"})


def completion_logprobs(
    model: torch.nn.Module,
    examples: Sequence[Example],
    *,
    pad_id: int = 0,
    return_logits: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs ``[batch, tokens]`` of each example's completion tokens under ``model``.

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
    examples = [e for e in examples if e.completion_ids and e.loss != "none"]
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
    (a DistributedDataParallel wrapper must see the forward to synchronise gradients)."""
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
