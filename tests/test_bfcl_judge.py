"""FunctionCall-v0's BFCL mode against BFCL's published AST-checker behaviour.

Each row is (functions, calls, gold, category, mode) with the verdict BFCL's
``ast_checker`` gives (worked out from its rules and confirmed with
``benchmarks/bench_bfcl_agreement.py`` against the installed checker).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import envs  # noqa: F401
from envs.tooluse.bfcl import bfcl_category, check_calls, check_relevance, decode_calls
from envs.tooluse.calls import format_tool_call, format_tool_calls
from envs.tooluse.tasks import TaskFileError, load_bfcl, load_task_file

gym.register_envs(envs)


def function(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "parameters": {"type": "dict", "properties": properties, "required": required},
    }


WEATHER = function(
    "weather.get",
    {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": "string"},
        "ratio": {"type": "float"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "counts": {"type": "array", "items": {"type": "integer"}},
        "flags": {"type": "array", "items": {"type": "array"}},
        "options": {"type": "dict", "properties": {}},
        "strict": {"type": "boolean"},
    },
    ["city"],
)


def gold(**params: Any) -> list[dict[str, Any]]:
    return [{"weather.get": params}]


def call(**arguments: Any) -> list[dict[str, Any]]:
    return [{"weather_get": arguments}]


CITY = {"city": ["New York", "NYC"]}

CASES = [
    # string normalisation: only " ,./-_*^", case, and ' -> "
    ("plain", call(city="New York"), gold(**CITY), True),
    ("case and marks", call(city="new-york,"), gold(**CITY), True),
    ("tab is not a space", call(city="New\tYork"), gold(**CITY), False),
    ("nbsp is not a space", call(city="New\xa0York"), gold(**CITY), False),
    ("newline is not a space", call(city="New York\n"), gold(**CITY), False),
    ("quote mapped", call(city="Rock 'n' Roll"), gold(city=['Rock "n" Roll']), True),
    # empty optional values
    ("optional left out", call(city="NYC"), gold(**CITY, unit=["celsius", ""]), True),
    ("optional as empty string", call(city="NYC", unit=""), gold(**CITY, unit=["c", ""]), True),
    ("optional as empty list", call(city="NYC", tags=[]), gold(**CITY, tags=[["a"], ""]), True),
    ("empty string, not optional", call(city="NYC", unit=""), gold(**CITY, unit=["c"]), False),
    # gold-typed values ("variables")
    ("null where gold has null", call(city="NYC", unit=None), gold(**CITY, unit=["", None]), True),
    ("int for a string whose gold is int", call(city=2), gold(city=[2]), True),
    ("string for a string whose gold is int", call(city="2"), gold(city=[2]), False),
    # schema types
    ("int for float", call(city="NYC", ratio=2), gold(**CITY, ratio=[2.0]), True),
    ("float for int", call(city="NYC", days=3.0), gold(**CITY, days=[3]), False),
    ("bool for int", call(city="NYC", days=True), gold(**CITY, days=[1]), False),
    ("int for bool", call(city="NYC", strict=1), gold(**CITY, strict=[True]), False),
    # required and unexpected parameters
    ("required but gold-optional, left out", call(), gold(city=["NYC", ""]), False),
    ("gold parameter absent from schema", call(city="NYC", zone="x"), gold(**CITY, zone=["x"]), False),
    ("schema parameter absent from gold", call(city="NYC", days=1), gold(**CITY), False),
    ("gold parameter not given", call(city="NYC"), gold(**CITY, days=[1]), False),
    # list items
    ("list items of the wrong type", call(city="NYC", counts=[1.0, 2.0]), gold(**CITY, counts=[[1, 2]]), False),
    ("wrong item types pass when the list is optional", call(city="NYC", counts=[1.0, 2.0]),
     gold(**CITY, counts=[[1, 2], ""]), True),
    ("list order matters", call(city="NYC", tags=["b", "a"]), gold(**CITY, tags=[["a", "b"]]), False),
    ("list strings normalised", call(city="NYC", tags=["A b"]), gold(**CITY, tags=[["ab"]]), True),
    ("1/0 for booleans in nested lists", call(city="NYC", flags=[[1, 0]]),
     gold(**CITY, flags=[[[True, False]]]), True),
    # one level of normalisation
    ("nested list strings not normalised", call(city="NYC", flags=[["A"]]), gold(**CITY, flags=[[["a"]]]), False),
    ("dict values normalised", call(city="NYC", options={"k": "V W"}), gold(**CITY, options=[{"k": ["vw"]}]), True),
    ("strings inside a dict value not normalised", call(city="NYC", options={"k": ["V"]}),
     gold(**CITY, options=[{"k": [["v"]]}]), False),
    ("dict key unexpected", call(city="NYC", options={"z": 1}), gold(**CITY, options=[{"k": [1]}]), False),
    ("dict key optional", call(city="NYC", options={}), gold(**CITY, options=[{"k": [1, ""]}]), True),
]  # fmt: skip


@pytest.mark.parametrize(("label", "calls", "answer", "valid"), CASES, ids=[c[0] for c in CASES])
def test_bfcl_value_rules(label: str, calls: list, answer: list, valid: bool) -> None:
    verdict = check_calls([WEATHER], calls, answer, "simple_python")
    assert verdict.valid is valid, verdict


def test_name_convention_follows_the_model_mode() -> None:
    answer = gold(city=["NYC"])
    dotted, underscored = [{"weather.get": {"city": "NYC"}}], call(city="NYC")
    assert check_calls([WEATHER], underscored, answer, "simple", underscore_to_dot=True).valid
    assert not check_calls([WEATHER], dotted, answer, "simple", underscore_to_dot=True).valid
    assert check_calls([WEATHER], dotted, answer, "simple", underscore_to_dot=False).valid
    assert not check_calls([WEATHER], underscored, answer, "simple", underscore_to_dot=False).valid


def test_parallel_calls_pair_greedily_in_gold_order() -> None:
    f = function("f", {"x": {"type": "integer"}}, ["x"])
    answer = [{"f": {"x": [1, 2]}}, {"f": {"x": [1]}}]
    # The first gold call takes the first call that fits it, even if the second needs it.
    assert not check_calls([f], [{"f": {"x": 1}}, {"f": {"x": 2}}], answer, "parallel").valid
    assert check_calls([f], [{"f": {"x": 2}}, {"f": {"x": 1}}], answer, "parallel").valid
    assert not check_calls([f], [{"f": {"x": 2}}], answer, "parallel").valid  # count
    two = [{"f": {"x": [1]}}, {"f": {"x": [2]}}]
    assert check_calls([f], [{"f": {"x": 2}}, {"f": {"x": 1}}], two, "live_parallel_multiple").valid


def test_categories_pick_the_checker() -> None:
    f, g = function("f", {}, []), function("g", {}, [])
    # simple: one call, judged against the first function
    assert check_calls([f, g], [{"f": {}}], [{"f": {}}], "simple").valid
    assert not check_calls([f], [{"f": {}}, {"f": {}}], [{"f": {}}], "simple").valid
    # multiple: the call against the gold's function
    assert check_calls([f, g], [{"g": {}}], [{"g": {}}], "live_multiple").valid
    assert not check_calls([f, g], [{"f": {}}], [{"g": {}}], "multiple").valid
    assert bfcl_category("live_parallel_multiple_3-2-1") == "live_parallel_multiple"
    assert bfcl_category("simple_python_12") == "simple_python"
    assert bfcl_category("nonsense") is None


def test_malformed_possible_answers_are_an_invalid_verdict_not_a_crash() -> None:
    verdict = check_calls([WEATHER], call(city="NYC", tags=["a"]), gold(**CITY, tags=5), "simple")
    assert not verdict.valid and verdict.error_type == "checker_error"


def test_decoding_and_relevance() -> None:
    good = format_tool_calls([{"name": "f", "arguments": {"x": 1}}])
    assert decode_calls(good) == [{"f": {"x": 1}}]
    assert decode_calls("no call here") == []
    assert (
        decode_calls(good + '\n<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>') is None
    )
    assert decode_calls('<tool_call>{"name": "f"') is None
    assert check_relevance([], "irrelevance").valid
    assert check_relevance(None, "live_irrelevance").valid  # an undecodable response is no call
    assert not check_relevance([{"f": {}}], "irrelevance").valid
    assert check_relevance([{"f": {}}], "live_relevance").valid
    assert not check_relevance([], "live_relevance").valid
    assert not check_calls([WEATHER], None, gold(**CITY), "simple").valid


# -- the env in BFCL mode ----------------------------------------------------------------


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def bfcl_file(tmp_path: Path) -> tuple[Path, Path]:
    questions = write_jsonl(
        tmp_path / "BFCL_v4_mixed.json",
        [
            {"id": "simple_python_0", "question": [[{"role": "user", "content": "Weather in NYC?"}]],
             "function": [WEATHER]},
            {"id": "parallel_0", "question": [[{"role": "user", "content": "Weather in 9 cities?"}]],
             "function": [WEATHER]},
            {"id": "irrelevance_0", "question": [[{"role": "user", "content": "A joke?"}]],
             "function": [WEATHER]},
        ],
    )  # fmt: skip
    nine = [{"weather.get": {"city": [f"c{k}"]}} for k in range(9)]
    answers = write_jsonl(
        tmp_path / "possible_answer.json",
        [
            {"id": "simple_python_0", "ground_truth": gold(**CITY, unit=["", "celsius"])},
            {"id": "parallel_0", "ground_truth": nine},
        ],
    )
    return questions, answers


def make(files: tuple[Path, Path], **kwargs: Any) -> Any:
    return gym.make("FunctionCall-v0", task_file=str(files[0]), answer_file=str(files[1]), **kwargs)


def test_bfcl_mode_judges_the_first_completion_whatever_it_is(bfcl_file: tuple[Path, Path]) -> None:
    env = make(bfcl_file, expert=True)
    try:
        obs, info = env.reset(options={"task_id": "simple_python_0"})
        assert obs == "Weather in NYC?"  # the question alone
        assert [t["function"]["name"] for t in info["tools"]] == ["weather_get"]  # no answer tool
        # A raw non-breaking space: judged (and wrong), not refused with a retry.
        action = format_tool_call("weather_get", {"city": "New\xa0York"})
        _, reward, terminated, _, info = env.step(action)
        assert terminated and not info["won"] and reward == 0.0
        # Thinking text with one is fine: BFCL reads only the calls.
        env.reset(options={"task_id": "simple_python_0"})
        action = "<think>a\xa0b</think>\n" + format_tool_call("weather_get", {"city": "New York"})
        assert env.step(action)[4]["won"]
        # Text without a call ends the episode too.
        env.reset(options={"task_id": "simple_python_0"})
        _, _, terminated, _, info = env.step("It is sunny.")
        assert terminated and not info["won"] and info["call_problems"]
        # Nine parallel calls are judged, not refused.
        _, info = env.reset(options={"task_id": "parallel_0"})
        _, _, terminated, _, info = env.step(info["expert_action"])
        assert terminated and info["won"] and info["calls_matched"] == 9
        # Irrelevance: the expert replies without a call.
        _, info = env.reset(options={"task_id": "irrelevance_0"})
        assert "<tool_call>" not in info["expert_action"]
        assert env.step(info["expert_action"])[4]["won"]
        env.reset(options={"task_id": "irrelevance_0"})
        assert env.step("")[4]["won"]  # an empty response calls nothing
    finally:
        env.close()


def test_prompting_mode_expects_and_shows_dotted_names(bfcl_file: tuple[Path, Path]) -> None:
    env = make(bfcl_file, bfcl_mode="prompting", expert=True)
    try:
        _, info = env.reset(options={"task_id": "simple_python_0"})
        assert info["tools"][0]["function"]["name"] == "weather.get"
        assert '"weather.get"' in info["expert_action"]
        assert env.step(info["expert_action"])[4]["won"]
        env.reset(options={"task_id": "simple_python_0"})
        assert not env.step(format_tool_call("weather_get", {"city": "NYC"}))[4]["won"]
    finally:
        env.close()
    with pytest.raises(ValueError, match="bfcl_mode must be one of"):
        make(bfcl_file, bfcl_mode="openai")


def test_converted_bfcl_tasks_stay_in_bfcl_mode(
    bfcl_file: tuple[Path, Path], tmp_path: Path
) -> None:
    tasks = load_bfcl(*bfcl_file)
    assert tasks[0].meta["bfcl_category"] == "simple_python"
    out = write_jsonl(tmp_path / "converted.jsonl", [t.to_dict() for t in tasks])
    again = load_task_file(out, builtin_tools={})
    assert again[1].meta["bfcl_ground_truth"] == tasks[1].meta["bfcl_ground_truth"]
    env = gym.make("FunctionCall-v0", task_file=str(out))
    try:
        env.reset(options={"task_id": "simple_python_0"})
        _, _, terminated, _, info = env.step(format_tool_call("weather_get", {"city": "New\tYork"}))
        assert terminated and not info["won"] and info["bfcl_error_type"] == "value_error"
    finally:
        env.close()


def test_unsupported_bfcl_categories_are_refused(tmp_path: Path) -> None:
    java = write_jsonl(tmp_path / "java.json", [{"id": "simple_java_0", "question": "q",
                                                 "function": [function("f", {}, [])]}])  # fmt: skip
    with pytest.raises(TaskFileError, match="'simple_java' is not supported"):
        load_bfcl(java)
    relevance = write_jsonl(tmp_path / "rel.json", [{"id": "live_relevance_0-0-0", "question": "q",
                                                     "function": [function("f", {}, [])]}])  # fmt: skip
    assert load_bfcl(relevance)[0].meta["bfcl_category"] == "live_relevance"
