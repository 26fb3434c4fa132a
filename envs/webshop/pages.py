"""WebShop's pages in its ``text`` observation mode, written directly as text.

Upstream renders HTML templates and joins the page's visible text nodes,
each stripped, empty ones dropped, with `` [SEP] ``. These functions emit the
same strings without any HTML, and list each page's clickables the way
upstream's ``get_available_actions`` does: the button texts (lower-cased) in
page order, then product ids (lower-cased), then option values.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from envs.webshop.catalogue import Product

__all__ = [
    "BACK_TO_SEARCH",
    "BUY_NOW",
    "NEXT_PAGE",
    "PREV_PAGE",
    "PRODUCTS_PER_PAGE",
    "SEP",
    "SUB_PAGES",
    "done_page",
    "item_clickables",
    "item_page",
    "results_clickables",
    "results_page",
    "search_page",
    "sub_page",
]

SEP = " [SEP] "
PRODUCTS_PER_PAGE = 10
BACK_TO_SEARCH = "Back to Search"
NEXT_PAGE = "Next >"
PREV_PAGE = "< Prev"
BUY_NOW = "Buy Now"
#: Item sub-pages, in the order of their buttons ("Attributes" only with show_attrs).
SUB_PAGES: tuple[str, ...] = ("Description", "Features", "Reviews", "Attributes")


def _join(texts: Iterable[str]) -> str:
    # Each text node is stripped and empty ones vanish, as upstream's HTML-to-text step does.
    return SEP.join(s for s in (t.strip() for t in texts) if s)


def _header(instruction: str) -> list[str]:
    return ["Instruction:", instruction, BACK_TO_SEARCH]


def search_page(instruction: str) -> str:
    """The start page: logo, instruction and the search button."""
    return _join(["WebShop", "Instruction:", instruction, "Search"])


def results_page(instruction: str, results: Sequence[Product], page: int) -> str:
    """Page ``page`` (from 1) of ``results``: 10 products as id, title, price."""
    texts = _header(instruction)
    texts.append(f"Page {page} (Total results: {len(results)})")
    if page > 1:
        texts.append(PREV_PAGE)
    texts.append(NEXT_PAGE)
    start = (page - 1) * PRODUCTS_PER_PAGE
    for product in results[start : start + PRODUCTS_PER_PAGE]:
        texts.extend((product.asin, product.title, product.price_text))
    return _join(texts)


def results_clickables(results: Sequence[Product], page: int) -> dict[str, str]:
    """Clickable text -> target on a results page (buttons, then the page's product ids)."""
    clickables = {BACK_TO_SEARCH.lower(): BACK_TO_SEARCH}
    if page > 1:
        clickables[PREV_PAGE.lower()] = PREV_PAGE
    clickables[NEXT_PAGE.lower()] = NEXT_PAGE
    start = (page - 1) * PRODUCTS_PER_PAGE
    for product in results[start : start + PRODUCTS_PER_PAGE]:
        clickables[product.asin.lower()] = product.asin
    return clickables


def item_page(instruction: str, product: Product, *, show_attrs: bool = False) -> str:
    """A product page: option groups and values, title, price, rating, buttons.

    The chosen options are not shown: upstream marks them only in HTML.
    """
    texts = _header(instruction)
    texts.append(PREV_PAGE)
    for name, values in product.options.items():
        texts.append(name)
        texts.extend(values)
    texts.extend((product.title, f"Price: {product.price_text}", f"Rating: {product.rating}"))
    texts.extend(SUB_PAGES if show_attrs else SUB_PAGES[:3])
    texts.append(BUY_NOW)
    return _join(texts)


def item_clickables(product: Product, *, show_attrs: bool = False) -> dict[str, tuple[str, str]]:
    """Clickable text -> (kind, target) on an item page.

    Buttons come first (kind ``"button"``), then option values (kind
    ``"option"``, target the group name). A value offered by several groups
    belongs to the last of them, as in upstream's clickable map.
    """
    clickables: dict[str, tuple[str, str]] = {
        BACK_TO_SEARCH.lower(): ("button", BACK_TO_SEARCH),
        PREV_PAGE.lower(): ("button", PREV_PAGE),
    }
    for name in SUB_PAGES if show_attrs else SUB_PAGES[:3]:
        clickables[name.lower()] = ("button", name)
    clickables[BUY_NOW.lower()] = ("button", BUY_NOW)
    for name, values in product.options.items():
        for value in values:
            clickables[value] = ("option", name)
    return clickables


def sub_page(instruction: str, product: Product, which: str) -> str:
    """A product's Description, Features, Reviews or Attributes page."""
    texts = _header(instruction)
    texts.append(PREV_PAGE)
    if which == "Description":
        texts.append(product.description)
    elif which == "Features":
        texts.extend(product.bullet_points)
    elif which == "Reviews":
        for review in product.reviews:
            texts.extend((f'"{review.title}"', str(review.score), review.body))
    elif which == "Attributes":
        texts.extend(product.attributes)
        texts.extend((product.category, product.query, product.product_category))
    else:
        raise ValueError(f"unknown sub-page {which!r}; expected one of {SUB_PAGES}")
    return _join(texts)


def _html_safe_json(value: object) -> str:
    # What the done page's JSON dump shows: sorted keys, ASCII, HTML-special characters escaped.
    text = json.dumps(value, sort_keys=True)
    for char, code in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("'", "\\u0027")):
        text = text.replace(char, code)
    return text


def done_page(asin: str, options: Mapping[str, str], reward: float) -> str:
    """The page after Buy Now, with the hidden purchase record upstream's page text includes."""
    texts = [
        "Thank you for shopping with us!",
        "Your code:",
        "None",
        "(Paste it in your MTurk interface.)",
        "Purchased",
        "asin",
        asin,
        "options",
        _html_safe_json(dict(options)),
        "attrs",
        "None",
        "category",
        "None",
        "query",
        "None",
        "product category",
        "None",
        "Target",
        "asin",
        "options",
        "attrs",
        "price upper",
        "instuction text",  # sic: upstream's label
        "category",
        "product category",
        "query",
        "Goal",
        "None",
        "Reward",
        "Your score (min 0.0, max 1.0)",
        str(reward),
        "Reward Details",
        "None",
    ]
    return _join(texts)
