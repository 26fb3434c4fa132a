"""Checkers (math answers, QA answers, function calls), schema validation and completion parsing."""

from __future__ import annotations

import pytest

from envs.tooluse.calls import (
    extract_boxed,
    format_tool_call,
    format_tool_responses,
    parse_completion,
)
from envs.tooluse.checkers import (
    check_math,
    exact_match,
    match_calls,
    normalize_answer,
    qa_scores,
    token_f1,
)
from envs.tooluse.mathtools import ToolError, make_tools
from envs.tooluse.schema import normalize_tool_schema, validate_arguments

# -- math answers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "gold", "expected"),
    [
        ("12", "12", True),
        ("12.0", "12", True),
        ("12.000", "12", True),
        ("1,200", "1200", True),
        ("1200", "1,200", True),
        ("\\$1,200", "1200", True),
        ("1,200 crates.", "1200", True),
        ("\\frac{2400}{2}", "1200", True),
        ("-3.5", "-3.5", True),
        ("-\\frac{7}{2}", "-3.5", True),
        ("1234.57", "1234.57", True),
        ("1234.5700", "1234.57", True),
        ("1.2 \\times 10^3", "1200", True),
        ("1201", "1200", False),
        ("1234.56", "1234.57", False),
        ("-3", "3", False),
        ("12", "1200", False),
        ("12 or 1200", "1200", False),
        ("x", "3", False),
        ("", "3", False),
    ],
)
def test_math_answers_are_tolerant_of_format_not_of_value(
    candidate: str, gold: str, expected: bool
) -> None:
    assert check_math(candidate, gold) is expected


def test_boxed_extraction_takes_the_last_balanced_box() -> None:
    assert extract_boxed("first \\boxed{1} then \\boxed{\\frac{1}{2}} done") == "\\frac{1}{2}"
    assert extract_boxed("\\boxed{12") is None
    assert extract_boxed("\\boxed{7} and \\boxed{8") == "7"
    assert extract_boxed("no box") is None


# -- QA answers ------------------------------------------------------------------------------


def test_qa_normalisation_and_scores() -> None:
    assert normalize_answer("The  Velda River!") == "velda river"
    assert exact_match("the Velda river", "Velda River")
    assert not exact_match("Velda", "Velda River")
    assert token_f1("Velda", "Velda River") == pytest.approx(2 / 3)
    assert token_f1("yes", "no") == 0.0
    assert token_f1("", "Velda") == 0.0
    assert qa_scores("Velda", ["Velda", "Velda River"]) == (True, 1.0)
    em, f1 = qa_scores("river Velda in Kelburg", ["Velda River"])
    assert not em and f1 == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    with pytest.raises(ValueError):
        qa_scores("x", [])


# -- function calls (BFCL's AST check) -----------------------------------------------------

WEATHER = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "threshold": {"type": "number"},
        "unit": {"type": "string"},
        "metric": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}
GOLD = {"weather": {"city": ["Paris", "Paris, France"], "days": [3], "unit": ["celsius", ""]}}


def call(**arguments: object) -> dict:
    return {"name": "weather", "arguments": arguments}


@pytest.mark.parametrize(
    ("arguments", "correct"),
    [
        ({"city": "Paris", "days": 3}, True),  # optional unit left out
        ({"city": "Paris", "days": 3, "unit": "celsius"}, True),
        ({"city": "paris,  FRANCE", "days": 3}, True),  # case, spaces and punctuation do not matter
        ({"city": "Paris", "days": 3.0}, False),  # integer parameter: a float is the wrong type
        ({"city": "Paris", "days": True}, False),  # a boolean is not an integer
        ({"city": "Paris", "days": "3"}, False),  # nor is a string
        ({"city": "Paris", "days": 4}, False),  # wrong value
        ({"city": "Lyon", "days": 3}, False),
        ({"days": 3}, False),  # missing required
        ({"city": "Paris", "days": 3, "unit": "kelvin"}, False),
        ({"city": "Paris", "days": 3, "metric": True}, False),  # an argument the gold does not have
    ],
)
def test_call_arguments_need_right_types_and_values(arguments: dict, correct: bool) -> None:
    result = match_calls([call(**arguments)], [GOLD], {"weather": WEATHER})
    assert result.correct is correct
    assert bool(result.problems) is (not correct)


def test_an_int_counts_for_a_float_parameter() -> None:
    gold = [{"weather": {"city": ["Rome"], "days": [1], "threshold": [20.0]}}]
    assert match_calls(
        [call(city="Rome", days=1, threshold=20)], gold, {"weather": WEATHER}
    ).correct
    assert not match_calls(
        [call(city="Rome", days=1, threshold=20.5)], gold, {"weather": WEATHER}
    ).correct


