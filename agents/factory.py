"""Build an agent from one spec grammar, the same in every command-line tool and config.

Specs:

* ``expert``, ``random``: the scripted agents;
* ``hf:<folder-or-hub-name>``: a Hugging Face causal LM (``HFAgent.from_pretrained``;
  a hub name needs the weights on this machine or network access);
* ``tiny:<size>``: a randomly initialised model built offline (``agents.tiny``'s
  sizes: ``micro``, ``mini``, ``tiny``, ``small``, ``base``) with the project's
  tokenizer, or with the ``tokenizer`` option (a tokenizer or its folder);
* ``openai:<base-url>#<model>``: a model behind an OpenAI-compatible server
  (``OpenAIAgent``; ``#<model>`` may be left out to use the server's first
  model; the API key comes from ``OPENAI_API_KEY`` when set);
* ``package.module:ClassName``: your own agent class (see docs/writing-an-agent.md);
  the current working directory is importable.

``model:<folder-or-hub-name>`` is an old spelling of ``hf:``: it still works, with a one-line
notice (:func:`canonical_spec`).

Configs may also name a model by a bare size (``micro``) or an existing folder;
:func:`model_spec` turns those into ``tiny:`` and ``hf:`` specs.

``options`` use one vocabulary for every model agent: ``temperature``,
``top_p``, ``top_k``, ``max_new_tokens``, ``seed``, ``mode``, ``prompt``,
``actor``, ``device``, ``dtype``, ``tokenizer`` ... Served models take the
common ones under their own names (``max_new_tokens`` is sent as
``max_tokens``, ``top_k`` in the request body) and ignore ``device`` and
``dtype``, which belong to the server. Scripted agents ignore model options;
your own classes get the options their constructor accepts.
"""

from __future__ import annotations

import difflib
import importlib.util
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

from agents.base import Agent
from agents.scripted import ExpertAgent, RandomAgent
from envs.imports import import_module

__all__ = [
    "BUILTIN_AGENTS",
    "MODEL_PREFIXES",
    "SPEC_ALIASES",
    "SPEC_GRAMMAR",
    "canonical_spec",
    "check_agent_spec",
    "is_model_spec",
    "make_agent",
    "model_spec",
]

BUILTIN_AGENTS: dict[str, type] = {"expert": ExpertAgent, "random": RandomAgent}
#: Spec prefixes of language-model agents (expensive to build: tools build them once).
MODEL_PREFIXES: tuple[str, ...] = ("hf:", "openai:", "tiny:")
#: The grammar, as error messages quote it.
SPEC_GRAMMAR = (
    "'expert', 'random', 'hf:<folder-or-hub-name>', 'tiny:<size>', "
    "'openai:<base-url>#<model>' or 'package.module:ClassName'"
)
#: Old spec prefixes, still read: {old: new}. Each prints a one-line notice, once per spec.
SPEC_ALIASES: dict[str, str] = {"model:": "hf:"}
_NOTED: set[str] = set()
# Options that mean something to in-process models only: a served model ignores them.
_SERVER_SIDE_OPTIONS = ("device", "dtype", "trust_remote_code", "attn_implementation")


def canonical_spec(spec: str) -> str:
    """``spec`` in today's grammar: an old prefix (``model:``) becomes its new one (``hf:``),
    with a one-line notice on stderr. ``model:Name`` stays a class spec when a module
    ``model`` is importable (your own ``model.py`` with the class ``Name``)."""
    for old, new in SPEC_ALIASES.items():
        target = spec[len(old) :]
        if not spec.startswith(old) or (
            target.isidentifier() and importlib.util.find_spec(old[:-1]) is not None
        ):
            continue
        canonical = new + target
        if spec not in _NOTED:
            _NOTED.add(spec)
            print(f"note: agent spec {spec!r} is now written {canonical!r}", file=sys.stderr)
        return canonical
    return spec


def is_model_spec(spec: str) -> bool:
    """Whether ``spec`` names a language-model agent."""
    return canonical_spec(spec).startswith(MODEL_PREFIXES)


def _sizes() -> dict[str, Any]:
    from agents.tiny import SIZES

    return SIZES


