"""WebShop products, goals and splits: the shipped catalogue or the official files.

Two sources give the same :class:`Catalogue`:

* the project's own catalogue, ``envs/webshop/data/catalogue.json``, written by
  ``tools/make_webshop_catalogue.py`` (products in upstream's ``items_shuffle``
  record format plus ``attributes``, ``nouns`` and ``price``; seeded goals with
  stable ids and their split bounds);
* upstream's files in a user-given folder: ``items_shuffle*.json`` (products),
  ``items_ins_v2*.json`` (attributes) and ``items_human_ins.json`` (human
  instructions). Goals are built as upstream builds its human goals, shuffled
  with upstream's seed (233), so ``goal-00042`` is upstream's session 42; splits
  are upstream's (test = goals 0-499, dev = 500-1499, train = 1500+).

:func:`get_catalogue` loads each source once per process and returns the same
object to every caller, so every env in a process shares one catalogue and one
search index.
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from envs.webshop.reward import title_nouns
from envs.webshop.search import SEARCH_RETURN_N, CachedSearch, make_search

__all__ = [
    "DEFAULT_CATALOGUE_PATH",
    "OFFICIAL_SPLITS",
    "PRICE_STEPS",
    "Catalogue",
    "CatalogueError",
    "Goal",
    "Product",
    "Review",
    "get_catalogue",
    "goal_search_text",
    "load_official",
    "load_shipped",
    "parse_pricing",
    "price_ceiling",
    "product_from_record",
    "product_price",
]

DEFAULT_CATALOGUE_PATH = Path(__file__).resolve().parent / "data" / "catalogue.json"
CATALOGUE_FORMAT = "mentorgym-webshop-catalogue"

#: Upstream's split convention for the official files: goal index bounds.
OFFICIAL_SPLITS: dict[str, tuple[int, int | None]] = {
    "test": (0, 500),
    "dev": (500, 1500),
    "train": (1500, None),
}

#: Candidate price ceilings of a goal: $10, $20, ..., $990 (as upstream).
PRICE_STEPS: tuple[float, ...] = tuple(10.0 * i for i in range(1, 100))

# Seed of upstream's goal shuffle; the permutation depends only on the goal count.
_UPSTREAM_GOAL_SHUFFLE_SEED = 233
_PRICE_CLAUSE = re.compile(r",? and price lower than [\d.]+ dollars\s*$")


class CatalogueError(ValueError):
    """A catalogue or official data file is missing, malformed or inconsistent."""


@dataclass(frozen=True, slots=True)
class Review:
    """One product review (upstream's review page shows title, score, body)."""

    title: str
    score: int
    body: str


@dataclass(frozen=True, slots=True, eq=False)
class Product:
    """A product as the pages show it and the reward reads it."""

    asin: str
    title: str
    description: str
    bullet_points: tuple[str, ...]
    price_text: str  # what pages show: "$12.99" or "$10.0 to $20.0"
    pricing: tuple[float, ...]
    price: float  # what the shop charges at checkout
    options: dict[str, tuple[str, ...]]  # group name -> values (lower-cased, "/" -> " | ")
    attributes: tuple[str, ...]
    category: str
    query: str
    product_category: str
    nouns: tuple[str, ...]  # title nouns in order, repeats kept (the reward counts them)
    rating: str = "N.A."
    reviews: tuple[Review, ...] = ()

    @property
    def title_lower(self) -> str:
        return self.title.lower()

    @property
    def description_lower(self) -> str:
        return self.description.lower()

    @property
    def bullet_text_lower(self) -> str:
        return " ".join(self.bullet_points).lower()

    def search_document(self) -> str:
        """The text the search index holds for this product (upstream's document contents)."""
        option_text = ", and ".join(
            f"{name}: {', '.join(values)}" for name, values in self.options.items()
        )
        first_bullet = self.bullet_points[0] if self.bullet_points else ""
        return " ".join([self.title, self.description, first_bullet, option_text]).lower()


@dataclass(frozen=True, slots=True)
class Goal:
    """One shopping instruction: the target product and what the reward checks."""

    goal_id: str
    asin: str
    instruction_text: str
    attributes: tuple[str, ...]
    goal_options: tuple[str, ...]
    price_upper: float
    name: str  # the target product's title
    query: str
    category: str
    product_category: str
    nouns: tuple[str, ...]  # the target title's nouns, repeats kept


def goal_search_text(goal: Goal) -> str:
    """The goal's words as a search query: the instruction without its price clause."""
    return _PRICE_CLAUSE.sub("", goal.instruction_text.strip()).strip().lower()


def parse_pricing(pricing: Any) -> tuple[tuple[float, ...], str]:
    """Upstream's price parsing: ``"$12.99"`` or ``"$10 to $20"`` -> (prices, shown text).

    Missing or unreadable prices become ``$100.0``, as upstream does.
    """
    values: list[float] = []
    if isinstance(pricing, str) and pricing:
        for piece in pricing.split("$")[1:]:
            digits = re.sub(r"[^\d.]", "", piece)
            try:
                values.append(float(Decimal(digits)))
            except (InvalidOperation, ValueError):
                continue
    if not values:
        return (100.0,), "$100.0"
    if len(values) == 1:
        return (values[0],), f"${values[0]}"
    low, high = values[:2]
    return (low, high), f"${low} to ${high}"


def product_price(asin: str, pricing: Sequence[float]) -> float:
    """The price charged for a product: its price, or a seeded draw within its price range.

    Upstream draws from the range with the unseeded global RNG at load time;
    here the draw is seeded by the asin, so it is the same in every process.
    """
    if not pricing:
        return 100.0
    if len(pricing) == 1:
        return float(pricing[0])
    return random.Random(f"webshop-price:{asin}").uniform(pricing[0], pricing[1])


def price_ceiling(price: float, rng: random.Random) -> tuple[float, str]:
    """A goal's price ceiling and its instruction clause, by upstream's rule.

    Two of the next four multiples of $10 above ``price`` are drawn and the
    larger is the ceiling; with fewer than two such steps there is no ceiling
    (1,000,000 and no clause).
    """
    steps = [p for p in PRICE_STEPS if p > price][:4]
    if len(steps) < 2:
        return 1_000_000.0, ""
    upper = max(rng.sample(steps, 2))
    return upper, f", and price lower than {upper:.2f} dollars"


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _str_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(_text(v) for v in value)
    return (str(value),)


def _options(raw: Any, where: str) -> dict[str, tuple[str, ...]]:
    if not raw:
        return {}
    if not isinstance(raw, Mapping):
        raise CatalogueError(f"{where}: 'customization_options' must be an object")
    options: dict[str, tuple[str, ...]] = {}
    for name, contents in raw.items():
        if contents is None:
            continue
        values = []
        for content in contents:
            value = content.get("value") if isinstance(content, Mapping) else content
            values.append(_text(value).strip().replace("/", " | ").lower())
        options[str(name).lower()] = tuple(values)
    return options


def _reviews(raw: Any) -> tuple[Review, ...]:
    reviews = []
    for item in raw or ():
        if isinstance(item, Mapping):
            score = item.get("score", item.get("stars", 0))
            try:
                score = int(float(score))
            except (TypeError, ValueError):
                score = 0
            body = item.get("body", item.get("review", ""))
            reviews.append(Review(_text(item.get("title")), score, _text(body)))
    return tuple(reviews)


def product_from_record(
    record: Mapping[str, Any],
    *,
    attributes: Sequence[str] | None = None,
    where: str = "product",
    with_reviews: bool = True,
) -> Product:
    """Build a :class:`Product` from an ``items_shuffle``-format record.

    ``attributes`` overrides the record's own ``attributes`` (the official
    files keep them in ``items_ins_v2``); products without any get
    upstream's ``["DUMMY_ATTR"]``. ``nouns`` and ``price`` are read when the
    record has them (the shipped catalogue does), else derived. Upstream never
    shows reviews or ratings (its loader leaves them out), so the official
    loader passes ``with_reviews=False``.
    """
    if not isinstance(record, Mapping):
        raise CatalogueError(f"{where}: a product must be a JSON object")
    asin = _text(record.get("asin")).strip()
    if not asin:
        raise CatalogueError(f"{where}: the product has no 'asin'")
    title = _text(record.get("name"))
    pricing, price_text = parse_pricing(record.get("pricing"))
    attrs = _str_list(attributes if attributes is not None else record.get("attributes"))
    nouns_raw = record.get("nouns")
    nouns = (
        tuple(_text(n).lower() for n in nouns_raw)
        if isinstance(nouns_raw, list)
        else title_nouns(title)
    )
    price_raw = record.get("price")
    price = float(price_raw) if isinstance(price_raw, int | float) else product_price(asin, pricing)
    return Product(
        asin=asin,
        title=title,
        description=_text(record.get("full_description")),
        bullet_points=_str_list(record.get("small_description")),
        price_text=price_text,
        pricing=pricing,
        price=price,
        options=_options(record.get("customization_options"), f"{where} ({asin})"),
        attributes=attrs or ("DUMMY_ATTR",),
        category=_text(record.get("category")),
        query=_text(record.get("query")).lower().strip(),
        product_category=_text(record.get("product_category")),
        nouns=nouns,
        rating=(_text(record.get("average_rating")) or "N.A.") if with_reviews else "N.A.",
        reviews=_reviews(record.get("reviews")) if with_reviews else (),
    )


def _goal_for(
    goal_id: str,
    product: Product,
    instruction_text: str,
    attributes: Iterable[str],
    goal_options: Iterable[str],
    price_upper: float,
) -> Goal:
    return Goal(
        goal_id=goal_id,
        asin=product.asin,
        instruction_text=instruction_text,
        attributes=tuple(attributes),
        goal_options=tuple(goal_options),
        price_upper=float(price_upper),
        name=product.title,
        query=product.query,
        category=product.category,
        product_category=product.product_category,
        nouns=product.nouns,
    )


class Catalogue:
    """Products, goals and splits of one data source, with one shared search index.

    ``products`` keep source order; ``product(asin)`` looks one up
    (case-insensitively); ``goals`` are in goal-index order and ``split_ids``
    maps each split to its ordered goal ids; ``search(query)`` returns the
    matching products, best first (top 50, like upstream's searcher).
    """

    def __init__(
        self,
        products: Sequence[Product],
        goals: Sequence[Goal],
        split_bounds: Mapping[str, tuple[int, int | None]],
        *,
        source: str,
    ) -> None:
        self.products: tuple[Product, ...] = tuple(products)
        self._by_asin = {p.asin.lower(): p for p in self.products}
        self.goals: tuple[Goal, ...] = tuple(goals)
        self.goals_by_id: dict[str, Goal] = {g.goal_id: g for g in self.goals}
        if len(self.goals_by_id) != len(self.goals):
            raise CatalogueError(f"{source}: goal ids are not unique")
        self.split_ids: dict[str, list[str]] = {}
        for split, (start, stop) in split_bounds.items():
            self.split_ids[split] = [g.goal_id for g in self.goals[start:stop]]
        self.source = source
        self._indexes: dict[str, CachedSearch] = {}
        self._index_lock = threading.Lock()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(ids)}" for s, ids in self.split_ids.items())
        return f"Catalogue({len(self.products)} products, {len(self.goals)} goals [{sizes}], {self.source})"

    def product(self, asin: str) -> Product | None:
        """The product with this asin (any case), or None."""
        return self._by_asin.get(asin.lower())

    @property
    def index(self) -> CachedSearch:
        """The default (pure-Python) search index, built on first use."""
        return self.searcher("python")

    def searcher(self, backend: str = "python") -> CachedSearch:
        """The search index of ``backend`` (see ``SEARCH_BACKENDS``), built once per catalogue."""
        index = self._indexes.get(backend)
        if index is None:
            with self._index_lock:
                index = self._indexes.get(backend)
                if index is None:
                    index = make_search(
                        backend,
                        [p.search_document() for p in self.products],
                        [p.asin for p in self.products],
                    )
                    self._indexes[backend] = index
        return index

    def search(
        self, query: str, top_k: int = SEARCH_RETURN_N, *, backend: str = "python"
    ) -> tuple[Product, ...]:
        """Products matching ``query``, best first, at most ``top_k``."""
        return tuple(self.products[i] for i in self.searcher(backend).search(query, top_k))


