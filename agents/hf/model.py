"""``CausalLM``: one ``transformers`` causal LM behind the few calls generation, scoring and ranking make.

What differs between transformers versions and models is handled here, once:

* the forward's cache argument: ``cache`` where the model names it so (transformers 5.x, which
  deprecates ``past_key_values`` and warns on every call that uses it), else ``past_key_values``;
  found once from the forward's signature, and the returned cache is read under the name the
  output class declares;
* ``logits_to_keep``: a boolean position mask where the model supports one, else a tail length,
  else all logits (probed on first use);
* the KV cache: a ``DynamicCache`` whose plain layers grow in place (:func:`growing_layer_class`)
  and whose rows can be selected or left-padded.

``BatchLimits`` splits rows into forward passes within a row and padded-token budget.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

__all__ = ["BatchLimits", "CausalLM", "growing_layer_class"]


@dataclass(frozen=True)
class BatchLimits:
    """Bounds on one forward pass: ``rows``, and ``tokens`` (rows x padded length)."""

    rows: int
    tokens: int

    def chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive groups of ``order`` within the row and padded-token budgets."""
        chunks: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order:
            size = max(longest, lengths[index])
            if current and (
                len(current) + 1 > self.rows or size * (len(current) + 1) > self.tokens
            ):
                chunks.append(current)
                current, size = [], lengths[index]
            current.append(index)
            longest = size
        if current:
            chunks.append(current)
        return chunks


