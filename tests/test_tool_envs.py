"""ToolMath-v0, FunctionCall-v0 and SearchQA-v0: experts, random agents, rules, loaders, shipped data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

from agents.scripted import RandomAgent
from envs.panels import default_panel
from envs.tooluse import functioncall, searchqa, toolmath
from envs.tooluse.calls import format_tool_call, format_tool_calls
from envs.tooluse.generators import functioncall as functioncall_tasks
from envs.tooluse.mathtools import MATH_TOOL_NAMES
from envs.tooluse.tasks import DATA_DIR, TaskFileError, load_bfcl, load_task_file

ROOT = Path(__file__).resolve().parents[1]
TOOL_IDS = ["ToolMath-v0", "FunctionCall-v0", "SearchQA-v0"]
TOOL_ERROR_KINDS = {"malformed", "unknown_tool", "bad_arguments", "too_many_calls"}


def play(
    env: gym.Env, task_id: str, policy: Callable[[str, dict], str], limit: int = 20
) -> list[dict]:
    """Play one episode; returns every info (reset's first)."""
    observation, info = env.reset(options={"task_id": task_id})
    infos = [info]
    for _ in range(limit):
        observation, _, terminated, truncated, info = env.step(policy(observation, info))
        infos.append(info)
        if terminated or truncated:
            break
    return infos


def expert(observation: str, info: dict) -> str:
    return info["expert_action"]


@pytest.fixture(scope="module")
def math_env() -> Iterator[gym.Env]:
    env = gym.make("ToolMath-v0", split="test", expert=True, admissible_actions="none")
    yield env
    env.close()


# -- experts and random agents on the default panels ---------------------------------------------


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_expert_solves_every_default_panel_task(env_id: str) -> None:
    panel = default_panel(env_id)
    assert panel.split == "test" and len(panel.task_ids) >= 100
    env = gym.make(env_id, split=panel.split, expert=True, admissible_actions="none")
    try:
        assert set(panel.task_ids) <= set(env.unwrapped.task_ids)
        for task_id in panel.task_ids:
            infos = play(env, task_id, expert)
            final = infos[-1]
            assert final["won"] and final["score"] == 1.0, (task_id, final)
            assert final["action_type"] == "answer"
            assert not any(i["invalid_action"] for i in infos), task_id
            assert all(call["ok"] for call in final["tool_calls"]), task_id
            assert final["tool_turns"] <= 5
    finally:
        env.close()


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_random_agent_scores_far_below_the_expert(env_id: str) -> None:
    panel = default_panel(env_id)
    agent = RandomAgent(seed=0)
    env = gym.make(env_id, split=panel.split, **RandomAgent.env_kwargs)
    try:
        wins = 0
        for task_id in panel.task_ids:
            infos = play(env, task_id, agent.act)
            wins += infos[-1]["won"]
        assert wins / len(panel.task_ids) <= 0.10, wins
    finally:
        env.close()


# -- the admissible-action lists ----------------------------------------------------------------------


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_full_admissible_actions_are_executable_and_reproducible(env_id: str) -> None:
    env = gym.make(env_id, split="dev", admissible_actions="full")
    try:
        for task_id in env.unwrapped.task_ids[:6]:
            _, info = env.reset(options={"task_id": task_id})
            actions = info["admissible_actions"]
            assert (
                len(actions) >= 2
                and actions == env.reset(options={"task_id": task_id})[1]["admissible_actions"]
            )
            tools = {s["function"]["name"] for s in info["tools"]} - {"answer"}
            called = set()
            for action in actions:
                env.reset(options={"task_id": task_id})
                _, _, terminated, _, step_info = env.step(action)
                for call in step_info["tool_calls"]:
                    assert call["error_kind"] not in TOOL_ERROR_KINDS, (action, call)
                    called.add(call["name"])
                assert terminated == (step_info["action_type"] == "answer"), action
            assert tools <= called  # one well-formed call per tool
    finally:
        env.close()


@pytest.mark.parametrize("env_id", TOOL_IDS)
def test_compact_and_none_modes(env_id: str) -> None:
    for mode, check in [
        ("compact", lambda a: a and any("<" in x and ">" in x for x in a)),
        ("none", lambda a: a == []),
    ]:
        env = gym.make(env_id, split="test", admissible_actions=mode)
        try:
            _, info = env.reset(seed=0)
            assert check(info["admissible_actions"]), (mode, info["admissible_actions"])
        finally:
            env.close()


# -- ToolMath: answers, turns, info ------------------------------------------------------------------


def big_answer_task(env: gym.Env) -> tuple[str, int]:
    for task_id in env.unwrapped.task_ids:
        answer = env.unwrapped.tasks[task_id].answer[0]
        if answer.isdigit() and int(answer) >= 1000:
            return task_id, int(answer)
    raise AssertionError("no task with a large integer answer")


@pytest.mark.parametrize(
    ("template", "won"),
    [
        ("The total is \\boxed{{{value:,}}}.", True),
        ("\\boxed{{{value}.0}}", True),
        ("<answer>{value}</answer>", True),
        ("<answer>{value:,} crates</answer>", True),
        ("\\boxed{{{wrong}}}", False),
    ],
)
def test_toolmath_answers_are_judged_tolerantly(
    math_env: gym.Env, template: str, won: bool
) -> None:
    task_id, value = big_answer_task(math_env)
    math_env.reset(options={"task_id": task_id})
    _, reward, terminated, _, info = math_env.step(template.format(value=value, wrong=value + 1))
    assert terminated and info["won"] is won and info["action_type"] == "answer"
    assert reward == (1.0 if won else 0.0)
    assert info["final_answer"] is not None


def test_toolmath_levels_keep_only_problems_of_those_step_counts() -> None:
    env = gym.make("ToolMath-v0", split="test", levels=[2, 3], expert=True)
    try:
        tasks = env.unwrapped.task_ids
        assert tasks and all(t.split("/")[1] in ("L2", "L3") for t in tasks)
        full = gym.make("ToolMath-v0", split="test").unwrapped.task_ids
        assert tasks == [t for t in full if t.split("/")[1] in ("L2", "L3")]  # order kept
        _, info = env.reset(seed=0, options={"task_id": tasks[0]})
        assert info["task_id"] == tasks[0]
        with pytest.raises(ValueError, match="unknown task_id"):
            env.reset(options={"task_id": next(t for t in full if "/L8/" in t)})
    finally:
        env.close()
    with pytest.raises(ValueError, match=r"no test task has levels \[9\] \(levels present: \[2, 3"):
        gym.make("ToolMath-v0", split="test", levels=[9])
    with pytest.raises(ValueError, match="levels must be a list of step counts"):
        gym.make("ToolMath-v0", levels="2-4")


def test_toolmath_generated_train_tasks_replace_only_the_train_split() -> None:
    env = gym.make("ToolMath-v0", train_tasks=30, levels=[2], expert=True)
    try:
        ids = env.unwrapped.task_ids
        assert len(ids) == 5 and all(t.startswith("train-gen/L2/") for t in ids)
        more = gym.make("ToolMath-v0", train_tasks=60).unwrapped
        assert more.task_ids[:30] == gym.make("ToolMath-v0", train_tasks=30).unwrapped.task_ids
        shipped = {t.question for t in gym.make("ToolMath-v0").unwrapped.tasks.values()}
        assert not shipped & {t.question for t in more.tasks.values()}
        _, info = env.reset(seed=0, options={"task_id": ids[0]})
        _, _, terminated, _, info = env.step(info["expert_action"])
        assert not terminated and info["tool_results"]
    finally:
        env.close()
    test = gym.make("ToolMath-v0", split="test", train_tasks=30).unwrapped
    assert test.task_ids == gym.make("ToolMath-v0", split="test").unwrapped.task_ids
    with pytest.raises(ValueError, match="train_tasks must be a positive integer"):
        gym.make("ToolMath-v0", train_tasks=0)


def test_toolmath_turn_cap_ends_the_episode(math_env: gym.Env) -> None:
    task_id = math_env.unwrapped.task_ids[0]
    math_env.reset(options={"task_id": task_id})
    call = format_tool_call("add", {"a": 1, "b": 2})
    for turn in range(1, 6):
        obs, _, terminated, _, info = math_env.step(call)
        assert not terminated and obs == "<tool_response>\n3\n</tool_response>"
        assert info["tool_turns"] == turn and info["tool_turns_left"] == 5 - turn
    obs, reward, terminated, _, info = math_env.step(call)
    assert terminated and not info["won"] and reward == 0.0 and info["turn_limit_reached"]
    assert "tool-turn limit (5)" in obs and len(info["tool_calls"]) == 5  # the sixth did not run
    # an answer after five tool turns is still judged
    math_env.reset(options={"task_id": task_id})
    for _ in range(5):
        math_env.step(call)
    answer = math_env.unwrapped.tasks[task_id].answer[0]
    _, reward, terminated, _, info = math_env.step(f"\\boxed{{{answer}}}")
    assert terminated and info["won"] and reward == 1.0


def test_turn_cap_of_the_registration_truncates_endless_chatter() -> None:
    env = gym.make("ToolMath-v0", split="test", admissible_actions="none")
    try:
        env.reset(seed=0)
        for step in range(1, 9):  # noqa: B007 (step is checked after the loop)
            obs, _, terminated, truncated, info = env.step("Let me think about this some more.")
            assert info["invalid_action"] and not terminated
            assert "No tool call and no final answer" in obs
        assert truncated and step == 8
    finally:
        env.close()


def test_parallel_calls_and_info_keys(math_env: gym.Env) -> None:
    task_id = next(
        t for t in math_env.unwrapped.task_ids if len(math_env.unwrapped.tasks[t].reference[0]) >= 2
    )
    _, info = math_env.reset(options={"task_id": task_id})
    assert [s["function"]["name"] for s in info["tools"]] == list(MATH_TOOL_NAMES)
    assert info["tool_calls"] == [] and info["tool_turns"] == 0 and info["final_answer"] is None
    first_turn = math_env.unwrapped.tasks[task_id].reference[0]
    assert info["expert_action"] == format_tool_calls(list(first_turn))
    obs, _, _, _, info = math_env.step(info["expert_action"])
    assert obs.count("<tool_response>") == len(first_turn)
    assert info["action_type"] == ",".join(dict.fromkeys(c["name"] for c in first_turn))
    assert [r["ok"] for r in info["tool_results"]] == [True] * len(first_turn)
    assert [c["turn"] for c in info["tool_calls"]] == [1] * len(first_turn)
    assert info["tool_turns"] == 1


# -- the hostile table, through the environment -------------------------------------------------------

HUGE = 10**4000
ENV_HOSTILE_TABLE: list[tuple[str, str, str]] = [
    (
        "malformed JSON",
        '<tool_call>{"name": "add", "arguments": {"a": 1,}}</tool_call>',
        "not valid JSON",
    ),
    (
        "unknown tool",
        '<tool_call>{"name": "rm_rf", "arguments": {"path": "/"}}</tool_call>',
        "unknown tool 'rm_rf'",
    ),
    (
        "wrong argument type",
        format_tool_call("add", {"a": "12", "b": 3}),
        "must be of type number, not string",
    ),
    ("missing argument", format_tool_call("add", {"a": 12}), "missing required argument 'b'"),
    ("extra argument", format_tool_call("sqrt", {"x": 4, "y": 1}), "unexpected argument 'y'"),
    ("power(9, 10**9)", format_tool_call("power", {"base": 9, "exponent": 10**9}), "too large"),
    (
        "gigantic list",
        format_tool_call("sum_numbers", {"numbers": [1] * 2000}),
        "at most 1000 items",
    ),
    ("huge integers", format_tool_call("multiply", {"a": HUGE, "b": HUGE}), "too large"),
    (
        "5000-digit literal",
        '<tool_call>{"name": "add", "arguments": {"a": ' + "9" * 5000 + ', "b": 1}}</tool_call>',
        "not valid JSON",
    ),  # fmt: skip
    ("deep nesting", "<tool_call>" + "[" * 3000 + "]" * 3000 + "</tool_call>", "tool call"),
    (
        "NaN",
        '<tool_call>{"name": "add", "arguments": {"a": NaN, "b": 1}}</tool_call>',
        "not valid JSON",
    ),
    ("division by zero", format_tool_call("divide", {"a": 1, "b": 0}), "division by zero"),
    ("hundreds of calls", "<tool_call>{}</tool_call>" * 300, "300 tool calls in one turn"),
    ("unclosed block", '<tool_call>{"name": "add", "arguments": {"a": 1, "b": 2}}', "not closed"),
    (
        "answer tool absent here",
        format_tool_call("answer", {"answer": "5"}),
        "unknown tool 'answer'",
    ),
]


@pytest.mark.parametrize(
    ("case", "action", "message"), ENV_HOSTILE_TABLE, ids=[r[0] for r in ENV_HOSTILE_TABLE]
)
def test_hostile_completions_give_clear_errors_and_the_env_keeps_working(
    math_env: gym.Env, case: str, action: str, message: str
) -> None:
    assert len(action) <= 8192, case
    math_env.reset(options={"task_id": math_env.unwrapped.task_ids[1]})
    started = time.monotonic()
    obs, reward, terminated, truncated, info = math_env.step(action)
    assert time.monotonic() - started < 5.0, case
    assert obs.startswith("<tool_response>") and "Error" in obs and message in obs, (
        case,
        obs[:300],
    )
    assert info["invalid_action"] and reward == 0.0 and not terminated and not truncated, case
    assert info["tool_calls"] and not info["tool_calls"][-1]["ok"], case
    obs, _, _, _, info = math_env.step(format_tool_call("add", {"a": 2, "b": 2}))
    assert obs == "<tool_response>\n4\n</tool_response>" and not info["invalid_action"], case


def test_a_pathological_final_answer_is_cut_off_by_the_sandbox() -> None:
    env = gym.make(
        "ToolMath-v0", split="test", tool_timeout_s=2.0, tool_cpu_s=2, admissible_actions="none"
    )
    try:
        env.reset(seed=0)
        env.step(format_tool_call("add", {"a": 1, "b": 1}))  # the worker is warm
        started = time.monotonic()
        obs, reward, terminated, _, info = env.step("\\boxed{9^{9^{9^{9}}}}")
        assert time.monotonic() - started < 2.0 + 2.0
        assert terminated and not info["won"] and reward == 0.0
        assert "timed out" in info["judge_error"] or "CPU" in info["judge_error"]
        env.reset(seed=1)  # and the env still plays
        obs, _, _, _, info = env.step(format_tool_call("add", {"a": 2, "b": 3}))
        assert obs == "<tool_response>\n5\n</tool_response>"
        _, _, terminated, _, info = env.step("\\boxed{" + "1" * 400 + "}")
        assert terminated and info["judge_error"] == "answer too long"
    finally:
        env.close()


def test_tool_calls_run_in_async_vector_envs() -> None:
    vec = gym.make_vec(
        "ToolMath-v0", num_envs=2, vectorization_mode="async", split="test", expert=True
    )
    try:
        _, infos = vec.reset(seed=3)
        actions = tuple(infos["expert_action"])
        observations, rewards, terminated, _, infos = vec.step(actions)
        assert all(o.startswith("<tool_response>") for o in observations)
        assert not any(infos["invalid_action"])
    finally:
        vec.close()


# -- FunctionCall --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def calls_env() -> Iterator[gym.Env]:
    env = gym.make("FunctionCall-v0", split="test", expert=True, admissible_actions="none")
    yield env
    env.close()


def test_functioncall_parallel_calls_are_order_insensitive(calls_env: gym.Env) -> None:
    tasks = calls_env.unwrapped.tasks
    task_id = next(t for t in tasks if tasks[t].meta["category"] == "parallel")
    calls = list(tasks[task_id].reference[0])
    _, info = calls_env.reset(options={"task_id": task_id})
    assert "answer" in [s["function"]["name"] for s in info["tools"]]
    calls_env.step(format_tool_calls(calls[::-1]))
    _, reward, terminated, _, info = calls_env.step(
        "<answer>anything: the text is not judged</answer>"
    )
    assert terminated and info["won"] and reward == 1.0
    assert info["calls_matched"] == info["calls_expected"] == len(calls)


def test_functioncall_extra_or_wrong_calls_fail(calls_env: gym.Env) -> None:
    tasks = calls_env.unwrapped.tasks
    task_id = next(t for t in tasks if tasks[t].meta["category"] == "simple")
    (call,) = tasks[task_id].reference[0]
    calls_env.reset(options={"task_id": task_id})
    calls_env.step(format_tool_calls([call, call]))  # the right call, made twice
    _, _, terminated, _, info = calls_env.step(format_tool_call("answer", {"answer": "done"}))
    assert terminated and not info["won"] and info["calls_matched"] == 1
    # a call with a wrongly typed argument
    calls_env.reset(options={"task_id": task_id})
    wrong = {k: str(v) if not isinstance(v, str) else v + "x" for k, v in call["arguments"].items()}
    calls_env.step(format_tool_call(call["name"], wrong))
    _, _, _, _, info = calls_env.step(format_tool_call("answer", {"answer": "done"}))
    assert not info["won"] and info["call_problems"]


def test_functioncall_sequential_tasks_use_the_first_result(calls_env: gym.Env) -> None:
    tasks = calls_env.unwrapped.tasks
    task_id = next(t for t in tasks if tasks[t].meta["category"] == "sequential")
    infos = play(calls_env, task_id, expert)
    first_result = infos[1]["tool_results"][0]["content"]
    second_call = infos[2]["tool_calls"][-1]["arguments"]
    assert any(str(v) in first_result for v in second_call.values())
    assert infos[-1]["won"]


def test_functioncall_apis_validate_and_are_deterministic() -> None:
    tools = functioncall.make_tools()
    assert tools["get_weather"]("Oslo", "2025-01-09") == tools["get_weather"]("Oslo", "2025-01-09")
    assert tools["convert_units"](100, "celsius", "fahrenheit")["value"] == 212.0
    assert tools["convert_units"](1, "mile", "km")["value"] == 1.6093
    assert tools["days_between"]("2024-02-27", "2024-03-01")["days"] == 3
    assert tools["day_of_week"]("2025-01-01")["day_of_week"] == "Wednesday"
    assert tools["add_days"]("2024-12-30", 3)["date"] == "2025-01-02"
    assert tools["calculate_tip"](100, 15, 2) == {"tip": 15.0, "total": 115.0, "per_person": 57.5}
    for call, message in [
        (lambda: tools["get_weather"]("Oslo", "09/01/2025"), "YYYY-MM-DD"),
        (lambda: tools["get_weather"]("Oslo", "2025-02-30"), "not a real date"),
        (lambda: tools["convert_units"](1, "kg", "km"), "cannot convert"),
        (lambda: tools["convert_currency"](5, "USD", "XYZ"), "unknown currency"),
        (lambda: tools["create_event"]("x", "2025-01-01", "25:00", 30), "HH:MM"),
    ]:
        with pytest.raises(ValueError, match=message):
            call()


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def bfcl_files(tmp_path: Path) -> tuple[Path, Path]:
    area = {
        "name": "geometry.triangle_area",
        "description": "Area of a triangle.",
        "parameters": {
            "type": "dict",
            "properties": {
                "base": {"type": "integer"},
                "height": {"type": "float"},
                "unit": {"type": "string"},
            },
            "required": ["base", "height"],
        },
    }
    questions = write_jsonl(
        tmp_path / "BFCL_v3_mixed.json",
        [
            {"id": "simple_0", "question": [[{"role": "user", "content": "Area of a triangle, base 10, height 5?"}]],
             "function": [area]},
            {"id": "parallel_0", "question": [[{"role": "user", "content": "Areas for (3, 4) and (6, 8)."}]],
             "function": [area]},
            {"id": "irrelevance_0", "question": [[{"role": "user", "content": "Tell me a joke."}]], "function": [area]},
        ],
    )  # fmt: skip
    answers = write_jsonl(
        tmp_path / "possible_answer.json",
        [
            {"id": "simple_0", "ground_truth": [{"geometry.triangle_area": {"base": [10], "height": [5.0], "unit": ["", "cm"]}}]},
            {"id": "parallel_0", "ground_truth": [{"geometry.triangle_area": {"base": [3], "height": [4.0]}},
                                                  {"geometry.triangle_area": {"base": [6], "height": [8.0]}}]},
        ],
    )  # fmt: skip
    return questions, answers


def test_bfcl_files_load_and_are_judged_in_one_turn(tmp_path: Path) -> None:
    questions, answers = bfcl_files(tmp_path)
    tasks = load_bfcl(questions, answers)
    assert [t.id for t in tasks] == ["simple_0", "parallel_0", "irrelevance_0"]
    assert tasks[0].tools[0]["function"]["name"] == "geometry_triangle_area"
    assert tasks[0].tools[0]["function"]["parameters"]["properties"]["height"] == {"type": "number"}
    env = gym.make(
        "FunctionCall-v0", task_file=str(questions), answer_file=str(answers), expert=True
    )
    try:
        for task_id in ("simple_0", "parallel_0", "irrelevance_0"):
            infos = play(env, task_id, expert)
            assert infos[-1]["won"] and len(infos) == 2, task_id  # judged on the first completion
        # int for a float parameter is fine; a float for an int parameter is not
        _, info = env.reset(options={"task_id": "simple_0"})
        ok = format_tool_call("geometry_triangle_area", {"base": 10, "height": 5})
        assert env.step(ok)[4]["won"]
        env.reset(options={"task_id": "simple_0"})
        _, _, terminated, _, info = env.step(
            format_tool_call("geometry_triangle_area", {"base": 10.0, "height": 5})
        )
        assert terminated and not info["won"] and "integer" in info["call_problems"][0]
        env.reset(options={"task_id": "irrelevance_0"})
        assert not env.step(ok)[4]["won"]
    finally:
        env.close()


def test_bfcl_loader_errors_are_clear(tmp_path: Path) -> None:
    questions, _ = bfcl_files(tmp_path)
    with pytest.raises(TaskFileError, match="no ground truth for 'simple_0'"):
        load_bfcl(questions)
    multi = write_jsonl(tmp_path / "multi.json", [{"id": "multi_turn_base_0", "question": [], "function": [],
                                                   "involved_classes": ["GorillaFileSystem"]}])  # fmt: skip
    with pytest.raises(TaskFileError, match="multi-turn"):
        load_bfcl(multi)


# -- SearchQA ---------------------------------------------------------------------------------------


def hotpot_file(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "hotpot.jsonl",
        [
            {
                "_id": "q1",
                "question": "Which river runs through the city where Ada Quill was born?",
                "answer": "Velda River",
                "type": "bridge",
                "supporting_facts": [["Ada Quill", 0], ["Kelburg", 1]],
                "context": [
                    ["Ada Quill", ["Ada Quill is a chemist.", " She was born in Kelburg."]],
                    ["Kelburg", ["Kelburg is a city.", " The Velda River runs through Kelburg."]],
                    ["Tarn", ["Tarn is a region with many lakes."]],
                ],
            }
        ],
    )


def test_hotpot_style_questions_with_their_contexts(tmp_path: Path) -> None:
    env = gym.make("SearchQA-v0", split="dev", task_file=str(hotpot_file(tmp_path)), expert=True)
    try:
        infos = play(env, "q1", expert)
        assert infos[-1]["won"] and infos[-1]["em"] == 1.0 and infos[-1]["f1"] == 1.0
        assert "[1] Kelburg:" in infos[2]["tool_results"][0]["content"]
        env.reset(options={"task_id": "q1"})
        _, reward, terminated, _, info = env.step(
            format_tool_call("answer", {"answer": "the Velda"})
        )
        assert terminated and not info["won"] and info["em"] == 0.0
        assert reward == info["f1"] == pytest.approx(2 / 3)
    finally:
        env.close()


def test_flashrag_style_questions_with_a_corpus_file(tmp_path: Path) -> None:
    questions = write_jsonl(tmp_path / "q.jsonl", [{"id": "f1", "question": "Who wrote Moon Harbor?",
                                                    "golden_answers": ["Ida Brenn", "I. Brenn"]}])  # fmt: skip
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [{"id": "1", "contents": '"Moon Harbor"\nMoon Harbor is a novel by Ida Brenn.'},
         {"id": "2", "contents": '"Sun Street"\nSun Street is a song.'}],
    )  # fmt: skip
    env = gym.make(
        "SearchQA-v0", task_file=str(questions), corpus_file=str(corpus), admissible_actions="none"
    )
    try:
        env.reset(options={"task_id": "f1"})
        obs, *_ = env.step(format_tool_call("search", {"query": "Moon Harbor novel", "top_k": 1}))
        assert (
            obs
            == "<tool_response>\n[1] Moon Harbor: Moon Harbor is a novel by Ida Brenn.\n</tool_response>"
        )
        _, _, _, _, info = env.step("<answer>I. Brenn</answer>")
        assert info["won"]
    finally:
        env.close()
    with pytest.raises(ValueError, match="corpus_file needs task_file"):
        gym.make("SearchQA-v0", corpus_file=str(corpus))


