"""FunctionCall task generator: BFCL-style requests with their gold calls, over our APIs.

Categories cycle ``simple``, ``multiple``, ``parallel``, ``parallel_multiple``,
``sequential`` (a later call needs an earlier call's result, run here to fix
the gold answer). **Splits are disjoint in argument values**: cities, event
titles and people in test questions never appear in train questions.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from typing import Any

from envs.tooluse.apitools import (
    API_SCHEMAS,
    CUISINES,
    RATES,
    TEMPERATURES,
    UNITS,
    add_days,
    convert_currency,
    get_weather,
    make_tools,
)
from envs.tooluse.tasks import ToolTask

__all__ = ["generate_tasks"]

_FUNCTIONS = make_tools()

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
        group = rng.choice(list(UNITS) + ["temperature"])
        units = list(TEMPERATURES) if group == "temperature" else list(UNITS[group])
        source, target = rng.sample(units, 2)
        value = rng.choice([rng.randint(1, 500), round(rng.uniform(0.5, 300), 1)])
        call = _call("convert_units", value=value, from_unit=source, to_unit=target)
        return f"How much is {value} {source} in {target}?", [call], [_gold(call)]
    if kind == "currency":
        source, target = rng.sample(sorted(RATES), 2)
        amount = w.amount()
        call = _call("convert_currency", amount=amount, from_currency=source, to_currency=target)
        return f"Convert {amount} {source} to {target}.", [call], [_gold(call)]
    if kind == "rate":
        base, quote = rng.sample(sorted(RATES), 2)
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
        city, cuisine, count = w.city(), rng.choice(CUISINES), rng.randint(2, 6)
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
        source = rng.choice(sorted(RATES))
        targets = rng.sample([c for c in sorted(RATES) if c != source], 2)
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
    cuisine = rng.choice(CUISINES)
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
        source = rng.choice([c for c in sorted(RATES) if c != "USD"])
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
