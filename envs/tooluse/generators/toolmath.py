"""ToolMath task generator: arithmetic word problems from story templates with a solution program.

Each problem knows its gold answer and the reference tool calls: independent
steps share a tool turn (parallel calls), dependent steps follow in later
turns, and no problem needs more than 5 tool turns. Difficulty runs from 2 to
8 solution steps; problems mix in distractor quantities and use numbers in the
thousands to tens of thousands.

**Splits are disjoint in story templates**: each split has its own story
domains (:data:`SPLIT_DOMAINS`: setting, nouns, the sentences for arrivals and
removals, the distractor sentences); the sentence patterns of the other
operations are shared. Numbers are drawn afresh for every problem.
"""

from __future__ import annotations

import dataclasses
import functools
import random
from dataclasses import dataclass
from typing import Any

from envs.tooluse.mathtools import MATH_TOOL_SCHEMAS, make_tools
from envs.tooluse.tasks import ToolTask

__all__ = [
    "DOMAINS",
    "GENERATED_TRAIN_SEED",
    "SPLIT_DOMAINS",
    "Domain",
    "generate_tasks",
    "generated_train_tasks",
]


@dataclass(frozen=True)
class Domain:
    """One story setting: nouns, sentences for arrivals/removals, distractor sentences."""

    key: str
    place: str
    items: str
    container: str
    containers: str
    group: str
    groups: str
    period: str
    sources: tuple[str, ...]
    arrivals: tuple[str, ...]  # with {b} and {items}
    removals: tuple[str, ...]  # with {b} and {items}
    distractors: tuple[str, ...]  # with {n}


