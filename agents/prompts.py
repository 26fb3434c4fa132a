"""Prompts for language-model agents, per environment family, as chat messages.

An episode's history lives in an :class:`EpisodeState` (the task, every step
taken with its observation, completion and action, and the current
observation); :func:`build_messages` turns it into chat messages and
:func:`render_prompt` renders those with a tokenizer's chat template. The
state is plain data, so several actors (a student and a teacher taking turns,
as in Guided-OPD) can build their prompts from one shared history.

Two layouts (``PromptConfig.history``):

* ``"window"`` (default; the ReAct prompt of the Guided-OPD and TCOD papers):
  one user message with the task, "Prior to this step, you have already taken
  N step(s)", the last ``history_k`` observation-action pairs, the current
  observation, the admissible actions (ScienceWorld in its compact form:
  templates and objects) and the instruction to reason in ``<think> </think>``
  and answer with one ``<action> </action>``;
* ``"chat"``: the whole episode as alternating user (observation) and
  assistant (completion) turns. Consecutive prompts then extend each other,
  which lets a teacher score a whole trajectory in one forward pass.

Tool-calling environments (``info["tools"]``) always use the chat layout: the
schemas go to the template's ``tools=`` (or, with ``tool_listing="compact"``,
one signature line per tool in the system message: a fifth of the tokens,
which is what lets a tiny model train on a CPU), each completion is an assistant turn,
and tool results come back as ``tool`` turns (or a user turn when the last
completion called nothing).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAMILIES",
    "EpisodeSlots",
    "EpisodeState",
    "PromptConfig",
    "Step",
    "action_completion",
    "build_messages",
    "detect_family",
    "render_prompt",
    "stable_seed",
    "template_tools",
]

#: Environment families with their own prompt wording.
FAMILIES: tuple[str, ...] = ("alfworld", "scienceworld", "webshop", "tool", "text")

_ENV_FAMILY_PREFIXES: tuple[tuple[str, str], ...] = (
    ("alfworld", "alfworld"),
    ("scienceworld", "scienceworld"),
    ("webshop", "webshop"),
    ("toolmath", "tool"),
    ("functioncall", "tool"),
    ("searchqa", "tool"),
)

# Where the agent is, in words, and what it can do there (one line each).
_SETTING: dict[str, tuple[str, str]] = {
    "alfworld": (
        "a simulated household (ALFWorld)",
        "You move between receptacles and take, put, open, close, heat, cool, clean, "
        "slice or use objects.",
    ),
    "scienceworld": (
        "a text-based science laboratory (ScienceWorld)",
        "You move between rooms, use instruments and objects, and run experiments.",
    ),
    "webshop": (
        "an online shop (WebShop)",
        "Search with search[keywords], open products and choose their options with "
        "click[...], and finish by clicking buy now.",
    ),
    "text": ("a text-based environment", ""),
}

REACT_INSTRUCTION = (
    "Think step by step about the current situation inside <think> </think>. "
    "Then give exactly one admissible action for this step inside <action> </action>."
)

TOOL_SYSTEM = (
    "You solve tasks with the tools described below. Think step by step inside "
    "<think> </think> before acting. Call a tool by writing "
    '<tool_call>{"name": <tool name>, "arguments": {<arguments as JSON>}}</tool_call>; '
    "several calls may go in one reply, and their results come back in <tool_response> "
    "blocks. When you know the answer, give it in the form the task asks for."
)

#: How tool tasks show their tools (``PromptConfig.tool_listing``).
TOOL_LISTINGS: tuple[str, ...] = ("template", "compact")

# Keys of info an EpisodeState keeps per step (the rest is not needed for prompts).
_KEPT_INFO = ("admissible_actions", "objects", "tool_results", "turn", "task_id")


@dataclass
class PromptConfig:
    """How prompts are built (every default is the papers' setting).

    * ``history``: ``"window"`` (last ``history_k`` pairs in one user message)
      or ``"chat"`` (every turn as its own message); tool tasks always use chat;
    * ``history_k``: observation-action pairs shown in the window layout;
    * ``family``: force a family from ``FAMILIES`` (default: detected from the
      env id or the info keys);
    * ``system_prompt``: replaces the family's system text (window layout: a
      system message before the user message; none by default);
    * ``max_admissible``: show at most this many admissible actions (all by default);
    * ``template_kwargs``: extra arguments for ``apply_chat_template`` (e.g.
      ``{"enable_thinking": False}`` for Qwen3);
    * ``tool_listing``: how tool tasks show their tools: ``"template"`` (the
      JSON schemas through the chat template's ``tools=``, as real models are
      trained) or ``"compact"`` (a ``name(arg: type, ...): description`` line
      per tool in the system message).
    """

    history: str = "window"
    history_k: int = 2
    family: str | None = None
    system_prompt: str | None = None
    max_admissible: int | None = None
    template_kwargs: dict[str, Any] = field(default_factory=dict)
    tool_listing: str = "template"

    def __post_init__(self) -> None:
        if self.tool_listing not in TOOL_LISTINGS:
            raise ValueError(
                f"tool_listing must be one of {list(TOOL_LISTINGS)}, not {self.tool_listing!r}"
            )
        if self.history not in ("window", "chat"):
            raise ValueError(f"history must be 'window' or 'chat', not {self.history!r}")
        if not isinstance(self.history_k, int) or self.history_k < 0:
            raise ValueError(f"history_k must be a non-negative integer, not {self.history_k!r}")
        if self.family is not None and self.family not in FAMILIES:
            raise ValueError(f"family must be one of {list(FAMILIES)}, not {self.family!r}")

    def overridden(self, **overrides: Any) -> PromptConfig:
        """A validated copy with every override that is not None applied (agents' keywords)."""
        chosen = {name: value for name, value in overrides.items() if value is not None}
        return dataclasses.replace(copy.deepcopy(self), **chosen)


def action_completion(action: str, family: str) -> str:
    """An action written as the completion a model trained on this project's data produces:
    tool calls and answers bare (the turn then ends at end of sequence); text-env actions
    after an empty thought, inside ``<action> </action>``."""
    return action if family == "tool" else f"<think></think>\n<action>{action}</action>"


def detect_family(info: dict[str, Any] | None = None, env_id: str | None = None) -> str:
    """The prompt family of an env: from its id when given, else from its info keys."""
    if env_id:
        lowered = env_id.lower()
        for prefix, family in _ENV_FAMILY_PREFIXES:
            if lowered.startswith(prefix):
                return family
    info = info or {}
    if "tools" in info:
        return "tool"
    if "objects" in info:  # ScienceWorld's compact mode lists the objects in view
        return "scienceworld"
    if "page" in info:  # WebShop says which page the browser shows
        return "webshop"
    task_id = str(info.get("task_id", "")).lower()
    if "task_type" in info or any(word in task_id for word in ("pick_", "look_at_obj", "alfworld")):
        return "alfworld"
    return "text"


@dataclass
class Step:
    """One step taken: what the actor saw, what it wrote, and the action executed."""

    observation: str
    info: dict[str, Any]
    completion: str
    action: str
    actor: str | None = None
    #: The assistant message as a server returned it (structured tool calls), if any.
    message: dict[str, Any] | None = None


def _kept(info: dict[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(info[key]) for key in _KEPT_INFO if key in info}


@dataclass
class EpisodeState:
    """The history of one episode, from which every actor builds its prompt.

    ``start`` after ``env.reset``; after each turn ``record`` the completion and
    the executed action, then ``observe`` what ``env.step`` returned.
    """

    task: str
    family: str
    observation: str
    info: dict[str, Any]
    tools: list[dict[str, Any]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    env_id: str | None = None
    #: Per-agent caches of prompt ids, so chat prompts extend each other token for token.
    token_cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def start(
        cls,
        observation: str,
        info: dict[str, Any],
        *,
        family: str | None = None,
        env_id: str | None = None,
    ) -> EpisodeState:
        """A new episode whose first observation and info are those of ``env.reset``."""
        family = family or detect_family(info, env_id)
        tools = copy.deepcopy(list(info.get("tools") or []))
        return cls(
            task=str(info.get("task", "")),
            family=family,
            observation=str(observation),
            info=_kept(info),
            tools=tools,
            env_id=env_id,
        )

    @property
    def turns_taken(self) -> int:
        return len(self.steps)

    def record(
        self,
        completion: str,
        action: str,
        *,
        actor: str | None = None,
        message: dict[str, Any] | None = None,
    ) -> None:
        """The actor of this turn wrote ``completion``; ``action`` was sent to the env."""
        self.steps.append(
            Step(self.observation, self.info, str(completion), str(action), actor, message)
        )

    def observe(self, observation: str, info: dict[str, Any]) -> None:
        """What ``env.step`` returned after the last recorded action."""
        self.observation = str(observation)
        self.info = _kept(info)
        if info.get("tools"):
            self.tools = copy.deepcopy(list(info["tools"]))


def stable_seed(*parts: Any) -> int:
    """A 63-bit seed from ``parts`` (e.g. agent seed, task id, episode count, turn), the same
    on every machine and run, so an episode's sampling does not depend on its batch."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


@dataclass
class SlotEntry:
    """An episode in progress in one slot of a batched agent."""

    key: Hashable
    state: EpisodeState
    occurrence: int  # how many earlier episodes of the same task this agent started


class EpisodeSlots:
    """The episodes a batched agent is playing, one per slot key.

    ``update`` takes the observations and infos of one ``act_batch`` call: a
    slot whose ``info["turn"]`` is 0 (or that is new) starts an episode,
    the others continue theirs. ``record`` adds the agent's turns.
    """

    def __init__(self, family: str | None = None) -> None:
        self.family = family
        self._entries: dict[Hashable, SlotEntry] = {}
        self._started: Counter[str] = Counter()

    def reset(self) -> None:
        """Forget the episodes in progress (the per-task episode counts stay)."""
        self._entries.clear()

    def restart(self) -> None:
        """Forget everything: a new run whose episodes count from zero again."""
        self._entries.clear()
        self._started.clear()

    def update(
        self,
        observations: Sequence[str],
        infos: Sequence[dict[str, Any]],
        slots: Sequence[Hashable] | None = None,
    ) -> list[SlotEntry]:
        keys = list(slots) if slots is not None else list(range(len(observations)))
        if len(keys) != len(observations):
            raise ValueError("one slot key per observation")
        if len(set(keys)) != len(keys):
            raise ValueError("slot keys must be distinct within one call")
        entries = []
        for key, observation, info in zip(keys, observations, infos):
            entry = self._entries.get(key)
            if entry is None or info.get("turn", 1) == 0:
                state = EpisodeState.start(observation, info, family=self.family)
                task_key = str(info.get("task_id", state.task))
                entry = SlotEntry(key, state, self._started[task_key])
                self._started[task_key] += 1
                self._entries[key] = entry
            else:
                entry.state.observe(observation, info)
            entries.append(entry)
        return entries

    def record(self, entries: Sequence[SlotEntry], turns: Sequence[Any]) -> None:
        for entry, turn in zip(entries, turns):
            message = turn.extra.get("message")
            entry.state.record(turn.completion, turn.action, actor=turn.actor, message=message)

    def state(self, key: Hashable) -> EpisodeState | None:
        """The episode state of slot ``key`` (for inspection and trajectory scoring)."""
        entry = self._entries.get(key)
        return entry.state if entry is not None else None


# -- text families -------------------------------------------------------------


def _admissible_text(state_family: str, info: dict[str, Any], config: PromptConfig) -> str:
    actions = [str(a) for a in info.get("admissible_actions") or []]
    objects = [str(o) for o in info.get("objects") or []]
    if config.max_admissible is not None:
        actions = actions[: config.max_admissible]
    if not actions:
        return ""
    if state_family == "scienceworld" and objects:
        # ScienceWorld's compact form: verb templates plus the objects that fill them.
        return (
            "Admissible action templates (replace OBJ and LOC with objects listed below):\n"
            + ", ".join(actions)
            + "\nObjects here:\n"
            + ", ".join(objects)
        )
    return "Admissible actions:\n" + "\n".join(f"- {action}" for action in actions)


def _intro(state: EpisodeState) -> str:
    where, hint = _SETTING.get(state.family, _SETTING["text"])
    head = f"You are an expert agent acting in {where}."
    if hint:
        head += " " + hint
    return f"{head}\nYour task: {state.task}"


def _window_messages(state: EpisodeState, config: PromptConfig) -> list[dict[str, Any]]:
    taken = state.turns_taken
    parts = [_intro(state), f"Prior to this step, you have already taken {taken} step(s)."]
    recent = state.steps[-config.history_k :] if config.history_k else []
    if recent:
        first = taken - len(recent) + 1
        lines = [
            f"Your last {len(recent)} observation(s) and the action you took after each:",
        ]
        for offset, step in enumerate(recent):
            number = first + offset
            lines.append(f"[Step {number}] Observation: {step.observation.strip()}")
            lines.append(f"[Step {number}] Action: {step.action}")
        parts.append("\n".join(lines))
    parts.append(
        f"You are now at step {taken + 1}. Current observation:\n{state.observation.strip()}"
    )
    admissible = _admissible_text(state.family, state.info, config)
    if admissible:
        parts.append(admissible)
    parts.append(REACT_INSTRUCTION)
    messages: list[dict[str, Any]] = []
    if config.system_prompt:
        messages.append({"role": "system", "content": config.system_prompt})
    messages.append({"role": "user", "content": "\n\n".join(parts)})
    return messages


def _chat_user_turn(
    number: int, observation: str, info: dict[str, Any], family: str, config: PromptConfig
) -> dict[str, Any]:
    parts = [f"Step {number} (you have already taken {number - 1} step(s)). Observation:\n"]
    parts[0] += observation.strip()
    admissible = _admissible_text(family, info, config)
    if admissible:
        parts.append(admissible)
    return {"role": "user", "content": "\n\n".join(parts)}


def _chat_messages(state: EpisodeState, config: PromptConfig) -> list[dict[str, Any]]:
    system = config.system_prompt or f"{_intro(state)}\n\n{REACT_INSTRUCTION}"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    for number, step in enumerate(state.steps, start=1):
        messages.append(_chat_user_turn(number, step.observation, step.info, state.family, config))
        messages.append({"role": "assistant", "content": step.completion})
    messages.append(
        _chat_user_turn(state.turns_taken + 1, state.observation, state.info, state.family, config)
    )
    return messages


# -- tool family ---------------------------------------------------------------


def _tool_call_ids(step: Step) -> list[str]:
    calls = (step.message or {}).get("tool_calls") or []
    return [str(call.get("id", "")) for call in calls if isinstance(call, dict)]


def _tool_messages(
    observation: str, info: dict[str, Any], previous: Step | None
) -> list[dict[str, Any]]:
    """The turn(s) showing what the env answered to the previous completion."""
    results = info.get("tool_results") or []
    if previous is None or not results:
        return [{"role": "user", "content": observation.strip()}]
    ids = _tool_call_ids(previous)
    messages = []
    for index, result in enumerate(results):
        message: dict[str, Any] = {"role": "tool", "content": str(result.get("content", ""))}
        if result.get("name"):
            message["name"] = str(result["name"])
        if index < len(ids) and ids[index]:
            message["tool_call_id"] = ids[index]
        messages.append(message)
    trailing = observation.split("</tool_response>")[-1].strip()
    if trailing and "<tool_response>" in observation:
        # Text after the results (e.g. the verdict on a final answer) is the env speaking.
        messages.append({"role": "user", "content": trailing})
    return messages


def _signature(schema: dict[str, Any]) -> str:
    """``name(arg: type, ...): description`` of one OpenAI-style tool schema."""
    function = schema.get("function", schema)
    parameters = (function.get("parameters") or {}).get("properties") or {}
    args = ", ".join(
        f"{name}: {spec.get('type', 'any')}" if isinstance(spec, dict) else str(name)
        for name, spec in parameters.items()
    )
    description = str(function.get("description", "")).strip()
    line = f"{function.get('name', '?')}({args})"
    return f"{line}: {description}" if description else line


def template_tools(state: EpisodeState, config: PromptConfig) -> list[dict[str, Any]] | None:
    """The schemas to hand the chat template's ``tools=`` (None: no tools, or listed compactly)."""
    if state.family != "tool" or config.tool_listing != "template" or not state.tools:
        return None
    return list(state.tools)


def _tool_conversation(state: EpisodeState, config: PromptConfig) -> list[dict[str, Any]]:
    system = config.system_prompt or TOOL_SYSTEM
    if config.tool_listing == "compact" and state.tools:
        system += "\n\nTools:\n" + "\n".join(_signature(tool) for tool in state.tools)
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    observations = [(s.observation, s.info) for s in state.steps] + [
        (state.observation, state.info)
    ]
    for index, (observation, info) in enumerate(observations):
        previous = state.steps[index - 1] if index > 0 else None
        messages.extend(_tool_messages(observation, info, previous))
        if index < len(state.steps):
            step = state.steps[index]
            messages.append(step.message or {"role": "assistant", "content": step.completion})
    return messages


def build_messages(state: EpisodeState, config: PromptConfig | None = None) -> list[dict[str, Any]]:
    """The chat messages of the prompt for the current turn of ``state``."""
    config = config or PromptConfig()
    if state.family == "tool":
        return _tool_conversation(state, config)
    if config.history == "chat":
        return _chat_messages(state, config)
    return _window_messages(state, config)


#: Used for tokenizers without a chat template (base models): the Qwen layout in plain text.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def render_prompt(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    tools: list[dict[str, Any]] | None = None,
    template_kwargs: dict[str, Any] | None = None,
) -> str:
    """``messages`` rendered by ``tokenizer``'s chat template, ending with the assistant header."""
    kwargs = dict(template_kwargs or {})
    if tools:
        kwargs["tools"] = tools
    if not getattr(tokenizer, "chat_template", None):
        kwargs["chat_template"] = FALLBACK_CHAT_TEMPLATE
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, **kwargs
    )
    if not isinstance(text, str):  # some versions return a list for a single conversation
        text = text[0]
    return text
