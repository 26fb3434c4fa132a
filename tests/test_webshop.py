"""WebShop-v0: pages, actions, navigation, expert, random baseline and the shipped catalogue."""

from __future__ import annotations

import re

import gymnasium as gym
import numpy as np
import pytest

import envs  # noqa: F401  (registers the ids)
from agents.scripted import ExpertAgent, RandomAgent
from envs.panels import default_panel
from envs.webshop.catalogue import DEFAULT_CATALOGUE_PATH, get_catalogue, goal_search_text
from envs.webshop.env import parse_action

GOAL = "goal-00003"  # a test goal with one option (size) and a single-price target


@pytest.fixture
def env():
    environment = gym.make("WebShop-v0", split="test", expert=True)
    yield environment
    environment.close()


def play(environment, actions):
    out = None
    for action in actions:
        out = environment.step(action)
    return out


def first_page_ids(obs: str) -> list[str]:
    return re.findall(r"\[SEP\] (B0[0-9A-Z]{8}) \[SEP\]", obs)


def test_reset_shows_the_search_page(env) -> None:
    obs, info = env.reset(options={"task_id": GOAL})
    goal = env.unwrapped.catalogue.goals_by_id[GOAL]
    assert obs == f"WebShop [SEP] Instruction: [SEP] {goal.instruction_text} [SEP] Search"
    assert info["task"] == goal.instruction_text
    assert info["admissible_actions"] == [f"search[{goal_search_text(goal)}]"]
    assert info["page"] == "search" and info["turn"] == 0
    assert info["expert_action"].startswith("search[")


def test_results_page_layout_and_paging(env) -> None:
    env.reset(options={"task_id": GOAL})
    obs, reward, terminated, truncated, info = env.step("search[protein bars]")
    goal = env.unwrapped.catalogue.goals_by_id[GOAL]
    prefix = f"Instruction: [SEP] {goal.instruction_text} [SEP] Back to Search [SEP] "
    assert obs.startswith(prefix + "Page 1 (Total results: 50) [SEP] Next > [SEP] B0")
    assert "< Prev" not in obs
    ids = first_page_ids(obs)
    assert len(ids) == 10
    # Each result is id, title, price.
    product = env.unwrapped.catalogue.product(ids[0])
    assert f"{product.asin} [SEP] {product.title} [SEP] {product.price_text}" in obs
    assert info["admissible_actions"][:2] == ["click[back to search]", "click[next >]"]
    assert info["admissible_actions"][2:] == [f"click[{i.lower()}]" for i in ids]
    assert info["action_type"] == "search" and not info["invalid_action"]

    obs2, *_, info2 = env.step("click[next >]")
    assert "Page 2 (Total results: 50) [SEP] < Prev [SEP] Next >" in obs2
    assert info2["admissible_actions"][:3] == [
        "click[back to search]",
        "click[< prev]",
        "click[next >]",
    ]
    assert not set(first_page_ids(obs2)) & set(ids)
    # As upstream, Next > stays on the page past the last results.
    obs6 = play(env, ["click[next >]"] * 4)[0]
    assert "Page 6 (Total results: 50) [SEP] < Prev [SEP] Next >" in obs6
    assert first_page_ids(obs6 + " [SEP] ") == []
    obs5 = env.step("click[< prev]")[0]
    assert obs5.startswith(prefix + "Page 5 (Total results: 50)")
    back = env.step("click[back to search]")[0]
    assert back.startswith("WebShop [SEP] Instruction:")


