"""ALFWorld-v0 on the shipped games and on a folder in ALFWorld's official layout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import envs  # noqa: F401  (registers ALFWorld-v0)
from envs.alfworld.data import SPLITS, TASK_TYPES, ShippedGames
from envs.alfworld.engine import cache_stats
from envs.alfworld.env import ACTION_TYPES, ALFWorldEnv, action_type
from envs.alfworld.generate import generate_dataset
from envs.alfworld.paths import ALFWORLD_DATA_ENV, SHIPPED_DATA_DIR

ROOT = Path(__file__).resolve().parents[1]
BATHROOMS = {"train": range(407, 431), "valid_seen": range(407, 431), "valid_unseen": [424]}


@pytest.fixture(scope="module")
def shipped() -> ShippedGames:
    return ShippedGames()


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ALFWORLD_DATA folder written by the generator (two games per split, bathrooms)."""
    root = tmp_path_factory.mktemp("alfworld-data")
    generate_dataset(
        root,
        games_per_type={"train": 1, "valid_seen": 1, "valid_unseen": 1},
        task_types=["pick_and_place_simple", "pick_two_obj_and_place"],
        seed=11,
        verify="planner",
        floor_plans=BATHROOMS,  # small scenes: quick to check
    )
    return root


def play(env: gym.Env, actions: list[str]) -> tuple[float, dict]:
    total, info = 0.0, {}
    for action in actions:
        _obs, reward, terminated, truncated, info = env.step(action)
        total += float(reward)
        if terminated or truncated:
            break
    return total, info


def test_make_with_no_download_plays_the_shipped_games(shipped: ShippedGames) -> None:
    env = gym.make("ALFWorld-v0")
    try:
        assert env.unwrapped.split == "train"
        assert env.unwrapped.task_ids == shipped.task_ids("train")
        obs, info = env.reset(seed=0)
        assert obs.startswith(
            "-= Welcome to TextWorld, ALFRED! =-\n\nYou are in the middle of a room."
        )
        assert f"Your task is to: {info['task']}" in obs
        assert info["task_type"] in TASK_TYPES.values()
        assert {"look", "inventory", "help"} <= set(info["admissible_actions"])
        assert any(a.startswith("go to ") for a in info["admissible_actions"])
        assert info["admissible_actions"] == sorted(info["admissible_actions"])
    finally:
        env.close()


def test_every_split_has_every_task_type(shipped: ShippedGames) -> None:
    for split in SPLITS:
        types = {shipped.load(task_id).task_type for task_id in shipped.task_ids(split)}
        assert types == set(TASK_TYPES.values()), split


def test_the_walkthrough_wins_with_reward_one(shipped: ShippedGames) -> None:
    task_id = shipped.task_ids("valid_seen")[0]
    walkthrough = shipped.load(task_id).game["walkthrough"]
    env = gym.make("ALFWorld-v0", split="valid_seen", admissible_actions="none")
    try:
        _obs, info = env.reset(options={"task_id": task_id})
        assert info["admissible_actions"] == []
        total, info = play(env, walkthrough)
        assert info["won"] and info["score"] == 1.0 and total == 1.0
        assert info["turn"] == len(walkthrough)
        assert info["action_type"] == action_type(walkthrough[-1])
    finally:
        env.close()


@pytest.mark.parametrize("made", [True, False], ids=["gym.make", "direct"])
def test_the_walkthrough_after_the_turn_cap_wins_nothing(shipped: ShippedGames, made) -> None:
    # 50 x look, then the walkthrough: upstream stays done; so must the env itself,
    # for a harness that ignores `truncated`.
    task_id = next(
        t
        for t in shipped.task_ids("valid_seen")
        if shipped.load(t).task_type == "pick_and_place_simple"
    )
    walkthrough = shipped.load(task_id).game["walkthrough"]
    env = gym.make("ALFWorld-v0", split="valid_seen") if made else ALFWorldEnv(split="valid_seen")
    try:
        env.reset(options={"task_id": task_id})
        flags = [env.step("look")[2:4] for _ in range(50)]
        assert flags[-1] == (False, True) and not any(any(f) for f in flags[:-1])
        for action in walkthrough:
            obs, reward, terminated, truncated, info = env.step(action)
            assert reward == 0.0 and not info["won"] and info["turn"] == 50
            assert obs.startswith("The episode is over")
    finally:
        env.close()


