"""``WebShop-v0``: WebShop's text environment, reimplemented in pure Python.

An episode is one goal (an instruction such as "i need a fragrance free face
moisturizer in 3.4 fl oz size, and price lower than 40.00 dollars"). The
agent searches, opens products, picks options and buys; the reward, given on
``click[buy now]`` (which ends the episode), is WebShop's purchase reward.

Observations are upstream's ``text`` mode pages (see :mod:`envs.webshop.pages`).
Actions are ``search[<keywords>]`` and ``click[<button, product id or option
value>]``; the argument is lower-cased, as upstream does. As upstream, a
search works from any page; a click must name one of the page's clickables.
Anything else is an invalid action: the page stays as it was.

``info`` adds ``page`` (``search``, ``results``, ``item``, ``description`` ...,
``done``) to the common keys, and on the purchase step ``reward_components``
(upstream's verbose reward info) and ``purchased`` (asin and options).
``admissible_actions``: ``"full"`` lists executable actions (on a page with a
search bar, ``search[<the instruction's words>]``), ``"compact"`` lists the
template ``search[<keywords>]`` instead; both list every ``click[...]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from envs.core import TextEnv, Transition
from envs.webshop.catalogue import Catalogue, Goal, Product, get_catalogue, goal_search_text
from envs.webshop.nouns import nouns_function
from envs.webshop.pages import (
    BACK_TO_SEARCH,
    BUY_NOW,
    NEXT_PAGE,
    PREV_PAGE,
    PRODUCTS_PER_PAGE,
    SUB_PAGES,
    done_page,
    item_clickables,
    item_page,
    results_clickables,
    results_page,
    search_page,
    sub_page,
)
from envs.webshop.reward import fuzzy_token_set_ratio, normalize_color, purchase_reward
from envs.webshop.search import SEARCH_BACKENDS

__all__ = ["WebShopEnv", "parse_action"]

# Upstream's action grammar: a name, then "[", an argument, "]" (prefix match, greedy).
_ACTION = re.compile(r"(.+)\[(.+)\]")
_SUB_PAGE_BY_KEY = {name.lower(): name for name in SUB_PAGES}
_WON_AT = 1.0 - 1e-9


def parse_action(action: str) -> tuple[str, str | None]:
    """``"click[Buy Now]"`` -> ``("click", "buy now")``; no brackets -> ``(action, None)``.

    The verb is compared case-insensitively; the argument is lower-cased.
    """
    match = _ACTION.match(action)
    if match is None:
        return action.strip().lower(), None
    name, argument = match.groups()
    return name.lower(), argument.lower()


@dataclass
class _Browser:
    """Where the agent is: the page and what it shows."""

    page: str = (
        "search"  # search | results | item | description | features | reviews | attributes | done
    )
    keywords: str = ""
    page_number: int = 1
    results: tuple[Product, ...] = ()
    product: Product | None = None
    options: dict[str, str] = field(default_factory=dict)
    reward: float = 0.0


@dataclass(frozen=True)
class _Plan:
    """The expert's plan for a goal: the query to use, the product and options to buy."""

    query: str
    product: Product | None
    options: dict[str, str]


