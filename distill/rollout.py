"""Rollout collection: many envs at once, a selector deciding who acts each turn.

``RolloutCollector.collect(requests)`` plays one episode per request in an
``EnvPool``. At every turn of every live episode the request's selector names
the actor (``student``, ``teacher``, ``expert`` or ``replay``); the actors
act for all their episodes in one batched call on shared ``EpisodeState``
histories (``take_turns``), the actions are stepped together, and each turn
is recorded with its actor, token ids, the sampling log-probs, observation,
reward and info. ``score_with_teacher`` then fills the teacher's log-probs of
the student's tokens, a whole trajectory per forward pass where prompts
extend each other.

This is not ``envs.evaluation``'s episode loop, because it must differ: it steps a
whole wave of episodes at once through an ``EnvPool`` (worker processes, a failing
env ending only its own episode), several actors share each episode's
``EpisodeState`` under a selector, and every turn keeps its token ids and
log-probs, where the evaluation loop asks one ``Agent`` to act on plain envs.

Actors are language-model agents (``agents.HFAgent``: anything with
``take_turns(states, seeds=)``) or scripted: ``ExpertTurns`` (the env's
oracle, ``info["expert_action"]``) and ``ReplayTurns`` (a fixed action list,
for TCOD-B2F prefixes). Scripted turns are written as completions in the
student's format and tokenized by the student, so they can be trained on.

An env that fails (it raised, its worker died or hung, or it ended the
episode with ``info["error"]``) ends that episode only: the rollout keeps
its turns so far, the failing turn is recorded untrained with the error as
its observation, ``Rollout.error`` says what happened, ``env_errors`` counts
it, and the pool replaces a dead worker. Only ``max_env_errors`` failed
episodes in a row stop the collection (:class:`EnvErrorLimit`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.prompts import EpisodeState, action_completion
from agents.trajectory import AgentTurn
from envs.multiagent.selectors import FixedSelector, Selector
from envs.pool import EnvFailure, EnvPool

__all__ = [
    "AgentTurns",
    "EnvErrorLimit",
    "ExpertTurns",
    "ReplayTurns",
    "Rollout",
    "RolloutCollector",
    "RolloutRequest",
    "Turn",
    "TurnTaker",
    "score_with_teacher",
]


class TurnTaker(Protocol):
    """An actor of a rollout: one turn for each episode state given."""

    def take_turns(
        self, states: Sequence[EpisodeState], *, seeds: Sequence[int | None] | None = None
    ) -> list[AgentTurn]: ...


@dataclass
class Turn:
    """One recorded turn of a rollout.

    ``sample_logprobs``: per-token log-probs under the actor that sampled the
    completion (log pi_old for student turns; the teacher's own for teacher
    turns); None for scripted turns. ``teacher_logprobs``: the teacher's
    log-probs of these tokens, filled by ``score_with_teacher``. ``trained``:
    False for turns no loss may use (a replayed prefix).
    """

    actor: str
    prompt_ids: list[int]
    completion_ids: list[int]
    completion: str
    action: str
    observation: str
    reward: float
    score: float
    action_type: str
    invalid_action: bool
    finished: bool  # the completion ended properly (stop string or end of sequence)
    sample_logprobs: list[float] | None = None
    teacher_logprobs: list[float] | None = None
    trained: bool = True


@dataclass
class Rollout:
    """One episode: its turns and outcome."""

    env_id: str
    task_id: str
    seed: int | None
    group: int
    turns: list[Turn] = field(default_factory=list)
    won: bool = False
    score: float = 0.0
    terminated: bool = False
    truncated: bool = False
    tools: list[str] = field(default_factory=list)  # tool names the env offered (tool tasks)
    state: EpisodeState | None = None
    error: str | None = None  # the env failed and ended the episode (see the module docstring)

    def actions_of(self, actor: str) -> list[str]:
        return [turn.action for turn in self.turns if turn.actor == actor]

    def action_types_of(self, actor: str) -> list[str]:
        return [turn.action_type for turn in self.turns if turn.actor == actor]


@dataclass
class RolloutRequest:
    """One episode to play: the task, its reset seed, who acts, and for how long."""

    task_id: str
    seed: int | None = None
    selector: Selector = field(default_factory=lambda: FixedSelector("student"))
    max_turns: int = 30
    group: int = 0  # rollouts of the same task for GRPO share a group
    replay_actions: list[str] | None = None  # what a "replay" actor says, in order


class EnvErrorLimit(RuntimeError):
    """More env failures in a row than the collector's ``max_env_errors`` allow."""