DOMAINS: dict[str, Domain] = {
    d.key: d
    for d in (
        Domain(
            "warehouse",
            "the Harbor Street warehouse",
            "crates",
            "pallet",
            "pallets",
            "store",
            "stores",
            "month",
            (
                "a supplier in Leeds",
                "the northern depot",
                "a rail freight company",
                "the port office",
            ),
            (
                "A late delivery brings {b} more {items}.",
                "Later that week, {b} extra {items} arrive by truck.",
            ),
            (
                "Then {b} {items} are shipped to customers.",
                "An inspection finds {b} damaged {items}, which are thrown away.",
            ),
            (
                "The warehouse has {n} loading docks.",
                "It employs {n} workers on the night shift.",
                "Its roof was last repaired {n} days ago.",
            ),
        ),
        Domain(
            "bakery",
            "the Rosewood bakery",
            "bread rolls",
            "basket",
            "baskets",
            "cafe",
            "cafes",
            "week",
            ("the early shift", "the second oven line", "a partner kitchen", "the weekend team"),
            (
                "The afternoon shift bakes {b} more {items}.",
                "A neighbouring kitchen sends over {b} {items}.",
            ),
            (
                "Customers buy {b} {items} before noon.",
                "{b} {items} come out burnt and are discarded.",
            ),
            (
                "The bakery opened {n} days ago.",
                "Its sourdough starter is {n} days old.",
                "The owner has {n} regular customers.",
            ),
        ),
        Domain(
            "library",
            "the city library",
            "books",
            "shelf",
            "shelves",
            "branch",
            "branches",
            "year",
            ("a publisher's donation", "the university press", "an estate sale", "the book club"),
            ("A donor adds {b} {items} to the collection.", "The library buys {b} new {items}."),
            (
                "Readers borrow {b} {items} and have not returned them.",
                "{b} worn-out {items} are withdrawn.",
            ),
            (
                "The library has {n} reading desks.",
                "Its oldest map is {n} years old.",
                "{n} people visited the library yesterday.",
            ),
        ),
        Domain(
            "farm",
            "Greenhill farm",
            "eggs",
            "carton",
            "cartons",
            "market stall",
            "market stalls",
            "week",
            ("the east barn", "the free-range flock", "the young hens", "the neighbour's coop"),
            (
                "The evening collection adds {b} {items}.",
                "A second coop delivers {b} more {items}.",
            ),
            ("{b} {items} crack in transport.", "The farm shop sells {b} {items}."),
            (
                "The farm has {n} cows.",
                "Its tractor has run for {n} hours.",
                "The farmhouse is {n} years old.",
            ),
        ),
        Domain(
            "factory",
            "the Northgate factory",
            "bolts",
            "box",
            "boxes",
            "assembly line",
            "assembly lines",
            "month",
            ("press number one", "the night press", "a subcontractor", "the new machine"),
            ("An extra shift produces {b} more {items}.", "A subcontractor ships in {b} {items}."),
            ("Quality control rejects {b} {items}.", "{b} {items} are used for repairs on site."),
            (
                "The factory floor is {n} square metres.",
                "It has had no accident for {n} days.",
                "The canteen serves {n} meals a day.",
            ),
        ),
        Domain(
            "orchard",
            "the Miller orchard",
            "apples",
            "crate",
            "crates",
            "grocer",
            "grocers",
            "season",
            ("the south rows", "the old trees", "the hillside block", "the new plantation"),
            ("Pickers bring in {b} more {items}.", "The late harvest adds {b} {items}."),
            ("{b} {items} are too bruised to sell.", "A cider maker buys {b} {items}."),
            (
                "The orchard has {n} beehives.",
                "The oldest tree was planted {n} years ago.",
                "{n} pickers work there in autumn.",
            ),
        ),
        Domain(
            "printshop",
            "the Corner print shop",
            "posters",
            "tube",
            "tubes",
            "client",
            "clients",
            "week",
            (
                "the large-format printer",
                "the night run",
                "a partner studio",
                "the express service",
            ),
            ("A rush order adds {b} {items}.", "The second printer turns out {b} more {items}."),
            ("{b} {items} are misprinted and recycled.", "A client collects {b} {items}."),
            (
                "The shop owns {n} printers.",
                "Its ink supplier delivers every {n} days.",
                "It has been in business for {n} years.",
            ),
        ),
        Domain(
            "aquarium",
            "the coastal aquarium",
            "fish",
            "tank",
            "tanks",
            "exhibit",
            "exhibits",
            "year",
            ("a research vessel", "the breeding program", "a partner zoo", "the coral lab"),
            ("The breeding program adds {b} {items}.", "A partner zoo sends {b} more {items}."),
            (
                "{b} {items} are released into the bay.",
                "{b} {items} are moved to a sister aquarium.",
            ),
            (
                "The aquarium holds {n} litres of sea water.",
                "It has {n} volunteer guides.",
                "Its shark is {n} years old.",
            ),
        ),
        Domain(
            "mint",
            "the old mint",
            "coins",
            "roll",
            "rolls",
            "bank",
            "banks",
            "month",
            ("the first press", "the commemorative line", "the gold line", "the overnight run"),
            ("The presses strike {b} more {items}.", "A recall returns {b} {items} to the vault."),
            ("{b} {items} are melted down for flaws.", "Collectors buy {b} {items}."),
            (
                "The mint has {n} presses.",
                "Its vault door weighs {n} kilograms.",
                "{n} tourists visit it each day.",
            ),
        ),
        # dev
        Domain(
            "seedbank",
            "the alpine seed bank",
            "seed packets",
            "drawer",
            "drawers",
            "garden",
            "gardens",
            "year",
            (
                "a botanical expedition",
                "the rare-plant team",
                "a sister seed bank",
                "local growers",
            ),
            ("An expedition deposits {b} {items}.", "Local growers contribute {b} more {items}."),
            ("{b} {items} fail the germination test.", "{b} {items} are sent out for replanting."),
            (
                "The vault is kept at minus {n} degrees.",
                "It stores samples from {n} countries.",
                "The building is {n} metres above sea level.",
            ),
        ),
        Domain(
            "theater",
            "the Royal theater",
            "tickets",
            "booklet",
            "booklets",
            "agency",
            "agencies",
            "week",
            ("the box office", "an online platform", "a school program", "the season pass desk"),
            (
                "A new show date releases {b} {items}.",
                "The box office finds {b} more {items} to sell.",
            ),
            ("{b} {items} are refunded.", "{b} {items} are held back for the press."),
            (
                "The theater has {n} seats in the balcony.",
                "Its stage is {n} metres wide.",
                "The current play runs for {n} minutes.",
            ),
        ),
        Domain(
            "pharmacy",
            "the central pharmacy",
            "pill bottles",
            "case",
            "cases",
            "clinic",
            "clinics",
            "month",
            (
                "the main wholesaler",
                "a hospital surplus",
                "the regional depot",
                "an emergency order",
            ),
            ("A wholesaler delivers {b} more {items}.", "An emergency order brings {b} {items}."),
            (
                "{b} {items} pass their expiry date and are destroyed.",
                "Patients collect {b} {items}.",
            ),
            (
                "The pharmacy is open {n} hours a week.",
                "It employs {n} pharmacists.",
                "Its fridge holds {n} vaccine doses.",
            ),
        ),
        # test
        Domain(
            "shipyard",
            "the Baltic shipyard",
            "rivets",
            "bucket",
            "buckets",
            "dry dock",
            "dry docks",
            "month",
            (
                "the steel mill",
                "a foundry in Gdansk",
                "the spare-parts store",
                "a navy surplus sale",
            ),
            ("The steel mill ships {b} further {items}.", "A surplus sale brings in {b} {items}."),
            ("Welders use up {b} {items} on the hull.", "{b} {items} rust and are scrapped."),
            (
                "The shipyard's crane lifts {n} tonnes.",
                "Its newest ship is {n} metres long.",
                "{n} apprentices train there.",
            ),
        ),
        Domain(
            "observatory",
            "the mountain observatory",
            "photographic plates",
            "cabinet",
            "cabinets",
            "archive",
            "archives",
            "decade",
            (
                "the north telescope",
                "a comet survey",
                "the night assistants",
                "a visiting astronomer",
            ),
            ("A clear week adds {b} new {items}.", "A visiting astronomer donates {b} {items}."),
            ("{b} {items} are found cracked.", "{b} {items} are lent to a museum."),
            (
                "The dome turns once every {n} seconds.",
                "The main mirror weighs {n} kilograms.",
                "The observatory sits {n} metres up.",
            ),
        ),
        Domain(
            "vineyard",
            "the Clos Martin vineyard",
            "bottles",
            "case",
            "cases",
            "wine shop",
            "wine shops",
            "year",
            ("the old vines", "the east slope", "the cellar reserve", "a neighbouring estate"),
            (
                "The cellar releases {b} more {items}.",
                "A neighbouring estate sells them {b} {items}.",
            ),
            ("{b} {items} are corked and poured away.", "Visitors buy {b} {items} at the tasting."),
            (
                "The vineyard covers {n} hectares.",
                "Its oldest barrel is {n} years old.",
                "The tasting room seats {n} guests.",
            ),
        ),
    )
}