class WebShopEnv(TextEnv):
    """WebShop as a Gymnasium env over the shipped catalogue or the official files.

    Keyword arguments besides the common ones (``split``, ``admissible_actions``,
    ``expert``, ``render_mode``):

    * ``data_dir``: a folder with upstream's ``items_shuffle*.json``,
      ``items_ins_v2*.json`` and ``items_human_ins.json``; ``products_file``,
      ``attributes_file``, ``human_goals_file`` pick files there and
      ``num_products`` keeps the first N products;
    * ``catalogue_path``: a catalogue file in the project's format (default:
      the shipped one);
    * ``show_attrs``: show the ``Attributes`` button (upstream's option; off);
    * ``search_backend``: ``"python"`` (default), this package's reproduction of
      upstream's Lucene ranking, or ``"lucene"``, a real Lucene index built and
      queried with pyserini (the ``lucene`` extra and Java; see docs/webshop.md);
    * ``nouns``: how the reward finds title nouns: ``"lexicon"`` (default: the
      products' listed nouns, else a lexicon rule) or ``"spacy"`` (spaCy's
      tagger on every title, as upstream; needs ``en_core_web_sm``, or name
      another pipeline with ``"spacy:<name or path>"``).

    Every env of a process that names the same source shares one catalogue
    and one search index.
    """

    splits: ClassVar[tuple[str, ...]] = ("train", "dev", "test")
    max_turns = 15  # Guided-OPD's WebShop cap (the registered cap)

    def __init__(
        self,
        *,
        split: str = "train",
        admissible_actions: str = "full",
        expert: bool | str = False,
        render_mode: str | None = None,
        data_dir: str | Path | None = None,
        catalogue_path: str | Path | None = None,
        products_file: str | Path | None = None,
        attributes_file: str | Path | None = None,
        human_goals_file: str | Path | None = None,
        num_products: int | None = None,
        show_attrs: bool = False,
        search_backend: str = "python",
        nouns: str = "lexicon",
    ) -> None:
        super().__init__(
            split=split,
            admissible_actions=admissible_actions,
            expert=expert,
            render_mode=render_mode,
        )
        self.catalogue: Catalogue = get_catalogue(
            data_dir,
            catalogue_path=catalogue_path,
            products_file=products_file,
            attributes_file=attributes_file,
            human_goals_file=human_goals_file,
            num_products=num_products,
        )
        self.task_ids = list(self.catalogue.split_ids.get(split, []))
        if not self.task_ids:
            raise ValueError(
                f"WebShopEnv: split {split!r} has no goals in {self.catalogue.source} "
                f"({len(self.catalogue.goals)} goals in all; official splits are test = goals "
                "0-499, dev = 500-1499, train = 1500+)."
            )
        self.show_attrs = bool(show_attrs)
        if search_backend not in SEARCH_BACKENDS:
            raise ValueError(
                f"WebShopEnv: unknown search_backend {search_backend!r}; "
                f"choose one of {list(SEARCH_BACKENDS)}."
            )
        self.search_backend = search_backend
        self.nouns = nouns
        self._nouns_of = nouns_function(nouns)  # loads spaCy's model now for "spacy"
        if search_backend != "python":
            self.catalogue.searcher(search_backend)  # build (or fail) now, not on the first search
        self._goal: Goal | None = None
        self._browser = _Browser()
        self._plan: _Plan | None = None

    # -- TextEnv hooks ----------------------------------------------------------

    def _knows_task(self, task_id: str) -> bool:
        # Any goal of the catalogue can be played by id, whatever the split.
        return task_id in self.catalogue.goals_by_id

    def _start_task(self, task_id: str) -> tuple[str, str]:
        self._goal = self.catalogue.goals_by_id[task_id]
        self._browser = _Browser()
        self._plan = None
        return self._render(), self._goal.instruction_text

    def _execute(self, action: str) -> Transition:
        name, argument = parse_action(action)
        if name == "search" and argument is not None:
            self._search(argument, 1)
            return self._transition("search")
        if name == "click" and argument is not None:
            target = self._clickables().get(argument)
            if target is not None:
                return self._click(argument, target)
            return self._transition("click", invalid=True)
        kind = name if name in ("search", "click") else "invalid"
        return self._transition(kind, invalid=True)

    def _admissible_actions(self) -> list[str]:
        actions = []
        if self._browser.page == "search":
            if self.admissible_mode == "full":
                actions.append(f"search[{goal_search_text(self._current_goal())}]")
            else:
                actions.append("search[<keywords>]")
        actions.extend(f"click[{text}]" for text in self._clickables())
        return actions

    def _expert_action(self) -> str | None:
        return self._expert_next()

    # -- pages and transitions ---------------------------------------------------

    def _current_goal(self) -> Goal:
        if self._goal is None:
            raise RuntimeError("WebShopEnv: call reset() first")
        return self._goal

    def _render(self) -> str:
        browser = self._browser
        instruction = self._current_goal().instruction_text
        if browser.page == "search":
            return search_page(instruction)
        if browser.page == "results":
            return results_page(instruction, browser.results, browser.page_number)
        if browser.page == "done":
            product = browser.product
            return done_page(product.asin if product else "", browser.options, browser.reward)
        product = browser.product
        assert product is not None
        if browser.page == "item":
            return item_page(instruction, product, show_attrs=self.show_attrs)
        return sub_page(instruction, product, _SUB_PAGE_BY_KEY[browser.page])

    def _clickables(self) -> dict[str, Any]:
        browser = self._browser
        if browser.page == "results":
            return results_clickables(browser.results, browser.page_number)
        if browser.page == "item" and browser.product is not None:
            return item_clickables(browser.product, show_attrs=self.show_attrs)
        if browser.page in _SUB_PAGE_BY_KEY:
            return {BACK_TO_SEARCH.lower(): BACK_TO_SEARCH, PREV_PAGE.lower(): PREV_PAGE}
        # The search page's only button is the search button, which click[] may not press.
        return {}

    def _search(self, keywords: str, page_number: int) -> None:
        # Upstream re-runs the search on every results page; the index caches queries.
        browser = self._browser
        browser.results = self.catalogue.search(keywords, backend=self.search_backend)
        browser.page = "results"
        browser.keywords = keywords
        browser.page_number = page_number
        browser.product = None
        browser.options = {}

    def _click(self, key: str, target: Any) -> Transition:
        browser = self._browser
        if key == BUY_NOW.lower():
            return self._buy()
        if key == BACK_TO_SEARCH.lower():
            self._browser = _Browser()
        elif key == NEXT_PAGE.lower() and browser.page == "results":
            self._search(browser.keywords, browser.page_number + 1)
        elif key == PREV_PAGE.lower() and browser.page == "results":
            self._search(browser.keywords, browser.page_number - 1)
        elif key == PREV_PAGE.lower() and browser.page in _SUB_PAGE_BY_KEY:
            browser.page = "item"
        elif key == PREV_PAGE.lower() and browser.page == "item":
            self._search(browser.keywords, browser.page_number)
        elif key in _SUB_PAGE_BY_KEY and browser.page == "item":
            browser.page = key
        elif browser.page == "results":
            browser.product = self.catalogue.product(target)
            browser.page = "item"
        elif browser.page == "item" and isinstance(target, tuple) and target[0] == "option":
            browser.options[target[1]] = key
        return self._transition("click")

    def _buy(self) -> Transition:
        browser = self._browser
        product = browser.product
        assert product is not None
        reward, components = purchase_reward(
            product,
            self._current_goal(),
            product.price,
            list(browser.options.values()),
            nouns_of=self._nouns_of,
        )
        browser.page = "done"
        browser.reward = reward
        return Transition(
            observation=self._render(),
            score=reward,
            terminated=True,
            won=reward >= _WON_AT,
            action_type="click",
            extra_info={
                "page": "done",
                "reward_components": components,
                "purchased": {"asin": product.asin, "options": dict(browser.options)},
            },
        )

    def _transition(self, action_type: str, *, invalid: bool = False) -> Transition:
        return Transition(
            observation=self._render(),
            score=0.0,
            invalid_action=invalid,
            action_type=action_type,
            extra_info={"page": self._browser.page},
        )

    def _extra_info(self) -> dict[str, Any]:
        return {"page": self._browser.page}

    # -- the expert ---------------------------------------------------------------

    def _expert_plan(self) -> _Plan:
        if self._plan is None:
            self._plan = plan_for_goal(
                self.catalogue,
                self._current_goal(),
                backend=self.search_backend,
                nouns_of=self._nouns_of,
            )
        return self._plan

    def _expert_next(self) -> str | None:
        browser = self._browser
        plan = self._expert_plan()
        if browser.page == "search":
            return f"search[{plan.query}]"
        if plan.product is None:
            return "click[back to search]"  # nothing to buy: start over
        target = plan.product
        if browser.page == "results":
            position = next((i for i, p in enumerate(browser.results) if p is target), None)
            if position is None:
                return "click[back to search]"
            wanted_page = position // PRODUCTS_PER_PAGE + 1
            if wanted_page == browser.page_number:
                return f"click[{target.asin.lower()}]"
            return "click[next >]" if wanted_page > browser.page_number else "click[< prev]"
        if browser.page == "item":
            if browser.product is not target:
                return "click[< prev]"
            for group, value in plan.options.items():
                if browser.options.get(group) != value:
                    return f"click[{value}]"
            return "click[buy now]"
        if browser.page in _SUB_PAGE_BY_KEY:
            return "click[< prev]"
        return None


