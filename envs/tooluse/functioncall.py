"""FunctionCall-v0: BFCL-style function calling over API schemas of our own.

The APIs (:mod:`envs.tooluse.apitools`: weather, unit and currency conversion,
calendar arithmetic and events, tips, restaurants, distances, reminders) are
deterministic implementations: the same arguments always give the same result,
so tasks whose second call needs the first call's output have a fixed gold
answer. The tasks come from :mod:`envs.tooluse.generators.functioncall`.

Task categories (``meta.category``), as in BFCL:

* ``simple``: one function offered, one call;
* ``multiple``: several functions offered, one call to the right one;
* ``parallel``: one function, several calls in one completion;
* ``parallel_multiple``: several functions, several calls in one completion;
* ``sequential`` (ours): a later call needs an earlier call's result.

**Two judges.** The shipped and generated tasks (and JSONL tasks in the
mentorgym schema) use the *mentorgym call judge*
(:func:`envs.tooluse.checkers.match_calls`), stricter than BFCL's: every call
made during the episode (the ``answer`` tool aside) must match a gold call one
to one, in any order (an optimal pairing), with the right function (dots and
underscores alike), argument types by the schema and values (strings compare
without case, whitespace or ``,./-_*^``, at every depth; ``""`` among a
parameter's accepted values makes it optional). The episode ends with the
``answer`` tool or ``<answer>...</answer>``; the answer text is not judged.

Tasks loaded from BFCL files (:func:`envs.tooluse.tasks.load_bfcl`, or their
JSONL conversion) are in *BFCL mode*: judged by :mod:`envs.tooluse.bfcl`,
which gives exactly the verdict of BFCL's AST checker, on the **first
completion, whatever it is** (BFCL's single shot: no retry for an unreadable,
non-printable, over-long or many-call completion). Only the entry's functions
are offered (no ``answer`` tool) and the first observation is the question
alone. ``bfcl_mode`` picks BFCL's name convention: ``"fc"`` expects
``math.fact`` as ``math_fact`` (BFCL's ``underscore_to_dot``, the function-calling
APIs that allow no dots) and shows underscored names; ``"prompting"`` expects and
shows ``math.fact``.

**Splits are disjoint in argument values**: cities, event titles and people
in test questions never appear in train questions.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

from envs.core import Transition
from envs.tooluse.apitools import API_SCHEMAS, make_tools
from envs.tooluse.bfcl import BFCL_MODES, check_calls, check_relevance, decode_calls
from envs.tooluse.calls import format_tool_call, format_tool_calls
from envs.tooluse.checkers import match_calls
from envs.tooluse.env import ToolEnv, Verdict
from envs.tooluse.generators.functioncall import generate_tasks
from envs.tooluse.sandbox import Toolset
from envs.tooluse.schema import schema_name, schema_parameters
from envs.tooluse.tasks import ToolTask, load_bfcl, load_shipped_tasks, load_task_file, read_records

# The APIs and the generator stay importable from here, where they lived before the split.
__all__ = ["API_SCHEMAS", "FunctionCallEnv", "generate_tasks", "make_tools"]

API_TOOLSET = Toolset("envs.tooluse.apitools:make_tools")


# -- the environment ----------------------------------------------------------------------


class FunctionCallEnv(ToolEnv):
    """BFCL-style function calling (module docstring).

    ``task_file`` plays a JSONL file in the mentorgym schema, or a BFCL question
    file (detected by its ``function`` key) with ``answer_file`` its
    ``possible_answer`` file. Tasks whose tools are all ours run them; others
    are judged on their first completion with calls. BFCL tasks are judged in
    BFCL mode (module docstring), with ``bfcl_mode`` ``"fc"`` or ``"prompting"``.
    """

    answer_instruction = (
        "Call the functions the request needs. When done, call `answer` with a short reply "
        "(or write <answer>...</answer>)."
    )

    def __init__(
        self,
        *,
        split: str = "train",
        task_file: str | None = None,
        answer_file: str | None = None,
        bfcl_mode: str = "fc",
        **kwargs: Any,
    ) -> None:
        super().__init__(split=split, **kwargs)
        if bfcl_mode not in BFCL_MODES:
            raise ValueError(
                f"FunctionCallEnv: bfcl_mode must be one of {list(BFCL_MODES)}, not {bfcl_mode!r}"
            )
        self.bfcl_mode = bfcl_mode
        if task_file is not None:
            records = read_records(task_file)
            if records and isinstance(records[0], dict) and "function" in records[0]:
                tasks = load_bfcl(task_file, answer_file)
            else:
                tasks = load_task_file(task_file, builtin_tools=API_SCHEMAS)
            tasks = [t for t in tasks if t.split in (None, split)]
        else:
            tasks = load_shipped_tasks("functioncall", split, builtin_tools=API_SCHEMAS)
        self._set_tasks(tasks)

    def _toolset(self, task: ToolTask) -> Toolset | None:
        runnable = task.meta.get("executable", True) and all(
            API_SCHEMAS.get(schema_name(s)) == s for s in task.tools
        )
        return API_TOOLSET if runnable else None

    def _preload(self) -> tuple[Toolset, ...]:
        return (API_TOOLSET,)

    def _verdict(self, task: ToolTask, calls: list[dict[str, Any]]) -> Verdict:
        schemas = {schema_name(s): schema_parameters(s) for s in task.tools}
        result = match_calls(calls, list(task.gold_calls), schemas)
        info = {
            "calls_matched": result.matched,
            "calls_expected": result.expected,
            "call_problems": result.problems,
        }
        note = "" if result.correct else "The calls do not match what the request needs."
        return Verdict(1.0 if result.correct else 0.0, result.correct, info, note)

    # -- BFCL mode -------------------------------------------------------------------

    @staticmethod
    def _is_bfcl(task: ToolTask | None) -> bool:
        return task is not None and "bfcl_functions" in task.meta

    def _bfcl_name(self, name: str) -> str:
        return name.replace(".", "_") if self.bfcl_mode == "fc" else name

    def _start_task(self, task_id: str) -> tuple[str, str]:
        observation, question = super()._start_task(task_id)
        task = self.tasks[task_id]
        if not self._is_bfcl(task):
            return observation, question
        # BFCL shows the entry's functions only, named as the model mode expects them.
        tools = []
        for schema, function in zip(task.tools, task.meta["bfcl_functions"]):
            shown = copy.deepcopy(schema)
            shown["function"]["name"] = self._bfcl_name(function["name"])
            tools.append(shown)
        self._tools = tools
        self._schemas = {schema_name(s): s for s in tools}
        return task.question, question

    def _action_problem(self, action: Any) -> str | None:
        if isinstance(action, str) and not self._done and self._is_bfcl(self._task_obj):
            return None  # BFCL judges whatever the model answered, once
        return super()._action_problem(action)

    def _execute(self, action: str) -> Transition:
        task = self._task_obj
        if self._is_bfcl(task):
            assert task is not None
            return self._judge_bfcl(task, action)
        return super()._execute(action)

    def _judge_bfcl(self, task: ToolTask, completion: str) -> Transition:
        calls = decode_calls(completion)
        for call in calls or []:
            ((name, arguments),) = call.items()
            self._record(name, arguments, True, None)
        if calls is None:
            self._record(None, None, False, "malformed")
        category = task.meta.get("bfcl_category") or "simple"
        if category in ("irrelevance", "live_irrelevance", "live_relevance"):
            verdict = check_relevance(calls, category)
        else:
            verdict = check_calls(
                task.meta["bfcl_functions"],
                calls,
                task.meta["bfcl_ground_truth"],
                category,
                underscore_to_dot=self.bfcl_mode == "fc",
            )
        self._final_answer = None
        self._verdict_info = {
            "calls_matched": verdict.matched,
            "calls_expected": len(task.meta["bfcl_ground_truth"] or []),
            "call_problems": [] if verdict.valid else [verdict.error],
            "bfcl_error_type": verdict.error_type,
        }
        outcome = "Correct." if verdict.valid else "Incorrect."
        return Transition(
            observation=f"Response judged (BFCL). {outcome}",
            score=1.0 if verdict.valid else 0.0,
            terminated=True,
            won=verdict.valid,
            invalid_action=calls is None,
            action_type="answer",
        )

    def format_answer(self, text: str) -> str:
        if self._is_bfcl(self._task_obj):
            return f"<answer>{text}</answer>"  # BFCL offers no answer tool: a reply without calls
        return super().format_answer(text)

    def _expert_action(self) -> str | None:
        task = self._task_obj
        if not self._is_bfcl(task):
            return super()._expert_action()
        assert task is not None
        calls = []
        for gold in task.meta["bfcl_ground_truth"] or []:
            ((name, params),) = gold.items()
            arguments = {}
            for key, options in params.items():
                chosen = [o for o in options if o != ""] if isinstance(options, list) else []
                if chosen:
                    arguments[key] = chosen[0]
            calls.append({"name": self._bfcl_name(name), "arguments": arguments})
        return format_tool_calls(calls) if calls else self._expert_final(task)

    def _judged_calls(self) -> list[dict[str, Any]]:
        # Every call but the answer counts, unreadable ones included (they are wrong calls).
        return [
            {"name": c["name"], "arguments": c["arguments"]}
            for c in self._calls
            if c["name"] != "answer"
        ]

    def _judge(self, task: ToolTask, answer: str) -> Verdict:
        return self._verdict(task, self._judged_calls())

    def _judge_calls_only(self, task: ToolTask, answer: str | None) -> Verdict:
        return self._verdict(task, self._judged_calls())

    def _full_actions(self, task: ToolTask) -> list[str]:
        rng = self._rng_for_state()
        strings = _phrases(task.question) + _phrases(" ".join(self._results[-2:]))
        numbers = [
            float(n) if "." in n else int(n) for n in re.findall(r"\d+(?:\.\d+)?", task.question)
        ]
        dates = re.findall(r"\d{4}-\d{2}-\d{2}", task.question + " ".join(self._results[-2:]))
        actions = []
        for schema in self._tools:
            name = schema_name(schema)
            if name == "answer":
                continue
            parameters = schema_parameters(schema)
            arguments = {}
            for key, spec in parameters.get("properties", {}).items():
                if key not in parameters.get("required", []) and rng.random() < 0.5:
                    continue
                arguments[key] = _sample_value(rng, key, spec or {}, strings, numbers, dates)
            actions.append(format_tool_call(name, arguments))
        actions.append(self.format_answer("Done."))
        return actions


def _phrases(text: str) -> list[str]:
    """Capitalised phrases and quoted strings of ``text`` (candidate string arguments)."""
    quoted = re.findall(r"'([^']{2,60})'|\"([^\"]{2,60})\"", text)
    found = [a or b for a, b in quoted]
    found += re.findall(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b", text)
    return list(dict.fromkeys(found))


def _sample_value(
    rng: random.Random,
    key: str,
    spec: dict[str, Any],
    strings: list[str],
    numbers: list[Any],
    dates: list[str],
) -> Any:
    kind = spec.get("type")
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return rng.choice(spec["enum"])
    if kind == "integer":
        return rng.choice([n for n in numbers if isinstance(n, int)] or [1])
    if kind == "number":
        return rng.choice(numbers or [1])
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        return [_sample_value(rng, key, spec.get("items") or {}, strings, numbers, dates)]
    if kind == "object":
        return {}
    if "date" in key and dates:
        return rng.choice(dates)
    if "time" in key:
        return f"{rng.randint(8, 18):02d}:{rng.choice(['00', '30'])}"
    return rng.choice(strings or ["value"])