#: Which story domains each split draws from (disjoint).
SPLIT_DOMAINS: dict[str, tuple[str, ...]] = {
    "train": (
        "warehouse",
        "bakery",
        "library",
        "farm",
        "factory",
        "orchard",
        "printshop",
        "aquarium",
        "mint",
    ),
    "dev": ("seedbank", "theater", "pharmacy"),
    "test": ("shipyard", "observatory", "vineyard"),
}

_MAX_VALUE = 10**12  # keeps every intermediate exact in a float
_MAX_TURNS = 5


class _Program:
    """A solution program being built: steps, their values and dependency depths."""

    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.values: list[Any] = []
        self.depths: list[int] = []
        self._tools = make_tools()

    def add(self, tool: str, **arguments: Any) -> int:
        """Append a step; an argument ``("ref", i)`` is the value of step ``i``."""
        resolved, depth = {}, 1
        for key, value in arguments.items():
            if isinstance(value, tuple) and value[0] == "ref":
                resolved[key] = self.values[value[1]]
                depth = max(depth, self.depths[value[1]] + 1)
            elif isinstance(value, list):
                items = []
                for item in value:
                    if isinstance(item, tuple):
                        items.append(self.values[item[1]])
                        depth = max(depth, self.depths[item[1]] + 1)
                    else:
                        items.append(item)
                resolved[key] = items
            else:
                resolved[key] = value
        result = self._tools[tool](**resolved)
        self.steps.append({"name": tool, "arguments": resolved})
        self.values.append(result)
        self.depths.append(depth)
        return len(self.steps) - 1


class _Story:
    """Sentences and the current quantity while a problem is written."""

    def __init__(self, rng: random.Random, domain: Domain) -> None:
        self.rng, self.domain = rng, domain
        self.program = _Program()
        self.sentences: list[str] = []
        self.value: Any = None  # literal quantity, or ("ref", step) once computed
        self.literal: int | float = 0  # its numeric value

    def number(self, value: int | float) -> str:
        """A quantity as the text shows it: large ones often with thousands separators."""
        if isinstance(value, int) and value >= 1000 and self.rng.random() < 0.5:
            return f"{value:,}"
        return str(value)

    def set_value(self, value: Any) -> None:
        self.value = value
        self.literal = self.program.values[value[1]] if isinstance(value, tuple) else value

    def ref(self, step: int) -> tuple[str, int]:
        return ("ref", step)