class ExpertTurns:
    """The env's oracle as an actor: ``info["expert_action"]`` (the env needs ``expert=True``)."""

    actor = "expert"

    def __init__(self, student: Any, fallback: str = "look") -> None:
        self.student, self.fallback = student, fallback
        # The oracle's next action per episode (EpisodeState keeps only prompt-relevant info).
        self.next_actions: dict[int, str | None] = {}

    def take_turns(self, states: Sequence[EpisodeState], *, seeds: Any = None) -> list[AgentTurn]:
        return [
            _scripted_turn(
                self.student, state, self.next_actions.get(id(state)) or self.fallback, self.actor
            )
            for state in states
        ]


class AgentTurns:
    """Any agent with ``reset``/``act`` (a scripted policy, your own class) as an actor.

    ``make`` builds one agent per episode (an ``Agent`` plays one episode at a time);
    its actions are written as completions in the student's format and tokenized by
    the student, like the expert's.
    """

    def __init__(self, student: Any, make: Any, actor: str = "teacher") -> None:
        self.student, self.make, self.actor = student, make, actor
        self.tokenizer = student.tokenizer  # its turns are in the student's tokens
        self.agents: dict[int, Any] = {}

    def take_turns(self, states: Sequence[EpisodeState], *, seeds: Any = None) -> list[AgentTurn]:
        turns = []
        for state in states:
            agent = self.agents.get(id(state))
            if agent is None:
                agent = self.agents[id(state)] = self.make()
                agent.reset(state.task, state.info)
            action = str(agent.act(state.observation, state.info))
            turns.append(_scripted_turn(self.student, state, action, self.actor))
        return turns

    def forget(self, state: EpisodeState) -> None:
        self.agents.pop(id(state), None)


class ReplayTurns:
    """Replays each episode's ``replay_actions`` (a reference prefix, TCOD-B2F)."""

    actor = "replay"

    def __init__(self, student: Any) -> None:
        self.student = student
        self.actions: dict[int, list[str]] = {}

    def take_turns(self, states: Sequence[EpisodeState], *, seeds: Any = None) -> list[AgentTurn]:
        turns = []
        for state in states:
            actions = self.actions.get(id(state), [])
            action = actions[state.turns_taken] if state.turns_taken < len(actions) else "look"
            turns.append(_scripted_turn(self.student, state, action, self.actor))
        return turns


def _scripted_turn(student: Any, state: EpisodeState, action: str, actor: str) -> AgentTurn:
    turn = AgentTurn(
        prompt="",
        completion=action_completion(action, state.family),
        action=action,
        actor=actor,
        finish_reason="stop",
        parsed=True,
    )
    return _in_student_tokens(student, state, turn)


def _in_student_tokens(student: Any, state: EpisodeState, turn: AgentTurn) -> AgentTurn:
    """``turn`` (its completion text) as the student would read it: the student's prompt ids
    for ``state`` and its encoding of the completion. Log-probs of other tokens are dropped."""
    text, prompt_ids = student.prompt_ids(state)
    completion_ids = student.encode(turn.completion)
    ended = turn.finish_reason == "stop"
    if state.family == "tool" and ended and student.turn_end_id is not None:
        completion_ids = completion_ids + [student.turn_end_id]  # tool turns end at EOS
    return dataclasses.replace(
        turn, prompt=text, prompt_ids=prompt_ids, completion_ids=completion_ids, logprobs=None
    )


def speaks_student_tokens(agent: Any, student: Any) -> bool:
    """Whether ``agent``'s token ids are the student's (the same tokenizer, or one with the
    same vocabulary): then its turns can be trained on as they were sampled."""
    tokenizer = getattr(agent, "tokenizer", None)
    if tokenizer is None:
        return False
    return tokenizer is student.tokenizer or tokenizer.get_vocab() == student.tokenizer.get_vocab()


