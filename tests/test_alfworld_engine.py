"""The ALFWorld engine: TextWorld's PDDL env with a reset cache, checked against the original."""

from __future__ import annotations

import random
import sys

import pytest

from envs.alfworld import disk_cache
from envs.alfworld import engine as engine_module
from envs.alfworld.data import ShippedGames
from envs.alfworld.engine import AlfredEngine, EngineError, cache_stats, clear_caches, translate


@pytest.fixture(scope="module")
def shipped() -> ShippedGames:
    return ShippedGames()


def smallest_game(source: ShippedGames, split: str = "valid_unseen"):
    """The shipped game with the shortest problem (fastest to translate)."""
    records = [source.load(task_id) for task_id in source.task_ids(split)]
    return min(records, key=lambda r: len(r.game["pddl_problem"]))


def test_cached_engine_plays_exactly_like_textworld(shipped: ShippedGames) -> None:
    import textworld
    from alfworld.agents.environment.alfred_tw_env import AlfredDemangler
    from textworld.envs import PddlEnv

    record = smallest_game(shipped)
    infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=True)
    reference = AlfredDemangler(PddlEnv(infos))
    reference.load(dict(record.game))
    expected = reference.reset()
    ours = AlfredEngine(facts=True)
    try:
        ours.load(record.game)
        ours.reset()  # a second reset comes from the cache
        state = ours.reset()
        assert state.feedback == expected.feedback
        assert state.admissible_commands == expected.admissible_commands
        rng = random.Random(3)
        for _ in range(25):
            command = rng.choice(state.admissible_commands + ["take unicorn 1 from desk 1"])
            expected, _, _ = reference.step(command)
            state, accepted = ours.step(command)
            assert state.feedback == expected.feedback, command
            assert state.admissible_commands == expected.admissible_commands
            assert sorted(map(str, state["facts"])) == sorted(map(str, expected["facts"]))
            assert accepted == (expected.feedback != "Nothing happens.")
    finally:
        ours.close()


def test_replaying_a_game_does_not_recompile_it(shipped: ShippedGames) -> None:
    record = smallest_game(shipped)
    clear_caches()
    first, second = AlfredEngine(), AlfredEngine()
    try:
        first.load(record.game)
        first.reset()
        after_first = cache_stats()
        assert after_first.problem_misses == 1 and after_first.problem_hits == 0
        first.reset()
        second.load(record.game)  # another env in the same process
        second.reset()
        stats = cache_stats()
        assert stats.problem_misses == 1
        assert stats.problems == 1
        assert first.state.feedback == second.state.feedback
    finally:
        first.close()
        second.close()


def test_games_differing_only_by_goal_share_one_grammar_parse(shipped: ShippedGames) -> None:
    records = [shipped.load(t) for t in shipped.task_ids("valid_seen")[:2]]
    clear_caches()
    engine = AlfredEngine()
    try:
        intros = []
        for record in records:
            engine.load(record.game)
            intros.append(engine.reset().feedback)
        assert cache_stats().logic_misses == 1
        for record, intro in zip(records, intros):
            task_line = intro.splitlines()[-1]
            assert task_line.startswith("Your task is to: ")
            assert task_line in record.game["grammar"]
    finally:
        engine.close()


def test_translation_leaves_sys_argv_alone(shipped: ShippedGames) -> None:
    record = smallest_game(shipped)
    before = list(sys.argv)
    translate(record.game["pddl_domain"], record.game["pddl_problem"])
    assert sys.argv == before  # fast_downward.pddl2sas alone sets it to translate.py's


def test_cache_size_zero_disables_the_cache(shipped: ShippedGames) -> None:
    record = smallest_game(shipped)
    clear_caches()
    engine_module.set_cache_size(0)
    engine = AlfredEngine()
    try:
        engine.load(record.game)
        engine.reset()
        assert cache_stats().problems == 0
    finally:
        engine.close()
        engine_module.set_cache_size(engine_module.DEFAULT_CACHE_SIZE)
    with pytest.raises(ValueError, match="non-negative"):
        engine_module.set_cache_size(-1)


def test_broken_games_raise_a_clear_error(shipped: ShippedGames) -> None:
    record = smallest_game(shipped)
    engine = AlfredEngine()
    try:
        with pytest.raises(EngineError, match="lacks"):
            engine.load({"pddl_domain": "x"})
        broken = dict(record.game, pddl_problem="(define (problem p) (:domain alfred) (:objects")
        with pytest.raises(EngineError, match="Fast Downward"):
            engine.load(broken)
        with pytest.raises(EngineError, match="load"):
            AlfredEngine().reset()
    finally:
        engine.close()


