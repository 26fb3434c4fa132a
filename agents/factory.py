"""Build an agent from a short spec string, as command-line tools take them.

Specs: ``expert``, ``random``, or ``package.module:ClassName`` for any class
whose constructor takes no required argument (your own agent; see
docs/writing-an-agent.md). A ``seed`` is passed to agents that accept one.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from agents.base import Agent
from agents.scripted import ExpertAgent, RandomAgent

__all__ = ["BUILTIN_AGENTS", "make_agent"]

BUILTIN_AGENTS: dict[str, type] = {"expert": ExpertAgent, "random": RandomAgent}


def make_agent(spec: str, *, seed: int | None = None) -> Agent:
    """Instantiate the agent named by ``spec`` (see the module docstring)."""
    if spec in BUILTIN_AGENTS:
        cls: Any = BUILTIN_AGENTS[spec]
    elif ":" in spec:
        module_name, _, class_name = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as error:
            raise ValueError(
                f"agent {spec!r}: cannot import module {module_name!r} ({error})"
            ) from None
        cls = getattr(module, class_name, None)
        if cls is None:
            raise ValueError(f"agent {spec!r}: module {module_name!r} has no {class_name!r}")
    else:
        known = ", ".join(sorted(BUILTIN_AGENTS))
        raise ValueError(
            f"unknown agent {spec!r}: use one of {known}, or 'package.module:ClassName'"
        )
    kwargs = {}
    if seed is not None and "seed" in inspect.signature(cls).parameters:
        kwargs["seed"] = seed
    agent = cls(**kwargs)
    if not isinstance(agent, Agent):
        raise ValueError(f"agent {spec!r} lacks reset(task, info) and act(observation, info)")
    return agent
