"""Loading upstream's official WebShop files (tiny ones written here) and the shipped format."""

from __future__ import annotations

import json
import random
from pathlib import Path

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers the ids)
from envs.webshop.catalogue import (
    CatalogueError,
    get_catalogue,
    load_official,
    load_shipped,
    parse_pricing,
    price_ceiling,
)

PRODUCTS = [
    {
        "asin": "B000TEST01",
        "name": "Zorbo Tea Tree Shampoo for Dry Scalp",
        "full_description": "A gentle shampoo with tea tree oil.",
        "small_description": ["Sulfate free formula", "Safe for color treated hair"],
        "pricing": "$12.99",
        "images": ["https://example.invalid/1.jpg"],
        "customization_options": {
            "Size": [{"value": "8 Fl Oz", "image": None}, {"value": "16 Fl Oz", "image": None}],
            "Scent": [{"value": "Mint/Lemon", "image": None}],
        },
        "category": "beauty",
        "query": " Shampoo ",
        "product_category": "Beauty & Personal Care › Hair Care › Shampoos",
        "average_rating": 4.5,  # upstream never shows ratings
    },
    {
        "asin": "B000TEST02",
        "name": "Quanta Noise Cancelling Headphones",
        "full_description": "Over-ear headphones.",
        "small_description": "Forty hours of battery",  # a string, not a list
        "pricing": "$20.00 to $40.00",
        "images": [""],
        "customization_options": None,
        "category": "electronics",
        "query": "headphones",
        "product_category": "Electronics › Headphones",
    },
    {
        "asin": "B000TEST03",
        "name": "Plain Mug",
        "full_description": "",
        "small_description": [],
        "pricing": "",  # missing price: upstream charges $100.0
        "images": [""],
        "customization_options": {},
        "category": "home",
        "query": "mug",
        "product_category": "Home › Kitchen",
    },
    {"asin": "nan", "name": "skipped: bad asin"},
    {"asin": "B000TOOLONGASIN", "name": "skipped: asin over 10 characters"},
    {
        "asin": "B000TEST01",
        "name": "skipped: duplicate asin",
        "pricing": "$1",
        "customization_options": {},
        "category": "x",
        "query": "x",
        "product_category": "x",
    },
]
ATTRIBUTES = {
    "B000TEST01": {"attributes": ["tea tree", "sulfate free"], "instruction": "unused"},
    "B000TEST02": {"attributes": ["noise cancelling"]},
}
HUMAN = {
    "B000TEST01": [
        {
            "instruction": "i need a tea tree shampoo in 16 fl oz.",
            "instruction_attributes": ["tea tree"],
            "instruction_options": ["16 fl oz"],
        },
        {
            "instruction": "dropped: no attributes",
            "instruction_attributes": [],
            "instruction_options": [],
        },
        {
            "instruction": "i want a mint shampoo that is sulfate free",
            "instruction_attributes": ["sulfate free"],
            "instruction_options": {"scent": "mint | lemon"},  # dict form: values are used
        },
    ],
    "B000TEST02": [
        {
            "instruction": "noise cancelling headphones please",
            "instruction_attributes": ["noise cancelling"],
            "instruction_options": [],
        }
    ],
}


