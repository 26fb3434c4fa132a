#!/usr/bin/env python
"""ALFWorld-v0 next to upstream (alfworld 0.4.2, TextWorld 1.7) on every shipped game.

Part 1, the env. Upstream's ``AlfredTWEnv`` steps TextWorld's ``PddlEnv``
wrapped in ALFWorld's ``AlfredDemangler``. Both play the same seeded random
command sequences (admissible commands recorded on upstream, an unknown
command every seventh step, 60 commands, so past the 50-turn cap) and every
step is compared: observation, admissible commands in order, won, reward,
and, from the cap on, ALFWorld-v0's refusal (upstream's gym wrapper stays
done after its step cap). The first observation is compared too.

Part 2, the hand-coded expert. Upstream's ``AlfredTWEnv`` gets its expert action from ``AlfredExpert``: ``look``
first, then ``HandCodedTWAgent.act`` after every command (``look`` again when
its choice is not admissible). alfworld 0.4 says ``move X to Y`` where the
expert's state tracking looks for ``put``, so it does not record placements;
on two-object tasks it can lose track of the first object. This script replays
that loop, with upstream's own agent, on every shipped game (through the
project's engine, which gives upstream's observations and admissible commands)
and counts the games won within the 50-step cap, next to ``ALFWorld-v0``'s
fixed expert on the same games. Upstream draws from the global ``random``
module (unseeded); each game is played with ``random.seed(s)`` for each of
``--seeds`` seeds.

The last line is the headline: the share of two-object games upstream's
expert fails. Usage::

    python benchmarks/bench_alfworld_expert_fidelity.py [--seeds 3]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_STEPS = 50  # ALFWorld-v0's registered turn cap
COMMANDS = 60  # per sequence: past the cap
UNKNOWN_COMMAND = "take unicorn 1 from desk 1"
OVER = "The episode is over; call reset() to start a new one."


def compare_env(records, sequences: int) -> Counter:
    """Play every game ``sequences`` times on upstream and on ALFWorld-v0; count disagreements."""
    import gymnasium as gym
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    upstream = AlfredDemangler(PddlEnv(textworld.EnvInfos(admissible_commands=True, won=True)))
    ours = gym.make("ALFWorld-v0", split="train")
    counts: Counter[str] = Counter()
    try:
        for index, record in enumerate(records):
            upstream.load(dict(record.game))
            for sequence in range(sequences):
                rng = random.Random(1000 * index + sequence)
                state = upstream.reset()
                obs, info = ours.reset(options={"task_id": record.task_id})
                counts["sequences"] += 1
                counts["first observation differs"] += obs != state["feedback"]
                upstream_done = False
                for turn in range(1, COMMANDS + 1):
                    if turn % 7 == 0:
                        command = UNKNOWN_COMMAND
                    else:
                        command = rng.choice(sorted(state["admissible_commands"]))
                    obs, reward, terminated, truncated, info = ours.step(command)
                    counts["steps"] += 1
                    if upstream_done or turn > MAX_STEPS:
                        # Upstream's env is done (won, or its step cap): nothing may act.
                        counts["acted after the end"] += obs != OVER or reward != 0
                        continue
                    state, score, done = upstream.step(command)
                    counts["observation differs"] += obs != state["feedback"]
                    if not (terminated or truncated):  # an ended episode lists no actions
                        admissible = sorted(state["admissible_commands"])
                        counts["admissible differs"] += info["admissible_actions"] != admissible
                    counts["won differs"] += info["won"] != bool(state["won"])
                    counts["reward differs"] += float(reward) != float(score)
                    counts["end differs"] += (terminated or truncated) != (
                        bool(state["won"]) or turn == MAX_STEPS
                    )
                    upstream_done = bool(state["won"])
    finally:
        ours.close()
    return counts


def upstream_expert_wins(engine, record, seed: int) -> bool:
    """Play ``record`` with upstream's ``AlfredExpert`` loop (unpatched agent)."""
    from envs.alfworld.experts import upstream_handcoded_agent

    engine.load(record.game)
    state = engine.reset()
    agent = upstream_handcoded_agent(record.traj_data, state["feedback"])
    saved = random.getstate()
    random.seed(seed)
    try:
        command = "look"
        for _ in range(MAX_STEPS):
            state, _accepted = engine.step(command)
            if engine.won:
                return True
            try:
                proposed = agent.act(state, 0, False, command)
            except Exception:  # upstream's timeout: its env raises and the episode stops
                return False
            command = proposed if proposed in engine.admissible_commands else "look"
        return False
    finally:
        random.setstate(saved)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--games", type=int, default=None, help="only the first N games")
    parser.add_argument("--sequences", type=int, default=3, help="random sequences per game")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of upstream's random module")
    args = parser.parse_args()

    from envs.alfworld.data import SPLITS, TASK_TYPES, ShippedGames
    from envs.alfworld.engine import AlfredEngine
    from envs.alfworld.experts import HandcodedExpert, play_expert

    source = ShippedGames()
    records = [source.load(t) for split in SPLITS for t in source.task_ids(split)]
    records = records[: args.games]
    counts = compare_env(records, args.sequences)
    print(
        f"env: {len(records)} games x {args.sequences} sequences, {counts['steps']} steps "
        f"({COMMANDS} commands each, cap {MAX_STEPS})"
    )
    for key in (
        "first observation differs",
        "observation differs",
        "admissible differs",
        "won differs",
        "reward differs",
        "end differs",
        "acted after the end",
    ):
        print(f"  {key:<28} {counts[key]}")
    print()
    engine = AlfredEngine(facts=True)
    games = Counter(r.task_type for r in records)
    ours: Counter[str] = Counter()
    upstream: dict[int, Counter[str]] = {seed: Counter() for seed in range(args.seeds)}
    try:
        for record in records:
            ours[record.task_type] += play_expert(
                engine, HandcodedExpert(), record, max_steps=MAX_STEPS
            ).won
            for seed in range(args.seeds):
                upstream[seed][record.task_type] += upstream_expert_wins(engine, record, seed)
    finally:
        engine.close()

    seeds = range(args.seeds)
    print(f"{len(records)} shipped games; upstream seeds {list(seeds)}; cap {MAX_STEPS} steps")
    print(
        f"{'task type':<34} {'games':>5} {'project':>8} "
        + " ".join(f"{'up s' + str(s):>7}" for s in seeds)
    )
    for task_type in TASK_TYPES.values():
        row = f"{task_type:<34} {games[task_type]:>5} {ours[task_type]:>8} "
        print(row + " ".join(f"{upstream[s][task_type]:>7}" for s in seeds))
    total = f"{'all':<34} {len(records):>5} {sum(ours.values()):>8} "
    print(total + " ".join(f"{sum(upstream[s].values()):>7}" for s in seeds))
    two = "pick_two_obj_and_place"
    failed = sorted(games[two] - upstream[s][two] for s in seeds)
    spread = f"{failed[0]}" if failed[0] == failed[-1] else f"{failed[0]}-{failed[-1]}"
    print(
        f"headline: upstream's expert fails {spread} of {games[two]} two-object games "
        f"(project: {games[two] - ours[two]} of {games[two]})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
