#!/usr/bin/env python
"""Generate WebShop-v0's shipped catalogue: products, seeded goals and splits.

    .venv/bin/python tools/make_webshop_catalogue.py                  # writes envs/webshop/data/catalogue.json
    .venv/bin/python tools/make_webshop_catalogue.py --verify         # ... then plays every goal with the expert
    .venv/bin/python tools/make_webshop_catalogue.py --official-dir /tmp/ws   # also upstream-format files

Everything here (brands, vocabulary, texts) is the project's own. The output
is deterministic for a given ``--seed``. Products are records in upstream's
``items_shuffle`` format plus ``attributes`` (upstream keeps those in
``items_ins_v2``), ``nouns`` (the title's nouns, replacing upstream's spaCy
tagging) and ``price`` (the price charged). Each goal names a target product,
1-3 of its attributes, 0-2 of its option values and a price ceiling drawn by
upstream's rule. Goal splits scale upstream's convention (test = the first
~4.1% of goals, dev = the next ~8.3%, train = the rest).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

from envs.fileio import atomic_write_text  # noqa: E402
from envs.webshop.catalogue import (  # noqa: E402
    CATALOGUE_FORMAT,
    DEFAULT_CATALOGUE_PATH,
    parse_pricing,
    price_ceiling,
    product_from_record,
    product_price,
)

DEFAULT_SEED = 0
PRODUCTS_PER_TYPE = 45
N_GOALS = 2400
# Upstream: test = 500 and eval = 1000 of 12,087 human goals; the same shares of 2,400.
TEST_GOALS = 100
DEV_GOALS = 200

# In vocabulary phrases, a leading "*" marks a noun (what the reward's type
# factor compares); the star is not part of the text.
ACRONYMS = {"usb": "USB", "led": "LED", "spf": "SPF", "gmo": "GMO", "hi-fi": "Hi-Fi"}


@dataclass(frozen=True)
class ProductType:
    """How products of one kind are named, described, priced and optioned."""

    query: str
    category: str  # first level of the category path
    product_category: str  # "A › B › C"
    head: str  # title head, nouns starred
    goal_names: tuple[str, ...]  # how instructions name the product
    attributes: tuple[str, ...]  # attribute phrases, nouns starred
    options: dict[str, tuple[str, ...]]
    price: tuple[float, float]
    title_suffixes: tuple[str, ...] = ("",)
    facts: tuple[str, ...] = field(default=())


def _phrases(text: str) -> tuple[str, ...]:
    """``"a | b c | d"`` -> ``("a", "b c", "d")``: compact vocabulary lists."""
    return tuple(part.strip() for part in text.split("|"))


COLORS = (
    "Black", "White", "Navy Blue", "Heather Grey", "Olive Green", "Burgundy", "Light Pink",
    "Royal Blue", "Black/White", "Beige", "Charcoal", "Mustard Yellow", "Teal", "Coral",
)  # fmt: skip

TYPES: tuple[ProductType, ...] = (
    ProductType(
        query="face moisturizer",
        category="beauty",
        product_category="Beauty & Personal Care › Skin Care › Face › Creams & Moisturizers › Face Moisturizers",
        head="*face *moisturizer",
        goal_names=("face moisturizer", "moisturizer for my face", "facial moisturizer"),
        attributes=_phrases(
            "*fragrance free | non greasy | hyaluronic *acid | *spf 30 | *paraben free | "
            "*cruelty free | sensitive *skin | *oil free | *vitamin c | anti aging | "
            "*dermatologist tested | long lasting | natural *ingredients"
        ),
        options={
            "size": ("1 Fl Oz", "1.7 Fl Oz", "2.5 Fl Oz", "3.4 Fl Oz", "1.7 Fl Oz (Pack of 2)"),
            "scent": ("Unscented", "Lavender", "Citrus", "Cucumber", "Green Tea"),
        },
        price=(7.0, 58.0),
        title_suffixes=("", " for *Women", " for *Men and *Women", " - Daily *Cream"),
        facts=(
            "Absorbs quickly and leaves skin soft.",
            "Suitable for normal, dry and combination skin.",
            "Apply morning and night to clean skin.",
        ),
    ),
    ProductType(
        query="face serum",
        category="beauty",
        product_category="Beauty & Personal Care › Skin Care › Face › Treatments & Masks › Serums",
        head="*face *serum",
        goal_names=("face serum", "facial serum", "serum for my face"),
        attributes=_phrases(
            "*vitamin c | hyaluronic *acid | *retinol | *niacinamide | *fragrance free | "
            "*cruelty free | vegan | *oil free | brightening | anti aging | dark *spots | "
            "fine *lines"
        ),
        options={"size": ("0.5 Fl Oz", "1 Fl Oz", "2 Fl Oz", "1 Fl Oz (Pack of 2)")},
        price=(9.0, 65.0),
        title_suffixes=("", " with *Dropper", " for All *Skin *Types"),
        facts=(
            "A few drops are enough for the whole face.",
            "Lightweight texture that layers under makeup.",
            "Use before your moisturizer.",
        ),
    ),
    ProductType(
        query="shampoo",
        category="beauty",
        product_category="Beauty & Personal Care › Hair Care › Shampoo & Conditioner › Shampoos",
        head="*shampoo",
        goal_names=("shampoo", "hair shampoo", "bottle of shampoo"),
        attributes=_phrases(
            "*sulfate free | *paraben free | *tea *tree | *argan *oil | *color safe | "
            "dry *scalp | natural *ingredients | curly *hair | volumizing | *dandruff control | "
            "*cruelty free"
        ),
        options={
            "size": ("8 Fl Oz", "12 Fl Oz", "16 Fl Oz", "33.8 Fl Oz", "16 Fl Oz (Pack of 2)"),
            "scent": ("Eucalyptus", "Coconut", "Peppermint", "Unscented", "Lavender"),
        },
        price=(5.0, 36.0),
        title_suffixes=("", " for *Women and *Men", " - Salon *Formula"),
        facts=(
            "Lathers richly and rinses clean.",
            "Safe for daily use.",
            "Pair with the matching conditioner.",
        ),
    ),
    ProductType(
        query="running shoes",
        category="fashion",
        product_category="Clothing, Shoes & Jewelry › Men › Shoes › Athletic › Running",
        head="*running *shoes",
        goal_names=("running shoes", "pair of running shoes", "men's running shoes"),
        attributes=_phrases(
            "*rubber *sole | lightweight | breathable *mesh | *memory *foam | non slip | "
            "*arch *support | wide *toe *box | slip on | machine washable"
        ),
        options={
            "color": _phrases(
                "Black | White | Navy Blue | Grey/Orange | Black/White | Red | Olive Green"
            ),
            "size": ("7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"),
        },
        price=(24.0, 120.0),
        title_suffixes=(" for *Men", " - Athletic *Sneakers", " for *Men, *Road *Running"),
        facts=(
            "Cushioned midsole for long runs.",
            "Padded collar and tongue.",
            "Good for the gym, the road and the treadmill.",
        ),
    ),
    ProductType(
        query="women t-shirt",
        category="fashion",
        product_category="Clothing, Shoes & Jewelry › Women › Clothing › Tops, Tees & Blouses › T-Shirts",
        head="*t-shirt",
        goal_names=("women's t-shirt", "t-shirt for women", "tee shirt for women"),
        attributes=_phrases(
            "*cotton | short *sleeve | *crew *neck | v *neck | loose *fit | machine *wash | "
            "*moisture wicking | classic *fit | soft *fabric"
        ),
        options={
            "color": COLORS,
            "size": ("Small", "Medium", "Large", "X-Large", "XX-Large"),
        },
        price=(8.0, 32.0),
        title_suffixes=(" for *Women", " - *Women's Casual *Top", " for *Women, Summer *Tee"),
        facts=(
            "Relaxed cut that is easy to layer.",
            "Tag-free neckline for comfort.",
            "Holds its shape wash after wash.",
        ),
    ),
    ProductType(
        query="women tank top",
        category="fashion",
        product_category="Clothing, Shoes & Jewelry › Women › Clothing › Tops, Tees & Blouses › Tanks & Camis",
        head="*tank *top",
        goal_names=("women's tank top", "tank top for women", "sleeveless tank top"),
        attributes=_phrases(
            "*cotton | racerback | loose *fit | *moisture wicking | machine *wash | "
            "built in *bra | scoop *neck | quick dry | soft *fabric"
        ),
        options={"color": COLORS, "size": ("Small", "Medium", "Large", "X-Large")},
        price=(7.0, 28.0),
        title_suffixes=(" for *Women", " - Sleeveless *Workout *Shirt", " for *Women, *Yoga *Top"),
        facts=(
            "Great for workouts and warm days.",
            "Breezy cut that does not cling.",
            "Pairs with leggings or shorts.",
        ),
    ),
    ProductType(
        query="ground coffee",
        category="grocery",
        product_category="Grocery & Gourmet Food › Beverages › Coffee, Tea & Cocoa › Coffee › Ground Coffee",
        head="ground *coffee",
        goal_names=("ground coffee", "bag of ground coffee", "coffee"),
        attributes=_phrases(
            "medium *roast | dark *roast | light *roast | *arabica | organic | fair *trade | "
            "*decaf | single *origin | low *acid | kosher"
        ),
        options={
            "size": ("12 Ounce", "24 Ounce", "2 Pound", "12 Ounce (Pack of 2)"),
            "flavor": ("Original", "Vanilla", "Hazelnut", "Caramel", "Mocha", "Cinnamon"),
        },
        price=(6.0, 40.0),
        title_suffixes=("", " - *Drip *Grind", " for *French *Press"),
        facts=(
            "Roasted in small batches.",
            "Packed in a resealable bag to keep it fresh.",
            "Works in drip machines and pour-over cones.",
        ),
    ),
    ProductType(
        query="protein bars",
        category="grocery",
        product_category="Grocery & Gourmet Food › Snack Foods › Bars › Protein Bars",
        head="*protein *bars",
        goal_names=("protein bars", "box of protein bars", "snack bars with protein"),
        attributes=_phrases(
            "*gluten free | high *protein | low *sugar | non *gmo | *keto friendly | "
            "*plant based | *soy free | vegan | *dairy free"
        ),
        options={
            "flavor": _phrases(
                "Chocolate Chip | Peanut Butter | Cookie Dough | Salted Caramel | "
                "Double Chocolate | Birthday Cake"
            ),
            "size": ("6 Count", "12 Count", "24 Count", "12 Count (Pack of 2)"),
        },
        price=(9.0, 45.0),
        title_suffixes=("", " - *Snack *Bars", ", 20g *Protein"),
        facts=(
            "A filling snack between meals.",
            "Individually wrapped for on the go.",
            "Made without artificial sweeteners.",
        ),
    ),
    ProductType(
        query="wireless headphones",
        category="electronics",
        product_category="Electronics › Headphones, Earbuds & Accessories › Headphones › Over-Ear Headphones",
        head="wireless *headphones",
        goal_names=("wireless headphones", "pair of bluetooth headphones", "over-ear headphones"),
        attributes=_phrases(
            "*noise cancelling | *bluetooth 5.0 | long *battery *life | built in *microphone | "
            "foldable | *hands free | fast *charging | hi-fi *stereo | *memory *foam"
        ),
        options={"color": ("Black", "White", "Rose Gold", "Midnight Blue", "Silver", "Grey/Black")},
        price=(18.0, 150.0),
        title_suffixes=("", " - Over Ear *Headset", " with *Mic, 40H *Playtime"),
        facts=(
            "Pairs quickly with phones, tablets and laptops.",
            "Soft ear cushions for long listening.",
            "Comes with a charging cable and a carrying pouch.",
        ),
    ),
    ProductType(
        query="phone case",
        category="electronics",
        product_category="Cell Phones & Accessories › Cases, Holsters & Sleeves › Basic Cases",
        head="*phone *case",
        goal_names=("phone case", "protective phone case", "case for my phone"),
        attributes=_phrases(
            "shockproof | slim *fit | wireless *charging | tempered *glass | *kickstand | "
            "raised *edges | *drop *protection | clear *back | magnetic"
        ),
        options={
            "color": ("Black", "Clear", "Navy Blue", "Pink", "Purple", "Forest Green"),
            "model": ("iPhone 13", "iPhone 14", "iPhone 15", "Galaxy S22", "Galaxy S23", "Pixel 7"),
        },
        price=(6.0, 35.0),
        title_suffixes=("", " - *Protective *Cover", " with *Screen *Protector"),
        facts=(
            "Precise cutouts for buttons, ports and cameras.",
            "Grippy sides that resist slipping.",
            "Easy to put on and take off.",
        ),
    ),
    ProductType(
        query="throw pillow covers",
        category="home",
        product_category="Home & Kitchen › Bedding › Decorative Pillows, Inserts & Covers › Throw Pillow Covers",
        head="throw *pillow *covers",
        goal_names=("throw pillow covers", "set of pillow covers", "cushion covers"),
        attributes=_phrases(
            "*set of 2 | hidden *zipper | *velvet | *linen | machine washable | double sided | "
            "*farmhouse *style | *boho | soft *touch"
        ),
        options={
            "color": COLORS,
            "size": ("16x16 Inch", "18x18 Inch", "20x20 Inch", "12x20 Inch"),
        },
        price=(7.0, 30.0),
        title_suffixes=("", " for *Couch and *Sofa", " - *Decorative *Cushion *Cases"),
        facts=(
            "Inserts are not included.",
            "Adds color to a sofa, bed or reading nook.",
            "Stitched edges that do not fray.",
        ),
    ),
    ProductType(
        query="bed sheet set",
        category="home",
        product_category="Home & Kitchen › Bedding › Sheets & Pillowcases › Sheet & Pillowcase Sets",
        head="*bed *sheet *set",
        goal_names=("bed sheet set", "set of bed sheets", "sheet set"),
        attributes=_phrases(
            "deep *pocket | *microfiber | egyptian *cotton | *wrinkle free | cooling | "
            "breathable | hypoallergenic | *fade resistant | 400 *thread *count"
        ),
        options={
            "color": COLORS,
            "size": ("Twin", "Full", "Queen", "King", "California King"),
        },
        price=(18.0, 95.0),
        title_suffixes=("", " - 4 *Piece", " with *Pillowcases"),
        facts=(
            "Includes a flat sheet, a fitted sheet and pillowcases.",
            "Elastic all around the fitted sheet.",
            "Gets softer with every wash.",
        ),
    ),
    ProductType(
        query="dry dog food",
        category="pets",
        product_category="Pet Supplies › Dogs › Food › Dry",
        head="dry *dog *food",
        goal_names=("dry dog food", "bag of dog food", "kibble for my dog"),
        attributes=_phrases(
            "*grain free | real *chicken | high *protein | no artificial *flavors | "
            "small *breed | *puppy *formula | *omega 3 | natural *ingredients"
        ),
        options={
            "size": ("4 Pound", "15 Pound", "30 Pound"),
            "flavor": ("Chicken", "Beef", "Lamb", "Salmon", "Turkey"),
        },
        price=(12.0, 78.0),
        title_suffixes=("", " for *Adult *Dogs", " - *Kibble"),
        facts=(
            "Crunchy kibble that supports clean teeth.",
            "Made with vitamins and minerals for a complete diet.",
            "Resealable bag.",
        ),
    ),
    ProductType(
        query="led desk lamp",
        category="home improvement",
        product_category="Tools & Home Improvement › Lighting & Ceiling Fans › Lamps & Shades › Desk Lamps",
        head="led *desk *lamp",
        goal_names=("led desk lamp", "desk lamp", "reading lamp for my desk"),
        attributes=_phrases(
            "dimmable | *usb charging *port | *eye caring | *touch *control | adjustable *arm | "
            "*energy efficient | auto *timer | wireless *charger"
        ),
        options={"color": ("Black", "White", "Silver", "Walnut Wood", "Pink")},
        price=(14.0, 70.0),
        title_suffixes=("", " for *Home *Office", " - *Reading *Light"),
        facts=(
            "Five color modes and ten brightness levels.",
            "Flicker-free light for long study sessions.",
            "Compact base that fits small desks.",
        ),
    ),
)

SYLLABLES = (
    "ar", "bel", "cor", "dra", "el", "fin", "gal", "hav", "is", "jun", "kel", "lor", "mir",
    "nov", "or", "pel", "quin", "ros", "sol", "tav", "ul", "ven", "wil", "xan", "yor", "zel",
)  # fmt: skip

OPENERS = (
    "i need {a}{name}",
    "i am looking for {a}{name}",
    "i want to buy {a}{name}",
    "find me {a}{name}",
    "im looking for {a}{name}",
    "i would like {a}{name}",
)


def _clean(phrase: str) -> str:
    return phrase.replace("*", "")


def _nouns(phrase: str) -> list[str]:
    return [w[1:].rstrip(",.;:").lower() for w in phrase.split() if w.startswith("*")]


def _title_case(phrase: str) -> str:
    words = []
    for word in _clean(phrase).split():
        lower = word.lower()
        if lower in ACRONYMS:
            words.append(ACRONYMS[lower])
        elif word[0].isdigit() or word[0].isupper():
            words.append(word)
        else:
            words.append(word[0].upper() + word[1:])
    return " ".join(words)


def _brand(rng: random.Random) -> str:
    word = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 2, 3))))
    return word[0].upper() + word[1:]


def _asin(rng: random.Random, used: set[str]) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    while True:
        asin = "B0" + "".join(rng.choice(alphabet) for _ in range(8))
        if asin not in used:
            used.add(asin)
            return asin


def _join_words(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _article(word: str) -> str:
    return "an " if word[:1] in "aeiou" else "a "


def make_product(kind: ProductType, brand: str, rng: random.Random, used: set[str]) -> dict:
    """One product record (items_shuffle format plus attributes, nouns, price)."""
    n_attrs = rng.randint(3, 5)
    attrs = rng.sample(kind.attributes, n_attrs)
    head_words = set(_clean(kind.head).split())
    # Attributes repeating a head word ("high protein protein bars") stay out of the title.
    shown = [a for a in attrs if not head_words & set(_clean(a).split())][: rng.choice((1, 2, 2))]
    suffix = rng.choice(kind.title_suffixes)
    title = f"{brand} {' '.join(_title_case(a) for a in shown)} {_title_case(kind.head)}"
    if suffix:
        title += (" " if suffix.startswith(" ") else "") + _title_case(suffix)
    title = " ".join(title.split())
    # The title's nouns in title order, repeats kept: the brand, then starred words.
    nouns = [brand.lower()]
    for phrase in [*shown, kind.head, suffix]:
        nouns.extend(_nouns(phrase))

    clean_attrs = [_clean(a) for a in attrs]
    head = _clean(kind.head)
    facts = list(kind.facts)
    rng.shuffle(facts)
    description = (
        f"{brand} {head} made for everyday use. Key features: {_join_words(clean_attrs)}. "
        + " ".join(facts[:2])
    )
    bullets = [f"{_title_case(a).upper()} - {a} {head} from {brand}." for a in clean_attrs]
    bullets.append(facts[-1])
    rng.shuffle(bullets)

    options: dict[str, list[dict]] = {}
    for group, values in kind.options.items():
        if rng.random() < 0.85:
            count = min(len(values), rng.randint(2, 5))
            picked = sorted(rng.sample(range(len(values)), count))
            options[group] = [{"value": values[i], "image": None} for i in picked]

    low, high = kind.price
    price = round(rng.uniform(low, high), 2)
    if rng.random() < 0.2:
        top = round(price * rng.uniform(1.2, 1.8), 2)
        pricing = f"${price:.2f} to ${top:.2f}"
    else:
        pricing = f"${price:.2f}"
    asin = _asin(rng, used)
    parsed, _ = parse_pricing(pricing)
    return {
        "asin": asin,
        "name": title,
        "full_description": description,
        "small_description": bullets,
        "pricing": pricing,
        "customization_options": options,
        "category": kind.category,
        "query": kind.query,
        "product_category": kind.product_category,
        "attributes": clean_attrs,
        "nouns": nouns,
        "price": product_price(asin, parsed),
    }


def _option_phrase(group: str, value: str, rng: random.Random) -> str:
    if group == "color":
        return rng.choice((f"in {value} color", f"in the color {value}", f"{value} colored"))
    if group == "size":
        return rng.choice((f"in size {value}", f"in {value} size", f"size {value}"))
    return rng.choice((f"with {group} {value}", f"in {value} {group}", f"{group}: {value}"))


def make_goal(index: int, record: dict, kind: ProductType, rng: random.Random) -> dict:
    """One goal for the product ``record`` (attributes, options and price ceiling drawn)."""
    product = product_from_record(record)
    attrs = rng.sample(list(product.attributes), rng.choice((1, 2, 2, 3)))
    chosen: list[tuple[str, str]] = []
    for group, values in product.options.items():
        if rng.random() < 0.6 and len(chosen) < 2:
            chosen.append((group, rng.choice(values)))
    name = rng.choice(kind.goal_names)
    opener = rng.choice(OPENERS)
    style = rng.random()
    if style < 0.5:
        text = opener.format(a=_article(attrs[0]), name=f"{_join_words(attrs)} {name}")
    else:
        text = opener.format(a=_article(name), name=name) + f" that is {_join_words(attrs)}"
    if chosen:
        # Option values store "/" as " | " (upstream's loading rule); people write "/".
        phrases = [_option_phrase(g, v.replace(" | ", "/"), rng) for g, v in chosen]
        text += " " + " and ".join(phrases)
    upper, clause = price_ceiling(product.price, rng)
    return {
        "goal_id": f"goal-{index:05d}",
        "asin": product.asin,
        "instruction_text": text + clause,
        "attributes": attrs,
        "goal_options": [v for _, v in chosen],
        "price_upper": upper,
    }


def generate(seed: int = DEFAULT_SEED) -> dict:
    """The whole catalogue document, deterministic in ``seed``."""
    rng = random.Random(seed)
    used_asins: set[str] = set()
    used_titles: set[str] = set()
    products: list[tuple[dict, ProductType]] = []
    for kind in TYPES:
        brands = sorted({_brand(rng) for _ in range(14)})
        made = 0
        while made < PRODUCTS_PER_TYPE:
            record = make_product(kind, rng.choice(brands), rng, used_asins)
            if record["name"] in used_titles:
                continue
            used_titles.add(record["name"])
            products.append((record, kind))
            made += 1
    rng.shuffle(products)  # like items_shuffle: product types interleaved

    goals = []
    for index in range(N_GOALS):
        record, kind = products[rng.randrange(len(products))]
        goals.append(make_goal(index, record, kind, rng))
    return {
        "format": CATALOGUE_FORMAT,
        "version": 1,
        "seed": seed,
        "generator": "tools/make_webshop_catalogue.py",
        "license": "Generated by mentorgym (MIT); no upstream WebShop data.",
        "splits": {
            "test": [0, TEST_GOALS],
            "dev": [TEST_GOALS, TEST_GOALS + DEV_GOALS],
            "train": [TEST_GOALS + DEV_GOALS, None],
        },
        "products": [record for record, _ in products],
        "goals": goals,
    }


def _dump_catalogue(doc: dict) -> str:
    # One record per line: compact, yet diffs stay readable.
    head = {k: v for k, v in doc.items() if k not in ("products", "goals")}
    lines = ["{"]
    for key, value in head.items():
        lines.append(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    for key in ("products", "goals"):
        lines.append(f'"{key}": [')
        rows = [json.dumps(item, ensure_ascii=False) for item in doc[key]]
        lines.append(",\n".join(rows))
        lines.append("]," if key == "products" else "]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_official(doc: dict, folder: Path) -> list[Path]:
    """Write the catalogue as upstream's three files (for the official-format loader)."""
    shuffle = []
    ins: dict[str, dict] = {}
    for record in doc["products"]:
        base = {k: v for k, v in record.items() if k not in ("attributes", "nouns", "price")}
        base["images"] = [""]  # upstream's loader reads images[0]; there are no images
        shuffle.append(base)
        ins[record["asin"]] = {"attributes": record["attributes"]}
    human: dict[str, list[dict]] = {}
    for goal in doc["goals"]:
        text = goal["instruction_text"].split(", and price lower than")[0]
        human.setdefault(goal["asin"], []).append(
            {
                "instruction": text,
                "instruction_attributes": goal["attributes"],
                "instruction_options": goal["goal_options"],
            }
        )
    paths = [
        folder / "items_shuffle_mentorgym.json",
        folder / "items_ins_v2_mentorgym.json",
        folder / "items_human_ins.json",
    ]
    for path, data in zip(paths, (shuffle, ins, human)):
        atomic_write_text(path, json.dumps(data, ensure_ascii=False))
    return paths


