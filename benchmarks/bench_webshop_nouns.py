#!/usr/bin/env python
"""How often WebShop-v0's title-noun rules change a reward, against spaCy's tagger (upstream's).

Upstream's type reward compares the spaCy NOUN/PROPN tokens of the purchased
product's title and the goal's product name. ``WebShop-v0`` by default
(``nouns="lexicon"``) uses the nouns the shipped catalogue lists, or, for
products without them (the official files), a lexicon rule. This script plays
seeded random-agent episodes on the shipped catalogue (the goal-words search,
then random clicks, 15 turns) and, for every purchase, computes the reward
three ways: with the listed nouns (the default here), with the lexicon rule
(the default on official files), and with spaCy's tagger (``nouns="spacy"``).
It prints the share of purchases whose reward (and ``r_type``) differs from
spaCy's; the last line is the headline.

Needs a spaCy English pipeline: ``--model`` names an installed one
(default ``en_core_web_sm``, upstream's) or a pipeline folder::

    python benchmarks/bench_webshop_nouns.py [--episodes 2000] [--model PATH]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=2000)
    parser.add_argument("--model", default="en_core_web_sm", help="spaCy pipeline name or folder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import gymnasium as gym

    import envs  # noqa: F401
    from envs.webshop.nouns import NounsUnavailable, SpacyNouns
    from envs.webshop.reward import purchase_reward, title_nouns

    try:
        spacy_nouns = SpacyNouns(model=args.model)
    except NounsUnavailable as error:
        print(f"stopped: {error}")
        return 2
    env = gym.make("WebShop-v0", split="train", max_episode_steps=15)
    catalogue = env.unwrapped.catalogue
    rng = random.Random(args.seed)
    rules = {"listed nouns": None, "lexicon rule": title_nouns}
    differs = {name: {"reward": 0, "r_type": 0} for name in rules}
    purchases = 0
    started = time.perf_counter()
    for episode in range(args.episodes):
        goal_id = catalogue.goals[episode % len(catalogue.goals)].goal_id
        obs, info = env.reset(options={"task_id": goal_id})
        done = False
        while not done:
            actions = info["admissible_actions"]
            obs, reward, terminated, truncated, info = env.step(rng.choice(actions))
            done = terminated or truncated
        if "purchased" not in info:
            continue
        purchases += 1
        goal = catalogue.goals_by_id[goal_id]
        product = catalogue.product(info["purchased"]["asin"])
        options = list(info["purchased"]["options"].values())
        upstream, up_parts = purchase_reward(
            product, goal, product.price, options, nouns_of=spacy_nouns
        )
        for name, nouns_of in rules.items():
            ours, parts = purchase_reward(product, goal, product.price, options, nouns_of=nouns_of)
            differs[name]["reward"] += abs(ours - upstream) > 1e-9
            differs[name]["r_type"] += parts["r_type"] != up_parts["r_type"]
    env.close()
    seconds = time.perf_counter() - started

    print(f"{args.episodes} random-agent episodes, {purchases} purchases ({seconds:.0f} s)")
    print(f"spaCy pipeline: {args.model}")
    print(f"{'nouns':<14} {'reward differs':>15} {'r_type differs':>15}")
    for name, counts in differs.items():
        share = {k: v / max(1, purchases) for k, v in counts.items()}
        print(f"{name:<14} {share['reward']:>15.1%} {share['r_type']:>15.1%}")
    listed = differs["listed nouns"]["reward"] / max(1, purchases)
    rule = differs["lexicon rule"]["reward"] / max(1, purchases)
    print(
        f"headline: the reward differs from spaCy's on {listed:.1%} of random purchases with "
        f"the listed nouns (default), {rule:.1%} with the lexicon rule"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
