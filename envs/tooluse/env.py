"""The generic tool-calling environment that ToolMath-v0, FunctionCall-v0 and SearchQA-v0 share.

An action is a model completion. It either holds one or more ``<tool_call>``
blocks, which run in the sandbox and come back as ``<tool_response>`` blocks in
the next observation (one *tool turn*), or it gives a final answer
(``\\boxed{...}``, ``<answer>...</answer>``, or the ``answer`` tool where the
environment offers one), which is judged and ends the episode.

Rules of an episode:

* at most ``max_tool_turns`` tool turns (5, as in MENTOR); a tool call after
  that ends the episode, lost, without running. The final answer is always
  allowed, so the registered ``max_episode_steps`` is a little above the cap;
* at most ``max_calls_per_turn`` calls in one completion; more is refused as a
  whole (no call runs) and still costs a tool turn;
* a turn with any unreadable call, unknown tool, bad argument or failed call
  has ``invalid_action=True``; the others in the turn still run;
* a completion with neither a call nor an answer is an invalid action that
  costs no tool turn (the step counter still runs);
* the score is 0 until the final answer; then it is the subclass's judgement
  (``won`` means correct), so rewards sum to the final score.

Besides the contract's keys, ``info`` holds ``tools`` (the schemas, for
``apply_chat_template(tools=...)``), ``tool_calls`` (every call so far:
``{"turn", "name", "arguments", "ok", "error_kind"}``), ``tool_results``
(``{"name", "ok", "content"}`` of the last turn, for tool messages),
``tool_turns``, ``tool_turns_left`` and ``final_answer``.
``action_type`` is the called tool's name (several distinct names joined by
``","`` in call order), ``answer`` for a final answer, ``invalid`` otherwise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from envs.core import BackendError, TextEnv, Transition
from envs.tooluse.calls import (
    ParsedCall,
    format_tool_call,
    format_tool_calls,
    format_tool_responses,
    parse_completion,
)
from envs.tooluse.sandbox import Sandbox, SandboxError, SandboxLimits, ToolOutcome, Toolset
from envs.tooluse.schema import schema_name, validate_arguments
from envs.tooluse.tasks import ToolTask

__all__ = ["ANSWER_TOOL", "ToolEnv", "Verdict", "canonical_arguments"]

_log = logging.getLogger(__name__)

#: The tool that ends an episode with a final answer (FunctionCall-v0, SearchQA-v0).
ANSWER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "answer",
        "description": "Give your final answer. This ends the task.",
        "parameters": {
            "type": "object",
            "properties": {"answer": {"type": "string", "description": "the final answer"}},
            "required": ["answer"],
        },
    },
}


@dataclass
class Verdict:
    """A judged final answer: ``score`` in [0, 1], ``won``, and info entries to report."""

    score: float
    won: bool
    info: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value) if abs(value) < 2**53 else value
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in sorted(value.items())}
    return repr(value)


def canonical_arguments(name: str, arguments: dict[str, Any]) -> str:
    """A key under which equal calls (``2`` and ``2.0`` alike) are equal."""
    return json.dumps([name, _canonical(arguments)], sort_keys=True)


class ToolEnv(TextEnv):
    """Base of the tool environments (see the module docstring for the rules).

    A subclass loads its tasks in ``__init__`` (``self._set_tasks``), says
    which toolset runs a task's tools (``_toolset``), judges a final answer
    (``_judge``), and lists executable actions for ``admissible_actions="full"``
    (``_full_actions``).
    """

    #: Names the final-answer convention in the first observation.
    answer_instruction: ClassVar[str] = "Give the final answer as <answer>...</answer>."
    #: Whether the env offers the ``answer`` tool (added to every task's tools).
    offers_answer_tool: ClassVar[bool] = True
    invalid_observation: ClassVar[str] = "No tool call and no final answer found."
    max_turns = 8  # 5 tool turns, the answer, and 2 spare turns (the registered cap)

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "full",
        expert: bool | str = False,
        render_mode: str | None = None,
        max_tool_turns: int = 5,
        max_calls_per_turn: int = 8,
        tool_timeout_s: float = 5.0,
        tool_cpu_s: int = 5,
        tool_memory_mb: int = 1024,
        max_output_chars: int = 4000,
    ) -> None:
        super().__init__(
            split=split,
            admissible_actions=admissible_actions,
            expert=expert,
            render_mode=render_mode,
        )
        if not isinstance(max_tool_turns, int) or max_tool_turns < 1:
            raise ValueError(f"{type(self).__name__}: max_tool_turns must be a positive integer")
        if not isinstance(max_calls_per_turn, int) or max_calls_per_turn < 1:
            raise ValueError(
                f"{type(self).__name__}: max_calls_per_turn must be a positive integer"
            )
        self.max_tool_turns = max_tool_turns
        self.max_calls_per_turn = max_calls_per_turn
        self.sandbox_limits = SandboxLimits(
            wall_time_s=tool_timeout_s,
            cpu_time_s=tool_cpu_s,
            memory_mb=tool_memory_mb,
            max_output_chars=max_output_chars,
        )
        self._sandbox: Sandbox | None = None
        self.tasks: dict[str, ToolTask] = {}
        self._task_obj: ToolTask | None = None
        self._tools: list[dict[str, Any]] = []
        self._schemas: dict[str, dict[str, Any]] = {}
        self._calls: list[dict[str, Any]] = []
        self._made: set[str] = set()
        self._results: list[str] = []
        self._last_results: list[dict[str, Any]] = []
        self._tool_turns = 0
        self._final_answer: str | None = None
        self._verdict_info: dict[str, Any] = {}

    # -- for subclasses -------------------------------------------------------------

    def _set_tasks(self, tasks: Sequence[ToolTask]) -> None:
        """Make ``tasks`` (in order) the split's tasks."""
        self.tasks = {}
        for task in tasks:
            if task.id in self.tasks:
                raise ValueError(f"{type(self).__name__}: the task id {task.id!r} appears twice")
            self.tasks[task.id] = task
        self.task_ids = list(self.tasks)

    def _toolset(self, task: ToolTask) -> Toolset | None:
        """The toolset that runs ``task``'s tools; None when they cannot run (calls are only judged)."""
        raise NotImplementedError

    def _preload(self) -> tuple[Toolset, ...]:
        """Toolsets the sandbox worker imports when it starts."""
        return ()

    def _judge(self, task: ToolTask, answer: str) -> Verdict:
        """Judge the final answer ``answer`` of ``task``."""
        raise NotImplementedError

    def _judge_calls_only(self, task: ToolTask, answer: str | None) -> Verdict:
        """Judge an episode of a task whose tools cannot run (see FunctionCall-v0)."""
        return self._judge(task, answer or "")

    def _full_actions(self, task: ToolTask) -> list[str]:
        """Executable actions for ``admissible_actions="full"`` (one call per tool, an answer)."""
        raise NotImplementedError

    def _expert_final(self, task: ToolTask) -> str:
        """The expert's final-answer action."""
        return self.format_answer(task.expert_answer)

    def format_answer(self, text: str) -> str:
        """A final-answer action in this env's convention."""
        if self.offers_answer_tool:
            return format_tool_call("answer", {"answer": text})
        return f"<answer>{text}</answer>"

    # -- sandbox ------------------------------------------------------------------------

    @property
    def sandbox(self) -> Sandbox:
        """The env's sandbox (its worker starts on the first tool call)."""
        if self._sandbox is None:
            self._sandbox = Sandbox(self.sandbox_limits, preload=self._preload())
        return self._sandbox

    def _run_tool(self, toolset: Toolset, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        try:
            return self.sandbox.call(toolset, name, arguments)
        except SandboxError as error:
            raise BackendError(str(error)) from error

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None
        super().close()

    # -- TextEnv hooks ------------------------------------------------------------------

    def _start_task(self, task_id: str) -> tuple[str, str]:
        task = self.tasks[task_id]
        self._task_obj = task
        tools = list(task.tools)
        if self.offers_answer_tool and "answer" not in task.tool_names:
            tools.append(ANSWER_TOOL)
        self._tools = tools
        self._schemas = {schema_name(s): s for s in tools}
        self._calls, self._made, self._results, self._last_results = [], set(), [], []
        self._tool_turns, self._final_answer, self._verdict_info = 0, None, {}
        return f"{task.question}\n\n{self.answer_instruction}", task.question

    def _execute(self, action: str) -> Transition:
        try:
            return self._execute_completion(action)
        except BackendError:
            raise
        except Exception as error:
            # The parser refuses what is known to break the tools (deep nesting, lone
            # surrogates, huge numbers); anything still unforeseen costs the action, never
            # the episode or the process.
            _log.warning(
                "%s: an action raised %r; it counts as invalid", type(self).__name__, error
            )
            reason = f"{type(error).__name__}: {error}"
            reason = reason if len(reason) <= 200 else reason[:200] + "..."
            self._last_results = [
                {"name": None, "ok": False, "content": f"Error: the action failed ({reason})."}
            ]
            return Transition(
                observation=(
                    f"The environment could not process this action ({reason}); "
                    "it was not run. The episode goes on."
                ),
                score=0.0,
                invalid_action=True,
                action_type="invalid",
            )

    def _execute_completion(self, action: str) -> Transition:
        task = self._task_obj
        assert task is not None
        parsed = parse_completion(action, max_calls=self.max_calls_per_turn + 1)
        self._last_results = []
        if not parsed.call_blocks:
            if parsed.answer is None:
                return Transition(
                    observation=(
                        f"{self.invalid_observation} Call a tool as <tool_call>"
                        '{"name": ..., "arguments": {...}}</tool_call>, or '
                        f"{self.answer_instruction[0].lower()}{self.answer_instruction[1:]}"
                    ),
                    score=0.0,
                    invalid_action=True,
                    action_type="invalid",
                )
            return self._finish(task, parsed.answer, observation_prefix="")
        if parsed.call_blocks > self.max_calls_per_turn:
            # Refused as a whole: running the first few of hundreds would reward spraying calls.
            counts = self._toolset(task) is not None and self._tool_turns < self.max_tool_turns
            self._tool_turns += int(counts)
            message = (
                f"Error: {parsed.call_blocks} tool calls in one turn; the limit is "
                f"{self.max_calls_per_turn}. No call was run."
            )
            self._record(None, None, False, "too_many_calls")
            self._last_results = [{"name": None, "ok": False, "content": message}]
            return Transition(
                observation=format_tool_responses([message]),
                score=0.0,
                invalid_action=True,
                action_type="invalid",
            )
        if self._toolset(task) is None:
            return self._finish_calls_only(task, parsed.calls)
        answer_calls = [c for c in parsed.calls if self.offers_answer_tool and c.name == "answer"]
        other_calls = [c for c in parsed.calls if not any(c is a for a in answer_calls)]
        if other_calls:
            if self._tool_turns >= self.max_tool_turns:
                return Transition(
                    observation=(
                        f"The tool-turn limit ({self.max_tool_turns}) is reached; no tool was run. "
                        "The episode is over without a final answer."
                    ),
                    score=0.0,
                    terminated=True,
                    invalid_action=True,
                    action_type="invalid",
                    extra_info={"turn_limit_reached": True},
                )
            self._tool_turns += 1
        contents, any_failed, names = [], False, []
        for call in other_calls:
            ok, content = self._run_call(task, call)
            contents.append(content)
            any_failed |= not ok
            if ok and call.name not in names:
                names.append(call.name)
        if answer_calls:
            call = answer_calls[-1]
            answer = (call.arguments or {}).get("answer")
            if call.error or not isinstance(answer, str | int | float) or isinstance(answer, bool):
                content = (
                    f"Error: {call.error or 'the answer tool takes one string argument, answer'}"
                )
                self._record(call.name, call.arguments, False, "bad_arguments")
                self._last_results.append({"name": "answer", "ok": False, "content": content})
                contents.append(content)
                any_failed = True
            else:
                self._record("answer", call.arguments, True, None)
                prefix = format_tool_responses(contents) + "\n" if contents else ""
                return self._finish(
                    task, str(answer), observation_prefix=prefix, invalid=any_failed
                )
        return Transition(
            observation=format_tool_responses(contents),
            score=0.0,
            invalid_action=any_failed,
            action_type=",".join(names) if names else "invalid",
        )

    def _record(self, name: str | None, arguments: Any, ok: bool, error_kind: str | None) -> None:
        self._calls.append(
            {
                "turn": self._turn,
                "name": name,
                "arguments": copy.deepcopy(arguments) if isinstance(arguments, dict) else None,
                "ok": ok,
                "error_kind": error_kind,
            }
        )

    def _run_call(self, task: ToolTask, call: ParsedCall) -> tuple[bool, str]:
        """Run one parsed call; returns (ok, the text for its <tool_response>)."""
        if call.error is not None:
            kind = "malformed" if call.name is None else "bad_arguments"
            self._record(call.name, call.arguments, False, kind)
            content = f"Error: {call.error}."
        elif call.name not in self._schemas or call.name == "answer":
            known = ", ".join(n for n in self._schemas if n != "answer")
            self._record(call.name, call.arguments, False, "unknown_tool")
            content = f"Error: unknown tool {call.name!r}. Available tools: {known}."
        else:
            problem = validate_arguments(self._schemas[call.name], call.arguments)
            if problem:
                self._record(call.name, call.arguments, False, "bad_arguments")
                content = f"Error: {call.name}: {problem}."
            else:
                toolset = self._toolset(task)
                assert toolset is not None and call.arguments is not None
                outcome = self._run_tool(toolset, call.name, call.arguments)
                self._record(call.name, call.arguments, outcome.ok, outcome.kind)
                if outcome.ok:
                    self._made.add(canonical_arguments(call.name, call.arguments))
                    self._results.append(outcome.content)
                    self._last_results.append(
                        {"name": call.name, "ok": True, "content": outcome.content}
                    )
                    return True, outcome.content
                content = f"Error: {call.name}: {outcome.content}."
        self._last_results.append({"name": call.name, "ok": False, "content": content})
        return False, content

    def _finish(
        self, task: ToolTask, answer: str, *, observation_prefix: str, invalid: bool = False
    ) -> Transition:
        verdict = self._judge(task, answer)
        return self._verdict_transition(answer, verdict, observation_prefix, invalid)

    def _finish_calls_only(self, task: ToolTask, calls: list[ParsedCall]) -> Transition:
        answer = None
        for call in calls:
            if self.offers_answer_tool and call.name == "answer" and call.arguments:
                answer = str(call.arguments.get("answer", ""))
                self._record("answer", call.arguments, True, None)
            else:
                self._record(
                    call.name,
                    call.arguments,
                    call.error is None,
                    "malformed" if call.error else None,
                )
        verdict = self._judge_calls_only(task, answer)
        return self._verdict_transition(answer, verdict, "", False)

    def _verdict_transition(
        self, answer: str | None, verdict: Verdict, prefix: str, invalid: bool
    ) -> Transition:
        self._final_answer = answer
        self._verdict_info = dict(verdict.info)
        shown = answer if answer is None or len(answer) <= 200 else answer[:200] + "..."
        outcome = "Correct." if verdict.won else "Incorrect."
        note = f" {verdict.note}" if verdict.note else ""
        head = f"Final answer: {shown}. " if answer is not None else "Calls submitted. "
        return Transition(
            observation=f"{prefix}{head}{outcome}{note}",
            score=verdict.score,
            terminated=True,
            won=verdict.won,
            invalid_action=invalid,
            action_type="answer",
        )

    def _admissible_actions(self) -> list[str]:
        task = self._task_obj
        assert task is not None
        if self.admissible_mode == "compact":
            return self._templates(task)
        return self._full_actions(task)

    def _templates(self, task: ToolTask) -> list[str]:
        """One call template per tool (``<type>`` placeholders) and the answer template."""
        templates = []
        for schema in self._tools:
            name = schema_name(schema)
            if name == "answer":
                continue
            properties = schema["function"]["parameters"].get("properties", {})
            arguments = {
                key: f"<{(spec or {}).get('type', 'value')}>" for key, spec in properties.items()
            }
            templates.append(format_tool_call(name, arguments))
        templates.append(
            self.format_answer("<answer>") if self.offers_answer_tool else self._answer_template()
        )
        return templates

    def _answer_template(self) -> str:
        return "<answer><answer></answer>"

    def _expert_action(self) -> str | None:
        task = self._task_obj
        assert task is not None
        if self._toolset(task) is None:
            calls = [self._gold_call(gold) for gold in task.gold_calls]
            return format_tool_calls(calls) if calls else self._expert_final(task)
        if self._tool_turns < self.max_tool_turns:
            for turn in task.reference:
                missing = [
                    c
                    for c in turn
                    if canonical_arguments(c["name"], c["arguments"]) not in self._made
                ]
                if missing:
                    return format_tool_calls(missing)
        return self._expert_final(task)

    @staticmethod
    def _gold_call(gold: dict[str, Any]) -> dict[str, Any]:
        """A concrete call from a BFCL possible answer (first accepted value; optional ones left out)."""
        ((name, params),) = gold.items()
        arguments = {}
        for key, options in params.items():
            options = options if isinstance(options, list) else [options]
            chosen = [o for o in options if o != ""]
            if chosen:
                arguments[key] = chosen[0]
        return {"name": name, "arguments": arguments}

    def _extra_info(self) -> dict[str, Any]:
        return {
            "tools": copy.deepcopy(self._tools),
            "tool_calls": copy.deepcopy(self._calls),
            "tool_results": copy.deepcopy(self._last_results),
            "tool_turns": self._tool_turns,
            "tool_turns_left": max(0, self.max_tool_turns - self._tool_turns),
            "final_answer": self._final_answer,
            **self._verdict_info,
        }

    # -- helpers for subclasses ---------------------------------------------------------

    def _rng_for_state(self) -> random.Random:
        """A generator seeded by task and turn, so the "full" list is the same on every replay."""
        digest = hashlib.sha256(
            f"{self._task_id}|{self._turn}|{len(self._calls)}".encode()
        ).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))