def test_list_values_compare_in_order_and_nested_dicts_by_key() -> None:
    gold = [{"weather": {"city": ["Rome"], "days": [1], "tags": [["a", "b"]]}}]
    assert match_calls(
        [call(city="Rome", days=1, tags=["A", "b"])], gold, {"weather": WEATHER}
    ).correct
    assert not match_calls(
        [call(city="Rome", days=1, tags=["b", "a"])], gold, {"weather": WEATHER}
    ).correct
    nested = [{"book": {"options": [{"seat": ["aisle"], "meal": ["veg", ""]}]}}]
    assert match_calls(
        [{"name": "book", "arguments": {"options": {"seat": "Aisle"}}}], nested
    ).correct
    assert not match_calls(
        [{"name": "book", "arguments": {"options": {"seat": "window"}}}], nested
    ).correct
    assert not match_calls(
        [{"name": "book", "arguments": {"options": {"seat": "aisle", "x": 1}}}], nested
    ).correct


def test_parallel_calls_match_in_any_order_one_to_one() -> None:
    gold = [
        {"weather": {"city": ["Paris"], "days": [3]}},
        {"weather": {"city": ["Rome"], "days": [3]}},
        {"time": {"city": ["Rome"]}},
    ]
    made = [
        {"name": "time", "arguments": {"city": "Rome"}},
        call(city="Rome", days=3),
        call(city="Paris", days=3),
    ]
    assert match_calls(made, gold).correct
    assert match_calls(list(reversed(made)), gold).correct
    # the same call twice does not stand for two different gold calls
    twice = match_calls([call(city="Rome", days=3), call(city="Rome", days=3), made[0]], gold)
    assert not twice.correct and twice.matched == 2
    # an extra call fails, a missing call fails
    assert not match_calls([*made, call(city="Oslo", days=3)], gold).correct
    missing = match_calls(made[:2], gold)
    assert not missing.correct and "1 expected call(s) not made" in missing.problems


def test_irrelevance_means_no_call_is_right() -> None:
    assert match_calls([], []).correct
    assert not match_calls([call(city="Paris", days=1)], []).correct


def test_dotted_names_match_their_underscored_form() -> None:
    gold = [{"weather.get": {"city": ["Paris"]}}]
    assert match_calls([{"name": "weather_get", "arguments": {"city": "Paris"}}], gold).correct


def test_bad_gold_is_refused() -> None:
    with pytest.raises(ValueError, match="one-key object"):
        match_calls([], [{"a": {}, "b": {}}])


# -- schemas and argument validation --------------------------------------------------------


def test_bfcl_schema_is_normalised_for_chat_templates() -> None:
    schema = normalize_tool_schema(
        {
            "name": "geo.distance",
            "description": "d",
            "parameters": {
                "type": "dict",
                "properties": {
                    "points": {"type": "tuple", "items": {"type": "float"}},
                    "anything": {"type": "any"},
                    "options": {"type": "dict", "properties": {"n": {"type": "int"}}},
                },
                "required": ["points"],
            },
        }
    )
    function = schema["function"]
    assert schema["type"] == "function" and function["name"] == "geo_distance"
    properties = function["parameters"]["properties"]
    assert function["parameters"]["type"] == "object"
    assert properties["points"] == {"type": "array", "items": {"type": "number"}}
    assert "type" not in properties["anything"]
    assert properties["options"]["properties"]["n"]["type"] == "integer"
    with pytest.raises(ValueError, match="name"):
        normalize_tool_schema({"description": "no name"})
    with pytest.raises(ValueError, match="letters, digits"):
        normalize_tool_schema({"name": "bad name!"})


SCHEMA = normalize_tool_schema(
    {
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "x": {"type": "number"},
                "unit": {"type": "string", "enum": ["km", "mile"]},
                "values": {"type": "array", "items": {"type": "number"}, "maxItems": 3},
            },
            "required": ["n"],
        },
    }
)


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({"n": 1}, None),
        ({"n": 1, "x": 2, "unit": "km", "values": [1, 2.5]}, None),
        ({}, "missing required argument 'n'"),
        ({"n": "1"}, "argument 'n' must be of type integer, not string"),
        ({"n": 1.0}, "argument 'n' must be of type integer, not number"),
        ({"n": True}, "argument 'n' must be of type integer, not boolean"),
        ({"n": 1, "x": "2"}, "argument 'x' must be of type number, not string"),
        ({"n": 1, "unit": "parsec"}, "argument 'unit' must be one of 'km', 'mile', not 'parsec'"),
        ({"n": 1, "values": [1, "a"]}, "argument 'values'[1] must be of type number, not string"),
        ({"n": 1, "values": [1, 2, 3, 4]}, "argument 'values' may hold at most 3 items, not 4"),
        ({"n": 1, "color": "red"}, "unexpected argument 'color'"),
        ([1], "arguments must be a JSON object, not array"),
    ],
)
def test_arguments_are_validated_with_clear_messages(
    arguments: object, problem: str | None
) -> None:
    result = validate_arguments(SCHEMA, arguments)
    if problem is None:
        assert result is None
    else:
        assert result is not None and problem in result


