"""The procedural ALFWorld generator, alfworld-generate's counterpart, and packing."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from envs.alfworld.data import (
    GAME_FILE,
    PDDL_FILE,
    SHIPPED_GAMES,
    SPLITS,
    TASK_TYPES,
    OfficialDirectory,
    ShippedGames,
    pack_directory,
)
from envs.alfworld.generate import (
    PLANNER_MEMORY_MB,
    UNSEEN_FLOOR_PLANS,
    GuardedVerifier,
    compile_directory,
    default_floor_plans,
    eligible_floor_plans,
    generate_dataset,
    sample_scene,
    scene_problem,
)
from envs.panels import list_panels
from tools import generate_alfworld as cli

# Bathroom scenes are small: these games are fast to translate and solve.
BATHROOMS = {"train": list(range(407, 431))}
SMALL = {
    "games_per_type": {"train": 2},
    "task_types": [1],
    "verify": "planner",
    "floor_plans": BATHROOMS,
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_files_other_seed_other_files(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "a", seed=5, **SMALL)
    generate_dataset(tmp_path / "b", seed=5, **SMALL)
    generate_dataset(tmp_path / "c", seed=6, **SMALL)
    a, b, c = (_files(tmp_path / name) for name in "abc")
    assert len(a) == 2 * 3  # two trials: traj_data.json, initial_state.pddl, game.tw-pddl
    assert a == b
    assert a != c


def test_a_split_does_not_change_when_another_split_is_added(tmp_path: Path) -> None:
    """Adding dev games leaves train's files as they were (draws are seeded per split), so
    a study's generated set holds the shipped panels' games whatever its counts."""
    generate_dataset(tmp_path / "a", seed=5, **SMALL)
    with_dev = {
        **SMALL,
        "games_per_type": {"train": 2, "dev": 1},
        "floor_plans": {**BATHROOMS, "dev": BATHROOMS["train"]},
    }
    generate_dataset(tmp_path / "b", seed=5, **with_dev)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert {k: v for k, v in b.items() if k.startswith("json_2.1.1/train/")} == a
    dev = [k for k in b if k.startswith("json_2.1.1/dev/")]
    assert len(dev) == 3 and "_dev_" in dev[0]


def test_games_are_in_the_official_layout_and_format(tmp_path: Path) -> None:
    report = generate_dataset(tmp_path, seed=3, **SMALL)
    for game in report.games:
        split, task_dir, trial, name = game.task_id.split("/")
        assert split == "train" and name == GAME_FILE and trial.startswith("trial_")
        task_type, obj, mrecep, parent, scene = task_dir.split("-")
        folder = tmp_path / "json_2.1.1" / split / task_dir / trial
        traj = json.loads((folder / "traj_data.json").read_text())
        data = json.loads((folder / GAME_FILE).read_text())
        assert traj["task_type"] == task_type == "pick_and_place_simple"
        assert (
            traj["pddl_params"]["object_target"] == obj
            and traj["pddl_params"]["parent_target"] == parent
        )
        assert mrecep == "None" and traj["scene"]["scene_num"] == int(scene)
        assert set(data) == {"pddl_domain", "grammar", "pddl_problem", "solvable", "walkthrough"}
        assert data["solvable"] is True and data["walkthrough"]
        assert data["pddl_problem"] == (folder / PDDL_FILE).read_text()
        assert (
            "UNKNOWN GOAL" not in data["grammar"]
            and traj["generator"]["task_desc"] in data["grammar"]
        )
        assert "(:goal" in data["pddl_problem"] and "atLocation agent1" in data["pddl_problem"]


def test_splits_use_seen_and_held_out_floor_plans() -> None:
    seen = set(default_floor_plans("train"))
    assert default_floor_plans("valid_seen") == default_floor_plans("train")
    assert set(default_floor_plans("valid_unseen")) == set(UNSEEN_FLOOR_PLANS)
    assert not seen & set(UNSEEN_FLOOR_PLANS)
    for task_type in TASK_TYPES.values():  # every task type fits some held-out floor plan
        assert eligible_floor_plans(task_type, UNSEEN_FLOOR_PLANS), task_type


def test_scenes_respect_the_task_type() -> None:
    rng = random.Random(0)
    heat = sample_scene("pick_heat_then_place_in_recep", 10, rng)
    kinds = {kind for kind, _ in heat.receptacles.values()}
    assert "Microwave" in kinds and heat.parent_target != "Microwave"
    targets = [holder for kind, holder in heat.objects.values() if kind == heat.object_target]
    assert targets and all(heat.receptacles[h][0] != heat.parent_target for h in targets)
    lamp = sample_scene("look_at_obj_in_light", 308, rng)
    assert lamp.toggle_target == "DeskLamp" and "(toggleable" in scene_problem(lamp, "x")
    two = sample_scene("pick_two_obj_and_place", 424, rng)
    assert sum(kind == two.object_target for kind, _ in two.objects.values()) >= 2
    with pytest.raises(ValueError, match="does not happen"):
        sample_scene("pick_heat_then_place_in_recep", 308, rng)


def test_compile_directory_builds_every_trial_including_the_last(tmp_path: Path) -> None:
    generate_dataset(tmp_path, seed=9, **SMALL)
    games = sorted(tmp_path.rglob(GAME_FILE))
    expected = {p: json.loads(p.read_text())["walkthrough"] for p in games}
    for path in games:
        path.unlink()
    trajs = sorted(tmp_path.rglob("traj_data.json"))
    assert len(trajs[0:-1]) == 1  # what alfworld-generate's default --start 0 --end -1 would build
    results = compile_directory(tmp_path)
    assert [r.status for r in results] == ["solvable"] * 2
    assert sorted(tmp_path.rglob(GAME_FILE)) == games
    for path, walkthrough in expected.items():
        assert json.loads(path.read_text())["walkthrough"] == walkthrough
    assert [r.status for r in compile_directory(tmp_path)] == ["skipped: game file exists"] * 2
    assert len(compile_directory(tmp_path, start=1, end=2, overwrite=True)) == 1


def test_pack_round_trip_gives_the_same_games(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "data", seed=4, **SMALL)
    packed = pack_directory(tmp_path / "data")
    path = tmp_path / "pack.json"
    path.write_text(json.dumps(packed))
    official, shipped = OfficialDirectory(tmp_path / "data"), ShippedGames(path)
    assert shipped.task_ids("train") == official.task_ids("train")
    for task_id in official.task_ids("train"):
        assert shipped.load(task_id).game == official.load(task_id).game
        assert shipped.load(task_id).traj_data == official.load(task_id).traj_data


def test_the_shipped_games_are_the_documented_set() -> None:
    shipped = ShippedGames()
    assert SHIPPED_GAMES.stat().st_size < 4_000_000
    counts = {split: len(shipped.task_ids(split)) for split in SPLITS}
    assert counts == {"train": 36, "dev": 18, "valid_seen": 18, "valid_unseen": 18}
    assert shipped.generator["seed"] == 0 and shipped.generator["verify"] == "both"
    panels = {p.name: p for p in list_panels("ALFWorld-v0")}
    for panel in panels.values():
        assert all(shipped.split_of(t) == panel.split for t in panel.task_ids), panel.name
    # The one default panel (what tools/benchmark.py, load_panel and distill use) is the
    # held-out valid_unseen split; valid_seen runs when named.
    assert [p.name for p in panels.values() if p.default] == ["valid_unseen-v1"]
    assert list(panels["valid_unseen-v1"].task_ids) == shipped.task_ids("valid_unseen")
    assert list(panels["valid_seen-v1"].task_ids) == shipped.task_ids("valid_seen")
    # The dev panel (what a run stops on) is the whole dev split, apart from train.
    assert list(panels["dev-v1"].task_ids) == shipped.task_ids("dev")
    assert not set(shipped.task_ids("dev")) & set(shipped.task_ids("train"))


def test_cli_generates_and_rejects_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "generate",
        "--out",
        str(tmp_path),
        "--train",
        "1",
        "--valid-seen",
        "0",
        "--valid-unseen",
        "0",
    ]
    assert (
        cli.main(
            [
                *argv,
                "--task-types",
                "1",
                "--verify",
                "planner",
                "--quiet",
                "--seen-floor-plans",
                "421",
            ]
        )
        == 0
    )
    assert len(list(tmp_path.rglob(GAME_FILE))) == 1
    assert cli.main([*argv, "--task-types", "1"]) == 1  # the folder is not empty
    assert "not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["generate", "--out", str(tmp_path), "--train", "-1"])
    with pytest.raises(SystemExit):
        cli.main(["generate", "--out", str(tmp_path), "--dev", "-1"])
    assert "--dev must be at least 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([*argv, "--task-types", "9"])
    assert cli.main([*argv, "--overwrite", "--seen-floor-plans", "9999"]) == 1  # no such floor plan
    assert "unknown floor plans" in capsys.readouterr().err


def test_the_planner_check_runs_under_a_memory_cap() -> None:
    shipped = ShippedGames()
    record = shipped.load(shipped.task_ids("valid_unseen")[0])
    with GuardedVerifier() as verifier:
        result = verifier.verify(record, verify="planner", max_steps=50)
        assert result is not None and result.planner_won
        assert result.planner_plan == record.game["walkthrough"]
    # Too little for the check: dropped, not hung. The single-threaded check needs about
    # 150 MB of address space here; 80 MB is well below (a cap near 150 MB made this test
    # depend on the caller's OMP_NUM_THREADS before the worker was pinned to one thread).
    with GuardedVerifier(memory_mb=80) as starved:
        assert starved.verify(record, verify="planner", max_steps=50) is None
        assert starved.last_failure
    assert cli.parse_args(["generate", "--out", "x"]).planner_memory_mb == PLANNER_MEMORY_MB


def test_generated_games_are_already_translated_on_disk(tmp_path: Path) -> None:
    from envs.alfworld import disk_cache
    from envs.alfworld.engine import AlfredEngine, clear_caches

    # A seed no other test uses: these games are new to the cache (the session's folder,
    # which the checking process, started once per session, writes to).
    generate_dataset(tmp_path / "games", seed=11, **SMALL)
    paths = sorted((tmp_path / "games").rglob("game.tw-pddl"))
    games = [json.loads(path.read_text()) for path in paths]
    assert len(games) == 2
    for game in games:
        assert disk_cache.entry_path(game["pddl_domain"], game["pddl_problem"]).is_file()
    clear_caches()
    disk_cache.stats.reset()
    engine = AlfredEngine()
    try:
        for game in games:
            engine.load(game)
            engine.reset()
    finally:
        engine.close()
        clear_caches()
    assert disk_cache.stats.reads == 2 and disk_cache.stats.misses == 0


def test_compile_summary_counts_skips_apart_from_solvable_and_unsolvable() -> None:
    line = cli.compile_summary(["skipped: game file exists"] * 66)
    assert line.startswith("66 trials: 0 compiled (0 solvable, 0 unsolvable), 66 skipped")
    assert "66 game file exists" in line and "--overwrite" in line
    line = cli.compile_summary(["solvable", "unsolvable", "skipped: no initial_state.pddl"])
    assert line == (
        "3 trials: 2 compiled (1 solvable, 1 unsolvable), 1 skipped (1 no initial_state.pddl)"
    )
