"""The contract every mentorgym environment keeps.

``TextSpace`` is the observation and action space of every env: any printable
unicode string (newlines and tabs allowed) up to a maximum length.

``TextEnv`` is the base class. A benchmark subclasses it and implements four
hooks (``_start_task``, ``_execute``, ``_admissible_actions`` and optionally
``_expert_action``); the base class owns everything the contract promises:

* ``reset(seed=..., options={"task_id": ...})`` picks a task of the split
  (seeded) or the one asked for, and returns ``(observation, info)``; a bad
  argument (options that are not a dict, an unknown option or task id, a
  seed that is not an int) raises one ``ValueError`` naming it before
  anything changes, so the env stays usable;
* ``step(action)`` returns ``(observation, reward, terminated, truncated, info)``
  where ``reward`` is the change of the normalised score, so an episode's
  rewards sum to its final score in [0, 1];
* a bad action (not a string, empty, too long, control characters) never
  raises: it is an ``invalid_action=True`` step with a clear observation;
* the env owns its turn cap (``max_turns``): the step that reaches it is
  ``truncated``, and once an episode has ended (terminated or truncated) every
  further step is refused (a clear observation, no reward, no state change)
  until ``reset``;
* ``info`` always holds the keys of ``INFO_KEYS``.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

__all__ = [
    "ADMISSIBLE_MODES",
    "INFO_KEYS",
    "MAX_ACTION_LENGTH",
    "MAX_OBSERVATION_LENGTH",
    "BackendError",
    "TextEnv",
    "TextSpace",
    "Transition",
    "TurnCap",
    "action_problem",
    "is_printable_text",
]

#: Keys present in every ``info`` dict returned by every registered env.
INFO_KEYS: tuple[str, ...] = (
    "task_id",  # str: stable id of the task (an entry of the split's panel)
    "task",  # str: the goal, in words
    "admissible_actions",  # list[str]: valid actions now (or templates, see the env's docs)
    "score",  # float: normalised score so far, in [0, 1]
    "won",  # bool: task solved
    "invalid_action",  # bool: the last action was not understood or not allowed
    "action_type",  # str: type of the last action (verb template, tool name, search/click)
    "expert_action",  # str | None: the oracle's next action when made with expert=True
    "turn",  # int: turns taken so far
)

#: Values of the ``admissible_actions=`` keyword every env accepts.
ADMISSIBLE_MODES: tuple[str, ...] = ("full", "compact", "none")

MAX_OBSERVATION_LENGTH = 65_536
MAX_ACTION_LENGTH = 8_192

# Characters allowed besides str.isprintable() ones: text observations are multi-line.
_ALLOWED_WHITESPACE = frozenset("\n\t")

# Words the action space samples from: sampled actions look like commands, so
# check_env and fuzzers exercise the env's parser rather than its length check.
_SAMPLE_WORDS: tuple[str, ...] = (
    "go", "to", "take", "from", "put", "move", "open", "close", "look", "around",
    "examine", "use", "heat", "cool", "clean", "with", "in", "on", "inventory",
    "search", "click", "buy", "now", "focus", "the", "a", "door", "table", "apple",
    "1", "2", "3", "kitchen", "drawer", "water", "wait", "help",
)  # fmt: skip


def is_printable_text(text: str) -> bool:
    """True when every character is printable, a newline or a tab."""
    return text.isprintable() or all(c.isprintable() or c in _ALLOWED_WHITESPACE for c in text)


class TextSpace(gym.spaces.Text):
    """Any printable unicode string of ``min_length`` to ``max_length`` characters.

    Gymnasium's ``Text`` defaults to an alphanumeric charset, which rejects
    natural language; this space accepts every printable character plus
    newline and tab. ``sample()`` returns a few words from ``vocabulary``
    (command-like text, not character soup). The space pickles, compares by
    value, and works with ``gym.make_vec`` in async mode (shared memory holds
    unicode code points).
    """

    def __init__(
        self,
        max_length: int,
        *,
        min_length: int = 0,
        vocabulary: tuple[str, ...] = _SAMPLE_WORDS,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        # The parent's charset only serves its masked sampling; contains() is ours.
        charset = string.ascii_letters + string.digits + string.punctuation + " "
        super().__init__(max_length, min_length=min_length, charset=charset, seed=seed)
        self.vocabulary = tuple(vocabulary)

    def contains(self, x: Any) -> bool:
        return (
            isinstance(x, str)
            and self.min_length <= len(x) <= self.max_length
            and is_printable_text(x)
        )

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        if mask is not None or probability is not None:
            return super().sample(mask=mask, probability=probability)
        n_words = int(self.np_random.integers(1, 6))
        words = [
            self.vocabulary[i] for i in self.np_random.integers(len(self.vocabulary), size=n_words)
        ]
        text = " ".join(words)[: self.max_length]
        if len(text) < self.min_length:
            text = text + "a" * (self.min_length - len(text))
        return text

    def __repr__(self) -> str:
        return f"TextSpace(min_length={self.min_length}, max_length={self.max_length})"

    def __eq__(self, other: Any) -> bool:
        return (
            isinstance(other, TextSpace)
            and self.min_length == other.min_length
            and self.max_length == other.max_length
        )

    def __hash__(self) -> int:
        return hash((TextSpace, self.min_length, self.max_length))


# Async vector envs pass observations through shared memory. Gymnasium's Text
# handlers encode characters by their index in the charset, which cannot hold
# arbitrary unicode, so TextSpace stores code points (0 pads: NUL is never valid).
@create_shared_memory.register(TextSpace)
def _create_text_shared_memory(space: TextSpace, n: int = 1, ctx: Any = None) -> Any:
    import multiprocessing as mp

    ctx = ctx or mp
    return ctx.Array(np.dtype(np.uint32).char, n * space.max_length)


class SharedTextBatch(Sequence[str]):
    """A live, read-only view of N strings in an async vector env's shared memory.

    Gymnasium's AsyncVectorEnv reads the shared buffer once, when it is built,
    and relies on the result being a view that later writes show through
    (true of numpy arrays, not of str). This sequence decodes on access, so it
    always shows the latest observations; ``copy.deepcopy`` (what the vector
    env returns by default) snapshots it into a plain tuple.
    """

    def __init__(self, shared_memory: Any, n: int, max_length: int) -> None:
        self._codes = np.frombuffer(shared_memory.get_obj(), dtype=np.uint32).reshape(n, max_length)

    def __len__(self) -> int:
        return int(self._codes.shape[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        row = self._codes[index]
        return row[: int(np.count_nonzero(row))].tobytes().decode("utf-32-le")

    def __deepcopy__(self, memo: dict) -> tuple[str, ...]:
        return tuple(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __repr__(self) -> str:
        return f"SharedTextBatch({tuple(self)!r})"


@read_from_shared_memory.register(TextSpace)
def _read_text_shared_memory(space: TextSpace, shared_memory: Any, n: int = 1) -> SharedTextBatch:
    return SharedTextBatch(shared_memory, n, space.max_length)


@write_to_shared_memory.register(TextSpace)
def _write_text_shared_memory(space: TextSpace, index: int, value: str, shared_memory: Any) -> None:
    size = space.max_length
    destination = np.frombuffer(shared_memory.get_obj(), dtype=np.uint32)
    codes = np.frombuffer(value.encode("utf-32-le"), dtype=np.uint32)
    destination[index * size : (index + 1) * size] = 0
    destination[index * size : index * size + len(codes)] = codes


@dataclass
class Transition:
    """What a subclass's ``_execute`` reports about one executed action.

    ``score`` is the normalised score after the action, in [0, 1] (values
    outside are clipped). ``terminated`` ends the episode (won, or lost for
    good). ``extra_info`` is merged into ``info`` for this step.
    """

    observation: str
    score: float
    terminated: bool = False
    won: bool = False
    invalid_action: bool = False
    action_type: str = ""
    extra_info: dict[str, Any] = field(default_factory=dict)


class BackendError(RuntimeError):
    """Raised by a subclass when its simulator broke mid-episode.

    The base class ends the episode with the message in ``info["error"]``;
    the subclass is expected to recover on the next ``reset``.
    """


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def action_problem(action: Any, max_length: int) -> str | None:
    """Why ``action`` cannot be executed, in words; ``None`` when it can."""
    if not isinstance(action, str):
        return f"the action must be a string, not {type(action).__name__}"
    if len(action) > max_length:
        return f"the action is {len(action)} characters long; the limit is {max_length}"
    if not action.strip():
        return "the action is empty"
    if not is_printable_text(action):
        return "the action contains control or non-printable characters"
    return None


class TextEnv(gym.Env[str, str]):
    """Base class of every mentorgym environment (see the module docstring).

    Subclasses set ``splits`` and fill ``self.task_ids`` (the ordered task ids
    of the chosen split) in ``__init__``, then implement:

    * ``_start_task(task_id) -> (observation, task_text)``: begin an episode;
    * ``_execute(action) -> Transition``: run a well-formed action;
    * ``_admissible_actions() -> list[str]``: valid actions now, honouring
      ``self.admissible_mode``; called only when the mode is not ``"none"``;
    * ``_expert_action() -> str | None``: the oracle's next action; called only
      when the env was made with ``expert=True``;
    * optionally ``_extra_info()`` (env-specific info keys) and
      ``_knows_task(task_id)`` (ids playable beyond the split's list).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["human", "ansi"], "render_fps": 4}
    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")
    #: Turns an episode may take (``None``: no cap). Subclasses set their registered
    #: cap, which holds when the class is built directly; ``gym.make`` sets the
    #: instance's value to the cap it applies (see :class:`TurnCap`).
    max_turns: int | None = None
    #: Observation after a malformed action; subclasses may use their engine's wording.
    invalid_observation: ClassVar[str] = "Nothing happens."

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "full",
        expert: bool | str = False,
        render_mode: str | None = None,
    ) -> None:
        if split not in self.splits:
            raise ValueError(
                f"{type(self).__name__}: unknown split {split!r}; choose one of {list(self.splits)}."
            )
        if admissible_actions not in ADMISSIBLE_MODES:
            raise ValueError(
                f"{type(self).__name__}: admissible_actions must be one of {list(ADMISSIBLE_MODES)}, "
                f"not {admissible_actions!r}."
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"{type(self).__name__}: render_mode must be one of {self.metadata['render_modes']} or None."
            )
        self.split = split
        self.admissible_mode = admissible_actions
        self.expert = expert
        self.render_mode = render_mode
        self.observation_space = TextSpace(MAX_OBSERVATION_LENGTH)
        self.action_space = TextSpace(MAX_ACTION_LENGTH, min_length=1)
        self.task_ids: list[str] = []
        self._task_id = ""
        self._task = ""
        self._score = 0.0
        self._turn = 0
        self._won = False
        self._done = True
        self._ended = (True, False)  # (terminated, truncated) of the episode that ended
        self._last_observation = ""

    # -- hooks for subclasses -------------------------------------------------

    def _start_task(self, task_id: str) -> tuple[str, str]:
        raise NotImplementedError

    def _execute(self, action: str) -> Transition:
        raise NotImplementedError

    def _admissible_actions(self) -> list[str]:
        raise NotImplementedError

    def _expert_action(self) -> str | None:
        return None

    def _knows_task(self, task_id: str) -> bool:
        """Whether ``task_id`` outside the split's list can still be played."""
        return False

    def _extra_info(self) -> dict[str, Any]:
        """Env-specific ``info`` keys, added to every info (reset and step)."""
        return {}

    # -- the Gymnasium API ----------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        # Bad arguments raise before anything changes: the env stays as it was, usable.
        task_id = self._reset_task_option(seed, options)
        if (
            task_id is not None
            and task_id not in self._task_id_set()
            and not self._knows_task(task_id)
        ):
            examples = ", ".join(repr(t) for t in self.task_ids[:3])
            raise ValueError(
                f"{type(self).__name__}.reset: unknown task_id {_short_repr(task_id)} for split "
                f"{self.split!r} (e.g. {examples}; see env.unwrapped.task_ids)."
            )
        super().reset(seed=seed)
        if task_id is None:
            if not self.task_ids:
                raise RuntimeError(f"{type(self).__name__}: the {self.split!r} split has no tasks.")
            task_id = self.task_ids[int(self.np_random.integers(len(self.task_ids)))]
        try:
            observation, task = self._start_task(task_id)
        except BaseException:
            self._done = True  # half-started: step() asks for a new reset instead of guessing
            raise
        self._task_id, self._task = task_id, task
        self._score, self._turn, self._won, self._done = 0.0, 0, False, False
        observation = self._fit_observation(observation)
        self._last_observation = observation
        info = self._info(invalid_action=False, action_type="")
        self._maybe_render()
        return observation, info

    def step(self, action: str) -> tuple[str, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._done:
            info = self._info(invalid_action=True, action_type="invalid")
            observation = "The episode is over; call reset() to start a new one."
            return observation, 0.0, *self._ended, info

        self._turn += 1
        problem = self._action_problem(action)
        extra: dict[str, Any] = {}
        if problem is not None:
            transition = Transition(
                observation=f"{self.invalid_observation} ({problem[0].upper()}{problem[1:]}.)",
                score=self._score,
                invalid_action=True,
                action_type="invalid",
            )
        else:
            try:
                transition = self._execute(action.strip())
            except BackendError as error:
                transition = Transition(
                    observation=f"The environment failed and the episode has ended: {error}",
                    score=self._score,
                    terminated=True,
                    invalid_action=False,
                    action_type="error",
                )
                extra["error"] = str(error)

        score = transition.score
        score = 0.0 if math.isnan(score) else min(1.0, max(0.0, float(score)))
        reward = score - self._score
        self._score = score
        self._won = bool(transition.won)
        terminated = bool(transition.terminated)
        truncated = not terminated and self.max_turns is not None and self._turn >= self.max_turns
        self._done = terminated or truncated
        self._ended = (terminated, truncated)
        observation = self._fit_observation(transition.observation)
        self._last_observation = observation
        extra.update(transition.extra_info)
        info = self._info(
            invalid_action=transition.invalid_action,
            action_type=transition.action_type,
            **extra,
        )
        self._maybe_render()
        return observation, reward, terminated, truncated, info

    def _action_problem(self, action: Any) -> str | None:
        """Why ``action`` is refused before ``_execute`` (None: run it); a subclass may accept more."""
        return action_problem(action, self.action_space.max_length)

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return self._last_observation
        if self.render_mode == "human":
            print(self._last_observation)
        return None

    # -- helpers --------------------------------------------------------------

    def _reset_task_option(self, seed: Any, options: Any) -> str | None:
        """Check ``reset``'s arguments before anything changes; returns the asked task id or None."""
        name = f"{type(self).__name__}.reset"
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise ValueError(f"{name}: seed must be an int or None, not {type(seed).__name__}")
        if options is None:
            return None
        if not isinstance(options, Mapping):
            raise ValueError(
                f"{name}: options must be a dict such as {{'task_id': ...}} or None, "
                f"not {type(options).__name__} {_short_repr(options)}"
            )
        unknown = [key for key in options if key != "task_id"]
        if unknown:
            raise ValueError(
                f"{name}: unknown options [{', '.join(_short_repr(k) for k in unknown)}]; "
                "the only option is 'task_id'."
            )
        task_id = options.get("task_id")
        if task_id is not None and not isinstance(task_id, str):
            raise ValueError(
                f"{name}: options['task_id'] must be a str, not {type(task_id).__name__} "
                f"{_short_repr(task_id)}"
            )
        return task_id

    def _task_id_set(self) -> frozenset[str]:
        # Cached by identity of the list, so subclasses may replace task_ids freely.
        cached = getattr(self, "_task_id_cache", None)
        if cached is None or cached[0] is not self.task_ids or cached[1] != len(self.task_ids):
            cached = (self.task_ids, len(self.task_ids), frozenset(self.task_ids))
            self._task_id_cache = cached
        return cached[2]

    def _fit_observation(self, observation: str) -> str:
        if not is_printable_text(observation):
            observation = "".join(
                c if c.isprintable() or c in _ALLOWED_WHITESPACE else " " for c in observation
            )
        limit = self.observation_space.max_length
        if len(observation) > limit:
            observation = observation[: limit - 3] + "..."
        return observation

    def _info(self, *, invalid_action: bool, action_type: str, **extra: Any) -> dict[str, Any]:
        in_play = not self._done
        admissible = (
            list(self._admissible_actions()) if self.admissible_mode != "none" and in_play else []
        )
        expert_action = self._expert_action() if self.expert and in_play else None
        info = {
            "task_id": self._task_id,
            "task": self._task,
            "admissible_actions": admissible,
            "score": self._score,
            "won": self._won,
            "invalid_action": bool(invalid_action),
            "action_type": action_type,
            "expert_action": expert_action,
            "turn": self._turn,
        }
        info.update(self._extra_info())
        info.update(extra)
        return info

    def _maybe_render(self) -> None:
        if self.render_mode == "human":
            self.render()


class TurnCap(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Gives the env the turn cap of the ``TimeLimit`` that ``gym.make`` applied.

    Registered as every id's additional wrapper: ``gym.make`` builds it around
    its ``TimeLimit`` (the registered cap, or a ``max_episode_steps=``
    override), and it copies that cap into ``env.unwrapped.max_turns``, so the
    env itself refuses to act after truncation. With ``max_episode_steps=-1``
    (no ``TimeLimit``) the env has no cap. It changes nothing else.
    """

    def __init__(self, env: gym.Env) -> None:
        gym.utils.RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        cap = None
        layer: Any = env
        while isinstance(layer, gym.Wrapper):
            if isinstance(layer, gym.wrappers.TimeLimit):
                cap = layer._max_episode_steps
                break
            layer = layer.env
        if isinstance(env.unwrapped, TextEnv):
            env.unwrapped.max_turns = cap
