"""WebShop's purchase reward, component by component, on hand-made products and goals."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from envs.webshop.reward import (
    COLOR_WORDS,
    attribute_reward,
    fuzzy_token_set_ratio,
    normalize_color,
    option_reward,
    purchase_reward,
    title_nouns,
    type_reward,
)


@dataclass
class FakeProduct:
    title: str = "Acme Lavender Body Lotion"
    attributes: tuple[str, ...] = ("paraben free", "shea butter")
    bullet_points: tuple[str, ...] = ("Absorbs fast",)
    description: str = "A light lotion for dry skin."
    query: str = "body lotion"
    product_category: str = "Beauty › Skin Care › Body › Lotions"
    nouns: tuple[str, ...] = ("acme", "lavender", "body", "lotion")

    @property
    def title_lower(self) -> str:
        return self.title.lower()

    @property
    def bullet_text_lower(self) -> str:
        return " ".join(self.bullet_points).lower()

    @property
    def description_lower(self) -> str:
        return self.description.lower()


@dataclass
class FakeGoal:
    attributes: tuple[str, ...] = ("paraben free",)
    goal_options: tuple[str, ...] = ()
    price_upper: float = 30.0
    query: str = "body lotion"
    product_category: str = "Beauty › Skin Care › Body › Lotions"
    nouns: tuple[str, ...] = field(default=("acme", "lavender", "body", "lotion"))


# -- the fuzzy score reproduces thefuzz.fuzz.token_set_ratio ----------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("essential oil", "essential oils", 96),  # Indel ratio 96.3 rounded
        ("powder snow", "cool powder snow", 100),  # one token set inside the other
        ("Sulfate-Free!", "sulfate free", 100),  # case and punctuation are processed away
        ("red", "blue", 29),  # one shared character of seven
        ("", "anything", 0),
        ("caf\u00e9 latte", "caf latte", 100),  # force_ascii drops code points 128..255
        ("\u00c4\u00d6\u00dc", "aou", 0),  # ... so these letters vanish rather than fold
        ("9", "9.5", 100),  # "9" is a subset of the tokens {"9", "5"}
    ],
)
def test_fuzzy_score_matches_thefuzz(a: str, b: str, expected: int) -> None:
    assert fuzzy_token_set_ratio(a, b) == expected
    assert fuzzy_token_set_ratio(b, a) == expected


def test_normalize_color_takes_the_alphabetically_first_colour_contained() -> None:
    assert normalize_color("navy blue") == "blue"  # 'blue' sorts before 'navy'
    assert normalize_color("rose gold") == "gold"
    assert normalize_color("x-large") == "x-large"  # no colour: unchanged
    assert normalize_color("standard") == "tan"  # substring rule, as upstream


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        # Values where the project's former list and upstream's disagreed (issue 25).
        ("light pink", "light"),
        ("pink", "pink"),
        ("hazelnut", "hazelnut"),
        ("dark grey", "dark"),
        ("crystal clear", "crystal"),
        ("washed blue", "ash"),
        ("vanilla bean", "vanilla bean"),
        ("heather gray", "gray"),
        ("royal blue", "blue"),
        ("natural", "natural"),
    ],
)
def test_normalize_color_is_upstreams(value: str, normalised: str) -> None:
    assert normalize_color(value) == normalised


def test_colour_list_is_upstreams_in_its_order() -> None:
    assert len(COLOR_WORDS) == 102 and list(COLOR_WORDS) == sorted(COLOR_WORDS)
    assert {"alabaster", "stonewash", "skull", "light", "dark"} <= set(COLOR_WORDS)
    assert not {"clear", "hazel", "vanilla", "amber"} & set(COLOR_WORDS)


# -- attributes ----------------------------------------------------------------------


def test_attribute_matches_by_fuzzy_attribute_then_by_text() -> None:
    product = FakeProduct(
        attributes=("essential oils",),
        title="Acme Tea Tree Shampoo",
        bullet_points=("Made with natural ingredients",),
        description="Gentle and sulfate free.",
    )
    assert attribute_reward(product, ["essential oil"]) == 1  # fuzzy 96 > 85
    assert attribute_reward(product, ["tea tree"]) == 1  # in the title
    assert attribute_reward(product, ["natural ingredients"]) == 1  # in a bullet point
    assert attribute_reward(product, ["sulfate free"]) == 1  # in the description
    assert attribute_reward(product, ["gluten free"]) == 0
    assert attribute_reward(product, ["essential oil", "tea tree", "gluten free"]) == 2


def test_attribute_fuzzy_threshold_is_strict() -> None:
    # token_set_ratio('blue', 'glue') = 75: below the threshold, and not a substring.
    product = FakeProduct(attributes=("glue",), title="", bullet_points=(), description="")
    assert fuzzy_token_set_ratio("glue", "blue") <= 85
    assert attribute_reward(product, ["blue"]) == 0


# -- options -------------------------------------------------------------------------


def test_options_match_after_colour_normalisation_and_fuzzily() -> None:
    assert option_reward(["navy blue", "x-large"], ["blue", "x-large"]) == 2
    assert option_reward(["pack of 12", "xl"], ["pack of 12", "xl", "grey"]) == 2
    assert option_reward(["medium roast 12 ounce"], ["12 ounce"]) == 1  # token subset
    # Upstream's list has "dark" and "light": such values normalise to them.
    assert option_reward(["dark roast 12 ounce"], ["12 ounce"]) == 0
    assert option_reward(["pink"], ["light pink"]) == 0
    assert option_reward(["small"], ["x-large"]) == 0
    assert option_reward([], ["blue"]) == 0
    assert option_reward(["blue"], []) == 0


# -- the type factor: every branch ---------------------------------------------------


def test_type_reward_exact_product_is_one() -> None:
    result = type_reward(FakeProduct(), FakeGoal())
    assert (result.r_type, result.query_match, result.category_match, result.title_score) == (
        1.0,
        True,
        True,
        1.0,
    )


def test_type_reward_category_match_keeps_one_with_a_weak_title() -> None:
    # 1 shared noun of 8 goal nouns: 0.125 (>= 0.1, not > 0.2); 2 shared categories.
    goal = FakeGoal(query="other", nouns=("a", "b", "c", "d", "e", "f", "g", "lotion"))
    product = FakeProduct(product_category="Beauty › Skin Care › Face")
    result = type_reward(product, goal)
    assert result.category_match and not result.query_match
    assert result.title_score == pytest.approx(0.125)
    assert result.r_type == 1.0


def test_type_reward_title_alone_above_point_two_keeps_one() -> None:
    goal = FakeGoal(query="other", product_category="Toys › Games", nouns=("body", "x", "y", "z"))
    result = type_reward(FakeProduct(), goal)  # 1/4 = 0.25 > 0.2
    assert not result.query_match and not result.category_match
    assert result.r_type == 1.0


def test_type_reward_half_when_nothing_matches_enough() -> None:
    goal = FakeGoal(
        query="other", product_category="Toys › Games", nouns=("body", "v", "w", "x", "y")
    )
    result = type_reward(FakeProduct(), goal)  # 1/5 = 0.2: not > 0.2, not < 0.1
    assert result.title_score == pytest.approx(0.2)
    assert result.r_type == 0.5


def test_type_reward_point_one_for_a_very_weak_title_even_with_a_query_match() -> None:
    nouns = ("body",) + tuple(f"n{i}" for i in range(11))  # 1/12 < 0.1
    result = type_reward(FakeProduct(), FakeGoal(nouns=nouns))
    assert result.query_match and result.r_type == 0.1


def test_type_reward_zero_without_shared_nouns_even_with_query_and_category() -> None:
    result = type_reward(FakeProduct(), FakeGoal(nouns=("tent", "camping")))
    assert result.query_match and result.category_match
    assert result.title_score == 0.0 and result.r_type == 0.0


def test_type_reward_goal_without_nouns_scores_point_two() -> None:
    assert type_reward(FakeProduct(), FakeGoal(nouns=())).r_type == 1.0  # query match
    lone = FakeGoal(nouns=(), query="other", product_category="Toys › Games")
    result = type_reward(FakeProduct(), lone)
    assert result.title_score == 0.2 and result.r_type == 0.5


def test_title_score_counts_repeated_goal_nouns_in_the_denominator() -> None:
    # Upstream divides the distinct shared nouns by the goal's noun tokens, repeats included.
    goal = FakeGoal(nouns=("running", "shoes", "road", "running"))
    product = FakeProduct(nouns=("running", "shoes", "road"))
    assert type_reward(product, goal).title_score == pytest.approx(3 / 4)


def test_title_nouns_lexicon_rule() -> None:
    assert title_nouns("The New Sulfate-Free Shampoo for Men, 2 Pack") == (
        "sulfate-free",
        "shampoo",
        "men",
        "pack",
    )
    assert title_nouns("Running Shoes, Road Running") == ("running", "shoes", "road", "running")
    assert title_nouns("12 34") == ()


# -- the whole formula -------------------------------------------------------------


def test_purchase_reward_formula_and_components() -> None:
    goal = FakeGoal(
        attributes=("paraben free", "fragrance free"),
        goal_options=("lavender", "8 fl oz"),
        price_upper=20.0,
    )
    product = FakeProduct()
    # attributes 1/2, options 1/2 (lavender only), price ok: (1 + 1 + 1) / 5 * 1.0
    reward, parts = purchase_reward(product, goal, 12.5, ["lavender", "16 fl oz"])
    assert reward == pytest.approx(3 / 5)
    assert parts["r_type"] == 1.0 and parts["r_att"] == 0.5 and parts["r_option"] == 0.5
    assert parts["r_price"] is True
    assert parts["w_att"] == pytest.approx(2 / 5)
    assert parts["w_option"] == pytest.approx(2 / 5)
    assert parts["w_price"] == pytest.approx(1 / 5)
    assert parts["reward"] == reward

    # Over the price ceiling: the price term drops out.
    reward, parts = purchase_reward(product, goal, 25.0, ["lavender", "8 fl oz"])
    assert reward == pytest.approx(3 / 5) and parts["r_price"] is False

    # Everything right: 1.0.
    perfect_goal = FakeGoal(attributes=("paraben free",), goal_options=("lavender",))
    reward, _ = purchase_reward(product, perfect_goal, 10.0, ["lavender"])
    assert reward == 1.0


def test_purchase_reward_scales_by_type_and_omits_option_weights_without_options() -> None:
    goal = FakeGoal(nouns=("body", "v", "w", "x", "y"), query="other", product_category="Toys")
    reward, parts = purchase_reward(FakeProduct(), goal, 10.0, [])
    assert parts["r_type"] == 0.5
    assert reward == pytest.approx((1 + 1) / 2 * 0.5)
    assert "r_option" not in parts and "w_option" not in parts


def test_non_positive_price_ceiling_leaves_the_price_term_out() -> None:
    reward, parts = purchase_reward(FakeProduct(), FakeGoal(price_upper=0.0), 10.0, [])
    assert "r_price" not in parts
    assert reward == pytest.approx(1 / 2)
