"""``HFAgent``: a Hugging Face ``transformers`` causal LM behind the agent interface.

This module is the agent: construction (``from_pretrained``), turns in episodes
(``act``, ``act_batch``, ``take_turns``), prompts (``agents.prompt_tokens``) and
records (``last_turn`` / ``last_turns``). The model work is done by the modules
beside it, each with one job: ``generation`` (batched sampling with a KV cache),
``scoring`` (log-probs of given completions and whole trajectories), ``ranking``
(admissible actions scored as completions) and ``model`` (the transformers model,
its forward arguments and its cache). ``HFAgent``'s methods of the same names call
them with this agent's model, limits and defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agents.base import TurnTakingAgent
from agents.hf import generation, ranking, scoring
from agents.hf.generation import Generation, SamplingParams, StopMatcher
from agents.hf.model import BatchLimits, CausalLM
from agents.parsing import ParsedAction, parse_action, parse_tool_completion
from agents.prompt_tokens import PromptTokens
from agents.prompts import EpisodeSlots, EpisodeState, PromptConfig, stable_seed
from agents.trajectory import AgentTurn

__all__ = ["HFAgent"]

_MODES = ("generate", "rank")


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
        self.lm = CausalLM(model, int(pad if pad is not None else min(self.eos_token_ids or {0})))
        self._stops = StopMatcher(tokenizer)
        self._slots = EpisodeSlots(family=self.prompt_config.family)
        self._rng = np.random.default_rng(seed)
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
            raise ValueError(
                f"cannot load a tokenizer from {name_or_path!r}: {_first_line(error)}"
            ) from None
        model_kwargs = dict(load)
        major = int(transformers.__version__.split(".")[0])
        model_kwargs["dtype" if major >= 5 else "torch_dtype"] = resolved
        if attn_implementation is not None:
            model_kwargs["attn_implementation"] = attn_implementation
        try:
            model = AutoModelForCausalLM.from_pretrained(name_or_path, **model_kwargs)
        except (OSError, ValueError) as error:
            raise ValueError(
                f"cannot load a causal LM from {name_or_path!r}: {_first_line(error)}"
            ) from None
        model.to(device)
        return cls(model, tokenizer, **agent_kwargs)

    @property
    def device(self) -> torch.device:
        return self.lm.device

    @property
    def pad_token_id(self) -> int:
        """The token that pads batches (the tokenizer's, else the smallest end-of-sequence id)."""
        return self.lm.pad_token_id

    @pad_token_id.setter
    def pad_token_id(self, value: int) -> None:
        self.lm.pad_token_id = int(value)

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

    # -- model work (generation, scoring, ranking: the modules beside this one) ---------

    @property
    def batch_limits(self) -> BatchLimits:
        """The bounds on one forward pass (``max_batch_size`` rows, ``max_batch_tokens``)."""
        return BatchLimits(rows=self.max_batch_size, tokens=self.max_batch_tokens)

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
        likely tokens at each step. See ``agents.hf.generation``.
        """
        return generation.generate(
            self.lm,
            self._stops,
            prompt_ids,
            self.defaults if params is None else params,
            eos_token_ids=self.eos_token_ids,
            limits=self.batch_limits,
            fresh_seed=self._fresh_seed,
            top_logprobs=top_logprobs,
        )

    def logprobs(
        self, prompt_ids: Sequence[Sequence[int]], completion_ids: Sequence[Sequence[int]]
    ) -> list[list[float]]:
        """Per-token log-probs (temperature 1) of each completion given its prompt.

        Items are batched by length within ``max_batch_tokens``; the result for
        an item does not depend on the other items (to 1e-4 in float32).
        """
        return scoring.logprobs(self.lm, prompt_ids, completion_ids, limits=self.batch_limits)

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
        return scoring.logprobs_trajectories(
            self.lm, prompt_ids, completion_ids, limits=self.batch_limits
        )

    def score_segments(
        self,
        sequences: Sequence[Sequence[int]],
        segments: Sequence[Sequence[tuple[int, int]]],
        *,
        top_n: int | None = None,
    ) -> list[list[list[Any]]]:
        """Log-probs of the tokens of (start, length) segments of sequences, optionally with
        each token's rank and the ``top_n`` best tokens (``agents.hf.scoring.score_segments``)."""
        return scoring.score_segments(
            self.lm, sequences, segments, limits=self.batch_limits, top_n=top_n
        )

    def ranked_completion(self, action: str, family: str) -> tuple[str, list[int]]:
        """(text, token ids) of ``action`` as the completion rank mode scores.

        With ``rank_prefix``/``rank_suffix`` given, the action between them; else the
        format this project's models learn (a tool turn ends with the end-of-sequence
        token, as a generated one does).
        """
        return ranking.ranked_completion(
            action,
            family,
            encode=self.encode,
            prefix=self.rank_prefix,
            suffix=self.rank_suffix,
            turn_end_id=self.turn_end_id,
        )

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
        if len(prompt_ids) != len(candidates):
            raise ValueError("rank_actions: one candidate list per prompt")
        families = list(families) if families is not None else ["text"] * len(prompt_ids)
        completions = [
            [self.ranked_completion(action, families[p])[1] for action in actions]
            for p, actions in enumerate(candidates)
        ]
        return ranking.rank_completions(
            self.lm,
            prompt_ids,
            completions,
            normalise=self.rank_normalise,
            limits=self.batch_limits,
        )

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


def _first_line(error: Exception) -> str:
    # transformers' loading errors run over several lines of advice; the first says what failed.
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
