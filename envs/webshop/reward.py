"""WebShop's purchase reward, written from the published formula.

The reward of buying ``product`` (at ``price``, with the chosen ``options``)
for ``goal`` is::

    r = (attribute matches + option matches + [price <= price_upper])
        / (n goal attributes + n goal options + 1) * r_type

* an attribute matches when ``token_set_ratio(product attribute, goal attribute) > 85``
  for some product attribute, else when it is a substring of the product's
  title, bullet points or description (lower-cased);
* an option matches when, after colour normalisation, ``token_set_ratio > 85``
  against some chosen option value;
* ``r_type`` comes from the query match, the number of shared ``›`` categories
  and the noun overlap of the product and goal titles (1.0 / 0.5 / 0.1 / 0.0).

Fuzzy scores reproduce ``thefuzz.fuzz.token_set_ratio`` (default processing
with ``force_ascii``, rounded to an integer) on top of ``rapidfuzz``.

Deviation from upstream (documented in docs/webshop.md): upstream tags title
nouns with a spaCy model; by default the nouns here come from the catalogue
(``nouns`` per product) or, for products without them, from :func:`title_nouns`,
a fixed lexicon rule; a ``nouns_of`` function (spaCy's tagger, see
:mod:`envs.webshop.nouns`) replaces both. :func:`normalize_color` uses
upstream's colour list in upstream's order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

__all__ = [
    "COLOR_WORDS",
    "FUZZY_THRESHOLD",
    "RewardProduct",
    "RewardGoal",
    "attribute_reward",
    "fuzzy_token_set_ratio",
    "normalize_color",
    "option_reward",
    "purchase_reward",
    "title_nouns",
    "type_reward",
]

#: A fuzzy score must exceed this (on 0..100) for an attribute or option to match.
FUZZY_THRESHOLD = 85

#: Upstream's colour words (``normalize.py``'s ``COLOR_SET``), in its order, which is
#: alphabetical: normalisation keeps the first one that occurs as a substring of a
#: value, so ``"light pink"`` becomes ``"light"`` and ``"washed blue"`` ``"ash"``, as
#: upstream's do.
COLOR_WORDS: tuple[str, ...] = tuple(
    sorted(
        """
        alabaster apricot aqua ash asphalt azure banana beige black blue blush bordeaux
        bronze brown burgundy camel camo caramel champagne charcoal cheetah chestnut
        chocolate christmas coffee cognac copper coral cranberry cream crystal dark denim
        eggplant elephant espresso fuchsia gold granite grape graphite grass gray green
        grey heather indigo ivory ivy khaki lavender lemon leopard light lilac lime
        magenta maroon mauve merlot midnight mint mocha multicolor mushroom mustard
        natural navy nude olive orange peach pewter pink plum purple rainbow red rose
        royal rust sand sapphire seashell silver skull slate steel stone stonewash
        sunflower tan taupe teal tiger turquoise violet walnut wheat white wine yellow
        """.split()
    )
)

# Function words and generic modifiers that never count as title nouns; every
# other token with a letter does (spaCy's small English model tags most
# title-cased product-name words as NOUN or PROPN, which this approximates).
_NON_NOUNS: frozenset[str] = frozenset(
    """
    a about above after all also an and any are as at be because been best but by
    can could did do does each easy extra for from fully great has have high his
    her how if in inch inches into is it its just large latest less low made more
    most new no non not now of off on one only or other our out over per plus premium
    pro small so super than that the their them then there these they this those
    through to too two three four five six under up upgraded very was we were what
    when which while who will with without x you your
    """.split()
)

_TOKEN = re.compile(r"[^\W_]+(?:['.-][^\W_]+)*", re.UNICODE)

# thefuzz's force_ascii drops code points 128..255 before processing.
_LATIN1_DROP = {code: None for code in range(128, 256)}


def _thefuzz_process(text: str) -> str:
    return default_process(str(text).translate(_LATIN1_DROP))


def fuzzy_token_set_ratio(a: str, b: str) -> int:
    """``thefuzz.fuzz.token_set_ratio(a, b)``: processed token-set similarity, 0..100, rounded."""
    return int(round(fuzz.token_set_ratio(_thefuzz_process(a), _thefuzz_process(b))))


def normalize_color(value: str) -> str:
    """The first of :data:`COLOR_WORDS` contained in ``value``, else ``value`` unchanged (as upstream)."""
    for color in COLOR_WORDS:
        if color in value:
            return color
    return value


def title_nouns(title: str) -> tuple[str, ...]:
    """The lexicon rule for the nouns of a product title: lower-cased, in order, repeats kept.

    A token counts as a noun when it contains a letter and is not in a fixed
    list of function words and generic modifiers. Used for products that do
    not list their own ``nouns`` (the official files).
    """
    return tuple(
        token
        for token in _TOKEN.findall(title.lower())
        if any(c.isalpha() for c in token) and token not in _NON_NOUNS
    )


class RewardProduct(Protocol):
    """What the reward reads from a product."""

    title: str
    attributes: Sequence[str]
    bullet_text_lower: str
    title_lower: str
    description_lower: str
    query: str
    product_category: str
    nouns: Sequence[str]


class RewardGoal(Protocol):
    """What the reward reads from a goal."""

    attributes: Sequence[str]
    goal_options: Sequence[str]
    price_upper: float
    query: str
    product_category: str
    nouns: Sequence[str]
    name: str  # the target's title (read only with a ``nouns_of`` function)


@dataclass(frozen=True)
class TypeReward:
    """The type factor and the facts behind it."""

    r_type: float
    query_match: bool
    category_match: bool
    title_score: float


def _categories(path: str) -> set[str]:
    return {part.strip() for part in path.split("›")}


def type_reward(
    product: RewardProduct,
    goal: RewardGoal,
    nouns_of: Callable[[str], Sequence[str]] | None = None,
) -> TypeReward:
    """``r_type``: 1.0 if the product is the goal's kind, 0.5 / 0.1 / 0.0 as it drifts away.

    ``title_score`` is the number of distinct nouns the two titles share over
    the number of noun tokens in the goal title, repeats counted (0.2 when the
    goal title has none), as upstream computes it. ``r_type`` is
    0.5 when neither the query matches, nor >= 2 categories are shared, nor
    ``title_score > 0.2``; it is 0.1 when ``title_score < 0.1`` and 0.0 when
    ``title_score == 0``.

    The nouns are the product's and goal's own (``nouns``), or, with
    ``nouns_of``, that function of the product's title and the goal's ``name``
    (upstream tags both with spaCy: see :mod:`envs.webshop.nouns`).
    """
    if nouns_of is None:
        product_nouns, goal_nouns = product.nouns, goal.nouns
    else:
        product_nouns, goal_nouns = nouns_of(product.title), nouns_of(goal.name)
    query_match = product.query == goal.query
    category_match = (
        len(_categories(product.product_category) & _categories(goal.product_category)) >= 2
    )
    if goal_nouns:
        title_score = len(set(product_nouns) & set(goal_nouns)) / len(goal_nouns)
    else:
        title_score = 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return TypeReward(r_type, query_match, category_match, title_score)


def attribute_reward(product: RewardProduct, goal_attributes: Sequence[str]) -> int:
    """How many goal attributes the product has (fuzzy on attributes, else substring of its text)."""
    matches = 0
    for goal_attr in goal_attributes:
        if any(
            fuzzy_token_set_ratio(attr, goal_attr) > FUZZY_THRESHOLD for attr in product.attributes
        ):
            matches += 1
        elif (
            goal_attr in product.title_lower
            or goal_attr in product.bullet_text_lower
            or goal_attr in product.description_lower
        ):
            matches += 1
    return matches


def option_reward(chosen_options: Iterable[str], goal_options: Sequence[str]) -> int:
    """How many goal options are among the chosen option values (after colour normalisation)."""
    chosen = [normalize_color(option) for option in chosen_options]
    matches = 0
    for goal_option in goal_options:
        wanted = normalize_color(goal_option)
        if any(fuzzy_token_set_ratio(option, wanted) > FUZZY_THRESHOLD for option in chosen):
            matches += 1
    return matches


def purchase_reward(
    product: RewardProduct,
    goal: RewardGoal,
    price: float,
    chosen_options: Iterable[str],
    nouns_of: Callable[[str], Sequence[str]] | None = None,
) -> tuple[float, dict[str, Any]]:
    """The reward of buying ``product`` at ``price`` with ``chosen_options``, and its components.

    The components use upstream's verbose-info keys (``r_type``, ``r_att``,
    ``w_att``, ``query_match``, ``category_match``, ``title_score``,
    ``r_option``/``w_option`` when the goal has options, ``r_price``/``w_price``)
    plus the raw counts. ``nouns_of`` is as for :func:`type_reward`.
    """
    n_attributes = len(goal.attributes)
    n_options = len(goal.goal_options)
    denominator = n_attributes + n_options + 1
    kind = type_reward(product, goal, nouns_of)
    # Upstream leaves the price term out (None) for a non-positive ceiling.
    price_ok = price <= goal.price_upper if goal.price_upper > 0 else None
    attr_matches = attribute_reward(product, goal.attributes)
    option_matches = option_reward(chosen_options, goal.goal_options)
    total = (attr_matches + option_matches + int(bool(price_ok))) / denominator * kind.r_type
    components: dict[str, Any] = {
        "r_type": kind.r_type,
        "r_att": attr_matches / n_attributes if n_attributes else None,
        "w_att": n_attributes / denominator,
        "query_match": kind.query_match,
        "category_match": kind.category_match,
        "title_score": kind.title_score,
        "num_attr_matches": attr_matches,
        "num_option_matches": option_matches,
    }
    if n_options:
        components["r_option"] = option_matches / n_options
        components["w_option"] = n_options / denominator
    if price_ok is not None:
        components["r_price"] = bool(price_ok)
        components["w_price"] = 1 / denominator
    components["reward"] = total
    return total, components