def test_unknown_commands_answer_nothing_happens() -> None:
    env = gym.make("ALFWorld-v0", split="valid_unseen")
    try:
        env.reset(seed=1)
        obs, reward, terminated, _, info = env.step("take unicorn 1 from desk 1")
        assert obs == "Nothing happens." and reward == 0.0 and not terminated
        assert info["invalid_action"] and info["action_type"] == "take"
        obs, _, _, _, info = env.step("Look")  # commands are case-sensitive, as in ALFWorld
        assert obs == "Nothing happens." and info["action_type"] == "invalid"
        obs, _, _, _, info = env.step("look")
        assert not info["invalid_action"] and info["action_type"] == "look"
        assert obs.startswith("You are in the middle of a room.")
    finally:
        env.close()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("go to desk 1", "go to"),
        ("take apple 1 from countertop 2", "take"),
        ("move apple 1 to fridge 1", "move"),
        ("open drawer 3", "open"),
        ("close drawer 3", "close"),
        ("heat egg 1 with microwave 1", "heat"),
        ("cool egg 1 with fridge 1", "cool"),
        ("clean mug 2 with sinkbasin 1", "clean"),
        ("use desklamp 1", "use"),
        ("look", "look"),
        ("inventory", "inventory"),
        ("examine desk 1", "examine"),
        ("go", "invalid"),
        ("jump around", "invalid"),
    ],
)
def test_action_type_is_the_verb_template(command: str, expected: str) -> None:
    assert action_type(command) == expected
    assert expected in ACTION_TYPES


def test_admissible_modes(shipped: ShippedGames) -> None:
    task_id = shipped.task_ids("valid_unseen")[0]
    lists = {}
    for mode in ("full", "compact", "none"):
        env = gym.make("ALFWorld-v0", split="valid_unseen", admissible_actions=mode)
        try:
            _obs, info = env.reset(options={"task_id": task_id})
            lists[mode] = info["admissible_actions"]
        finally:
            env.close()
    assert lists["full"] == lists["compact"] and lists["full"]
    assert lists["none"] == []


def test_expert_types_are_respected(shipped: ShippedGames) -> None:
    # Upstream AlfredTWEnv.init_env passes the expert type where the env goes, so it always
    # builds the hand-coded expert; here expert="planner" gives the planner.
    task_id = shipped.task_ids("valid_seen")[0]
    walkthrough = shipped.load(task_id).game["walkthrough"]
    first_actions = {}
    for kind in (True, "handcoded", "planner"):
        env = gym.make("ALFWorld-v0", split="valid_seen", expert=kind)
        try:
            _obs, info = env.reset(options={"task_id": task_id})
            first_actions[kind] = info["expert_action"]
        finally:
            env.close()
    assert (
        first_actions[True] == first_actions["handcoded"] == "look"
    )  # ALFWorld's hand-coded start
    assert first_actions["planner"] == walkthrough[0]
    with pytest.raises(ValueError, match="expert must be"):
        gym.make("ALFWorld-v0", expert="oracle")


def test_ids_of_the_other_splits_play_too(shipped: ShippedGames) -> None:
    env = gym.make("ALFWorld-v0", split="valid_seen")
    try:
        unseen = shipped.task_ids("valid_unseen")[0]
        _obs, info = env.reset(options={"task_id": unseen})
        assert info["task_id"] == unseen
    finally:
        env.close()


def test_resetting_a_game_again_uses_the_cache(shipped: ShippedGames) -> None:
    task_id = shipped.task_ids("valid_seen")[1]
    first = gym.make("ALFWorld-v0", split="valid_seen")
    second = gym.make("ALFWorld-v0", split="valid_seen", expert=True)
    try:
        obs1, _ = first.reset(options={"task_id": task_id})
        before = cache_stats()
        obs2, _ = first.reset(options={"task_id": task_id})
        obs3, _ = second.reset(options={"task_id": task_id})  # another env, same process
        after = cache_stats()
        assert obs1 == obs2 == obs3
        assert after.problem_misses == before.problem_misses  # no translation again
        assert after.problem_hits > before.problem_hits
    finally:
        first.close()
        second.close()