def _play(record, commands: int = 12) -> list[tuple[str, list[str]]]:
    """Feedback and admissible commands along a fixed random walk through a game."""
    engine = AlfredEngine()
    try:
        engine.load(record.game)
        state = engine.reset()
        seen = [(state.feedback, list(state.admissible_commands))]
        rng = random.Random(5)
        for _ in range(commands):
            state, _ = engine.step(rng.choice(state.admissible_commands))
            seen.append((state.feedback, list(state.admissible_commands)))
        return seen
    finally:
        engine.close()


@pytest.fixture
def translations(tmp_path, monkeypatch):
    """A fresh disk cache folder, with the in-memory caches and the counters cleared."""
    folder = tmp_path / "translations"
    monkeypatch.setenv(disk_cache.ENV_VAR, str(folder))
    clear_caches()
    disk_cache.stats.reset()
    yield folder
    clear_caches()


def test_a_translation_stored_on_disk_replays_the_game_exactly(
    shipped: ShippedGames, translations
) -> None:
    record = smallest_game(shipped)
    translated = _play(record)
    assert disk_cache.stats.writes == 1 and disk_cache.stats.reads == 0
    assert len(list(translations.glob("*.json.z"))) == 1

    clear_caches()  # as a new process would: nothing in memory, the entry on disk
    calls = []
    real_translate = engine_module.translate
    try:
        engine_module.translate = lambda *a, **k: calls.append(a) or real_translate(*a, **k)
        from_disk = _play(record)
    finally:
        engine_module.translate = real_translate
    assert calls == []  # nothing translated again
    assert disk_cache.stats.reads == 1
    assert from_disk == translated


def test_an_unreadable_entry_is_translated_again_and_rewritten(
    shipped: ShippedGames, translations
) -> None:
    record = smallest_game(shipped)
    translated = _play(record)
    (entry,) = translations.glob("*.json.z")
    entry.write_bytes(b"not a translation")
    clear_caches()
    assert _play(record) == translated
    assert disk_cache.stats.unreadable == 1 and disk_cache.stats.writes == 2
    clear_caches()
    assert _play(record) == translated
    assert disk_cache.stats.reads == 1  # the rewritten entry reads back


def test_the_disk_cache_can_be_turned_off(shipped: ShippedGames, translations, monkeypatch) -> None:
    monkeypatch.setenv(disk_cache.ENV_VAR, "off")
    _play(smallest_game(shipped), commands=1)
    assert not translations.exists()
    assert disk_cache.stats.writes == disk_cache.stats.reads == 0


def test_an_unwritable_cache_folder_does_not_stop_a_game(
    shipped: ShippedGames, translations, monkeypatch
) -> None:
    blocker = translations.parent / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(disk_cache.ENV_VAR, str(blocker / "translations"))
    assert _play(smallest_game(shipped), commands=1)
    assert disk_cache.stats.writes == 0


def test_entries_are_keyed_by_content_and_translator(monkeypatch) -> None:
    key = disk_cache.entry_key("(domain)", "(problem)")
    assert key != disk_cache.entry_key("(domain)", "(problem 2)")
    monkeypatch.setattr(disk_cache, "FORMAT", disk_cache.FORMAT + 1)
    assert key != disk_cache.entry_key("(domain)", "(problem)")


def test_an_entry_written_by_another_process_replays_the_game_exactly(
    shipped: ShippedGames, translations
) -> None:
    # String hashes differ between processes: an entry must not carry objects that cache them.
    import subprocess

    record = smallest_game(shipped)
    translated = _play(record)
    for entry in translations.glob("*.json.z"):
        entry.unlink()
    child = (
        "import sys\n"
        "from envs.alfworld.data import ShippedGames\n"
        "from envs.alfworld.engine import AlfredEngine\n"
        "engine = AlfredEngine()\n"
        "engine.load(ShippedGames().load(sys.argv[1]).game)\n"
        "engine.reset()\n"
        "engine.close()\n"
    )
    subprocess.run([sys.executable, "-c", child, record.task_id], check=True, timeout=120)
    assert len(list(translations.glob("*.json.z"))) == 1
    clear_caches()
    disk_cache.stats.reset()
    assert _play(record) == translated
    assert disk_cache.stats.reads == 1