def _fill(template: str, story: _Story, **values: Any) -> str:
    d = story.domain
    text = template.format(
        items=d.items, place=d.place, container=d.container, containers=d.containers,
        group=d.group, groups=d.groups, period=d.period, **values,
    )  # fmt: skip
    return text[0].upper() + text[1:]


# Openings: set the first quantity. Each returns the number of steps it added.
def _open_single(story: _Story) -> None:
    a = story.rng.randint(1200, 98000)
    template = story.rng.choice(
        [
            "{place} starts the {period} with {a} {items}.",
            "At the start of the {period}, {place} holds {a} {items}.",
        ]
    )
    story.sentences.append(_fill(template, story, a=story.number(a)))
    story.set_value(a)


def _open_sum(story: _Story) -> None:
    count = story.rng.randint(3, 5)
    values = [story.rng.randint(150, 9999) for _ in range(count)]
    shown = [story.number(v) for v in values]
    listing = ", ".join(shown[:-1]) + f" and {shown[-1]}"
    template = story.rng.choice(
        ["{place} receives {count} deliveries of {listing} {items}.",
         "Over {count} days, {place} takes in {listing} {items}."]
    )  # fmt: skip
    story.sentences.append(
        _fill(
            template, story, count=["", "", "two", "three", "four", "five"][count], listing=listing
        )
    )
    story.set_value(story.ref(story.program.add("sum_numbers", numbers=values)))


def _open_branches(story: _Story, branches: int) -> None:
    sources = story.rng.sample(story.domain.sources, branches)
    products = []
    for source in sources:
        n, k = story.rng.randint(12, 480), story.rng.randint(6, 250)
        template = story.rng.choice(
            ["{source} sends {n} {containers} with {k} {items} in each.",
             "From {source} come {n} {containers} of {k} {items} each."]
        )  # fmt: skip
        story.sentences.append(_fill(template, story, source=source, n=story.number(n), k=k))
        products.append(story.ref(story.program.add("multiply", a=n, b=k)))
    story.sentences.append(_fill("These are all the {items} {place} has at first.", story))
    story.set_value(story.ref(story.program.add("sum_numbers", numbers=products)))


def _open_sqrt(story: _Story) -> None:
    side = story.rng.randint(35, 999)
    template = story.rng.choice(
        ["{place} lays out its {items} in a square grid of {area} spots, one per spot, with no gaps; "
         "it then keeps only one row of that grid.",
         "The {items} at {place} fill a square pattern of {area} places exactly; only the {items} "
         "along one side of the square are kept."]
    )  # fmt: skip
    story.sentences.append(_fill(template, story, area=story.number(side * side)))
    story.set_value(story.ref(story.program.add("sqrt", x=side * side)))


def _open_growth(story: _Story) -> None:
    a = story.rng.randint(120, 999)
    factor, periods = story.rng.randint(2, 5), story.rng.randint(2, 6)
    if factor**periods > 5000:
        periods = 2
    template = story.rng.choice(
        ["{place} began with {a} {items}, and the number has grown by a factor of {r} every {period} "
         "for {t} {period}s.",
         "Starting from {a} {items}, the stock at {place} was multiplied by {r} each {period} for {t} {period}s."]
    )  # fmt: skip
    story.sentences.append(_fill(template, story, a=a, r=factor, t=periods))
    growth = story.program.add("power", base=factor, exponent=periods)
    story.set_value(story.ref(story.program.add("multiply", a=a, b=story.ref(growth))))


# Middle operations on the current quantity; each returns False when it does not fit the value.
def _mid_add(story: _Story) -> bool:
    b = story.rng.randint(100, 20000)
    story.sentences.append(_fill(story.rng.choice(story.domain.arrivals), story, b=story.number(b)))
    story.set_value(story.ref(story.program.add("add", a=story.value, b=b)))
    return True


def _mid_subtract(story: _Story) -> bool:
    if story.literal < 300 or not float(story.literal).is_integer():
        return False
    b = story.rng.randint(int(story.literal * 0.05) + 1, int(story.literal * 0.6))
    story.sentences.append(_fill(story.rng.choice(story.domain.removals), story, b=story.number(b)))
    story.set_value(story.ref(story.program.add("subtract", a=story.value, b=b)))
    return True