def test_search_tool_limits(tmp_path: Path) -> None:
    env = gym.make("SearchQA-v0", split="test", admissible_actions="none")
    try:
        env.reset(seed=0)
        for arguments, message in [
            ({"query": ""}, "non-empty"),
            ({"query": "x", "top_k": 50}, "top_k must be an integer from 1 to 5"),
            ({"query": 5}, "must be of type string"),
        ]:
            obs, *_ = env.step(format_tool_call("search", arguments))
            assert message in obs, obs
        obs, *_ = env.step(format_tool_call("search", {"query": "qqqzzzxxx"}))
        assert "No results." in obs
    finally:
        env.close()


# -- the JSONL task schema ---------------------------------------------------------------------------


def test_toolmath_plays_a_user_task_file(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"id": "m1", "question": "What is 12 * 34 + 5?", "answer": "413", "tools": ["multiply", "add"],
             "reference": [[{"name": "multiply", "arguments": {"a": 12, "b": 34}}],
                           [{"name": "add", "arguments": {"a": 408, "b": 5}}]]},
            {"id": "m2", "question": "What is 2 + 2?", "answer": ["4", "four"], "split": "test"},
            {"id": "m3", "question": "Only in train.", "answer": "1", "split": "train"},
        ],
    )  # fmt: skip
    env = gym.make("ToolMath-v0", split="test", task_file=str(path), expert=True)
    try:
        assert env.unwrapped.task_ids == ["m1", "m2"]
        infos = play(env, "m1", expert)
        assert infos[-1]["won"] and infos[-1]["tool_turns"] == 2
        assert [s["function"]["name"] for s in infos[0]["tools"]] == ["multiply", "add"]
        infos = play(env, "m2", expert)  # no reference: the expert answers at once
        assert infos[-1]["won"] and len(infos) == 2
    finally:
        env.close()


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"question": "q?", "answer": "1"}, "'id' must be a non-empty string"),
        ({"id": "a", "answer": "1"}, "'question' must be a non-empty string"),
        ({"id": "a", "question": "q?", "tools": ["teleport"]}, "unknown tool 'teleport'"),
        (
            {"id": "a", "question": "q?", "reference": [[{"arguments": {}}]]},
            "a reference call must be",
        ),
        (
            {"id": "a", "question": "q?", "gold_calls": [{"f": 1}]},
            "gold call 'f' must be an object",
        ),
        (
            {"id": "a", "question": "q?", "tools": [{"description": "no name"}]},
            "needs a string 'name'",
        ),
    ],
)
def test_bad_task_records_are_clear_errors(tmp_path: Path, record: dict, message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [record])
    with pytest.raises(TaskFileError, match=message):
        load_task_file(path, builtin_tools=toolmath.BUILTIN_TOOLS)