def model_spec(value: str) -> str:
    """A model named in a config, as a spec: a bare size becomes ``tiny:<size>``, an existing
    folder ``hf:<folder>``; a spec is returned as it is. Anything else is a ValueError that
    says what is allowed (a hub name must be written ``hf:<name>``)."""
    text = canonical_spec(str(value).strip())
    if not text:
        raise ValueError(f"an empty model name; use a size ({', '.join(_sizes())}) or a spec")
    if is_model_spec(text) or text in BUILTIN_AGENTS:
        return text
    if text in _sizes():
        return f"tiny:{text}"
    if Path(text).expanduser().is_dir():
        return f"hf:{text}"
    if text.startswith((".", "/", "~")) or text.count("/") > 1:
        raise ValueError(f"no model folder {text}")
    if re.fullmatch(r"[\w.-]+(\.[\w.-]+)*:[A-Za-z_]\w*", text):
        return text  # package.module:ClassName
    raise ValueError(
        f"{text!r} is not a folder on this machine nor a size ({', '.join(_sizes())}); "
        f"for a hub model write hf:{text}"
    )


def check_agent_spec(spec: str, *, models_only: bool = False) -> None:
    """Raise a one-line ValueError if ``spec`` cannot name an agent, without building it
    (folders are looked up, classes imported, URLs parsed; no weights are loaded)."""
    spec = canonical_spec(spec)
    kind, sep, target = spec.partition(":")
    if spec in BUILTIN_AGENTS and not models_only:
        return
    if spec in BUILTIN_AGENTS:
        raise ValueError(f"{spec!r} is a scripted agent; a model is needed here")
    if not sep:
        close = difflib.get_close_matches(spec, list(BUILTIN_AGENTS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ValueError(f"unknown agent {spec!r}: {hint}use {SPEC_GRAMMAR}")
    if not target:
        raise ValueError(f"agent {spec!r}: nothing after {kind + ':'!r}")
    if kind == "tiny":
        if target not in _sizes():
            raise ValueError(f"agent {spec!r}: unknown size; choose one of {list(_sizes())}")
    elif kind == "hf":
        path = Path(target).expanduser()
        looks_like_path = target.startswith((".", "/", "~")) or target.count("/") > 1
        if path.is_file():
            raise ValueError(f"agent {spec!r}: {target} is a file; give the model's folder")
        if looks_like_path and not path.is_dir():
            raise ValueError(f"agent {spec!r}: no model folder {target}")
    elif kind == "openai":
        from agents.openai_agent import normalise_base_url

        normalise_base_url(target.partition("#")[0])
    elif models_only:
        raise ValueError(f"agent {spec!r}: a model is needed here (hf:, tiny: or openai:)")
    else:
        try:
            _user_class(spec)
        except ValueError as error:
            close = difflib.get_close_matches(kind, ["tiny", "hf", "openai"], n=1)
            if not close:
                raise
            # Not an importable class, and the prefix looks like a mistyped one (`opeani:`).
            raise ValueError(f"{error}; did you mean '{close[0]}:'?") from None


def _user_class(spec: str) -> type:
    module_name, _, class_name = spec.partition(":")
    try:
        module = import_module(module_name)
    except ImportError as error:
        raise ValueError(
            f"agent {spec!r}: cannot import module {module_name!r} ({error})"
        ) from None
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ValueError(f"agent {spec!r}: module {module_name!r} has no {class_name!r}")
    return cls


def _tiny_agent(size: str, seed: int | None, kwargs: dict[str, Any]) -> Agent:
    from agents.hf import HFAgent
    from agents.tiny import build_model, train_tokenizer

    if size not in _sizes():
        raise ValueError(f"unknown tiny size {size!r}; choose one of {list(_sizes())}")
    tokenizer = kwargs.pop("tokenizer", None)
    if isinstance(tokenizer, str | Path):
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
    tokenizer = tokenizer if tokenizer is not None else train_tokenizer()
    device = kwargs.pop("device", "cpu")
    kwargs.pop("dtype", None)  # built in float32; autocast decides the compute dtype
    model = build_model(size, tokenizer, seed=0 if seed is None else seed)
    return HFAgent(model.to(device), tokenizer, **kwargs)


def _served_agent(target: str, kwargs: dict[str, Any]) -> Agent:
    from agents.openai_agent import OpenAIAgent

    base_url, _, model = target.partition("#")
    for name in _SERVER_SIDE_OPTIONS:
        kwargs.pop(name, None)
    if "max_new_tokens" in kwargs:
        if "max_tokens" in kwargs:
            raise ValueError(
                "max_new_tokens and max_tokens are the same option for a served model; "
                "give one of them"
            )
        kwargs["max_tokens"] = kwargs.pop("max_new_tokens")
    if kwargs.get("mode", "generate") != "generate":
        raise ValueError(
            f"mode={kwargs['mode']!r} needs the model's own scores: use an hf: or tiny: agent"
        )
    kwargs.pop("mode", None)
    if "template_kwargs" in kwargs:  # HF's chat-template options; vLLM takes them per request
        extra = dict(kwargs.get("extra_body") or {})
        extra.setdefault("chat_template_kwargs", kwargs.pop("template_kwargs"))
        kwargs["extra_body"] = extra
    if kwargs.get("top_k") == 0:  # HF's spelling of "no top-k"; vLLM's is -1
        kwargs["top_k"] = -1
    if os.environ.get("OPENAI_API_KEY"):
        kwargs.setdefault("api_key", os.environ["OPENAI_API_KEY"])
    return OpenAIAgent(base_url, model or None, **kwargs)


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

            kwargs.pop("tokenizer", None)  # a folder brings its own
            return HFAgent.from_pretrained(target, **kwargs)
        if kind == "openai":
            return _served_agent(target, kwargs)
        return _tiny_agent(target, seed, kwargs)
    except TypeError as error:  # an option the agent does not take
        raise ValueError(f"agent {spec!r}: {_option_problem(error, kind)}") from None
    except ValueError as error:
        raise ValueError(f"agent {spec!r}: {error}") from None


def _parameters(*callables: Any) -> set[str]:
    names: set[str] = set()
    for function in callables:
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                names.add(name)
    return names - {"self", "model", "tokenizer", "name_or_path", "base_url"}


def _accepted_options(kind: str) -> tuple[set[str], set[str]]:
    """(the options an agent of ``kind`` takes, those only in-process models take)."""
    from agents.hf import HFAgent
    from agents.openai_agent import OpenAIAgent

    local = _parameters(HFAgent.__init__, HFAgent.from_pretrained) | {"tokenizer", "device"}
    if kind != "openai":
        return local, set()
    # The HF spellings the served agent maps, and the server-side ones it drops.
    served = _parameters(OpenAIAgent.__init__) | {"model", "tokenizer", "max_new_tokens", "mode"}
    served |= {"template_kwargs", *_SERVER_SIDE_OPTIONS}
    return served, local - served


def _option_problem(error: TypeError, kind: str) -> str:
    match = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    if not match:
        return str(error)
    name = match.group(1)
    accepted, local_only = _accepted_options(kind)
    close = difflib.get_close_matches(name, sorted(accepted), n=1)
    if name in local_only:
        hint = "; it is an option of in-process models (hf:, tiny:)"
    elif close:
        hint = f"; did you mean {close[0]!r}?"
    elif kind == "openai":
        hint = '; other request fields go in extra_body, e.g. {"extra_body": {NAME: value}}'
        hint = hint.replace("NAME", json.dumps(name))
    else:
        hint = ""
    return f"it takes no option {name!r}{hint} (docs/agents.md lists each agent's options)"


def make_agent(
    spec: str, *, seed: int | None = None, options: dict[str, Any] | None = None
) -> Agent:
    """Instantiate the agent named by ``spec`` (see the module docstring)."""
    spec = canonical_spec(spec)
    options = dict(options or {})
    if is_model_spec(spec):
        return _model_agent(spec, seed, options)
    if spec in BUILTIN_AGENTS:
        cls: Any = BUILTIN_AGENTS[spec]
        options = {}  # model options (temperature ...) mean nothing to scripted agents
    elif ":" in spec:
        cls = _user_class(spec)
    else:
        raise ValueError(f"unknown agent {spec!r}: use {SPEC_GRAMMAR}")
    parameters = inspect.signature(cls).parameters
    kwargs = {k: v for k, v in options.items() if k in parameters}
    if seed is not None and "seed" in parameters:
        kwargs["seed"] = seed
    agent = cls(**kwargs)
    if not isinstance(agent, Agent):
        raise ValueError(f"agent {spec!r} lacks reset(task, info) and act(observation, info)")
    return agent