def _mid_sum(story: _Story) -> bool:
    b, c = story.rng.randint(100, 9999), story.rng.randint(100, 9999)
    template = story.rng.choice(
        [
            "Two more batches of {b} and {c} {items} are added.",
            "Then {b} and later {c} {items} are added.",
        ]
    )
    story.sentences.append(_fill(template, story, b=story.number(b), c=story.number(c)))
    story.set_value(story.ref(story.program.add("sum_numbers", numbers=[story.value, b, c])))
    return True


def _mid_multiply(story: _Story) -> bool:
    k = story.rng.randint(2, 9)
    template = story.rng.choice(
        ["The same number of {items} is then set up at {k} sites in all; count the {items} across "
         "all {k} sites from here on.",
         "The whole stock is then multiplied by {k}."]
    )  # fmt: skip
    story.sentences.append(_fill(template, story, k=k))
    story.set_value(story.ref(story.program.add("multiply", a=story.value, b=k)))
    return True


def _mid_divide(story: _Story) -> bool:
    value = story.literal
    if not float(value).is_integer():
        return False
    divisors = [k for k in range(2, 61) if int(value) % k == 0]
    if not divisors:
        return False
    k = story.rng.choice(divisors)
    template = story.rng.choice(
        ["The {items} are then shared equally among {k} {groups}; from here on, count only one "
         "{group}'s share.",
         "Next, the {items} are split evenly into {k} lots, and only one lot stays."]
    )  # fmt: skip
    story.sentences.append(_fill(template, story, k=k))
    story.set_value(story.ref(story.program.add("divide", a=story.value, b=k)))
    return True


def _mid_growth(story: _Story) -> bool:
    factor, periods = story.rng.randint(2, 3), story.rng.randint(2, 4)
    template = "That number then grows by a factor of {r} every {period} for {t} {period}s."
    story.sentences.append(_fill(template, story, r=factor, t=periods))
    growth = story.program.add("power", base=factor, exponent=periods)
    story.set_value(story.ref(story.program.add("multiply", a=story.value, b=story.ref(growth))))
    return True


# Final questions; each asks about the current quantity.
def _ask_count(story: _Story) -> None:
    story.sentences.append(_fill(story.rng.choice(["How many {items} are there now?",
                                                    "How many {items} does {place} end up with?"]), story))  # fmt: skip


def _ask_floor(story: _Story) -> None:
    k = story.rng.randint(6, 144)
    template = "If the {items} are packed into {containers} of {k}, how many full {containers} can be filled?"
    story.sentences.append(_fill(template, story, k=k))
    story.program.add("floor", x=story.ref(story.program.add("divide", a=story.value, b=k)))


def _ask_ceil(story: _Story) -> None:
    k = story.rng.randint(6, 144)
    template = (
        "How many {containers} holding up to {k} {items} each are needed to hold all of them?"
    )
    story.sentences.append(_fill(template, story, k=k))
    story.program.add("ceil", x=story.ref(story.program.add("divide", a=story.value, b=k)))


def _ask_modulo(story: _Story) -> None:
    k = story.rng.randint(6, 144)
    template = "After packing them into {containers} of {k}, how many {items} are left over?"
    story.sentences.append(_fill(template, story, k=k))
    story.program.add("modulo", a=story.value, b=k)


def _ask_average(story: _Story) -> None:
    k = story.rng.choice(
        [7, 9, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]
    )
    template = "Shared evenly among {k} {groups}, how many {items} does each {group} get? Round to two decimal places."
    story.sentences.append(_fill(template, story, k=k))
    story.program.add(
        "round_number", x=story.ref(story.program.add("divide", a=story.value, b=k)), decimals=2
    )


def _ask_gap(story: _Story) -> None:
    value = float(story.literal)
    target = int(value * story.rng.uniform(0.4, 1.6)) + story.rng.randint(1, 99)
    template = (
        "The target was {target} {items}. By how many {items} does the final count miss the target?"
    )
    story.sentences.append(_fill(template, story, target=story.number(target)))
    story.program.add(
        "abs_value", x=story.ref(story.program.add("subtract", a=story.value, b=target))
    )