class RolloutCollector:
    """Plays rollouts of one env id in an ``EnvPool`` with the given actors."""

    def __init__(
        self,
        env_id: str,
        *,
        student: Any,
        teacher: Any = None,
        num_envs: int = 4,
        env_kwargs: Mapping[str, Any] | None = None,
        mode: str = "async",
        max_env_errors: int = 10,
    ) -> None:
        if max_env_errors < 0:
            raise ValueError(f"max_env_errors must be >= 0, not {max_env_errors}")
        self.env_id = env_id
        self.student, self.teacher = student, teacher
        kwargs = {"admissible_actions": "compact", **dict(env_kwargs or {})}
        self.pool = EnvPool(env_id, num_envs, env_kwargs=kwargs, mode=mode)
        self.expert = ExpertTurns(student)
        self.replay = ReplayTurns(student)
        # Actors whose turns are already in the student's tokens; others' are re-encoded.
        self.native = {"student", "expert", "replay"}
        if teacher is not None and speaks_student_tokens(teacher, student):
            self.native.add("teacher")
        #: Seconds spent inside the envs (resets and steps), for where-the-time-goes reports.
        self.env_seconds = 0.0
        #: When a list, every rollout collected is appended to it (the trainer's records).
        self.history: list[Rollout] | None = None
        #: Episodes an env failure ended (all so far), and how many in a row lately.
        self.env_errors = 0
        self.env_errors_in_a_row = 0
        self.max_env_errors = int(max_env_errors)

    def close(self) -> None:
        self.pool.close()

    def actors(self) -> dict[str, Any]:
        actors: dict[str, Any] = {
            "student": self.student,
            "expert": self.expert,
            "replay": self.replay,
        }
        if self.teacher is not None:
            actors["teacher"] = self.teacher
        return actors

    def collect(
        self, requests: Sequence[RolloutRequest], *, progress: str | None = None
    ) -> list[Rollout]:
        """Play every request (``num_envs`` at a time) and return the rollouts in order;
        ``progress`` names a bar over the episodes (None: no bar); it advances as each
        episode ends, not once per wave of ``num_envs``."""
        from tqdm.auto import tqdm

        rollouts: list[Rollout] = []
        with tqdm(total=len(requests), desc=progress, disable=progress is None) as bar:
            for start in range(0, len(requests), self.pool.num_envs):
                wave = list(requests[start : start + self.pool.num_envs])
                rollouts.extend(self._collect_wave(wave, ended=lambda: bar.update(1)))
        if self.history is not None:
            self.history.extend(rollouts)
        return rollouts

    def _collect_wave(
        self, requests: list[RolloutRequest], ended: Callable[[], Any] | None = None
    ) -> list[Rollout]:
        """Play one wave (at most ``num_envs`` requests); ``ended()`` is called per finished
        episode."""
        actors = self.actors()

        def finish(i: int) -> None:
            live.discard(i)
            if ended is not None:
                ended()

        started = time.perf_counter()
        resets = self.pool.reset(
            {
                i: {"seed": r.seed, "options": {"task_id": r.task_id}}
                for i, r in enumerate(requests)
            },
            errors="return",
        )
        self.env_seconds += time.perf_counter() - started
        states, rollouts = {}, []
        live = set(range(len(requests)))
        for i, request in enumerate(requests):
            if isinstance(resets[i], EnvFailure):
                rollouts.append(
                    Rollout(
                        self.env_id, request.task_id, request.seed, request.group, truncated=True
                    )
                )
                self._env_failed(rollouts[-1], f"reset failed: {resets[i].message}")
                finish(i)
                continue
            observation, info = resets[i]
            state = EpisodeState.start(observation, info, env_id=self.env_id)
            states[i] = state
            self.expert.next_actions[id(state)] = info.get("expert_action")
            request.selector.reset(request.seed)
            if request.replay_actions is not None:
                self.replay.actions[id(state)] = list(request.replay_actions)
            tools = [t.get("function", t).get("name", "") for t in info.get("tools") or []]
            rollouts.append(
                Rollout(
                    self.env_id,
                    request.task_id,
                    request.seed,
                    request.group,
                    tools=tools,
                    state=state,
                )
            )
        while live:
            by_actor: dict[str, list[int]] = {}
            for i in sorted(live):
                actor = requests[i].selector.select(states[i].turns_taken)
                if actor not in actors:
                    raise ValueError(
                        f"the selector chose {actor!r}, but the actors are {sorted(actors)}"
                    )
                by_actor.setdefault(actor, []).append(i)
            agent_turns: dict[int, tuple[str, AgentTurn]] = {}
            for actor, indices in by_actor.items():
                # Sampling seeds follow from the request, not from an agent's RNG state, so a
                # resumed or distributed run samples exactly what an uninterrupted one does.
                seeds = [
                    _turn_seed(requests[i].seed, requests[i].group, states[i].turns_taken, actor)
                    for i in indices
                ]
                taken = actors[actor].take_turns([states[i] for i in indices], seeds=seeds)
                for i, turn in zip(indices, taken):
                    if actor not in self.native or not turn.prompt_ids:
                        turn = _in_student_tokens(self.student, states[i], turn)
                    agent_turns[i] = (actor, turn)
            started = time.perf_counter()
            results = self.pool.step(
                {i: agent_turns[i][1].action for i in agent_turns}, errors="return"
            )
            self.env_seconds += time.perf_counter() - started
            for i, (actor, turn) in agent_turns.items():
                state = states[i]
                if isinstance(results[i], EnvFailure):
                    self._record_failed_turn(rollouts[i], actor, turn, results[i].message)
                    finish(i)
                    self._forget(state)
                    continue
                observation, reward, terminated, truncated, info = results[i]
                state.record(
                    turn.completion, turn.action, actor=actor, message=turn.extra.get("message")
                )
                state.observe(observation, info)
                self.expert.next_actions[id(state)] = info.get("expert_action")
                rollout = rollouts[i]
                rollout.turns.append(
                    _recorded_turn(
                        actor,
                        turn,
                        observation=observation,
                        reward=float(reward),
                        score=float(info["score"]),
                        action_type=str(info.get("action_type", "")),
                        invalid_action=bool(info.get("invalid_action", False)),
                        trained=actor != "replay",
                    )
                )
                rollout.won, rollout.score = bool(info["won"]), float(info["score"])
                capped = state.turns_taken >= requests[i].max_turns
                if terminated or truncated or capped:
                    rollout.terminated = bool(terminated)
                    rollout.truncated = not terminated
                    finish(i)
                    self._forget(state)
                    if info.get("error"):  # the env caught its own backend failure
                        self._env_failed(rollout, str(info["error"]))
                    else:
                        self.env_errors_in_a_row = 0
        return rollouts

    def _forget(self, state: EpisodeState) -> None:
        """Drop what the scripted actors kept for an episode that has ended."""
        self.replay.actions.pop(id(state), None)
        self.expert.next_actions.pop(id(state), None)
        forget = getattr(self.teacher, "forget", None)
        if forget is not None:
            forget(state)

    def _record_failed_turn(
        self, rollout: Rollout, actor: str, turn: AgentTurn, message: str
    ) -> None:
        """The turn whose step failed: kept for the record, never trained on."""
        rollout.turns.append(
            _recorded_turn(
                actor,
                turn,
                observation=f"The environment failed and the episode has ended: {message}",
                reward=0.0,
                score=rollout.score,
                action_type="error",
                invalid_action=False,
                trained=False,
            )
        )
        rollout.truncated = True
        self._env_failed(rollout, message)

    def _env_failed(self, rollout: Rollout, message: str) -> None:
        rollout.error = message
        self.env_errors += 1
        self.env_errors_in_a_row += 1
        if self.env_errors_in_a_row > self.max_env_errors:
            raise EnvErrorLimit(
                f"{self.env_errors_in_a_row} episodes of {self.env_id} in a row ended with an "
                f"environment failure (the limit is max_env_errors={self.max_env_errors}); the "
                f"last: {message}"
            )


