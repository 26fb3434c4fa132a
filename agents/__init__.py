"""mentorgym agents: every policy behind ``act(observation, info) -> action``."""

from __future__ import annotations

from agents.base import Agent, BatchAgent, agent_env_kwargs
from agents.factory import make_agent
from agents.scripted import ExpertAgent, RandomAgent

__all__ = ["Agent", "BatchAgent", "ExpertAgent", "RandomAgent", "agent_env_kwargs", "make_agent"]