def test_item_page_options_sub_pages_and_prev(env) -> None:
    env.reset(options={"task_id": GOAL})
    obs = env.step("search[protein bars]")[0]
    asin = first_page_ids(obs)[0]
    product = env.unwrapped.catalogue.product(asin)
    item, *_, info = env.step(f"click[{asin.lower()}]")
    texts = item.split(" [SEP] ")
    assert texts[2:4] == ["Back to Search", "< Prev"]
    expected_options = [t for name, values in product.options.items() for t in (name, *values)]
    assert texts[4 : 4 + len(expected_options)] == expected_options
    assert texts[4 + len(expected_options) :] == [
        product.title,
        f"Price: {product.price_text}",
        "Rating: N.A.",
        "Description",
        "Features",
        "Reviews",
        "Buy Now",
    ]
    values = [v for vs in product.options.values() for v in vs]
    assert info["admissible_actions"] == [
        "click[back to search]",
        "click[< prev]",
        "click[description]",
        "click[features]",
        "click[reviews]",
        "click[buy now]",
        *[f"click[{v}]" for v in values],
    ]
    desc = env.step("click[Description]")[0]
    assert desc.endswith(f"Back to Search [SEP] < Prev [SEP] {product.description}")
    item_again = env.step("click[< prev]")[0]
    assert item_again == item
    features = env.step("click[features]")[0]
    assert features.endswith("< Prev [SEP] " + " [SEP] ".join(product.bullet_points))
    env.step("click[< prev]")
    reviews = env.step("click[reviews]")[0]
    assert reviews.endswith("Back to Search [SEP] < Prev")  # no reviews, as upstream
    env.step("click[< prev]")
    results_again = env.step("click[< prev]")[0]
    assert results_again == obs


def test_buying_ends_the_episode_with_the_reward_and_its_components(env) -> None:
    obs, info = env.reset(options={"task_id": GOAL})
    total = 0.0
    while True:
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        total += reward
        if terminated or truncated:
            break
    assert terminated and info["won"] and info["score"] == 1.0 and total == 1.0
    assert info["page"] == "done"
    parts = info["reward_components"]
    assert parts["r_type"] == 1.0 and parts["r_att"] == 1.0 and parts["r_price"] is True
    assert info["purchased"]["asin"] == env.unwrapped.catalogue.goals_by_id[GOAL].asin
    assert obs.startswith("Thank you for shopping with us! [SEP] Your code: [SEP] None")
    assert '[SEP] options [SEP] {"size": ' in obs
    assert obs.endswith("Your score (min 0.0, max 1.0) [SEP] 1.0 [SEP] Reward Details [SEP] None")
    assert info["admissible_actions"] == [] and info["expert_action"] is None


def test_a_wrong_purchase_scores_below_one() -> None:
    environment = gym.make("WebShop-v0", split="test")
    environment.reset(options={"task_id": GOAL})
    goal = environment.unwrapped.catalogue.goals_by_id[GOAL]
    obs = environment.step("search[wireless headphones]")[0]
    asin = first_page_ids(obs)[0]
    assert asin != goal.asin
    environment.step(f"click[{asin}]")
    _, reward, terminated, _, info = environment.step("click[buy now]")
    assert terminated and reward < 1.0 and not info["won"]
    assert info["reward_components"]["r_type"] < 1.0  # headphones are not protein bars


def test_actions_are_case_insensitive_and_bad_ones_leave_the_page(env) -> None:
    obs, info = env.reset(options={"task_id": GOAL})
    obs1 = env.step("SEARCH[Protein BARS]")[0]
    obs2 = env.step("search[protein bars]")[0]
    assert obs1 == obs2
    asin = first_page_ids(obs1)[0]
    for bad in (
        "click[",  # unterminated
        "click[b000000000]",  # unknown product id
        "click[description]",  # not on this page
        "click[search]",
        "buy[now]",
        "search[]",
        "xyzzy",
    ):
        obs, reward, terminated, truncated, info = env.step(bad)
        assert obs == obs2, bad
        assert info["invalid_action"] and reward == 0.0 and not terminated, bad
    assert env.step("buy[now]")[-1]["action_type"] == "invalid"
    assert env.step("click[nope]")[-1]["action_type"] == "click"
    item = env.step(f"CLICK[{asin}]")[0]
    assert "Buy Now" in item


def test_huge_search_strings_are_handled(env) -> None:
    env.reset(options={"task_id": GOAL})
    obs, reward, terminated, truncated, info = env.step("search[" + "x" * (1 << 20) + "]")
    assert info["invalid_action"] and reward == 0.0 and obs.startswith("Nothing happens.")
    long_query = "search[" + " ".join(["protein bars gluten free"] * 300) + "]"
    assert len(long_query) < env.unwrapped.action_space.max_length
    obs, *_, info = env.step(long_query)
    assert not info["invalid_action"] and "Page 1 (Total results: 50)" in obs


