"""FunctionCall-v0: BFCL-style function calling over API schemas of our own.

The APIs (weather, unit and currency conversion, calendar arithmetic and
events, tips, restaurants, distances, reminders) are deterministic
implementations: the same arguments always give the same result, so tasks
whose second call needs the first call's output have a fixed gold answer.

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
import datetime as dt
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from typing import Any

from envs.core import Transition
from envs.tooluse.bfcl import BFCL_MODES, check_calls, check_relevance, decode_calls
from envs.tooluse.calls import format_tool_call, format_tool_calls
from envs.tooluse.checkers import match_calls
from envs.tooluse.env import ToolEnv, Verdict
from envs.tooluse.mathtools import ToolError
from envs.tooluse.sandbox import Toolset
from envs.tooluse.schema import normalize_tool_schema, schema_name, schema_parameters
from envs.tooluse.tasks import ToolTask, load_bfcl, load_shipped_tasks, load_task_file, read_records

__all__ = ["API_SCHEMAS", "FunctionCallEnv", "generate_tasks", "make_tools"]

# -- the APIs ---------------------------------------------------------------------------

_CONDITIONS = (
    "sunny",
    "partly cloudy",
    "cloudy",
    "light rain",
    "heavy rain",
    "snow",
    "fog",
    "windy",
)
_CUISINES = ("italian", "japanese", "mexican", "indian", "french", "thai", "greek", "vegetarian")
# Units per kind, with the factor to the kind's base unit (temperatures are handled apart).
_UNITS: dict[str, dict[str, float]] = {
    "length": {"m": 1.0, "km": 1000.0, "cm": 0.01, "mile": 1609.344, "ft": 0.3048, "inch": 0.0254},
    "mass": {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125},
    "volume": {"l": 1.0, "ml": 0.001, "gallon": 3.785411784, "cup": 0.2365882365},
}
_TEMPERATURES = ("celsius", "fahrenheit", "kelvin")
# Fixed reference rates: units of each currency per US dollar.
_RATES: dict[str, float] = {
    "USD": 1.0, "EUR": 0.92, "GBP": 0.79, "JPY": 151.6, "CHF": 0.88, "CAD": 1.36,
    "AUD": 1.52, "INR": 83.4, "SEK": 10.6, "NOK": 10.8, "MXN": 17.1, "BRL": 5.05,
}  # fmt: skip


def _digest(*parts: Any) -> int:
    text = "|".join(str(p).strip().lower() for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _date(value: Any, name: str) -> dt.date:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ToolError(f"{name} must be a date written YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError as error:
        raise ToolError(f"{name} is not a real date ({error})") from None


def _time(value: Any, name: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ToolError(f"{name} must be a time written HH:MM (24-hour clock)")
    return int(match.group(1)), int(match.group(2))


def _city(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ToolError("city must be a non-empty string")
    return value.strip()


def _celsius_of(city: str, date: dt.date) -> float:
    # A seasonal curve per city (a fixed latitude-like offset) plus day-to-day noise.
    base = 8 + (_digest("climate", city) % 180) / 10.0
    season = 11 * -_cos_day(date)
    noise = ((_digest("weather", city, date) % 61) - 30) / 10.0
    return round(base + season + noise, 1)


def _cos_day(date: dt.date) -> float:
    return math.cos(2 * math.pi * (date.timetuple().tm_yday - 15) / 365.25)


def get_weather(city: str, date: str, unit: str = "celsius") -> dict[str, Any]:
    day = _date(date, "date")
    city = _city(city)
    if unit not in ("celsius", "fahrenheit"):
        raise ToolError("unit must be 'celsius' or 'fahrenheit'")
    celsius = _celsius_of(city, day)
    temperature = celsius if unit == "celsius" else round(celsius * 9 / 5 + 32, 1)
    condition = _CONDITIONS[_digest("sky", city, day) % len(_CONDITIONS)]
    if condition == "snow" and celsius > 3:
        condition = "light rain"
    return {
        "city": city,
        "date": day.isoformat(),
        "condition": condition,
        "temperature": temperature,
        "unit": unit,
    }


def _convert_temperature(value: float, source: str, target: str) -> float:
    celsius = {"celsius": value, "fahrenheit": (value - 32) * 5 / 9, "kelvin": value - 273.15}[
        source
    ]
    return {"celsius": celsius, "fahrenheit": celsius * 9 / 5 + 32, "kelvin": celsius + 273.15}[
        target
    ]


def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ToolError("value must be a number")
    if from_unit in _TEMPERATURES and to_unit in _TEMPERATURES:
        result = _convert_temperature(float(value), from_unit, to_unit)
    else:
        kinds = [k for k, units in _UNITS.items() if from_unit in units and to_unit in units]
        if not kinds:
            raise ToolError(f"cannot convert {from_unit!r} to {to_unit!r}")
        units = _UNITS[kinds[0]]
        result = value * units[from_unit] / units[to_unit]
    return {"value": round(result, 4), "unit": to_unit}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise ToolError("amount must be a non-negative number")
    for code in (from_currency, to_currency):
        if code not in _RATES:
            raise ToolError(f"unknown currency {code!r}")
    converted = amount / _RATES[from_currency] * _RATES[to_currency]
    return {"amount": round(converted, 2), "currency": to_currency}


def get_exchange_rate(base: str, quote: str) -> dict[str, Any]:
    for code in (base, quote):
        if code not in _RATES:
            raise ToolError(f"unknown currency {code!r}")
    return {"base": base, "quote": quote, "rate": round(_RATES[quote] / _RATES[base], 6)}


def days_between(start_date: str, end_date: str) -> dict[str, Any]:
    return {"days": (_date(end_date, "end_date") - _date(start_date, "start_date")).days}


def add_days(date: str, days: int) -> dict[str, Any]:
    if isinstance(days, bool) or not isinstance(days, int) or abs(days) > 100_000:
        raise ToolError("days must be an integer between -100000 and 100000")
    try:
        return {"date": (_date(date, "date") + dt.timedelta(days=days)).isoformat()}
    except OverflowError:
        raise ToolError("the resulting date is out of range") from None


def day_of_week(date: str) -> dict[str, Any]:
    day = _date(date, "date")
    return {"date": day.isoformat(), "day_of_week": day.strftime("%A")}


def create_event(
    title: str,
    date: str,
    start_time: str,
    duration_minutes: int,
    attendees: list[str] | None = None,
) -> dict[str, Any]:
    day = _date(date, "date")
    hour, minute = _time(start_time, "start_time")
    if (
        isinstance(duration_minutes, bool)
        or not isinstance(duration_minutes, int)
        or not 1 <= duration_minutes <= 1440
    ):
        raise ToolError("duration_minutes must be an integer from 1 to 1440")
    attendees = list(attendees or [])
    start = dt.datetime(day.year, day.month, day.day, hour, minute)
    end = start + dt.timedelta(minutes=duration_minutes)
    event_id = f"evt-{_digest('event', title, day, start_time) % 16**8:08x}"
    return {
        "event_id": event_id,
        "title": title,
        "start": start.isoformat(timespec="minutes"),
        "end": end.isoformat(timespec="minutes"),
        "attendees": attendees,
    }


def calculate_tip(bill_amount: float, tip_percent: float, num_people: int = 1) -> dict[str, Any]:
    if isinstance(bill_amount, bool) or not isinstance(bill_amount, int | float) or bill_amount < 0:
        raise ToolError("bill_amount must be a non-negative number")
    if isinstance(num_people, bool) or not isinstance(num_people, int) or num_people < 1:
        raise ToolError("num_people must be a positive integer")
    tip = bill_amount * tip_percent / 100
    total = bill_amount + tip
    return {
        "tip": round(tip, 2),
        "total": round(total, 2),
        "per_person": round(total / num_people, 2),
    }


_NAME_PARTS = (
    "Golden",
    "Little",
    "Blue",
    "Old",
    "Corner",
    "Garden",
    "Harbor",
    "Silver",
    "Red",
    "Lucky",
)
_NAME_NOUNS = (
    "Table",
    "Spoon",
    "Lantern",
    "Kitchen",
    "Oven",
    "Door",
    "Terrace",
    "Plate",
    "House",
    "Leaf",
)


def find_restaurants(city: str, cuisine: str, max_results: int = 3) -> dict[str, Any]:
    city = _city(city)
    if cuisine not in _CUISINES:
        raise ToolError(f"cuisine must be one of {list(_CUISINES)}")
    if (
        isinstance(max_results, bool)
        or not isinstance(max_results, int)
        or not 1 <= max_results <= 10
    ):
        raise ToolError("max_results must be an integer from 1 to 10")
    found = []
    for index in range(max_results):
        h = _digest("restaurant", city, cuisine, index)
        name = f"{_NAME_PARTS[h % 10]} {_NAME_NOUNS[(h // 10) % 10]}"
        found.append({"name": name, "rating": round(3.5 + (h // 100) % 15 / 10, 1)})
    return {"city": city, "cuisine": cuisine, "restaurants": found}


def get_distance(origin: str, destination: str, unit: str = "km") -> dict[str, Any]:
    origin, destination = _city(origin), _city(destination)
    if unit not in ("km", "mile"):
        raise ToolError("unit must be 'km' or 'mile'")
    pair = sorted([origin.lower(), destination.lower()])
    km = 0.0 if pair[0] == pair[1] else 40 + _digest("distance", *pair) % 9000
    value = km if unit == "km" else round(km / 1.609344, 1)
    return {"origin": origin, "destination": destination, "distance": value, "unit": unit}


def set_reminder(message: str, date: str, time: str) -> dict[str, Any]:
    if not isinstance(message, str) or not message.strip():
        raise ToolError("message must be a non-empty string")
    day = _date(date, "date")
    _time(time, "time")
    reminder_id = f"rem-{_digest('reminder', message, day, time) % 16**8:08x}"
    return {"reminder_id": reminder_id, "message": message, "when": f"{day.isoformat()} {time}"}


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "get_weather": get_weather,
    "convert_units": convert_units,
    "convert_currency": convert_currency,
    "get_exchange_rate": get_exchange_rate,
    "days_between": days_between,
    "add_days": add_days,
    "day_of_week": day_of_week,
    "create_event": create_event,
    "calculate_tip": calculate_tip,
    "find_restaurants": find_restaurants,
    "get_distance": get_distance,
    "set_reminder": set_reminder,
}


def make_tools() -> dict[str, Callable[..., Any]]:
    """The API implementations by name (the sandbox's toolset factory)."""
    return dict(_FUNCTIONS)


_DATE = {"type": "string", "description": "a date written YYYY-MM-DD"}
_ALL_UNITS = sorted({u for units in _UNITS.values() for u in units} | set(_TEMPERATURES))


def _api(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    return normalize_tool_schema(
        {"name": name, "description": description,
         "parameters": {"type": "object", "properties": properties, "required": required}}
    )  # fmt: skip


#: Our API schemas, in the chat-template format.
API_SCHEMAS: dict[str, dict[str, Any]] = {
    schema_name(s): s
    for s in (
        _api("get_weather", "Weather forecast for a city on a date.",
             {"city": {"type": "string", "description": "city name"}, "date": _DATE,
              "unit": {"type": "string", "enum": ["celsius", "fahrenheit"],
                       "description": "temperature unit, default celsius"}},
             ["city", "date"]),
        _api("convert_units", "Convert a quantity between units of length, mass, volume or temperature.",
             {"value": {"type": "number"}, "from_unit": {"type": "string", "enum": _ALL_UNITS},
              "to_unit": {"type": "string", "enum": _ALL_UNITS}},
             ["value", "from_unit", "to_unit"]),
        _api("convert_currency", "Convert an amount of money at today's reference rate.",
             {"amount": {"type": "number"}, "from_currency": {"type": "string", "enum": sorted(_RATES)},
              "to_currency": {"type": "string", "enum": sorted(_RATES)}},
             ["amount", "from_currency", "to_currency"]),
        _api("get_exchange_rate", "Today's reference rate: units of quote per unit of base.",
             {"base": {"type": "string", "enum": sorted(_RATES)}, "quote": {"type": "string", "enum": sorted(_RATES)}},
             ["base", "quote"]),
        _api("days_between", "Number of days from start_date to end_date.",
             {"start_date": _DATE, "end_date": _DATE}, ["start_date", "end_date"]),
        _api("add_days", "The date a number of days after (or before, if negative) a date.",
             {"date": _DATE, "days": {"type": "integer"}}, ["date", "days"]),
        _api("day_of_week", "The weekday of a date.", {"date": _DATE}, ["date"]),
        _api("create_event", "Add an event to the user's calendar.",
             {"title": {"type": "string"}, "date": _DATE,
              "start_time": {"type": "string", "description": "HH:MM, 24-hour clock"},
              "duration_minutes": {"type": "integer"},
              "attendees": {"type": "array", "items": {"type": "string"}, "description": "names, optional"}},
             ["title", "date", "start_time", "duration_minutes"]),
        _api("calculate_tip", "Tip, total and share per person of a restaurant bill.",
             {"bill_amount": {"type": "number"}, "tip_percent": {"type": "number"},
              "num_people": {"type": "integer", "description": "default 1"}},
             ["bill_amount", "tip_percent"]),
        _api("find_restaurants", "Restaurants of a cuisine in a city.",
             {"city": {"type": "string"}, "cuisine": {"type": "string", "enum": list(_CUISINES)},
              "max_results": {"type": "integer", "description": "1 to 10, default 3"}},
             ["city", "cuisine"]),
        _api("get_distance", "Road distance between two cities.",
             {"origin": {"type": "string"}, "destination": {"type": "string"},
              "unit": {"type": "string", "enum": ["km", "mile"], "description": "default km"}},
             ["origin", "destination"]),
        _api("set_reminder", "Set a reminder with a message at a date and time.",
             {"message": {"type": "string"}, "date": _DATE,
              "time": {"type": "string", "description": "HH:MM, 24-hour clock"}},
             ["message", "date", "time"]),
    )
}  # fmt: skip

API_TOOLSET = Toolset("envs.tooluse.functioncall:make_tools")


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


# -- generation ---------------------------------------------------------------------------

_CITIES = {
    "train": ("Lisbon", "Oslo", "Madrid", "Vienna", "Prague", "Dublin", "Warsaw", "Athens", "Helsinki",
              "Budapest", "Zurich", "Milan", "Munich", "Lyon", "Porto", "Seville", "Krakow", "Bergen",
              "Toronto", "Chicago", "Denver", "Seattle", "Boston", "Austin", "Montreal", "Vancouver",
              "Osaka", "Kyoto", "Seoul", "Busan", "Taipei", "Hanoi", "Manila", "Jakarta", "Perth",
              "Auckland", "Nairobi", "Lagos", "Accra", "Cairo", "Tunis", "Casablanca", "Lima", "Quito",
              "Bogota", "Santiago", "Montevideo", "Havana"),
    "dev": ("Riga", "Tallinn", "Vilnius", "Sofia", "Zagreb", "Ljubljana", "Bratislava", "Valletta",
            "Calgary", "Phoenix", "Nagoya", "Chennai", "Dakar", "Asuncion"),
    "test": ("Reykjavik", "Tbilisi", "Yerevan", "Baku", "Tirana", "Skopje", "Podgorica", "Sarajevo",
             "Halifax", "Winnipeg", "Sapporo", "Kochi", "Kigali", "La Paz"),
}  # fmt: skip
_TITLES = {
    "train": ("Budget review", "Team sync", "Design critique", "Quarterly planning", "Client call",
              "Hiring panel", "Code review", "Lunch with Sam", "Dentist", "Book club", "Yoga class",
              "Board meeting", "Parent evening", "Sprint demo", "Vendor briefing", "Piano lesson"),
    "dev": ("Roadmap workshop", "Security audit", "Press briefing", "Tax advisor", "Chess club"),
    "test": ("Grant deadline check", "Offsite planning", "Volunteer training", "Museum tour", "Pottery class"),
}  # fmt: skip
_PEOPLE = {
    "train": (
        "Ana",
        "Ben",
        "Chloe",
        "Dev",
        "Elena",
        "Farid",
        "Grace",
        "Hugo",
        "Iris",
        "Jonas",
        "Kemi",
        "Liam",
    ),
    "dev": ("Marta", "Nils", "Omar", "Priya"),
    "test": ("Quinn", "Rosa", "Sanjay", "Tove"),
}
_REMINDERS = {
    "train": ("call the bank", "water the plants", "pay the rent", "renew the passport", "buy milk",
              "book the flights", "send the invoice", "pick up the dry cleaning"),
    "dev": ("back up the laptop", "return the library books"),
    "test": ("order the birthday cake", "check the tyre pressure"),
}  # fmt: skip
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
           "October", "November", "December")  # fmt: skip


class _Writer:
    """Draws argument values for one split."""

    def __init__(self, rng: random.Random, split: str) -> None:
        self.rng, self.split = rng, split

    def city(self, avoid: tuple[str, ...] = ()) -> str:
        return self.rng.choice([c for c in _CITIES[self.split] if c not in avoid])

    def date(self) -> dt.date:
        return dt.date(2024, 1, 1) + dt.timedelta(days=self.rng.randint(0, 4 * 365))

    def date_text(self, day: dt.date) -> str:
        if self.rng.random() < 0.6:
            return day.isoformat()
        return f"{_MONTHS[day.month - 1]} {day.day}, {day.year}"

    def amount(self) -> float | int:
        return self.rng.choice([self.rng.randint(5, 2000), round(self.rng.uniform(5, 900), 2)])

    def time(self) -> str:
        return f"{self.rng.randint(7, 19):02d}:{self.rng.choice(['00', '15', '30', '45'])}"


def _call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"name": name, "arguments": {k: v for k, v in arguments.items() if v is not None}}