def _best_options(product: Product, goal: Goal) -> dict[str, str]:
    """For each goal option, the product's closest value (group -> value) when it matches."""
    chosen: dict[str, str] = {}
    clickable = item_clickables(product)
    for goal_option in goal.goal_options:
        wanted = normalize_color(goal_option)
        best: tuple[int, str, str] | None = None
        for group, values in product.options.items():
            if group in chosen:
                continue
            for value in values:
                # A value shared by two groups can only be clicked into the last one.
                if clickable.get(value) != ("option", group):
                    continue
                score = (
                    101
                    if value == goal_option
                    else fuzzy_token_set_ratio(normalize_color(value), wanted)
                )
                if best is None or score > best[0]:
                    best = (score, group, value)
        if best is not None and best[0] > 85:
            chosen[best[1]] = best[2]
    return chosen


def plan_for_goal(
    catalogue: Catalogue,
    goal: Goal,
    *,
    backend: str = "python",
    nouns_of: Callable[[str], Sequence[str]] | None = None,
) -> _Plan:
    """The expert's plan: which query finds the target, and which options to pick.

    The goal's own words are tried first, then the target's title; a target
    on the first results page is preferred. Without a findable target the
    plan buys the best-rewarded product among the goal-words results.
    """
    words = goal_search_text(goal)
    target = catalogue.product(goal.asin)
    if target is not None:
        queries = [words, target.title.lower()]
        found = {q: catalogue.search(q, backend=backend) for q in queries}
        for limit in (PRODUCTS_PER_PAGE, None):
            for query in queries:
                results = found[query][:limit] if limit else found[query]
                if any(p is target for p in results):
                    return _Plan(query, target, _best_options(target, goal))
    best: tuple[float, Product, dict[str, str]] | None = None
    for product in catalogue.search(words, backend=backend):
        options = _best_options(product, goal)
        reward, _ = purchase_reward(
            product, goal, product.price, list(options.values()), nouns_of=nouns_of
        )
        if best is None or reward > best[0]:
            best = (reward, product, options)
    if best is None:
        return _Plan(words, None, {})
    return _Plan(words, best[1], best[2])
