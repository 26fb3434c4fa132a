"""FunctionCall-v0's twelve APIs: deterministic implementations and their chat-template schemas.

Weather, unit and currency conversion, calendar arithmetic and events, tips,
restaurants, distances and reminders. The same arguments always give the same
result, so tasks whose second call needs the first call's output have a fixed
gold answer. Bad arguments raise :class:`~envs.tooluse.mathtools.ToolError`
with a message meant for the model. ``make_tools`` is the sandbox's toolset
factory; the tables of accepted values (``UNITS``, ``TEMPERATURES``, ``RATES``,
``CUISINES``) are shared with the task generator.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import re
from collections.abc import Callable
from typing import Any

from envs.tooluse.mathtools import ToolError
from envs.tooluse.schema import normalize_tool_schema, schema_name

__all__ = ["API_SCHEMAS", "CUISINES", "RATES", "TEMPERATURES", "UNITS", "make_tools"]

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
CUISINES = ("italian", "japanese", "mexican", "indian", "french", "thai", "greek", "vegetarian")
# Units per kind, with the factor to the kind's base unit (temperatures are handled apart).
UNITS: dict[str, dict[str, float]] = {
    "length": {"m": 1.0, "km": 1000.0, "cm": 0.01, "mile": 1609.344, "ft": 0.3048, "inch": 0.0254},
    "mass": {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125},
    "volume": {"l": 1.0, "ml": 0.001, "gallon": 3.785411784, "cup": 0.2365882365},
}
TEMPERATURES = ("celsius", "fahrenheit", "kelvin")
# Fixed reference rates: units of each currency per US dollar.
RATES: dict[str, float] = {
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
    if from_unit in TEMPERATURES and to_unit in TEMPERATURES:
        result = _convert_temperature(float(value), from_unit, to_unit)
    else:
        kinds = [k for k, units in UNITS.items() if from_unit in units and to_unit in units]
        if not kinds:
            raise ToolError(f"cannot convert {from_unit!r} to {to_unit!r}")
        units = UNITS[kinds[0]]
        result = value * units[from_unit] / units[to_unit]
    return {"value": round(result, 4), "unit": to_unit}


def convert_currency(amount: float, from_currency: str, to_currency: str) -> dict[str, Any]:
    if isinstance(amount, bool) or not isinstance(amount, int | float) or amount < 0:
        raise ToolError("amount must be a non-negative number")
    for code in (from_currency, to_currency):
        if code not in RATES:
            raise ToolError(f"unknown currency {code!r}")
    converted = amount / RATES[from_currency] * RATES[to_currency]
    return {"amount": round(converted, 2), "currency": to_currency}


def get_exchange_rate(base: str, quote: str) -> dict[str, Any]:
    for code in (base, quote):
        if code not in RATES:
            raise ToolError(f"unknown currency {code!r}")
    return {"base": base, "quote": quote, "rate": round(RATES[quote] / RATES[base], 6)}


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
    if cuisine not in CUISINES:
        raise ToolError(f"cuisine must be one of {list(CUISINES)}")
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
_ALL_UNITS = sorted({u for units in UNITS.values() for u in units} | set(TEMPERATURES))


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
             {"amount": {"type": "number"}, "from_currency": {"type": "string", "enum": sorted(RATES)},
              "to_currency": {"type": "string", "enum": sorted(RATES)}},
             ["amount", "from_currency", "to_currency"]),
        _api("get_exchange_rate", "Today's reference rate: units of quote per unit of base.",
             {"base": {"type": "string", "enum": sorted(RATES)}, "quote": {"type": "string", "enum": sorted(RATES)}},
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
             {"city": {"type": "string"}, "cuisine": {"type": "string", "enum": list(CUISINES)},
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