def _gold(call: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """BFCL possible answer of ``call``; ``optional`` maps parameters to their default (may be omitted)."""
    params = {key: [value] for key, value in call["arguments"].items()}
    for key, default in (optional or {}).items():
        value = call["arguments"].get(key, default)
        params[key] = [value, ""] if value == default else [value]
    return {call["name"]: params}


def _single(w: _Writer) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    """One call: (question, [call], [gold])."""
    rng = w.rng
    kind = rng.choice(["weather", "units", "currency", "rate", "between", "add_days", "weekday",
                       "event", "tip", "restaurants", "distance", "reminder"])  # fmt: skip
    if kind == "weather":
        city, day = w.city(), w.date()
        if rng.random() < 0.5:
            call = _call("get_weather", city=city, date=day.isoformat(), unit="fahrenheit")
            return (
                f"What's the weather forecast for {city} on {w.date_text(day)}, in Fahrenheit?",
                [call],
                [_gold(call)],
            )
        call = _call("get_weather", city=city, date=day.isoformat())
        return (
            f"Will I need an umbrella in {city} on {w.date_text(day)}? Check the forecast.",
            [call],
            [_gold(call, {"unit": "celsius"})],
        )
    if kind == "units":
        group = rng.choice(list(_UNITS) + ["temperature"])
        units = list(_TEMPERATURES) if group == "temperature" else list(_UNITS[group])
        source, target = rng.sample(units, 2)
        value = rng.choice([rng.randint(1, 500), round(rng.uniform(0.5, 300), 1)])
        call = _call("convert_units", value=value, from_unit=source, to_unit=target)
        return f"How much is {value} {source} in {target}?", [call], [_gold(call)]
    if kind == "currency":
        source, target = rng.sample(sorted(_RATES), 2)
        amount = w.amount()
        call = _call("convert_currency", amount=amount, from_currency=source, to_currency=target)
        return f"Convert {amount} {source} to {target}.", [call], [_gold(call)]
    if kind == "rate":
        base, quote = rng.sample(sorted(_RATES), 2)
        call = _call("get_exchange_rate", base=base, quote=quote)
        return f"What is today's exchange rate from {base} to {quote}?", [call], [_gold(call)]
    if kind == "between":
        first = w.date()
        second = first + dt.timedelta(days=rng.randint(3, 700))
        call = _call("days_between", start_date=first.isoformat(), end_date=second.isoformat())
        return (
            f"How many days are there from {w.date_text(first)} to {w.date_text(second)}?",
            [call],
            [_gold(call)],
        )
    if kind == "add_days":
        day, days = w.date(), rng.randint(2, 400)
        call = _call("add_days", date=day.isoformat(), days=days)
        return f"Which date is {days} days after {w.date_text(day)}?", [call], [_gold(call)]
    if kind == "weekday":
        day = w.date()
        call = _call("day_of_week", date=day.isoformat())
        return f"What day of the week is {w.date_text(day)}?", [call], [_gold(call)]
    if kind == "event":
        title, day, start = rng.choice(_TITLES[w.split]), w.date(), w.time()
        duration = rng.choice([15, 30, 45, 60, 90, 120])
        if rng.random() < 0.5:
            people = rng.sample(_PEOPLE[w.split], 2)
            call = _call("create_event", title=title, date=day.isoformat(), start_time=start,
                         duration_minutes=duration, attendees=people)  # fmt: skip
            gold = _gold(call)
            gold["create_event"]["attendees"] = [people, people[::-1]]
            question = (f"Put a {duration}-minute event called '{title}' in my calendar on {w.date_text(day)} "
                        f"at {start}, with {people[0]} and {people[1]}.")  # fmt: skip
            return question, [call], [gold]
        call = _call(
            "create_event",
            title=title,
            date=day.isoformat(),
            start_time=start,
            duration_minutes=duration,
        )
        gold = _gold(call)
        gold["create_event"]["attendees"] = [[], ""]
        return (
            f"Schedule '{title}' on {w.date_text(day)} at {start} for {duration} minutes.",
            [call],
            [gold],
        )
    if kind == "tip":
        bill, percent, people = w.amount(), rng.choice([10, 12, 15, 18, 20, 25]), rng.randint(1, 8)
        if people == 1:
            call = _call("calculate_tip", bill_amount=bill, tip_percent=percent)
            return (
                f"What is a {percent}% tip on a bill of {bill}?",
                [call],
                [_gold(call, {"num_people": 1})],
            )
        call = _call("calculate_tip", bill_amount=bill, tip_percent=percent, num_people=people)
        return (f"Our bill is {bill}. With a {percent}% tip, how much does each of the {people} of us pay?",
                [call], [_gold(call)])  # fmt: skip
    if kind == "restaurants":
        city, cuisine, count = w.city(), rng.choice(_CUISINES), rng.randint(2, 6)
        call = _call("find_restaurants", city=city, cuisine=cuisine, max_results=count)
        return f"Find {count} {cuisine} restaurants in {city}.", [call], [_gold(call)]
    if kind == "distance":
        origin = w.city()
        destination = w.city(avoid=(origin,))
        if rng.random() < 0.5:
            call = _call("get_distance", origin=origin, destination=destination, unit="mile")
            return (
                f"How many miles is it by road from {origin} to {destination}?",
                [call],
                [_gold(call)],
            )
        call = _call("get_distance", origin=origin, destination=destination)
        question = f"How far is it by road from {origin} to {destination}, in kilometres?"
        return question, [call], [_gold(call, {"unit": "km"})]
    message, day, time = rng.choice(_REMINDERS[w.split]), w.date(), w.time()
    call = _call("set_reminder", message=message, date=day.isoformat(), time=time)
    return f"Remind me to {message} on {w.date_text(day)} at {time}.", [call], [_gold(call)]


def _parallel(w: _Writer) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    rng = w.rng
    kind = rng.choice(["weather", "currency", "weekday"])
    if kind == "weather":
        cities = rng.sample(_CITIES[w.split], rng.randint(2, 3))
        day = w.date()
        calls = [_call("get_weather", city=c, date=day.isoformat()) for c in cities]
        names = ", ".join(cities[:-1]) + f" and {cities[-1]}"
        return (
            f"Get the weather forecasts for {names} on {w.date_text(day)}.",
            calls,
            [_gold(c, {"unit": "celsius"}) for c in calls],
        )
    if kind == "currency":
        source = rng.choice(sorted(_RATES))
        targets = rng.sample([c for c in sorted(_RATES) if c != source], 2)
        amounts = [w.amount(), w.amount()]
        calls = [
            _call("convert_currency", amount=a, from_currency=source, to_currency=t)
            for a, t in zip(amounts, targets)
        ]
        question = f"Convert {amounts[0]} {source} to {targets[0]}, and {amounts[1]} {source} to {targets[1]}."
        return question, calls, [_gold(c) for c in calls]
    wanted, days = rng.randint(2, 3), set()
    while len(days) < wanted:
        days.add(w.date())
    days = sorted(days)
    calls = [_call("day_of_week", date=d.isoformat()) for d in days]
    listing = ", ".join(w.date_text(d) for d in days[:-1]) + f" and {w.date_text(days[-1])}"
    return f"Which weekdays are {listing}?", calls, [_gold(c) for c in calls]


def _parallel_multiple(w: _Writer) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]]]:
    rng = w.rng
    city, day = w.city(), w.date()
    other = w.city(avoid=(city,))
    weather = _call("get_weather", city=city, date=day.isoformat())
    if rng.random() < 0.5:
        distance = _call("get_distance", origin=other, destination=city)
        question = (f"I'm driving from {other} to {city} on {w.date_text(day)}. How far is it in km, "
                    f"and what's the forecast in {city} that day?")  # fmt: skip
        return (
            question,
            [weather, distance],
            [_gold(weather, {"unit": "celsius"}), _gold(distance, {"unit": "km"})],
        )
    cuisine = rng.choice(_CUISINES)
    count = rng.randint(2, 5)
    food = _call("find_restaurants", city=city, cuisine=cuisine, max_results=count)
    question = f"For my trip to {city} on {w.date_text(day)}: get the weather forecast, and find {count} {cuisine} restaurants there."
    return question, [weather, food], [_gold(weather, {"unit": "celsius"}), _gold(food)]