def write_official(folder: Path, suffix: str = "_tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"items_shuffle{suffix}.json").write_text(json.dumps(PRODUCTS))
    (folder / f"items_ins_v2{suffix}.json").write_text(json.dumps(ATTRIBUTES))
    (folder / "items_human_ins.json").write_text(json.dumps(HUMAN))
    return folder


def test_official_products_are_converted_as_upstream_loads_them(tmp_path: Path) -> None:
    catalogue = load_official(write_official(tmp_path))
    assert [p.asin for p in catalogue.products] == ["B000TEST01", "B000TEST02", "B000TEST03"]
    shampoo, headphones, mug = catalogue.products
    assert shampoo.options == {"size": ("8 fl oz", "16 fl oz"), "scent": ("mint | lemon",)}
    assert shampoo.query == "shampoo"
    assert shampoo.price_text == "$12.99" and shampoo.price == 12.99
    assert shampoo.rating == "N.A." and shampoo.reviews == ()
    assert shampoo.attributes == ("tea tree", "sulfate free")
    assert shampoo.nouns == ("zorbo", "tea", "tree", "shampoo", "dry", "scalp")
    assert headphones.bullet_points == ("Forty hours of battery",)
    assert headphones.pricing == (20.0, 40.0) and headphones.price_text == "$20.0 to $40.0"
    assert 20.0 <= headphones.price <= 40.0
    assert headphones.options == {}
    assert mug.attributes == ("DUMMY_ATTR",)  # no items_ins_v2 entry
    assert mug.price == 100.0 and mug.price_text == "$100.0"
    assert catalogue.product("b000test02") is headphones


def test_official_goals_follow_upstreams_order_and_price_rule(tmp_path: Path) -> None:
    catalogue = load_official(write_official(tmp_path))
    # Goals in product order (the attribute-less one dropped), then shuffled with seed 233.
    order = ["tea tree 16 oz", "mint sulfate free", "headphones"]
    random.Random(233).shuffle(order)
    texts = {
        "tea tree 16 oz": "i need a tea tree shampoo in 16 fl oz",
        "mint sulfate free": "i want a mint shampoo that is sulfate free",
        "headphones": "noise cancelling headphones please",
    }
    goals = catalogue.goals
    assert [g.goal_id for g in goals] == ["goal-00000", "goal-00001", "goal-00002"]
    for goal, key in zip(goals, order):
        assert goal.instruction_text.startswith(texts[key])  # trailing "." stripped
        product = catalogue.product(goal.asin)
        assert goal.name == product.title and goal.query == product.query
        # The ceiling is one of the next four $10 steps above the price (never the first).
        steps = [10.0 * i for i in range(1, 100) if 10.0 * i > product.price][:4]
        assert goal.price_upper in steps[1:]
        assert goal.instruction_text.endswith(
            f", and price lower than {goal.price_upper:.2f} dollars"
        )
    mint = next(g for g in goals if "mint" in g.instruction_text)
    assert mint.goal_options == ("mint | lemon",)
    assert catalogue.split_ids == {"test": [g.goal_id for g in goals], "dev": [], "train": []}
    # Loading twice gives the same goals: every draw is seeded.
    again = load_official(tmp_path)
    assert [(g.instruction_text, g.price_upper) for g in again.goals] == [
        (g.instruction_text, g.price_upper) for g in goals
    ]


def test_env_plays_the_official_files_and_its_expert_scores_one(tmp_path: Path) -> None:
    folder = write_official(tmp_path)
    env = gym.make("WebShop-v0", data_dir=str(folder), split="test", expert=True)
    assert env.unwrapped.task_ids == ["goal-00000", "goal-00001", "goal-00002"]
    for task_id in env.unwrapped.task_ids:
        obs, info = env.reset(options={"task_id": task_id})
        assert obs.startswith("WebShop [SEP] Instruction: [SEP] ")
        total = 0.0
        for _ in range(15):
            obs, reward, terminated, truncated, info = env.step(info["expert_action"])
            total += reward
            if terminated or truncated:
                break
        assert total == 1.0, (task_id, info.get("reward_components"))
    with pytest.raises(ValueError, match="split 'train' has no goals"):
        gym.make("WebShop-v0", data_dir=str(folder))


def test_num_products_keeps_the_first_records(tmp_path: Path) -> None:
    catalogue = load_official(write_official(tmp_path), num_products=1)
    assert [p.asin for p in catalogue.products] == ["B000TEST01"]
    assert {g.asin for g in catalogue.goals} == {"B000TEST01"}


def test_file_choice_and_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogueError, match="is not a folder"):
        load_official(tmp_path / "missing")
    with pytest.raises(CatalogueError, match=r"no product file \(items_shuffle\*\.json\)"):
        load_official(tmp_path)
    folder = write_official(tmp_path / "two")
    # A second product/attribute pair: products become ambiguous, attributes follow products.
    (folder / "items_shuffle_1000.json").write_text(json.dumps(PRODUCTS[:1]))
    (folder / "items_ins_v2_1000.json").write_text(json.dumps(ATTRIBUTES))
    with pytest.raises(CatalogueError, match="several product files"):
        load_official(folder)
    catalogue = load_official(folder, products_file="items_shuffle_1000.json")
    assert len(catalogue.products) == 1 and "items_ins_v2_1000.json" in catalogue.source
    with pytest.raises(CatalogueError, match="does not exist"):
        load_official(folder, products_file="nope.json")
    broken = write_official(tmp_path / "broken")
    (broken / "items_human_ins.json").write_text("{not json")
    with pytest.raises(CatalogueError, match="not valid JSON"):
        load_official(broken)
    (broken / "items_human_ins.json").write_text("[]")
    with pytest.raises(CatalogueError, match="JSON object keyed by asin"):
        load_official(broken)
    with pytest.raises(CatalogueError, match="num_products must be a positive integer"):
        load_official(write_official(tmp_path / "n"), num_products=0)
    with pytest.raises(CatalogueError, match="need data_dir"):
        get_catalogue(num_products=3)


def test_shipped_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps({"products": []}))
    with pytest.raises(CatalogueError, match="not a mentorgym-webshop-catalogue file"):
        load_shipped(path)
    doc = {
        "format": "mentorgym-webshop-catalogue",
        "splits": {"test": [0, None]},
        "products": [PRODUCTS[0]],
        "goals": [
            {
                "goal_id": "g1",
                "asin": "B000NOPE00",
                "instruction_text": "x",
                "attributes": ["a"],
                "price_upper": 10,
            }
        ],
    }
    path.write_text(json.dumps(doc))
    with pytest.raises(CatalogueError, match="is not in the catalogue"):
        load_shipped(path)
    doc["goals"][0]["asin"] = "B000TEST01"
    path.write_text(json.dumps(doc))
    catalogue = load_shipped(path)
    assert catalogue.split_ids == {"test": ["g1"]}
    # A gym.make with a bad source fails with the same clear message.
    with pytest.raises(CatalogueError, match="no such file"):
        gym.make("WebShop-v0", catalogue_path=str(tmp_path / "absent.json"))


def test_the_catalogue_is_loaded_once_per_source(tmp_path: Path) -> None:
    folder = write_official(tmp_path)
    first = get_catalogue(folder)
    assert get_catalogue(str(folder)) is first
    assert get_catalogue(folder, num_products=2) is not first
    assert get_catalogue() is get_catalogue()


def test_pricing_and_ceiling_rules() -> None:
    assert parse_pricing("$12.99") == ((12.99,), "$12.99")
    assert parse_pricing("$1,299.00") == ((1299.0,), "$1299.0")
    assert parse_pricing("$10 to $20") == ((10.0, 20.0), "$10.0 to $20.0")
    assert parse_pricing(None) == ((100.0,), "$100.0")
    assert parse_pricing("free") == ((100.0,), "$100.0")
    upper, clause = price_ceiling(12.5, random.Random(0))
    assert upper in (30.0, 40.0, 50.0) and clause == f", and price lower than {upper:.2f} dollars"
    assert price_ceiling(985.0, random.Random(0)) == (1_000_000.0, "")  # one step left: none
