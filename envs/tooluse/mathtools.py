"""MENTOR's twelve arithmetic tools: implementations and the JSON schemas a chat template takes.

Every tool takes JSON numbers and returns a JSON number. Results are tidied so
a model reads what a calculator shows: an integral float becomes an int, and
other floats are rounded to 10 decimal places (``0.1 + 0.2`` gives ``0.3``).
Bad input (division by zero, a square root of a negative number, a result too
large to compute) raises :class:`ToolError` with a message meant for the model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

__all__ = [
    "MATH_TOOL_NAMES",
    "MATH_TOOL_SCHEMAS",
    "ToolError",
    "make_tools",
    "tidy_number",
]

# Results above this magnitude are refused: floats lose integer precision past 2**53
# and a big power would take minutes and gigabytes (the sandbox would stop it anyway).
MAX_RESULT_EXPONENT = 300
MAX_LIST_LENGTH = 1000
_MAX_RESULT_BITS = int(MAX_RESULT_EXPONENT * math.log2(10)) + 1


class ToolError(ValueError):
    """A tool refused its input; the message is shown to the model."""


Number = int | float


def _number(value: Any, name: str) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"{name} must be a finite number")
    return value


def tidy_number(value: Number) -> Number:
    """An integral float as int, other floats rounded to 10 places; refuses non-finite values."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if value.bit_length() > _MAX_RESULT_BITS:
            raise ToolError(f"the result is too large; the limit is about 10^{MAX_RESULT_EXPONENT}")
        return value
    if not math.isfinite(value):
        raise ToolError("the result is too large (not a finite number)")
    if value.is_integer() and abs(value) < 2**53:
        return int(value)
    rounded = round(value, 10)
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded


def add(a: Number, b: Number) -> Number:
    return tidy_number(_number(a, "a") + _number(b, "b"))


def subtract(a: Number, b: Number) -> Number:
    return tidy_number(_number(a, "a") - _number(b, "b"))


def multiply(a: Number, b: Number) -> Number:
    return tidy_number(_number(a, "a") * _number(b, "b"))


def divide(a: Number, b: Number) -> Number:
    a, b = _number(a, "a"), _number(b, "b")
    if b == 0:
        raise ToolError("division by zero")
    if isinstance(a, int) and isinstance(b, int) and a % b == 0:
        return a // b  # exact for integers of any size
    return tidy_number(a / b)


def sum_numbers(numbers: list[Number]) -> Number:
    if not isinstance(numbers, list) or not numbers:
        raise ToolError("numbers must be a non-empty list of numbers")
    if len(numbers) > MAX_LIST_LENGTH:
        raise ToolError(f"numbers may hold at most {MAX_LIST_LENGTH} values")
    values = [_number(v, f"numbers[{i}]") for i, v in enumerate(numbers)]
    if all(isinstance(v, int) for v in values):
        return tidy_number(sum(values))
    return tidy_number(math.fsum(values))


def floor(x: Number) -> Number:
    return tidy_number(math.floor(_number(x, "x")))


def ceil(x: Number) -> Number:
    return tidy_number(math.ceil(_number(x, "x")))


def round_number(x: Number, decimals: int = 0) -> Number:
    x = _number(x, "x")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not -15 <= decimals <= 15:
        raise ToolError("decimals must be an integer from -15 to 15")
    # Half away from zero on the decimal digits the model sees (Python's round() works on
    # the binary value and rounds 2.675 down to 2.67).
    try:
        quantum = Decimal(1).scaleb(-decimals)
        rounded = Decimal(repr(x)).quantize(quantum, rounding=ROUND_HALF_UP)
    except InvalidOperation as error:
        raise ToolError("the number is too large to round") from error
    return tidy_number(int(rounded)) if decimals <= 0 else tidy_number(float(rounded))


