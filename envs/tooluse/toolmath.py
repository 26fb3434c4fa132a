"""ToolMath-v0: arithmetic word problems solved with MENTOR's twelve calculator tools.

The problems come from :mod:`envs.tooluse.generators.toolmath` (story templates
with a solution program, 2 to 8 solution steps, at most 5 tool turns, splits
disjoint in story domains); the shipped task files are its output.

The final answer is ``\\boxed{...}`` (or ``<answer>...</answer>``), checked
with math-verify: ``\\boxed{1,200}``, ``1200.0`` and ``1200`` are the same answer.
With ``admissible_actions="full"`` the list holds one well-formed call per tool
whose arguments come from the numbers in the question and the results so far,
and two answers (the last result, a number from the question).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from envs.tooluse.calls import format_tool_call
from envs.tooluse.env import ToolEnv, Verdict
from envs.tooluse.generators.toolmath import (
    DOMAINS,
    GENERATED_TRAIN_SEED,
    SPLIT_DOMAINS,
    generate_tasks,
    generated_train_tasks,
)
from envs.tooluse.mathtools import MATH_TOOL_NAMES, MATH_TOOL_SCHEMAS
from envs.tooluse.sandbox import Toolset
from envs.tooluse.schema import schema_name
from envs.tooluse.tasks import ToolTask, load_shipped_tasks, load_task_file

# The generator's names stay importable from here, where they lived before the split.
__all__ = [
    "DOMAINS",
    "GENERATED_TRAIN_SEED",
    "SPLIT_DOMAINS",
    "ToolMathEnv",
    "generate_tasks",
    "generated_train_tasks",
]

MATH_TOOLSET = Toolset("envs.tooluse.mathtools:make_tools")
CHECKER_TOOLSET = Toolset("envs.tooluse.checkers:make_checkers")
BUILTIN_TOOLS = {schema_name(s): s for s in MATH_TOOL_SCHEMAS}
MAX_ANSWER_CHARS = 300  # a number is short; longer "answers" are judged wrong unparsed
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


class ToolMathEnv(ToolEnv):
    """Arithmetic word problems with calculator tools (module docstring).

    ``task_file`` plays the tasks of a JSONL file in the mentorgym schema
    instead of the shipped ones (tasks without a ``split`` are in every split).
    ``levels`` keeps only the problems with that many solution steps (e.g.
    ``levels=[2, 3, 4]``); tasks without a recorded step count are dropped by
    a filter. ``train_tasks=N`` replaces the shipped train split (700
    problems) with N problems generated afresh (ids ``train-gen/L<n>/<k>``,
    the same for every N up to its length): a small model trained from scratch
    memorises 700 problems long before it learns to read numbers off the
    question. Other splits, and so the panels, are unchanged.
    """

    answer_instruction = "Use the tools to compute; give the final answer as \\boxed{...}."
    offers_answer_tool = False

    def __init__(
        self,
        *,
        split: str = "train",
        task_file: str | None = None,
        levels: Sequence[int] | None = None,
        train_tasks: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(split=split, **kwargs)
        if train_tasks is not None and (
            not isinstance(train_tasks, int) or isinstance(train_tasks, bool) or train_tasks < 1
        ):
            raise ValueError(
                f"ToolMath-v0: train_tasks must be a positive integer, not {train_tasks!r}"
            )
        if train_tasks is not None and task_file is not None:
            raise ValueError("ToolMath-v0: give task_file or train_tasks, not both")
        if train_tasks is not None and split == "train":
            tasks = generated_train_tasks(train_tasks)
        elif task_file is not None:
            tasks = load_task_file(
                task_file, builtin_tools=BUILTIN_TOOLS, default_tools=MATH_TOOL_NAMES
            )
            tasks = [t for t in tasks if t.split in (None, split)]
        else:
            tasks = load_shipped_tasks(
                "toolmath", split, builtin_tools=BUILTIN_TOOLS, default_tools=MATH_TOOL_NAMES
            )
        for task in tasks:
            if not task.answer:
                raise ValueError(f"ToolMath-v0: task {task.id!r} has no gold answer")
        if levels is not None:
            tasks = _tasks_at_levels(tasks, levels, split)
        self._set_tasks(tasks)

    def _toolset(self, task: ToolTask) -> Toolset:
        return MATH_TOOLSET

    def _preload(self) -> tuple[Toolset, ...]:
        return (MATH_TOOLSET, CHECKER_TOOLSET)

    def _judge(self, task: ToolTask, answer: str) -> Verdict:
        if len(answer) > MAX_ANSWER_CHARS:
            note = f"An answer longer than {MAX_ANSWER_CHARS} characters is not checked."
            return Verdict(0.0, False, {"judge_error": "answer too long"}, note)
        # math-verify parses model text with sympy: it runs in the sandbox, under the same limits.
        errors = []
        for gold in task.answer:
            outcome = self._run_tool(
                CHECKER_TOOLSET, "check_math", {"candidate": answer, "gold": gold}
            )
            if outcome.ok and outcome.content == "true":
                return Verdict(1.0, True)
            if not outcome.ok:
                errors.append(outcome.content)
                if (
                    outcome.kind != "tool_error"
                ):  # a limit was hit: the other aliases would hit it too
                    break
        return Verdict(0.0, False, {"judge_error": errors[0]} if errors else {})

    def _expert_final(self, task: ToolTask) -> str:
        return f"\\boxed{{{task.expert_answer}}}"

    def _answer_template(self) -> str:
        return "\\boxed{<number>}"

    def _full_actions(self, task: ToolTask) -> list[str]:
        rng = self._rng_for_state()
        question_numbers = _numbers_in(task.question)
        results = [n for text in self._results for n in _numbers_in(text)]
        pool = question_numbers + results[-4:] or [1, 2]
        actions = []
        for schema in self._tools:
            name = schema_name(schema)
            properties = schema["function"]["parameters"].get("properties", {})
            if name == "sum_numbers":
                count = min(len(pool), rng.randint(2, 3))
                arguments: dict[str, Any] = {"numbers": rng.sample(pool, count)}
            elif name == "round_number":
                arguments = {"x": rng.choice(pool), "decimals": 2}
            elif name == "power":
                small = [n for n in pool if isinstance(n, int) and 0 <= n <= 10] or [2]
                arguments = {"base": rng.choice(pool), "exponent": rng.choice(small)}
            else:
                arguments = {key: rng.choice(pool) for key in properties}
            actions.append(format_tool_call(name, arguments))
        last = results[-1] if results else rng.choice(question_numbers or [0])
        actions.append(f"\\boxed{{{last}}}")
        actions.append(f"\\boxed{{{rng.choice(question_numbers or [0])}}}")
        return list(dict.fromkeys(actions))


def _numbers_in(text: str) -> list[int | float]:
    values: list[int | float] = []
    for match in _NUMBER.findall(text):
        cleaned = match.replace(",", "")
        try:
            value = float(cleaned) if "." in cleaned else int(cleaned)
        except ValueError:
            continue
        if value not in values:
            values.append(value)
    return values


def _tasks_at_levels(tasks: list[ToolTask], levels: Sequence[int], split: str) -> list[ToolTask]:
    if isinstance(levels, (str, bytes)) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in levels
    ):
        raise ValueError(f"ToolMath-v0: levels must be a list of step counts, not {levels!r}")
    wanted = set(levels)
    kept = [t for t in tasks if t.meta.get("steps") in wanted]
    if not kept:
        present = sorted({t.meta["steps"] for t in tasks if "steps" in t.meta})
        raise ValueError(
            f"ToolMath-v0: no {split} task has levels {sorted(wanted)} (levels present: {present})"
        )
    return kept