def _sequential(w: _Writer) -> tuple[str, list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Two dependent calls: (question, turns of calls, gold)."""
    rng = w.rng
    kind = rng.choice(["weekday", "event", "tip", "kelvin"])
    if kind in ("weekday", "event"):
        day, days = w.date(), rng.randint(5, 200)
        first = _call("add_days", date=day.isoformat(), days=days)
        later = add_days(day.isoformat(), days)["date"]
        if kind == "weekday":
            second = _call("day_of_week", date=later)
            question = f"What day of the week will it be {days} days after {w.date_text(day)}?"
            return question, [[first], [second]], [_gold(first), _gold(second)]
        title, start, duration = rng.choice(_TITLES[w.split]), w.time(), rng.choice([30, 45, 60])
        second = _call(
            "create_event", title=title, date=later, start_time=start, duration_minutes=duration
        )
        gold = _gold(second)
        gold["create_event"]["attendees"] = [[], ""]
        question = (f"Find the date {days} days after {w.date_text(day)} and put '{title}' in my calendar "
                    f"on that date at {start} for {duration} minutes.")  # fmt: skip
        return question, [[first], [second]], [_gold(first), gold]
    if kind == "tip":
        source = rng.choice([c for c in sorted(_RATES) if c != "USD"])
        amount, percent, people = w.amount(), rng.choice([10, 15, 20]), rng.randint(2, 6)
        first = _call("convert_currency", amount=amount, from_currency=source, to_currency="USD")
        converted = convert_currency(amount, source, "USD")["amount"]
        second = _call(
            "calculate_tip", bill_amount=converted, tip_percent=percent, num_people=people
        )
        question = (f"Our dinner bill is {amount} {source}. Convert it to USD, then work out a {percent}% tip "
                    f"and each person's share for {people} people.")  # fmt: skip
        return question, [[first], [second]], [_gold(first), _gold(second)]
    city, day = w.city(), w.date()
    first = _call("get_weather", city=city, date=day.isoformat(), unit="celsius")
    temperature = get_weather(city, day.isoformat())["temperature"]
    second = _call("convert_units", value=temperature, from_unit="celsius", to_unit="kelvin")
    question = (f"Get the forecast temperature for {city} on {w.date_text(day)} in Celsius, then convert "
                "that temperature to kelvin.")  # fmt: skip
    return question, [[first], [second]], [_gold(first, {"unit": "celsius"}), _gold(second)]


def _run(call: dict[str, Any]) -> str:
    return json.dumps(_FUNCTIONS[call["name"]](**call["arguments"]), ensure_ascii=False)


def generate_tasks(split: str, count: int, *, seed: int) -> list[ToolTask]:
    """``count`` tasks of ``split``, cycling through the categories, reproducible from ``seed``."""
    if split not in _CITIES:
        raise ValueError(f"unknown split {split!r}; choose one of {list(_CITIES)}")
    rng = random.Random(f"functioncall|{split}|{seed}")
    writer = _Writer(rng, split)
    categories = ("simple", "multiple", "parallel", "parallel_multiple", "sequential")
    tasks, seen = [], set()
    index = 0
    while len(tasks) < count:
        category = categories[index % len(categories)]
        if category in ("simple", "multiple"):
            question, calls, gold = _single(writer)
            turns = [calls]
        elif category == "parallel":
            question, calls, gold = _parallel(writer)
            turns = [calls]
        elif category == "parallel_multiple":
            question, calls, gold = _parallel_multiple(writer)
            turns = [calls]
        else:
            question, turns, gold = _sequential(writer)
        if question in seen:
            continue
        seen.add(question)
        needed = list(dict.fromkeys(c["name"] for turn in turns for c in turn))
        offered = list(needed)
        if category in ("multiple", "parallel_multiple", "sequential"):
            others = [n for n in API_SCHEMAS if n not in needed]
            offered += rng.sample(others, rng.randint(2, 3))
            rng.shuffle(offered)
        final = "; ".join(_run(c) for c in turns[-1])
        tasks.append(
            ToolTask(
                id=f"{split}/{category}/{index // len(categories):04d}",
                question=question,
                tools=tuple(API_SCHEMAS[n] for n in offered),
                gold_calls=tuple(gold),
                reference=tuple(tuple(turn) for turn in turns),
                final_answer=final,
                meta={"category": category},
            )
        )
        index += 1
    return tasks