def test_an_official_layout_folder_is_played_unchanged(official_dir: Path) -> None:
    files = sorted(p for p in official_dir.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    env = gym.make("ALFWorld-v0", split="valid_unseen", data_dir=official_dir)
    try:
        ids = env.unwrapped.task_ids
        on_disk = sorted(
            p.relative_to(official_dir / "json_2.1.1").as_posix()
            for p in (official_dir / "json_2.1.1" / "valid_unseen").rglob("game.tw-pddl")
        )
        assert ids == on_disk and len(ids) == 2
        for task_id in ids:
            game = json.loads((official_dir / "json_2.1.1" / task_id).read_text())
            _obs, info = env.reset(options={"task_id": task_id})
            total, info = play(env, game["walkthrough"])
            assert info["won"] and total == 1.0
    finally:
        env.close()
    assert {p: p.read_bytes() for p in files} == before


def test_alfworld_data_variable_points_at_a_folder(
    official_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ALFWORLD_DATA_ENV, str(official_dir))
    env = gym.make("ALFWorld-v0", split="train")
    try:
        assert all(t.startswith("train/") for t in env.unwrapped.task_ids)
        assert len(env.unwrapped.task_ids) == 2
    finally:
        env.close()
    monkeypatch.setenv(ALFWORLD_DATA_ENV, str(official_dir / "no-games-here"))
    with pytest.warns(UserWarning, match="shipped generated games"):
        env = gym.make("ALFWorld-v0", split="train")
    env.close()


def test_unsolvable_and_unsupported_games_are_skipped_as_alfworld_does(
    official_dir: Path, tmp_path: Path
) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(official_dir, root)
    train = sorted((root / "json_2.1.1" / "train").rglob("game.tw-pddl"))
    assert len(train) == 2
    game = json.loads(train[0].read_text())
    game["solvable"] = False
    train[0].write_text(json.dumps(game))
    sliced = (
        train[1].parent.parent.parent
        / "pick_and_place_simple-AppleSliced-None-Fridge-7"
        / "trial_x"
    )
    shutil.copytree(train[1].parent, sliced)
    env = gym.make("ALFWorld-v0", split="train", data_dir=root)
    try:
        assert env.unwrapped.task_ids == [train[1].relative_to(root / "json_2.1.1").as_posix()]
    finally:
        env.close()
    with pytest.raises(ValueError, match="no solvable games"):
        gym.make("ALFWorld-v0", split="train", data_dir=root, task_types=[2])


def test_bad_arguments_get_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not an ALFWorld data folder"):
        gym.make("ALFWorld-v0", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown split"):
        gym.make("ALFWorld-v0", split="test")
    with pytest.raises(ValueError, match="unknown ALFWorld task type"):
        gym.make("ALFWorld-v0", task_types=[9])


def test_task_types_filter_the_games(shipped: ShippedGames) -> None:
    env = gym.make("ALFWorld-v0", split="train", task_types=[6])
    try:
        assert env.unwrapped.task_ids
        assert all("pick_two_obj_and_place" in t for t in env.unwrapped.task_ids)
    finally:
        env.close()


def test_importing_writes_nothing_into_the_home_cache(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != ALFWORLD_DATA_ENV}
    env["HOME"] = str(tmp_path)
    env["XDG_CACHE_HOME"] = str(tmp_path / ".cache")
    code = (
        "import gymnasium as gym, envs, os\n"
        "e = gym.make('ALFWorld-v0', split='valid_unseen'); e.reset(seed=0); e.step('look')\n"
        "import alfworld.info\n"
        "print(alfworld.info.ALFWORLD_DATA)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(SHIPPED_DATA_DIR)
    assert not (tmp_path / ".cache" / "alfworld").exists()
    assert not any(tmp_path.iterdir()), list(tmp_path.rglob("*"))


def test_episodes_are_the_same_in_another_process(shipped: ShippedGames) -> None:
    # TextWorld keeps facts in sets; their order must not leak into the texts (string hashing
    # differs between processes), or a panel would not be the same evaluation elsewhere.
    task_id = shipped.task_ids("valid_seen")[2]
    code = (
        "import json, sys, gymnasium as gym, envs\n"
        "env = gym.make('ALFWorld-v0', split='valid_seen', expert=True)\n"
        f"obs, info = env.reset(options={{'task_id': {task_id!r}}})\n"
        "texts = [obs, info['admissible_actions']]\n"
        "for _ in range(12):\n"
        "    obs, r, term, trunc, info = env.step(info['expert_action'] or 'look')\n"
        "    texts += [obs, info['admissible_actions']]\n"
        "    if term: break\n"
        "print(json.dumps(texts))\n"
    )
    outputs = []
    for hash_seed in ("1", "2"):
        environ = dict(os.environ, PYTHONHASHSEED=hash_seed)
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) > 4


def test_async_vector_env_plays() -> None:
    envs_ = gym.make_vec(
        "ALFWorld-v0", num_envs=2, vectorization_mode="async", split="valid_unseen"
    )
    try:
        obs, infos = envs_.reset(seed=0)
        assert len(obs) == 2 and all(o.startswith("-= Welcome") for o in obs)
        obs, rewards, terminated, truncated, infos = envs_.step(["look", "inventory"])
        assert obs[1] == "You are not carrying anything."
        assert list(rewards) == [0.0, 0.0]
    finally:
        envs_.close()