# -- the shipped catalogue ----------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise CatalogueError(f"{path}: no such file") from None
    except json.JSONDecodeError as error:
        raise CatalogueError(f"{path}: not valid JSON ({error})") from None
    except OSError as error:
        raise CatalogueError(f"{path}: cannot be read ({error})") from None


def load_shipped(path: str | Path = DEFAULT_CATALOGUE_PATH) -> Catalogue:
    """Load a catalogue file in the project's format (see the module docstring)."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, Mapping) or data.get("format") != CATALOGUE_FORMAT:
        raise CatalogueError(f"{path}: not a {CATALOGUE_FORMAT} file (no matching 'format' key)")
    products = []
    for i, record in enumerate(data.get("products") or []):
        products.append(product_from_record(record, where=f"{path}: product #{i}"))
    by_asin = {p.asin: p for p in products}
    if len(by_asin) != len(products):
        raise CatalogueError(f"{path}: duplicate asins")
    goals = []
    for i, record in enumerate(data.get("goals") or []):
        where = f"{path}: goal #{i}"
        if not isinstance(record, Mapping):
            raise CatalogueError(f"{where}: a goal must be a JSON object")
        missing = [
            k
            for k in ("goal_id", "asin", "instruction_text", "attributes", "price_upper")
            if k not in record
        ]
        if missing:
            raise CatalogueError(f"{where}: lacks {missing}")
        product = by_asin.get(record["asin"])
        if product is None:
            raise CatalogueError(f"{where}: its asin {record['asin']!r} is not in the catalogue")
        goals.append(
            _goal_for(
                str(record["goal_id"]),
                product,
                _text(record["instruction_text"]),
                _str_list(record["attributes"]),
                _str_list(record.get("goal_options")),
                float(record["price_upper"]),
            )
        )
    bounds: dict[str, tuple[int, int | None]] = {}
    for split, span in (data.get("splits") or {}).items():
        if not (isinstance(span, list) and len(span) == 2):
            raise CatalogueError(f"{path}: split {split!r} must be [start, stop]")
        bounds[str(split)] = (int(span[0]), None if span[1] is None else int(span[1]))
    if not bounds:
        raise CatalogueError(f"{path}: no 'splits'")
    return Catalogue(products, goals, bounds, source=str(path))


# -- the official files ---------------------------------------------------------


def _pick_file(
    folder: Path, given: str | Path | None, pattern: str, what: str, prefer: str
) -> Path:
    if given is not None:
        candidate = Path(given)
        candidate = candidate if candidate.is_absolute() else folder / candidate
        if not candidate.is_file():
            raise CatalogueError(f"{what} file {candidate} does not exist")
        return candidate
    found = sorted(p for p in folder.glob(pattern) if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise CatalogueError(f"{folder}: no {what} file ({pattern}) in this folder")
    preferred = [p for p in found if p.stem.endswith(prefer)] if prefer else []
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(p.name for p in found)
    raise CatalogueError(
        f"{folder}: several {what} files ({names}); name one with the matching keyword argument"
    )


def load_official(
    data_dir: str | Path,
    *,
    products_file: str | Path | None = None,
    attributes_file: str | Path | None = None,
    human_goals_file: str | Path | None = None,
    num_products: int | None = None,
) -> Catalogue:
    """Load upstream's WebShop files from ``data_dir`` (see the module docstring).

    ``num_products`` keeps only the first N product records, as upstream's
    ``num_products`` does. Files are found by name pattern unless given
    (absolute, or relative to ``data_dir``).
    """
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise CatalogueError(f"data_dir {folder} is not a folder")
    products_path = _pick_file(folder, products_file, "items_shuffle*.json", "product", "")
    suffix = (
        products_path.stem[len("items_shuffle") :]
        if products_path.stem.startswith("items_shuffle")
        else ""
    )
    attributes_path = _pick_file(folder, attributes_file, "items_ins_v2*.json", "attribute", suffix)
    human_path = _pick_file(
        folder, human_goals_file, "items_human_ins*.json", "human-instruction", ""
    )

    records = _read_json(products_path)
    if not isinstance(records, list):
        raise CatalogueError(f"{products_path}: must hold a JSON list of products")
    attributes = _read_json(attributes_path)
    if not isinstance(attributes, Mapping):
        raise CatalogueError(f"{attributes_path}: must hold a JSON object keyed by asin")
    human = _read_json(human_path)
    if not isinstance(human, Mapping):
        raise CatalogueError(f"{human_path}: must hold a JSON object keyed by asin")
    if num_products is not None:
        if not isinstance(num_products, int) or num_products < 1:
            raise CatalogueError(f"num_products must be a positive integer, not {num_products!r}")
        records = records[:num_products]

    products: list[Product] = []
    seen: set[str] = set()
    for i, record in enumerate(records):
        where = f"{products_path}: product #{i}"
        if not isinstance(record, Mapping):
            raise CatalogueError(f"{where}: a product must be a JSON object")
        asin = _text(record.get("asin"))
        # Upstream skips these asins silently.
        if not asin or asin == "nan" or len(asin) > 10 or asin in seen:
            continue
        seen.add(asin)
        entry = attributes.get(asin)
        attrs = entry.get("attributes") if isinstance(entry, Mapping) else None
        products.append(
            product_from_record(record, attributes=attrs or None, where=where, with_reviews=False)
        )

    goals: list[tuple[Product, str, tuple[str, ...], tuple[str, ...], float]] = []
    for product in products:
        instructions = human.get(product.asin)
        if not isinstance(instructions, list):
            continue
        for k, item in enumerate(instructions):
            if not isinstance(item, Mapping):
                continue
            goal_attrs = _str_list(item.get("instruction_attributes"))
            if not goal_attrs:
                continue  # upstream drops goals without attributes
            raw_options = item.get("instruction_options") or []
            options = _str_list(
                list(raw_options.values()) if isinstance(raw_options, Mapping) else raw_options
            )
            rng = random.Random(f"webshop-goal:{product.asin}:{k}")
            upper, clause = price_ceiling(product.price, rng)
            text = _text(item.get("instruction")).strip(".") + clause
            goals.append((product, text, goal_attrs, options, upper))
    random.Random(_UPSTREAM_GOAL_SHUFFLE_SEED).shuffle(goals)
    built = [
        _goal_for(f"goal-{i:05d}", product, text, attrs, options, upper)
        for i, (product, text, attrs, options, upper) in enumerate(goals)
    ]
    source = f"official files in {folder} ({products_path.name}, {attributes_path.name}, {human_path.name})"
    return Catalogue(products, built, OFFICIAL_SPLITS, source=source)


# -- one catalogue per process ----------------------------------------------------

_CACHE: dict[tuple[Any, ...], Catalogue] = {}
_CACHE_LOCK = threading.Lock()


def get_catalogue(
    data_dir: str | Path | None = None,
    *,
    catalogue_path: str | Path | None = None,
    products_file: str | Path | None = None,
    attributes_file: str | Path | None = None,
    human_goals_file: str | Path | None = None,
    num_products: int | None = None,
) -> Catalogue:
    """The process-wide catalogue of a source, loaded on first request.

    With no arguments: the shipped catalogue. ``catalogue_path``: another file
    in the project's format. ``data_dir``: upstream's official files.
    """
    if data_dir is not None and catalogue_path is not None:
        raise CatalogueError("give data_dir (official files) or catalogue_path, not both")
    if data_dir is None and any(
        v is not None for v in (products_file, attributes_file, human_goals_file, num_products)
    ):
        raise CatalogueError(
            "products_file, attributes_file, human_goals_file and num_products need data_dir"
        )
    if data_dir is not None:
        key: tuple[Any, ...] = (
            "official",
            str(Path(data_dir).expanduser().resolve()),
            str(products_file),
            str(attributes_file),
            str(human_goals_file),
            num_products,
        )
    else:
        key = ("shipped", str(Path(catalogue_path or DEFAULT_CATALOGUE_PATH).resolve()))
    with _CACHE_LOCK:
        catalogue = _CACHE.get(key)
        if catalogue is None:
            if data_dir is not None:
                catalogue = load_official(
                    data_dir,
                    products_file=products_file,
                    attributes_file=attributes_file,
                    human_goals_file=human_goals_file,
                    num_products=num_products,
                )
            else:
                catalogue = load_shipped(catalogue_path or DEFAULT_CATALOGUE_PATH)
            _CACHE[key] = catalogue
    return catalogue