def verify(path: Path) -> tuple[int, int]:
    """Play every goal with the env's expert; returns (goals at reward 1.0, goals)."""
    import gymnasium as gym

    import envs  # noqa: F401

    env = gym.make("WebShop-v0", catalogue_path=str(path), expert=True, admissible_actions="none")
    catalogue = env.unwrapped.catalogue
    perfect = 0
    for goal in catalogue.goals:
        _, info = env.reset(options={"task_id": goal.goal_id})
        reward = 0.0
        for _ in range(30):
            _, r, terminated, truncated, info = env.step(info["expert_action"])
            reward += float(r)
            if terminated or truncated:
                break
        if reward >= 1.0 - 1e-9:
            perfect += 1
        else:
            print(f"  {goal.goal_id}: expert reward {reward:.3f}", file=sys.stderr)
    env.close()
    return perfect, len(catalogue.goals)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="generator seed (default 0)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_CATALOGUE_PATH, help="catalogue file to write"
    )
    parser.add_argument("--official-dir", type=Path, help="also write upstream-format files here")
    parser.add_argument("--verify", action="store_true", help="play every goal with the expert")
    args = parser.parse_args(argv)

    doc = generate(args.seed)
    atomic_write_text(args.out, _dump_catalogue(doc))
    size = args.out.stat().st_size
    counts = f"{len(doc['products'])} products, {len(doc['goals'])} goals"
    print(f"wrote {args.out} ({counts}, {size / 1e6:.2f} MB)")
    if args.official_dir:
        for path in write_official(doc, args.official_dir):
            print(f"wrote {path}")
    if args.verify:
        perfect, total = verify(args.out)
        print(f"expert reward 1.0 on {perfect}/{total} goals")
        return 0 if perfect == total else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