def test_search_works_from_any_page_as_upstream(env) -> None:
    env.reset(options={"task_id": GOAL})
    obs = env.step("search[protein bars]")[0]
    env.step(f"click[{first_page_ids(obs)[0]}]")
    obs, *_, info = env.step("search[ground coffee]")
    assert info["page"] == "results" and not info["invalid_action"]
    assert "Page 1 (Total results:" in obs
    # ... but only the search page lists a search action.
    assert not any(a.startswith("search[") for a in info["admissible_actions"])


def test_admissible_modes() -> None:
    compact = gym.make("WebShop-v0", split="test", admissible_actions="compact")
    _, info = compact.reset(options={"task_id": GOAL})
    assert info["admissible_actions"] == ["search[<keywords>]"]
    _, *_, info = compact.step("search[protein bars]")
    assert info["admissible_actions"][0] == "click[back to search]"
    none = gym.make("WebShop-v0", split="test", admissible_actions="none")
    _, info = none.reset(options={"task_id": GOAL})
    assert info["admissible_actions"] == [] and info["expert_action"] is None


def test_show_attrs_adds_the_attributes_page() -> None:
    environment = gym.make("WebShop-v0", split="test", show_attrs=True)
    environment.reset(options={"task_id": GOAL})
    obs = environment.step("search[protein bars]")[0]
    product = environment.unwrapped.catalogue.product(first_page_ids(obs)[0])
    item, *_, info = environment.step(f"click[{product.asin}]")
    assert "Reviews [SEP] Attributes [SEP] Buy Now" in item
    page = environment.step("click[attributes]")[0]
    assert page.endswith(
        " [SEP] ".join(
            [*product.attributes, product.category, product.query, product.product_category]
        )
    )


def test_expert_recovers_from_any_state(env) -> None:
    obs, info = env.reset(options={"task_id": GOAL})
    # Wander off: a wrong search, a wrong product, a sub-page, a wrong option.
    obs = env.step("search[wireless headphones]")[0]
    env.step(f"click[{first_page_ids(obs)[0]}]")
    *_, info = env.step("click[features]")
    for _ in range(12):
        obs, reward, terminated, truncated, info = env.step(info["expert_action"])
        if terminated:
            break
    assert terminated and reward == 1.0