def _recorded_turn(actor: str, turn: AgentTurn, **outcome: Any) -> Turn:
    """A ``Turn`` from the agent's record and what the env said (``outcome``)."""
    return Turn(
        actor=actor,
        prompt_ids=list(turn.prompt_ids or []),
        completion_ids=list(turn.completion_ids or []),
        completion=turn.completion,
        action=turn.action,
        finished=turn.finish_reason == "stop",
        sample_logprobs=list(turn.logprobs) if turn.logprobs is not None else None,
        **outcome,
    )


def _turn_seed(seed: int | None, group: int, turn: int, actor: str) -> int | None:
    if seed is None:
        return None
    digest = hashlib.blake2b(f"{seed}|{group}|{turn}|{actor}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


def score_with_teacher(
    teacher: Any, rollouts: Sequence[Rollout], actors: tuple[str, ...] = ("student",)
) -> None:
    """Fill ``teacher_logprobs`` of the turns played by ``actors`` (in place).

    Each rollout's turns are scored as one trajectory, so the teacher runs one
    forward pass per chain of prompts that extend each other. Turns the
    teacher itself sampled already carry its log-probs in ``sample_logprobs``.
    """
    prompts, completions, places = [], [], []
    for r, rollout in enumerate(rollouts):
        chosen = [
            k
            for k, turn in enumerate(rollout.turns)
            if turn.actor in actors and turn.completion_ids
        ]
        if not chosen:
            continue
        prompts.append([rollout.turns[k].prompt_ids for k in chosen])
        completions.append([rollout.turns[k].completion_ids for k in chosen])
        places.append((r, chosen))
    if prompts:
        scored = teacher.logprobs_trajectories(prompts, completions)
        for (r, chosen), per_turn in zip(places, scored):
            for k, logprobs in zip(chosen, per_turn):
                rollouts[r].turns[k].teacher_logprobs = list(logprobs)
    for rollout in rollouts:
        for turn in rollout.turns:
            if turn.actor == "teacher" and turn.teacher_logprobs is None:
                turn.teacher_logprobs = turn.sample_logprobs