_OPENINGS = {
    "single": 0,
    "sum": 1,
    "branches2": 3,
    "branches3": 4,
    "branches4": 5,
    "sqrt": 1,
    "growth": 2,
}
_MIDS = {"add": (_mid_add, 1), "subtract": (_mid_subtract, 1), "sum": (_mid_sum, 1),
         "multiply": (_mid_multiply, 1), "divide": (_mid_divide, 1), "growth": (_mid_growth, 2)}  # fmt: skip
_ASKS = {"count": (_ask_count, 0), "floor": (_ask_floor, 2), "ceil": (_ask_ceil, 2),
         "modulo": (_ask_modulo, 1), "average": (_ask_average, 2), "gap": (_ask_gap, 2)}  # fmt: skip


def _open(story: _Story, kind: str) -> None:
    if kind.startswith("branches"):
        _open_branches(story, int(kind[-1]))
    else:
        {"single": _open_single, "sum": _open_sum, "sqrt": _open_sqrt, "growth": _open_growth}[
            kind
        ](story)


def _try_problem(rng: random.Random, domain: Domain, steps: int) -> _Story | None:
    """One attempt at a problem of exactly ``steps`` tool steps within 5 tool turns; None if it failed."""
    opening = rng.choice(list(_OPENINGS))
    ask = rng.choice(list(_ASKS))
    remaining = steps - _OPENINGS[opening] - _ASKS[ask][1]
    if remaining < 0:
        return None
    story = _Story(rng, domain)
    _open(story, opening)
    guard = 0
    while remaining > 0 and guard < 20:
        guard += 1
        name = rng.choice(list(_MIDS))
        function, cost = _MIDS[name]
        if cost > remaining:
            continue
        if function(story):
            remaining -= cost
    if remaining:
        return None
    _ASKS[ask][0](story)
    program = story.program
    if len(program.steps) != steps or max(program.depths) > _MAX_TURNS:
        return None
    if any(abs(v) >= _MAX_VALUE for v in program.values):
        return None
    # Distractors: sentences with numbers that play no part, placed before the question.
    question = story.sentences[-1]
    body = story.sentences[:-1]
    for template in rng.sample(domain.distractors, rng.choice([0, 1, 1, 2])):
        sentence = _fill(template, story, n=story.number(rng.randint(3, 4000)))
        body.insert(rng.randint(0, len(body)), sentence)
    story.sentences = body + [question]
    return story


#: Seed of the generated train problems (``train_tasks=``), apart from the shipped files' 0.
GENERATED_TRAIN_SEED = 1


@functools.lru_cache(maxsize=4)
def _generated_train(count: int) -> tuple[ToolTask, ...]:
    tasks = generate_tasks("train", count, seed=GENERATED_TRAIN_SEED)
    return tuple(dataclasses.replace(t, id="train-gen" + t.id[len("train") :]) for t in tasks)


def generated_train_tasks(count: int) -> list[ToolTask]:
    """``count`` train-domain problems generated with :data:`GENERATED_TRAIN_SEED` (cached)."""
    return list(_generated_train(count))


def generate_tasks(split: str, count: int, *, seed: int) -> list[ToolTask]:
    """``count`` problems of ``split`` (levels 2 to 8 steps in turn), reproducible from ``seed``."""
    if split not in SPLIT_DOMAINS:
        raise ValueError(f"unknown split {split!r}; choose one of {list(SPLIT_DOMAINS)}")
    rng = random.Random(f"toolmath|{split}|{seed}")
    tasks, seen = [], set()
    levels = list(range(2, 9))
    index = 0
    while len(tasks) < count:
        steps = levels[index % len(levels)]
        domain = DOMAINS[rng.choice(SPLIT_DOMAINS[split])]
        story = _try_problem(rng, domain, steps)
        if story is None:
            continue
        question = " ".join(story.sentences)
        if question in seen:
            continue
        seen.add(question)
        program = story.program
        turns: dict[int, list[dict[str, Any]]] = {}
        for step, depth in zip(program.steps, program.depths):
            turns.setdefault(depth, []).append(step)
        answer = str(program.values[-1])
        tasks.append(
            ToolTask(
                id=f"{split}/L{steps}/{index // len(levels):04d}",
                question=question,
                tools=tuple(MATH_TOOL_SCHEMAS),
                answer=(answer,),
                reference=tuple(tuple(turns[d]) for d in sorted(turns)),
                meta={"steps": steps, "tool_turns": len(turns), "domain": domain.key},
            )
        )
        index += 1
    return tasks
