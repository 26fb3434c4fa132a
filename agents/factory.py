"""Build an agent from a short spec string, as command-line tools take them.

Specs:

* ``expert``, ``random``: the scripted agents;
* ``hf:<name-or-path>``: a Hugging Face causal LM (``HFAgent.from_pretrained``;
  a hub name needs the weights on this machine or network access);
* ``openai:<base-url>#<model>``: a model behind an OpenAI-compatible server
  (``OpenAIAgent``; ``#<model>`` may be left out to use the server's first
  model; the API key comes from ``OPENAI_API_KEY`` when set);
* ``tiny:<size>``: a randomly initialised offline model of ``agents.tiny``'s
  sizes (``tiny``, ``small``, ``base``), for smoke tests;
* ``package.module:ClassName`` for any class whose constructor takes no
  required argument (your own agent; see docs/writing-an-agent.md).

A ``seed`` is passed to agents that accept one; ``options`` (a dict) are
keyword arguments for model agents (``temperature``, ``max_new_tokens``,
``mode``, ``device``, ``dtype`` ...) and for your own classes.
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any

from agents.base import Agent
from agents.scripted import ExpertAgent, RandomAgent

__all__ = ["BUILTIN_AGENTS", "MODEL_PREFIXES", "is_model_spec", "make_agent"]

BUILTIN_AGENTS: dict[str, type] = {"expert": ExpertAgent, "random": RandomAgent}
#: Spec prefixes of language-model agents (expensive to build: tools build them once).
MODEL_PREFIXES: tuple[str, ...] = ("hf:", "openai:", "tiny:")


def is_model_spec(spec: str) -> bool:
    """Whether ``spec`` names a language-model agent."""
    return spec.startswith(MODEL_PREFIXES)


def _model_agent(spec: str, seed: int | None, options: dict[str, Any]) -> Agent:
    kind, _, target = spec.partition(":")
    if not target:
        raise ValueError(f"agent {spec!r}: nothing after {kind + ':'!r}")
    kwargs = dict(options)
    if seed is not None:
        kwargs.setdefault("seed", seed)
    try:
        if kind == "hf":
            from agents.hf import HFAgent

            return HFAgent.from_pretrained(target, **kwargs)
        if kind == "openai":
            from agents.openai_agent import OpenAIAgent

            base_url, _, model = target.partition("#")
            if os.environ.get("OPENAI_API_KEY"):
                kwargs.setdefault("api_key", os.environ["OPENAI_API_KEY"])
            return OpenAIAgent(base_url, model or None, **kwargs)
        from agents.hf import HFAgent
        from agents.tiny import SIZES, build_tiny

        if target not in SIZES:
            raise ValueError(f"unknown tiny size {target!r}; choose one of {sorted(SIZES)}")
        model, tokenizer = build_tiny(target, seed=0 if seed is None else seed)
        return HFAgent(model, tokenizer, **kwargs)
    except TypeError as error:  # an option the agent does not take
        raise ValueError(f"agent {spec!r}: {error}") from None
    except ValueError as error:
        raise ValueError(f"agent {spec!r}: {error}") from None


def make_agent(
    spec: str, *, seed: int | None = None, options: dict[str, Any] | None = None
) -> Agent:
    """Instantiate the agent named by ``spec`` (see the module docstring)."""
    options = dict(options or {})
    if is_model_spec(spec):
        return _model_agent(spec, seed, options)
    if spec in BUILTIN_AGENTS:
        cls: Any = BUILTIN_AGENTS[spec]
        options = {}  # model options (temperature ...) mean nothing to scripted agents
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
            f"unknown agent {spec!r}: use one of {known}, 'hf:<name-or-path>', "
            "'openai:<base-url>#<model>', 'tiny:<size>', or 'package.module:ClassName'"
        )
    parameters = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in options.items() if k in parameters}
    if seed is not None and "seed" in parameters:
        kwargs["seed"] = seed
    agent = cls(**kwargs)
    if not isinstance(agent, Agent):
        raise ValueError(f"agent {spec!r} lacks reset(task, info) and act(observation, info)")
    return agent