def test_task_file_format_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "question": "q"}\n{not json\n')
    with pytest.raises(TaskFileError, match="line 2: not valid JSON"):
        load_task_file(broken, builtin_tools={})
    twice = write_jsonl(tmp_path / "twice.jsonl", [{"id": "a", "question": "q"}] * 2)
    with pytest.raises(TaskFileError, match="appears twice"):
        load_task_file(twice, builtin_tools={})
    with pytest.raises(TaskFileError, match="no such file"):
        load_task_file(tmp_path / "missing.jsonl", builtin_tools={})


def test_conversion_commands_write_files_the_envs_play(tmp_path: Path) -> None:
    questions, answers = bfcl_files(tmp_path)
    script = ROOT / "tools" / "make_tool_tasks.py"
    out = tmp_path / "bfcl.jsonl"
    run = [
        sys.executable,
        str(script),
        "convert-bfcl",
        str(questions),
        "--answers",
        str(answers),
        "--out",
        str(out),
    ]
    assert subprocess.run(run, capture_output=True, text=True, check=False).returncode == 0
    qa_out, corpus_out = tmp_path / "qa.jsonl", tmp_path / "corpus.jsonl"
    run = [sys.executable, str(script), "convert-qa", str(hotpot_file(tmp_path)), "--out", str(qa_out),
           "--corpus-out", str(corpus_out)]  # fmt: skip
    assert subprocess.run(run, capture_output=True, text=True, check=False).returncode == 0
    bad = subprocess.run([sys.executable, str(script), "convert-bfcl", str(questions), "--out", str(out)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 2 and "no ground truth" in bad.stderr and "Traceback" not in bad.stderr
    env = gym.make("FunctionCall-v0", task_file=str(out), expert=True)
    try:
        assert all(play(env, t, expert)[-1]["won"] for t in env.unwrapped.task_ids)
    finally:
        env.close()
    env = gym.make("SearchQA-v0", task_file=str(qa_out), corpus_file=str(corpus_out), expert=True)
    try:
        assert play(env, "q1", expert)[-1]["won"]
    finally:
        env.close()


# -- the shipped data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("family", "generate", "builtin", "default"),
    [
        ("toolmath", toolmath.generate_tasks, toolmath.BUILTIN_TOOLS, MATH_TOOL_NAMES),
        ("functioncall", functioncall.generate_tasks, functioncall.API_SCHEMAS, ()),
        ("searchqa", searchqa.generate_tasks, {"search": searchqa.SEARCH_TOOL}, ("search",)),
    ],
)
def test_shipped_tasks_are_what_the_generator_makes(
    family: str, generate, builtin, default
) -> None:
    data = json.loads((DATA_DIR / f"{family}_test.json").read_text())
    assert data["generator"]["count"] == len(data["tasks"])
    fresh = generate("test", 12, seed=data["generator"]["seed"])
    assert [t.to_dict(builtin, default) for t in fresh] == data["tasks"][:12]


def test_splits_are_disjoint_as_documented() -> None:
    def load(family: str, split: str) -> list[dict]:
        return json.loads((DATA_DIR / f"{family}_{split}.json").read_text())["tasks"]

    domains = {
        s: {t["meta"]["domain"] for t in load("toolmath", s)} for s in ("train", "dev", "test")
    }
    assert not (domains["train"] & domains["test"]) and not (domains["train"] & domains["dev"])
    levels = {t["meta"]["steps"] for t in load("toolmath", "test")}
    assert levels == set(range(2, 9))
    train_text = " ".join(t["question"] for t in load("functioncall", "train"))
    for city in functioncall_tasks._CITIES["test"]:
        assert city not in train_text
    train_questions = {t["question"] for t in load("searchqa", "train")}
    assert not train_questions & {t["question"] for t in load("searchqa", "test")}
    assert all(t["meta"]["hops"] >= 2 for t in load("searchqa", "test"))


@pytest.mark.slow
def test_every_shipped_file_is_up_to_date() -> None:
    script = ROOT / "tools" / "make_tool_tasks.py"
    result = subprocess.run(
        [sys.executable, str(script), "shipped", "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_guide_code_blocks_run(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    text = (ROOT / "docs" / "tool-tasks.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) >= 2
    for block in blocks:
        exec(compile(block, "tool-tasks.md", "exec"), {"__name__": "guide"})
    printed = capsys.readouterr().out
    assert "True 1.0" in printed and "<tool_response>\n408\n</tool_response>" in printed


@pytest.mark.slow
@pytest.mark.parametrize("env_id", TOOL_IDS)
@pytest.mark.parametrize("split", ["train", "dev"])
def test_expert_solves_every_shipped_task(env_id: str, split: str) -> None:
    env = gym.make(env_id, split=split, expert=True, admissible_actions="none")
    try:
        for task_id in env.unwrapped.task_ids:
            infos = play(env, task_id, expert)
            assert infos[-1]["won"] and not any(i["invalid_action"] for i in infos), task_id
    finally:
        env.close()