def power(base: Number, exponent: Number) -> Number:
    base, exponent = _number(base, "base"), _number(exponent, "exponent")
    if base == 0 and exponent < 0:
        raise ToolError("zero cannot be raised to a negative power")
    if abs(base) not in (0, 1):
        magnitude = abs(exponent) * math.log10(abs(base))
        if exponent > 0 and magnitude > MAX_RESULT_EXPONENT:
            raise ToolError(
                f"the result is too large (about 10^{magnitude:.0f}); the limit is 10^{MAX_RESULT_EXPONENT}"
            )
    if base < 0 and not float(exponent).is_integer():
        raise ToolError("a negative base needs a whole-number exponent (the result is not real)")
    try:
        result = base**exponent
    except (OverflowError, ZeroDivisionError) as error:
        raise ToolError(f"the power cannot be computed: {error}") from error
    return tidy_number(result)


def sqrt(x: Number) -> Number:
    x = _number(x, "x")
    if x < 0:
        raise ToolError("the square root of a negative number is not real")
    if isinstance(x, int):
        root = math.isqrt(x)
        if root * root == x:
            return root
    return tidy_number(math.sqrt(x))


def abs_value(x: Number) -> Number:
    return tidy_number(abs(_number(x, "x")))


def modulo(a: Number, b: Number) -> Number:
    a, b = _number(a, "a"), _number(b, "b")
    if b == 0:
        raise ToolError("modulo by zero")
    return tidy_number(a % b)


def _schema(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


_NUM = {"type": "number"}

#: The tools in the format ``tokenizer.apply_chat_template(..., tools=...)`` takes.
MATH_TOOL_SCHEMAS: list[dict[str, Any]] = [
    _schema("add", "Add two numbers: a + b.", {"a": _NUM, "b": _NUM}, ["a", "b"]),
    _schema("subtract", "Subtract b from a: a - b.", {"a": _NUM, "b": _NUM}, ["a", "b"]),
    _schema("multiply", "Multiply two numbers: a * b.", {"a": _NUM, "b": _NUM}, ["a", "b"]),
    _schema("divide", "Divide a by b: a / b.", {"a": _NUM, "b": _NUM}, ["a", "b"]),
    _schema(
        "sum_numbers",
        "Add up a list of numbers.",
        {"numbers": {"type": "array", "items": _NUM, "maxItems": MAX_LIST_LENGTH}},
        ["numbers"],
    ),
    _schema("floor", "Round x down to the nearest integer.", {"x": _NUM}, ["x"]),
    _schema("ceil", "Round x up to the nearest integer.", {"x": _NUM}, ["x"]),
    _schema(
        "round_number",
        "Round x to the given number of decimal places (halves round away from zero).",
        {"x": _NUM, "decimals": {"type": "integer", "description": "decimal places, default 0"}},
        ["x"],
    ),
    _schema(
        "power",
        "Raise base to the power exponent.",
        {"base": _NUM, "exponent": _NUM},
        ["base", "exponent"],
    ),
    _schema("sqrt", "Square root of x.", {"x": _NUM}, ["x"]),
    _schema("abs_value", "Absolute value of x.", {"x": _NUM}, ["x"]),
    _schema(
        "modulo",
        "Remainder of a divided by b (it has the sign of b).",
        {"a": _NUM, "b": _NUM},
        ["a", "b"],
    ),
]

_FUNCTIONS: dict[str, Callable[..., Number]] = {
    "add": add,
    "subtract": subtract,
    "multiply": multiply,
    "divide": divide,
    "sum_numbers": sum_numbers,
    "floor": floor,
    "ceil": ceil,
    "round_number": round_number,
    "power": power,
    "sqrt": sqrt,
    "abs_value": abs_value,
    "modulo": modulo,
}

MATH_TOOL_NAMES: tuple[str, ...] = tuple(_FUNCTIONS)


def make_tools() -> dict[str, Callable[..., Number]]:
    """The twelve tools by name (the sandbox's toolset factory)."""
    return dict(_FUNCTIONS)
