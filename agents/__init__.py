"""mentorgym agents: every policy behind ``act(observation, info) -> action``.

Language-model agents (``HFAgent``, ``OpenAIAgent``) and the tiny offline
models are imported on first use, so ``import agents`` does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from agents.base import Agent, BatchAgent, agent_env_kwargs
from agents.factory import make_agent
from agents.scripted import ExpertAgent, RandomAgent

__all__ = [
    "Agent",
    "AgentTurn",
    "BatchAgent",
    "EpisodeState",
    "ExpertAgent",
    "HFAgent",
    "OpenAIAgent",
    "PromptConfig",
    "RandomAgent",
    "SamplingParams",
    "agent_env_kwargs",
    "make_agent",
    "parse_action",
]

_LAZY: dict[str, str] = {
    "HFAgent": "agents.hf",
    "SamplingParams": "agents.hf",
    "OpenAIAgent": "agents.openai_agent",
    "AgentTurn": "agents.trajectory",
    "EpisodeState": "agents.prompts",
    "PromptConfig": "agents.prompts",
    "parse_action": "agents.parsing",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'agents' has no attribute {name!r}")
