"""``HFAgent``: any Hugging Face ``transformers`` causal LM as an agent, student or teacher.

What it does:

* **acts** (``act``, ``act_batch``): builds each env's prompt (``agents.prompts``),
  generates for all of them in one left-padded batch with a KV cache, stops a
  row at ``</action>`` or end of sequence, and parses the action
  (``agents.parsing``). Sampling is seeded per row from (seed, task, episode,
  turn), so an episode's actions do not depend on which other episodes share
  its batch;
* **records** every turn (``last_turn`` / ``last_turns``: an ``AgentTurn``
  with prompt and completion token ids and the completion's per-token
  log-probs at temperature 1);
* **ranks** instead of generating when ``mode="rank"``: every admissible
  action is scored by its log-likelihood after the prompt (all candidates in
  batched passes over one cached prompt prefix) and the best is taken;
* **scores** given completions (``logprobs``), as a teacher must, in batches
  whose composition and padding do not change the result; and whole
  trajectories in one forward pass where consecutive prompts extend each
  other (``logprobs_trajectory``).

``HFAgent.from_pretrained(name_or_path)`` loads a model and tokenizer by hub
name or local folder (downloading is the user's business: offline runs need
the weights on disk); ``HFAgent(model=..., tokenizer=...)`` wraps a loaded pair.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from agents.base import TurnTakingAgent
from agents.parsing import ParsedAction, parse_action, parse_tool_completion
from agents.prompt_tokens import PromptTokens
from agents.prompts import (
    EpisodeSlots,
    EpisodeState,
    PromptConfig,
    action_completion,
    stable_seed,
)
from agents.trajectory import AgentTurn

__all__ = ["Generation", "HFAgent", "SamplingParams"]

_MODES = ("generate", "rank")


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


def _resolve_dtype(dtype: Any, device: str) -> Any:
    if dtype is None or dtype == "auto":
        # Half precision on CPU is slow and inexact; keep what the checkpoint says elsewhere.
        return torch.float32 if str(device).startswith("cpu") else "auto"
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        value = getattr(torch, str(dtype))
    except AttributeError:
        value = None
    if not isinstance(value, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r}; use e.g. 'float32', 'bfloat16' or 'auto'")
    return value


class HFAgent(TurnTakingAgent):
    """A ``transformers`` causal LM behind the agent interface (module docstring).

    Keyword arguments (defaults follow the papers' evaluation, except the
    temperature, which is 1.0 so recorded log-probs are those of the sampler):

    * ``temperature``, ``top_p``, ``top_k``, ``max_new_tokens`` (512), ``seed``;
    * ``stop``: stop strings for text envs (``("</action>",)``); tool envs stop
      at end of sequence only;
    * ``mode``: ``"generate"`` or ``"rank"`` (score each admissible action; the
      env must list executable actions, so this agent then asks for
      ``admissible_actions="full"``);
    * ``rank_prefix`` / ``rank_suffix``: what surrounds a candidate action in
      the scored completion; by default (None) the completion this project's
      models are trained on (``agents.prompts.action_completion``: a bare tool
      call followed by end of sequence, or ``<think></think>`` then
      ``<action>...</action>`` in text envs);
      ``rank_normalise``: ``"sum"`` (log-likelihood) or ``"mean"`` (per token);
    * ``prompt``: a :class:`PromptConfig` (or the same as keyword arguments:
      ``history``, ``history_k``, ``family``, ``system_prompt``, ``template_kwargs``, ``tool_listing``);
    * ``actor``: name written in trajectory records (``"student"``);
    * ``max_batch_size`` / ``max_batch_tokens``: bounds on one forward pass
      (rows, and rows x padded length), which bound memory.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        max_new_tokens: int = 512,
        seed: int | None = None,
        stop: Sequence[str] = ("</action>",),
        mode: str = "generate",
        rank_prefix: str | None = None,
        rank_suffix: str | None = None,
        rank_normalise: str = "sum",
        prompt: PromptConfig | None = None,
        history: str | None = None,
        history_k: int | None = None,
        family: str | None = None,
        system_prompt: str | None = None,
        template_kwargs: dict[str, Any] | None = None,
        tool_listing: str | None = None,
        actor: str = "student",
        max_batch_size: int = 64,
        max_batch_tokens: int = 16384,
    ) -> None:
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}, not {mode!r}")
        if rank_normalise not in ("sum", "mean"):
            raise ValueError(f"rank_normalise must be 'sum' or 'mean', not {rank_normalise!r}")
        if max_batch_size < 1 or max_batch_tokens < 1:
            raise ValueError("max_batch_size and max_batch_tokens must be positive")
        self.model = model
        self.tokenizer = tokenizer
        self.model.eval()
        self.defaults = SamplingParams(
            temperature=float(temperature),
            top_p=float(top_p),
            top_k=int(top_k),
            max_new_tokens=int(max_new_tokens),
            stop=tuple(stop),
            seed=None,
        )
        self.seed = seed
        self.mode = mode
        self.rank_prefix, self.rank_suffix, self.rank_normalise = (
            rank_prefix,
            rank_suffix,
            rank_normalise,
        )
        config = (prompt or PromptConfig()).overridden(
            history=history,
            history_k=history_k,
            family=family,
            system_prompt=system_prompt,
            template_kwargs=template_kwargs,
            tool_listing=tool_listing,
        )
        self._cache_key = ("hf", id(self))
        self.prompts = PromptTokens(tokenizer, config, self._cache_key)
        self.actor = actor
        self.max_batch_size = int(max_batch_size)
        self.max_batch_tokens = int(max_batch_tokens)
        self.eos_token_ids = self._eos_ids()
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad if pad is not None else min(self.eos_token_ids or {0}))
        self._slots = EpisodeSlots(family=self.prompt_config.family)
        self._rng = np.random.default_rng(seed)
        self._keep_mode: str | None = None  # how logits_to_keep works for this model (probed)
        self._cache_is_plain: bool | None = None
        self._token_texts: dict[int, str] = {}
        self.last_turns: list[AgentTurn] = []
        self.last_turn: AgentTurn | None = None

    # -- construction -----------------------------------------------------------

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str,
        *,
        dtype: Any = "auto",
        device: str = "cpu",
        trust_remote_code: bool = False,
        revision: str | None = None,
        attn_implementation: str | None = None,
        **agent_kwargs: Any,
    ) -> HFAgent:
        """Load model and tokenizer by hub name or local folder, then wrap them.

        ``dtype``: ``"auto"`` (float32 on CPU, the checkpoint's dtype
        elsewhere), or a name such as ``"bfloat16"``. ``device``: ``"cpu"``,
        ``"cuda"``, ``"cuda:1"``, ``"mps"``. Other keywords go to ``HFAgent``.
        """
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        resolved = _resolve_dtype(dtype, device)
        load: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if revision is not None:
            load["revision"] = revision
        try:
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, **load)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot load a tokenizer from {name_or_path!r}: {error}") from None
        model_kwargs = dict(load)
        major = int(transformers.__version__.split(".")[0])
        model_kwargs["dtype" if major >= 5 else "torch_dtype"] = resolved
        if attn_implementation is not None:
            model_kwargs["attn_implementation"] = attn_implementation
        try:
            model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs)
        except (OSError, ValueError) as error:
            raise ValueError(f"cannot load a causal LM from {name_or_path!r}: {error}") from None
        model.to(device)
        return cls(model, tokenizer, **agent_kwargs)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Ranking needs executable actions; generation reads whatever the env lists."""
        return {"admissible_actions": "full"} if self.mode == "rank" else {}

    @property
    def turn_end_id(self) -> int | None:
        """The token that ends an assistant turn: the tokenizer's end of sequence
        (``<|im_end|>`` in Qwen's chat layout), else the smallest configured EOS id."""
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if eos is not None:
            return int(eos)
        return min(self.eos_token_ids) if self.eos_token_ids else None

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if eos is not None:
            ids.add(int(eos))
        generation_config = getattr(self.model, "generation_config", None)
        configured = getattr(generation_config, "eos_token_id", None)
        if isinstance(configured, int):
            ids.add(configured)
        elif isinstance(configured, list | tuple):
            ids.update(int(x) for x in configured)
        return ids

    # -- the agent interface ----------------------------------------------------------

    def take_turns(
        self, states: Sequence[EpisodeState], *, seeds: Sequence[int | None] | None = None
    ) -> list[AgentTurn]:
        """This agent's turn in each episode of ``states`` (only their token caches change).

        The distillation layer calls this with episode states it owns, so that
        several actors can share one history; ``act_batch`` is built on it.
        """
        states = list(states)
        if seeds is None:
            seeds = [self._fresh_seed() for _ in states]
        prompts = [self.prompt_ids(state) for state in states]
        turns: list[AgentTurn | None] = [None] * len(states)
        if self.mode == "rank":
            rankable = [i for i, state in enumerate(states) if state.info.get("admissible_actions")]
            if rankable:
                ranked = self._rank_turns(
                    [states[i] for i in rankable], [prompts[i] for i in rankable]
                )
                for i, turn in zip(rankable, ranked):
                    turns[i] = turn
        todo = [i for i, turn in enumerate(turns) if turn is None]
        if todo:
            params = [
                SamplingParams(
                    temperature=self.defaults.temperature,
                    top_p=self.defaults.top_p,
                    top_k=self.defaults.top_k,
                    max_new_tokens=self.defaults.max_new_tokens,
                    stop=() if states[i].family == "tool" else self.defaults.stop,
                    seed=seeds[i],
                )
                for i in todo
            ]
            generations = self.generate([prompts[i][1] for i in todo], params)
            for i, generation in zip(todo, generations):
                turns[i] = self._turn_from_generation(states[i], prompts[i], generation)
        return [turn for turn in turns if turn is not None]

    def _turn_from_generation(
        self, state: EpisodeState, prompt: tuple[str, list[int]], generation: Generation
    ) -> AgentTurn:
        parsed = self._parse(state, generation.text)
        self._remember_completion(state, generation.token_ids, generation.text)
        return AgentTurn(
            prompt=prompt[0],
            completion=generation.text,
            action=parsed.action,
            actor=self.actor,
            prompt_ids=list(prompt[1]),
            completion_ids=list(generation.token_ids),
            logprobs=list(generation.logprobs),
            finish_reason=generation.finish_reason,
            parsed=parsed.found,
        )

    @staticmethod
    def _parse(state: EpisodeState, completion: str) -> ParsedAction:
        return (
            parse_tool_completion(completion)
            if state.family == "tool"
            else parse_action(completion)
        )

    def _episode_seed(self, state: EpisodeState, occurrence: int) -> int | None:
        if self.seed is None:
            return self._fresh_seed()
        task_id = state.info.get("task_id", state.task)
        return stable_seed(self.seed, task_id, occurrence, state.turns_taken)

    def _fresh_seed(self) -> int:
        return int(self._rng.integers(0, 2**63 - 1))

    # -- prompts ----------------------------------------------------------------------

    @property
    def prompt_config(self) -> PromptConfig:
        return self.prompts.config

    @prompt_config.setter
    def prompt_config(self, config: PromptConfig) -> None:
        self.prompts.config = config

    def render(self, state: EpisodeState) -> str:
        """The prompt text for the current turn of ``state``."""
        return self.prompts.render(state)

    def encode(self, text: str) -> list[int]:
        return self.prompts.encode(text)

    def prompt_ids(self, state: EpisodeState) -> tuple[str, list[int]]:
        """(text, token ids) of the prompt for the current turn of ``state``; consecutive
        prompts of an episode extend each other token for token where the text does
        (``agents.prompt_tokens``)."""
        return self.prompts.prompt_ids(state)

    def _remember_completion(self, state: EpisodeState, ids: list[int], text: str) -> None:
        self.prompts.remember_completion(state, ids, text)

    def episode_token_ids(self, state: EpisodeState) -> tuple[list[list[int]], list[list[int]]]:
        """(prompt ids, completion ids) of every step of ``state``, in this agent's tokenization.

        For scoring turns someone else wrote (a teacher scoring a student
        episode): prompts are re-rendered with this agent's template from the
        shared history and completions encoded from their text. When teacher
        and student share a tokenizer, prefer the ids the student recorded.
        """
        prompts, completions = [], []
        replay = EpisodeState(
            task=state.task,
            family=state.family,
            observation="",
            info={},
            tools=list(state.tools),
            env_id=state.env_id,
        )
        for step in state.steps:
            replay.observation, replay.info = step.observation, step.info
            _, ids = self.prompt_ids(replay)
            completion_ids = self.encode(step.completion)
            prompts.append(ids)
            completions.append(completion_ids)
            replay.steps.append(step)
            self._remember_completion(replay, completion_ids, step.completion)
            # The completion was encoded from text: the next prompt extends that text.
            replay.token_cache[self._cache_key]["completion_full"] = step.completion
        return prompts, completions

    # -- generation -------------------------------------------------------------------

    def _check_ids(self, sequences: Sequence[Sequence[int]], what: str) -> list[list[int]]:
        vocab = int(self.model.get_input_embeddings().weight.shape[0])
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

    def generate(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: SamplingParams | Sequence[SamplingParams] | None = None,
        *,
        top_logprobs: int = 0,
    ) -> list[Generation]:
        """Complete each prompt (token ids); rows are batched, left-padded, with a KV cache.

        ``params``: one ``SamplingParams`` for all rows, one per row, or None
        for the agent's defaults. ``top_logprobs``: also return the n most
        likely tokens at each step.
        """
        prompts = self._check_ids(prompt_ids, "prompt_ids")
        if any(not p for p in prompts):
            raise ValueError("generate: every prompt needs at least one token")
        if params is None:
            params = self.defaults
        row_params = [params] * len(prompts) if isinstance(params, SamplingParams) else list(params)
        if len(row_params) != len(prompts):
            raise ValueError("generate: one SamplingParams per prompt, or a single one")
        row_params = [
            p
            if p.seed is not None
            else SamplingParams(**{**p.__dict__, "seed": self._fresh_seed()})
            for p in row_params
        ]
        results: list[Generation | None] = [None] * len(prompts)
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for chunk in self._chunks(
            order, [len(p) + q.max_new_tokens for p, q in zip(prompts, row_params)]
        ):
            generations = self._generate_batch(
                [prompts[i] for i in chunk], [row_params[i] for i in chunk], top_logprobs
            )
            for i, generation in zip(chunk, generations):
                results[i] = generation
        return [g for g in results if g is not None]

    def _chunks(self, order: list[int], lengths: list[int]) -> list[list[int]]:
        """Consecutive groups of ``order`` within the row and padded-token budgets."""
        chunks: list[list[int]] = []
        current: list[int] = []
        longest = 0
        for index in order:
            size = max(longest, lengths[index])
            if current and (
                len(current) + 1 > self.max_batch_size
                or size * (len(current) + 1) > self.max_batch_tokens
            ):
                chunks.append(current)
                current, size = [], lengths[index]
            current.append(index)
            longest = size
        if current:
            chunks.append(current)
        return chunks

    def _left_pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, sequence in enumerate(sequences):
            if sequence:
                ids[row, width - len(sequence) :] = torch.tensor(sequence, dtype=torch.long)
                mask[row, width - len(sequence) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _new_cache(self) -> Any:
        """A KV cache; plain layers grow in place (see ``_growing_layer_class``)."""
        from transformers import DynamicCache

        try:
            cache = DynamicCache(config=self.model.config)
        except TypeError:  # transformers < 4.56
            return DynamicCache()
        layers = getattr(cache, "layers", None)
        grow = _growing_layer_class()
        if grow is not None and layers and all(type(x).__name__ == "DynamicLayer" for x in layers):
            cache.layers = [grow() for _ in layers]
        return cache

    @torch.inference_mode()
    def _generate_batch(
        self, prompts: list[list[int]], params: list[SamplingParams], top_n: int
    ) -> list[Generation]:
        device = self.device
        cache, logits, mask = self._prefill(prompts)
        next_position = mask.sum(-1)
        rows = [_Row() for _ in prompts]
        active = list(range(len(prompts)))
        generators = [
            torch.Generator().manual_seed(int(p.seed or 0) & ((1 << 63) - 1)) for p in params
        ]
        longest_stop = max((len(s.encode()) for p in params for s in p.stop), default=0)
        for _step in range(max(p.max_new_tokens for p in params)):
            logprobs = torch.log_softmax(logits, dim=-1)
            tokens = self._sample(
                logits, [params[r] for r in active], [generators[r] for r in active]
            )
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
                        {
                            int(t): float(v)
                            for t, v in zip(top_ids[j].tolist(), top_values[j].tolist())
                        }
                    )
                if token in self.eos_token_ids:
                    row.finish_reason, row.stop_reason = "stop", token
                elif p.stop and (matched := self._stop_match(row.ids, p.stop, longest_stop)):
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
            output = self.model(
                input_ids=tokens[:, None].to(device),
                attention_mask=mask,
                position_ids=next_position[:, None],
                past_key_values=cache,
                use_cache=True,
            )
            cache = output.past_key_values
            next_position = next_position + 1
            logits = output.logits[:, -1, :].float()
        generations = []
        for row in rows:
            generations.append(
                Generation(
                    token_ids=row.ids,
                    logprobs=row.logprobs,
                    text=self.tokenizer.decode(row.ids, skip_special_tokens=True),
                    finish_reason=row.finish_reason or "length",
                    stop_reason=row.stop_reason,
                    top_logprobs=row.top if top_n else None,
                )
            )
        return generations

    def _prefill(self, prompts: list[list[int]]) -> tuple[Any, torch.Tensor, torch.Tensor]:
        """(KV cache, last logits, attention mask) of left-padded prompts.

        Rows of different lengths are run one by one and their caches padded on
        the left: an unpadded row takes the model's fast unmasked attention path,
        and its cache is exactly that of a prompt run alone. Models whose cache
        is not plain (sliding windows, other layouts) are run as one padded batch.
        """
        ids, mask = self._left_pad(prompts)
        width = ids.shape[1]
        if len(prompts) > 1 and len({len(p) for p in prompts}) > 1 and self._plain_cache():
            caches, last = [], []
            for prompt in prompts:
                output = self.model(
                    input_ids=torch.tensor([prompt], device=self.device),
                    past_key_values=self._new_cache(),
                    use_cache=True,
                    **self._keep_last_kwargs(),
                )
                caches.append(_cache_tensors(output.past_key_values))
                last.append(output.logits[:, -1, :])
            cache = self._new_cache()
            for layer in range(len(caches[0])):
                keys = torch.cat([_pad_left(c[layer][0], width) for c in caches], dim=0)
                values = torch.cat([_pad_left(c[layer][1], width) for c in caches], dim=0)
                cache.update(keys, values, layer)
            return cache, torch.cat(last, dim=0).float(), mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        output = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=self._new_cache(),
            use_cache=True,
            **self._keep_last_kwargs(),
        )
        return output.past_key_values, output.logits[:, -1, :].float(), mask

    def _select_rows(self, cache: Any, rows: torch.Tensor) -> Any:
        """A new cache holding ``rows`` of ``cache`` (rows may repeat); ``cache`` is unchanged."""
        if self._plain_cache():
            selected = self._new_cache()
            for layer, (keys, values) in enumerate(_cache_tensors(cache)):
                selected.update(keys[rows], values[rows], layer)
            return selected
        selected = copy.deepcopy(cache)
        selected.batch_select_indices(rows)
        return selected

    def _plain_cache(self) -> bool:
        """Whether the model's cache is a list of growing (key, value) layers (probed once)."""
        if self._cache_is_plain is None:
            cache = self._new_cache()
            layers = getattr(cache, "layers", None)
            grow = _growing_layer_class()
            self._cache_is_plain = bool(layers) and all(
                type(layer).__name__ == "DynamicLayer" or (grow is not None and type(layer) is grow)
                for layer in layers
            )
        return self._cache_is_plain

    def _stop_match(self, ids: list[int], stops: tuple[str, ...], longest: int) -> str | None:
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

    @staticmethod
    def _sample(
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

    # -- scoring ----------------------------------------------------------------------

    def _keep_last_kwargs(self) -> dict[str, Any]:
        return {"logits_to_keep": 1} if self._accepts_keep() else {}

    def _accepts_keep(self) -> bool:
        if self._keep_mode is None:
            parameters = inspect.signature(self.model.forward).parameters
            self._keep_mode = "unprobed" if "logits_to_keep" in parameters else "none"
        return self._keep_mode != "none"

    @torch.inference_mode()
    def _score_rows(
        self,
        sequences: list[list[int]],
        segments: list[list[tuple[int, int]]],
        top_n: int | None = None,
    ) -> list[list[list[Any]]]:
        """Log-probs of the tokens of each (start, length) segment of each sequence.

        Rows are right-padded and run without an attention mask: causal
        attention never lets a real token see the padding after it, so each
        row's values are those of the row alone, and the model keeps its fast
        unmasked attention path (a padding mask costs twice the time on long
        rows). Only the positions that predict a scored token go through the
        LM head (a boolean ``logits_to_keep`` where the model supports it, else
        the shortest tail that covers them). With ``top_n`` (an int), each value
        is ``(logprob, rank, {token: logprob})`` with the token's rank (1 = most
        likely) and the ``top_n`` best tokens.
        """
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        select = torch.zeros((len(sequences), width), dtype=torch.bool)
        for row, (sequence, spans) in enumerate(zip(sequences, segments)):
            ids[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
            for start, length in spans:
                if length:
                    select[row, start - 1 : start + length - 1] = True
        ids, select = ids.to(self.device), select.to(self.device)
        targets = torch.zeros_like(ids)
        targets[:, :-1] = ids[:, 1:]
        wanted = targets[select]
        logits = self._selected_logits(ids, select)
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

    def _selected_logits(self, ids: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """Logits (n_selected, vocab) at the ``select`` positions, row-major (no padding mask)."""
        base = {"input_ids": ids}
        if self._accepts_keep() and self._keep_mode in ("unprobed", "mask"):
            logits = self.model(**base, logits_to_keep=select).logits
            if logits.dim() == 2 and logits.shape[0] == int(select.sum()):
                self._keep_mode = "mask"
                return logits
            self._keep_mode = "tail"  # an older model or library: keep a tail instead
        columns = select.any(dim=0).nonzero()
        first = int(columns.min()) if columns.numel() else ids.shape[1] - 1
        if self._accepts_keep():
            logits = self.model(**base, logits_to_keep=ids.shape[1] - first).logits
        else:
            logits = self.model(**base).logits[:, first:, :]
        return logits[select[:, first:]]

    def logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per-token log-probs (temperature 1) of each completion given its prompt.

        Items are batched by length within ``max_batch_tokens``; the result for
        an item does not depend on the other items (to 1e-4 in float32).
        """
        prompts = self._check_ids(prompt_ids, "prompt_ids")
        completions = self._check_ids(completion_ids, "completion_ids")
        if len(prompts) != len(completions):
            raise ValueError("logprobs: prompt_ids and completion_ids differ in length")
        for index, prompt in enumerate(prompts):
            if not prompt:
                raise ValueError(f"logprobs: prompt_ids[{index}] is empty; scoring needs context")
        sequences = [p + c for p, c in zip(prompts, completions)]
        segments = [[(len(p), len(c))] for p, c in zip(prompts, completions)]
        return [row[0] for row in self._score(sequences, segments)]

    def _score(
        self,
        sequences: list[list[int]],
        segments: list[list[tuple[int, int]]],
        top_n: int | None = None,
    ) -> list[list[list[Any]]]:
        results: list[list[list[Any]] | None] = [None] * len(sequences)
        scored = [i for i in range(len(sequences)) if any(length for _, length in segments[i])]
        for i in set(range(len(sequences))) - set(scored):
            results[i] = [[] for _ in segments[i]]
        order = sorted(scored, key=lambda i: len(sequences[i]))
        for chunk in self._chunks(order, [len(s) for s in sequences]):
            rows = self._score_rows(
                [sequences[i] for i in chunk], [segments[i] for i in chunk], top_n
            )
            for i, row in zip(chunk, rows):
                results[i] = row
        return [r if r is not None else [] for r in results]

    def logprobs_trajectory(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """``logprobs`` for the turns of one trajectory, in as few forward passes as possible.

        Consecutive turns whose prompt starts with the previous prompt and
        completion form a chain, scored as one sequence (the last turn's prompt
        and completion); a turn that breaks the chain starts a new one. The
        result equals per-turn ``logprobs`` (to float32 noise).
        """
        return self.logprobs_trajectories([prompt_ids], [completion_ids])[0]

    def logprobs_trajectories(
        self,
        prompt_ids: Sequence[Sequence[Sequence[int]]],
        completion_ids: Sequence[Sequence[Sequence[int]]],
    ) -> list[list[list[float]]]:
        """``logprobs_trajectory`` for many trajectories, their chains batched together."""
        if len(prompt_ids) != len(completion_ids):
            raise ValueError(
                "logprobs_trajectories: prompt_ids and completion_ids differ in length"
            )
        sequences: list[list[int]] = []
        segments: list[list[tuple[int, int]]] = []
        where: list[list[tuple[int, int]]] = []  # per trajectory, per turn: (sequence, segment)
        for t, (prompts, completions) in enumerate(zip(prompt_ids, completion_ids)):
            prompts = self._check_ids(prompts, f"prompt_ids[{t}]")
            completions = self._check_ids(completions, f"completion_ids[{t}]")
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
        scored = self._score(sequences, segments)
        return [[scored[s][k] for s, k in places] for places in where]

    # -- ranking admissible actions -------------------------------------------------

    def ranked_completion(self, action: str, family: str) -> tuple[str, list[int]]:
        """(text, token ids) of ``action`` as the completion rank mode scores.

        With ``rank_prefix``/``rank_suffix`` given, the action between them; else the
        format this project's models learn (a tool turn ends with the end-of-sequence
        token, as a generated one does).
        """
        if self.rank_prefix is not None or self.rank_suffix is not None:
            text = f"{self.rank_prefix or ''}{action}{self.rank_suffix or ''}"
            return text, self.encode(text)
        text = action_completion(action, family)
        ids = self.encode(text)
        if family == "tool" and self.turn_end_id is not None:
            ids = ids + [self.turn_end_id]
        return text, ids

    @torch.inference_mode()
    def rank_actions(
        self,
        prompt_ids: Sequence[Sequence[int]],
        candidates: Sequence[Sequence[str]],
        families: Sequence[str] | None = None,
    ) -> list[list[tuple[float, list[int], list[float]]]]:
        """Score every candidate action of every prompt: (score, completion ids, log-probs).

        A candidate's completion is :meth:`ranked_completion` of the action in its
        prompt's family (``families``; default ``"text"``); its score is the sum
        (or mean, ``rank_normalise="mean"``) of the token log-probs. Each prompt is
        run once; its KV cache is shared by all its candidates, which run in
        batches within ``max_batch_tokens``.
        """
        prompts = self._check_ids(prompt_ids, "prompt_ids")
        if len(prompts) != len(candidates):
            raise ValueError("rank_actions: one candidate list per prompt")
        ids, mask = self._left_pad(prompts)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = self._new_cache()
        output = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            **self._keep_last_kwargs(),
        )
        cache = output.past_key_values
        first_logprobs = torch.log_softmax(output.logits[:, -1, :].float(), dim=-1)
        lengths = mask.sum(-1)
        families = list(families) if families is not None else ["text"] * len(prompts)
        items = [
            (p, self.ranked_completion(action, families[p])[1])
            for p, actions in enumerate(candidates)
            for action in actions
        ]
        scored: list[tuple[float, list[int], list[float]]] = []
        width = ids.shape[1]
        order = list(range(len(items)))
        for chunk in self._chunks(order, [width + len(c) for _, c in items]):
            owners = torch.tensor([items[i][0] for i in chunk], device=self.device)
            completions = [items[i][1] for i in chunk]
            longest = max(len(c) for c in completions)
            tokens = torch.full((len(chunk), longest), self.pad_token_id, dtype=torch.long)
            token_mask = torch.zeros((len(chunk), longest), dtype=torch.long)
            for row, completion in enumerate(completions):
                tokens[row, : len(completion)] = torch.tensor(completion)
                token_mask[row, : len(completion)] = 1
            tokens, token_mask = tokens.to(self.device), token_mask.to(self.device)
            shared = self._select_rows(cache, owners)
            output = self.model(
                input_ids=tokens,
                attention_mask=torch.cat([mask[owners], token_mask], dim=1),
                position_ids=lengths[owners][:, None]
                + torch.arange(longest, device=self.device)[None],
                past_key_values=shared,
                use_cache=True,
            )
            later = torch.log_softmax(output.logits.float(), dim=-1)
            for row, completion in enumerate(completions):
                values = [float(first_logprobs[owners[row], completion[0]])]
                for j in range(1, len(completion)):
                    values.append(float(later[row, j - 1, completion[j]]))
                total = sum(values)
                score = total / len(values) if self.rank_normalise == "mean" else total
                scored.append((score, completion, values))
        out: list[list[tuple[float, list[int], list[float]]]] = [[] for _ in prompts]
        for (owner, _), result in zip(items, scored):
            out[owner].append(result)
        return out

    def _rank_turns(
        self, states: list[EpisodeState], prompts: list[tuple[str, list[int]]]
    ) -> list[AgentTurn]:
        candidates = [[str(a) for a in state.info["admissible_actions"]] for state in states]
        families = [state.family for state in states]
        ranked = self.rank_actions([ids for _, ids in prompts], candidates, families)
        turns = []
        for state, prompt, actions, scores in zip(states, prompts, candidates, ranked):
            best = max(range(len(actions)), key=lambda k: scores[k][0])
            _, completion_ids, values = scores[best]
            completion = self.ranked_completion(actions[best], state.family)[0]
            self._remember_completion(state, completion_ids, completion)
            turns.append(
                AgentTurn(
                    prompt=prompt[0],
                    completion=completion,
                    action=actions[best],
                    actor=self.actor,
                    prompt_ids=list(prompt[1]),
                    completion_ids=list(completion_ids),
                    logprobs=values,
                    finish_reason="rank",
                    parsed=True,
                    extra={"candidates": len(actions), "score": scores[best][0]},
                )
            )
        return turns


_GROWING_LAYER: list[Any] = []


def _growing_layer_class() -> Any:
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


def _cache_tensors(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer, each ``[batch, heads, length, head_dim]``."""
    return [(layer.keys, layer.values) for layer in cache.layers]


def _pad_left(tensor: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - tensor.shape[-2]
    if missing <= 0:
        return tensor
    shape = (*tensor.shape[:-2], missing, tensor.shape[-1])
    return torch.cat([tensor.new_zeros(shape), tensor], dim=-2)


def _extends(prompt: list[int], previous: list[int]) -> bool:
    """Whether ``prompt`` starts with all of ``previous`` (the last prompt plus completion)."""
    return len(prompt) >= len(previous) and prompt[: len(previous)] == previous