class CausalLM:
    """A loaded causal LM (``model``) and the padding token its batches use (``pad_token_id``)."""

    def __init__(self, model: Any, pad_token_id: int) -> None:
        self.model = model
        self.pad_token_id = int(pad_token_id)
        parameters = inspect.signature(model.forward).parameters
        # Where the forward names ``cache`` (transformers 5.x), ``past_key_values`` is deprecated.
        self.cache_argument = "cache" if "cache" in parameters else "past_key_values"
        self._keep_mode = "unprobed" if "logits_to_keep" in parameters else "none"
        self._cache_is_plain: bool | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[0])

    def check_ids(self, sequences: Sequence[Sequence[int]], what: str) -> list[list[int]]:
        """``sequences`` as lists of ints, or a ValueError naming the first bad one."""
        vocab = self.vocab_size
        checked = []
        for index, sequence in enumerate(sequences):
            try:
                ids = [int(x) for x in sequence]
            except (TypeError, ValueError):
                raise ValueError(f"{what}[{index}] is not a list of token ids") from None
            if any(x < 0 or x >= vocab for x in ids):
                raise ValueError(
                    f"{what}[{index}] has token ids outside the vocabulary (0..{vocab - 1})"
                )
            checked.append(ids)
        return checked

    # -- the forward pass ---------------------------------------------------------------

    def forward(
        self,
        input_ids: torch.Tensor,
        *,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        cache: Any = None,
        keep_last: bool = False,
    ) -> tuple[torch.Tensor, Any]:
        """(logits, cache) of one forward pass; with ``cache`` the model reads and extends it.

        ``keep_last``: only the last position's logits are needed (the LM head runs on it
        alone where the model allows).
        """
        kwargs: dict[str, Any] = {"input_ids": input_ids}
        if attention_mask is not None:
            kwargs["attention_mask"] = attention_mask
        if position_ids is not None:
            kwargs["position_ids"] = position_ids
        if cache is not None:
            kwargs[self.cache_argument] = cache
            kwargs["use_cache"] = True
        if keep_last and self.accepts_keep():
            kwargs["logits_to_keep"] = 1
        output = self.model(**kwargs)
        return output.logits, (_returned_cache(output) if cache is not None else None)

    def accepts_keep(self) -> bool:
        """Whether the forward takes ``logits_to_keep``."""
        return self._keep_mode != "none"

    def selected_logits(self, ids: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """Logits (n_selected, vocab) at the ``select`` positions, row-major (no padding mask)."""
        if self.accepts_keep() and self._keep_mode in ("unprobed", "mask"):
            logits = self.model(input_ids=ids, logits_to_keep=select).logits
            if logits.dim() == 2 and logits.shape[0] == int(select.sum()):
                self._keep_mode = "mask"
                return logits
            self._keep_mode = "tail"  # an older model or library: keep a tail instead
        columns = select.any(dim=0).nonzero()
        first = int(columns.min()) if columns.numel() else ids.shape[1] - 1
        if self.accepts_keep():
            logits = self.model(input_ids=ids, logits_to_keep=ids.shape[1] - first).logits
        else:
            logits = self.model(input_ids=ids).logits[:, first:, :]
        return logits[select[:, first:]]

    # -- padding and the KV cache -------------------------------------------------------

    def left_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, attention mask) of ``sequences`` padded on the left, on the model's device."""
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            if sequence:
                ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
                mask[row, width - len(sequence) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def new_cache(self) -> Any:
        """A KV cache; plain layers grow in place (see :func:`growing_layer_class`)."""
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56
            return DynamicCache()
        layers = getattr(cache, "layers", None)
        grow = growing_layer_class()
        if grow is not None and layers and all(type(x).__name__ == "DynamicLayer" for x in layers):
            cache.layers = [grow() for _ in layers]
        return cache

    def plain_cache(self) -> bool:
        """Whether the model's cache is a list of growing (key, value) layers (probed once)."""
        if self._cache_is_plain is None:
            cache = self.new_cache()
            layers = getattr(cache, "layers", None)
            grow = growing_layer_class()
            self._cache_is_plain = bool(layers) and all(
                type(layer).__name__ == "DynamicLayer" or (grow is not None and type(layer) is grow)
                for layer in layers
            )
        return self._cache_is_plain

    def select_rows(self, cache: Any, rows: torch.Tensor) -> Any:
        """A new cache holding ``rows`` of ``cache`` (rows may repeat); ``cache`` is unchanged."""
        if self.plain_cache():
            selected = self.new_cache()
            for layer, (keys, values) in enumerate(cache_tensors(cache)):
                selected.update(keys[rows], values[rows], layer)
            return selected
        selected = copy.deepcopy(cache)
        selected.batch_select_indices(rows)
        return selected


def _returned_cache(output: Any) -> Any:
    # Read the field the output class declares: the other name is a deprecated alias that warns.
    fields = getattr(type(output), "__dataclass_fields__", {})
    return output.cache if "cache" in fields else output.past_key_values


def cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer, each ``[batch, heads, length, head_dim]``."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """``tensor`` (``[..., length, dim]``) with zeros before it up to ``width`` positions."""
    missing = width - tensor.shape[-2]
    if missing <= 0:
        return tensor
    shape = (*tensor.shape[:-2], missing, tensor.shape[-1])
    return torch.cat([tensor.new_zeros(shape), tensor], dim=-2)


_GROWING_LAYER: list[Any] = []


def growing_layer_class() -> Any:
    """A ``DynamicLayer`` that appends into spare capacity instead of concatenating.

    ``DynamicLayer`` copies the whole cache at every generated token
    (``torch.cat``); with 8 rows that copy was ~45% of a decoding step of the
    ``small`` model on CPU. This layer keeps a buffer with room to grow (x1.5)
    and hands attention a view of its filled part. When other code replaces
    ``keys`` (batch selection, cropping), the next update starts a new buffer
    from them. None when this transformers version has no ``DynamicLayer``.
    """
    if _GROWING_LAYER:
        return _GROWING_LAYER[0]
    try:
        from transformers.cache_utils import DynamicLayer
    except ImportError:
        _GROWING_LAYER.append(None)
        return None

    class GrowingLayer(DynamicLayer):
        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            super().lazy_initialization(key_states, value_states)
            self._key_buffer: torch.Tensor | None = None
            self._value_buffer: torch.Tensor | None = None
            self._view: torch.Tensor | None = None

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            filled = self.keys.shape[-2] if self.keys.numel() else 0
            needed = filled + key_states.shape[-2]
            buffer = self._key_buffer
            if (
                buffer is None
                or self.keys is not self._view
                or needed > buffer.shape[-2]
                or buffer.shape[0] != key_states.shape[0]
            ):
                capacity = needed + max(128, needed // 2)
                keys = key_states.new_empty((*key_states.shape[:2], capacity, key_states.shape[-1]))
                values = value_states.new_empty(
                    (*value_states.shape[:2], capacity, value_states.shape[-1])
                )
                if filled:
                    keys[..., :filled, :] = self.keys
                    values[..., :filled, :] = self.values
                self._key_buffer, self._value_buffer = keys, values
            assert self._key_buffer is not None and self._value_buffer is not None
            self._key_buffer[..., filled:needed, :] = key_states
            self._value_buffer[..., filled:needed, :] = value_states
            self.keys = self._key_buffer[..., :needed, :]
            self.values = self._value_buffer[..., :needed, :]
            self._view = self.keys
            return self.keys, self.values

    _GROWING_LAYER.append(GrowingLayer)
    return GrowingLayer