def test_expert_pages_to_a_target_beyond_the_first_page(env) -> None:
    catalogue = env.unwrapped.catalogue
    # A test goal whose target sits on results page 2..5 of its product type's query.
    for task_id in env.unwrapped.task_ids:
        goal = catalogue.goals_by_id[task_id]
        rank = next(
            (i for i, p in enumerate(catalogue.search(goal.query)) if p.asin == goal.asin), 0
        )
        if rank >= 10:
            break
    else:
        pytest.fail("no test goal has its target beyond the first page of its query")
    _, info = env.reset(options={"task_id": task_id})
    *_, info = env.step(f"search[{goal.query}]")
    for _ in range(rank // 10):
        assert info["expert_action"] == "click[next >]"
        *_, info = env.step(info["expert_action"])
    assert info["expert_action"] == f"click[{goal.asin.lower()}]"
    # From a later page, the expert pages back.
    *_, info = env.step("click[next >]")
    assert info["expert_action"] == "click[< prev]"


def test_expert_scores_one_on_every_goal_of_the_default_panel() -> None:
    panel = default_panel("WebShop-v0")
    assert panel.split == "test" and len(panel.task_ids) == 100
    environment = gym.make("WebShop-v0", split=panel.split, **ExpertAgent.env_kwargs)
    agent = ExpertAgent()
    steps = []
    for index, task_id in enumerate(panel.task_ids):
        obs, info = environment.reset(seed=panel.seed_for(index), options={"task_id": task_id})
        agent.reset(info["task"], info)
        total, turns = 0.0, 0
        while turns < 15:
            obs, reward, terminated, truncated, info = environment.step(agent.act(obs, info))
            total, turns = total + reward, turns + 1
            if terminated or truncated:
                break
        assert total == 1.0 and info["won"], task_id
        steps.append(turns)
    assert max(steps) <= 12  # well inside the 15-turn cap


def test_random_agent_scores_far_below_the_expert() -> None:
    panel = default_panel("WebShop-v0")
    environment = gym.make("WebShop-v0", split=panel.split, **RandomAgent.env_kwargs)
    agent = RandomAgent(seed=0)
    totals = []
    for index, task_id in enumerate(panel.task_ids):
        obs, info = environment.reset(seed=panel.seed_for(index), options={"task_id": task_id})
        agent.reset(info["task"], info)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, info = environment.step(agent.act(obs, info))
            total += reward
            done = terminated or truncated
        totals.append(total)
    mean = float(np.mean(totals))
    assert 0.0 < mean < 0.6  # the expert's mean is 1.0
    assert np.mean(np.array(totals) == 1.0) < 0.3


def test_turn_cap_truncates_at_fifteen() -> None:
    environment = gym.make("WebShop-v0", split="test")
    environment.reset(options={"task_id": GOAL})
    for turn in range(1, 16):
        *_, terminated, truncated, info = environment.step("click[nothing]")
        assert truncated == (turn == 15) and not terminated


def test_splits_task_ids_and_seeded_reset() -> None:
    catalogue = get_catalogue()
    sizes = {split: len(ids) for split, ids in catalogue.split_ids.items()}
    assert sizes == {"test": 100, "dev": 200, "train": 2100}
    assert catalogue.split_ids["test"][0] == "goal-00000"
    assert catalogue.split_ids["dev"][0] == "goal-00100"
    assert catalogue.split_ids["train"][0] == "goal-00300"
    train = gym.make("WebShop-v0")  # default split: train
    assert train.unwrapped.task_ids == catalogue.split_ids["train"]
    _, info_a = train.reset(seed=7)
    _, info_b = train.reset(seed=7)
    assert (
        info_a["task_id"] == info_b["task_id"] and info_a["task_id"] in catalogue.split_ids["train"]
    )
    # Any goal of the catalogue can be played by id.
    _, info = train.reset(options={"task_id": "goal-00001"})
    assert info["task_id"] == "goal-00001"
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("WebShop-v0", split="eval")


def test_every_env_of_a_process_shares_one_catalogue_and_index() -> None:
    a = gym.make("WebShop-v0", split="test")
    b = gym.make("WebShop-v0", split="train", expert=True)
    assert a.unwrapped.catalogue is b.unwrapped.catalogue is get_catalogue()
    assert a.unwrapped.catalogue.index is b.unwrapped.catalogue.index


def test_async_vector_env() -> None:
    vec = gym.make_vec("WebShop-v0", num_envs=2, vectorization_mode="async")
    try:
        obs, infos = vec.reset(seed=0)
        assert all(o.startswith("WebShop [SEP] Instruction:") for o in obs)
        obs, rewards, terminated, truncated, infos = vec.step(["search[coffee]", "click[x]"])
        assert obs[0].startswith("Instruction:") and "Total results" in obs[0]
        assert list(infos["invalid_action"]) == [False, True]
    finally:
        vec.close()


def test_parse_action() -> None:
    assert parse_action("click[Buy Now]") == ("click", "buy now")
    assert parse_action("Search[Red Shoes]") == ("search", "red shoes")
    assert parse_action("click[") == ("click[", None)
    assert parse_action("click[a] [b]") == ("click[a] ", "b")  # greedy, as upstream's pattern


def test_search_ranks_by_bm25_and_returns_at_most_fifty() -> None:
    catalogue = get_catalogue()
    hits = catalogue.search("protein bars")
    assert len(hits) == 50 and all(p.query == "protein bars" for p in hits[:10])
    assert catalogue.search("zzzqqq") == ()
    assert catalogue.search("the and of") == ()  # stop words only
    assert catalogue.search("PROTEIN Bars") == hits  # case-insensitive


def test_shipped_catalogue_is_what_the_generator_writes() -> None:
    from tools.make_webshop_catalogue import DEFAULT_SEED, _dump_catalogue, generate

    doc = generate(DEFAULT_SEED)
    assert _dump_catalogue(doc) == DEFAULT_CATALOGUE_PATH.read_text(encoding="utf-8")
    kinds = {p["query"] for p in doc["products"]}
    assert len(doc["products"]) >= 300 and len(kinds) >= 10
    assert len({p["asin"] for p in doc["products"]}) == len(doc["products"])
    assert DEFAULT_CATALOGUE_PATH.stat().st_size < 3_000_000
