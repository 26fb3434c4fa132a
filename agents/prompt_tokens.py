"""An episode's prompts as token ids in one tokenizer, each extending the last where it can.

``PromptTokens`` renders a prompt for the current turn of an ``EpisodeState``
(``agents.prompts``: the messages, then the tokenizer's chat template) and
encodes it. When the new prompt text extends the previous prompt and
completion (the chat layout keeps every completion verbatim), the ids are the
previous ids plus the new tokens, so the prompts of an episode extend each
other token for token and a whole trajectory can be scored in one pass.

In-process models (``HFAgent``) and served models driven by token ids
(``OpenAIAgent(api="completions")``) both build their prompts with it, which
is why a served teacher sees exactly the tokens an in-process one would.
Each user keeps its own cache in ``state.token_cache`` under its ``key``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from agents.prompts import EpisodeState, PromptConfig, build_messages, render_prompt, template_tools

__all__ = ["PromptTokens"]


class PromptTokens:
    """Prompts of ``tokenizer``'s chat template under ``config``, as text and token ids."""

    def __init__(self, tokenizer: Any, config: PromptConfig, key: Hashable) -> None:
        self.tokenizer, self.config, self.key = tokenizer, config, key

    def render(self, state: EpisodeState) -> str:
        """The prompt text for the current turn of ``state``."""
        messages = build_messages(state, self.config)
        return render_prompt(
            self.tokenizer,
            messages,
            tools=template_tools(state, self.config),
            template_kwargs=self.config.template_kwargs,
        )

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def prompt_ids(self, state: EpisodeState) -> tuple[str, list[int]]:
        """(text, token ids) of the prompt for the current turn of ``state`` (module docstring)."""
        text = self.render(state)
        cache = state.token_cache.get(self.key)
        ids: list[int] | None = None
        if cache is not None and cache["turn"] == state.turns_taken - 1 and state.steps:
            step = state.steps[-1]
            if cache.get("completion") == step.completion and "completion_ids" in cache:
                base_text = cache["text"] + cache["completion_full"]
                base_ids = cache["ids"] + cache["completion_ids"]
            else:  # another actor wrote the last completion
                base_text = cache["text"] + step.completion
                base_ids = cache["ids"] + self.encode(step.completion)
            if text.startswith(base_text):
                ids = base_ids + self.encode(text[len(base_text) :])
        if ids is None:
            ids = self.encode(text)
        state.token_cache[self.key] = {"turn": state.turns_taken, "text": text, "ids": ids}
        return text, ids

    def remember_completion(self, state: EpisodeState, ids: list[int], text: str) -> None:
        """Record this turn's completion ids, so the next prompt extends them exactly."""
        cache = state.token_cache.get(self.key)
        if cache is not None and cache["turn"] == state.turns_taken:
            cache["completion"] = text
            cache["completion_ids"] = list(ids)
            cache["completion_full"] = self.tokenizer.decode(ids, skip_special_tokens=False)