# -- parsing completions -------------------------------------------------------------------------


def test_completion_with_parallel_calls_and_reasoning() -> None:
    text = (
        "<think>two products first</think>\n"
        + format_tool_call("multiply", {"a": 3, "b": 4})
        + "\n"
        + '<tool_call>{"name": "add", "arguments": "{\\"a\\": 1, \\"b\\": 2}"}</tool_call>'
    )
    parsed = parse_completion(text)
    assert parsed.call_blocks == 2 and parsed.answer is None
    assert [(c.name, c.arguments, c.error) for c in parsed.calls] == [
        ("multiply", {"a": 3, "b": 4}, None),
        ("add", {"a": 1, "b": 2}, None),  # OpenAI-style JSON-string arguments
    ]


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ('{"name": "add", "arguments": {"a": 1,}}', "not valid JSON"),
        ('["add", 1, 2]', "must be a JSON object"),
        ('{"arguments": {}}', "no string 'name'"),
        ('{"name": "add", "arguments": [1, 2]}', "'arguments' must be a JSON object"),
        ('{"name": "add", "arguments": {"a": NaN}}', "not valid JSON"),
        ('{"name": "add", "arguments": {"a": 1}, "extra": 1}', "unexpected keys"),
        ('{"name": "add", "arguments": {"a": ' + "9" * 5000 + "}}", "not valid JSON"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ],
)
def test_malformed_calls_are_reported_not_raised(block: str, message: str) -> None:
    parsed = parse_completion(f"<tool_call>{block}</tool_call>")
    assert len(parsed.calls) == 1 and parsed.calls[0].error is not None
    assert message in parsed.calls[0].error


def test_unclosed_block_and_call_count_cap() -> None:
    parsed = parse_completion('<tool_call>{"name": "add", "arguments": {}}')
    assert parsed.call_blocks == 1 and "not closed" in parsed.calls[0].error
    many = parse_completion(format_tool_call("add", {"a": 1, "b": 1}) * 300, max_calls=5)
    assert many.call_blocks == 300 and len(many.calls) == 5


def test_final_answers_tag_before_box() -> None:
    assert parse_completion("so \\boxed{42}").answer == "42"
    parsed = parse_completion("<answer> Velda </answer> and \\boxed{1}")
    assert (parsed.answer, parsed.answer_source) == ("Velda", "tag")
    assert parse_completion("just thinking").answer is None


def test_tool_responses_format() -> None:
    assert format_tool_responses(["3", "Error: x"]) == (
        "<tool_response>\n3\n</tool_response>\n<tool_response>\nError: x\n</tool_response>"
    )


# -- the math tools themselves -------------------------------------------------------------------


def test_math_tools_compute_and_refuse_clearly() -> None:
    tools = make_tools()
    assert sorted(tools) == sorted(
        ["add", "subtract", "multiply", "divide", "sum_numbers", "floor", "ceil", "round_number", "power",
         "sqrt", "abs_value", "modulo"]
    )  # fmt: skip
    assert tools["add"](0.1, 0.2) == 0.3
    assert tools["divide"](10, 4) == 2.5 and tools["divide"](10**20, 10) == 10**19
    assert tools["sum_numbers"]([1, 2, 3.5]) == 6.5
    assert tools["round_number"](2.675, 2) == 2.68  # half away from zero on the decimal digits
    assert tools["round_number"](1234.5) == 1235
    assert tools["sqrt"](1225) == 35 and tools["sqrt"](2) == pytest.approx(1.4142135624)
    assert tools["power"](2, 10) == 1024 and tools["power"](4, 0.5) == 2
    assert tools["floor"](-2.5) == -3 and tools["ceil"](2.1) == 3
    assert tools["modulo"](17, 5) == 2 and tools["abs_value"](-4) == 4
    for name, args, message in [
        ("divide", (1, 0), "division by zero"),
        ("modulo", (1, 0), "modulo by zero"),
        ("sqrt", (-1,), "not real"),
        ("power", (9, 10**9), "too large"),
        ("power", (-8, 0.5), "whole-number exponent"),
        ("multiply", (10**200, 10**200), "too large"),
        ("multiply", (1e300, 1e300), "too large"),
        ("sum_numbers", ([],), "non-empty"),
        ("add", ("1", 2), "must be a number"),
        ("round_number", (1.5, 99), "decimals"),
    ]:
        with pytest.raises(ToolError, match=message):
            tools[name](*args)
