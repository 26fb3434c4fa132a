"""Where ALFWorld games come from: an official-layout directory, or the shipped set.

The official layout (what ``alfworld-download`` produces, and what
:mod:`envs.alfworld.generate` writes)::

    <ALFWORLD_DATA>/json_2.1.1/{train,dev,valid_seen,valid_unseen}/<task>/<trial>/
        traj_data.json      task type and parameters (the hand-coded expert reads them)
        game.tw-pddl        JSON: pddl_domain, grammar, pddl_problem, solvable, walkthrough
        initial_state.pddl  the problem alone (only needed to build game.tw-pddl)

:class:`OfficialDirectory` lists a split's games exactly as ALFWorld's
``AlfredTWEnv.collect_game_files`` does: trials whose path contains
``movable`` or ``Sliced`` are skipped, so are task types not asked for, games
without ``game.tw-pddl``, without a ``solvable`` key, or not solvable. A task
id is the game's path relative to the ``json_2.1.1`` folder, e.g.
``valid_seen/pick_and_place_simple-Apple-None-Fridge-7/trial_T2019.../game.tw-pddl``.

:class:`ShippedGames` serves the small generated set that ships with the
package (``envs/alfworld/data/alfworld-generated.json``): the same game dicts
and task ids as the official-layout directory they were packed from, with the
shared domain and grammar stored once.

``dev`` is this project's split, not ALFWorld's: generated games on the train
floor plans, kept apart from train so that a run can be stopped on them
(a teacher trained to a target) without touching the validation panels.
Official data has no ``dev`` folder, so its dev split is empty.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envs.alfworld.paths import OFFICIAL_VERSION_DIR, SHIPPED_DATA_DIR, user_alfworld_data

__all__ = [
    "GAME_FILE",
    "PACK_FORMAT",
    "PDDL_FILE",
    "SHIPPED_GAMES",
    "SPLITS",
    "TASK_TYPES",
    "TRAJ_FILE",
    "GameRecord",
    "GameSource",
    "OfficialDirectory",
    "ShippedGames",
    "find_official_root",
    "normalise_task_types",
    "pack_directory",
    "resolve_source",
    "split_task_rule",
]

#: ALFWorld's task types, with the numeric ids its configs use (``env.task_types``).
TASK_TYPES: dict[int, str] = {
    1: "pick_and_place_simple",
    2: "look_at_obj_in_light",
    3: "pick_clean_then_place_in_recep",
    4: "pick_heat_then_place_in_recep",
    5: "pick_cool_then_place_in_recep",
    6: "pick_two_obj_and_place",
}
SPLITS: tuple[str, ...] = ("train", "dev", "valid_seen", "valid_unseen")
GAME_FILE = "game.tw-pddl"
TRAJ_FILE = "traj_data.json"
PDDL_FILE = "initial_state.pddl"
#: The packed generated set shipped with the package.
SHIPPED_GAMES = SHIPPED_DATA_DIR / "alfworld-generated.json"
PACK_FORMAT = "mentorgym-alfworld-games/1"
#: Marks the goal sentence's place in a packed grammar (see :func:`split_task_rule`).
TASK_SLOT = "@@ALFWORLD-TASK@@"
# The "task" rule of ALFWorld's grammar: "Your task is to: UNKNOWN GOAL." until
# add_task_to_grammar fills in the game's goal.
_TASK_RULE = re.compile(r'("task"\s*:\s*\[\s*\{\s*"rhs"\s*:\s*")((?:[^"\\]|\\.)*)(")')


@dataclass(frozen=True)
class GameRecord:
    """One playable game: its id, split, game dict and ``traj_data``."""

    task_id: str
    split: str
    game: Mapping[str, Any]
    traj_data: Mapping[str, Any]

    @property
    def task_type(self) -> str:
        return str(self.traj_data.get("task_type", ""))


def normalise_task_types(task_types: Iterable[int | str] | None) -> tuple[str, ...]:
    """Task type names from ALFWorld ids (1-6) or names; ``None`` means all six."""
    if task_types is None:
        return tuple(TASK_TYPES.values())
    if isinstance(task_types, (str, int)):
        task_types = [task_types]
    names = []
    for item in task_types:
        if isinstance(item, int) and not isinstance(item, bool) and item in TASK_TYPES:
            names.append(TASK_TYPES[item])
        elif isinstance(item, str) and item in TASK_TYPES.values():
            names.append(item)
        else:
            raise ValueError(
                f"unknown ALFWorld task type {item!r}; use ids 1-6 or names {list(TASK_TYPES.values())}"
            )
    if not names:
        raise ValueError("task_types is empty; leave it unset for all six task types")
    return tuple(dict.fromkeys(names))


class GameSource:
    """A collection of games split into ``train``, ``valid_seen`` and ``valid_unseen``."""

    #: Words for error messages and docs (``"official directory /data/json_2.1.1"``).
    description = ""

    def task_ids(self, split: str) -> list[str]:
        """The split's task ids, sorted."""
        raise NotImplementedError

    def split_of(self, task_id: str) -> str | None:
        """The split a task id belongs to, or ``None`` if this source does not have it."""
        raise NotImplementedError

    def load(self, task_id: str) -> GameRecord:
        """Read one game (raises ``KeyError`` for an unknown id)."""
        raise NotImplementedError


def find_official_root(path: str | os.PathLike) -> Path | None:
    """The folder holding the split folders, given ``$ALFWORLD_DATA`` or ``json_2.1.1`` itself."""
    path = Path(path).expanduser()
    for candidate in (path / OFFICIAL_VERSION_DIR, path):
        if candidate.is_dir() and any((candidate / split).is_dir() for split in SPLITS):
            return candidate
    return None


def _read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


class OfficialDirectory(GameSource):
    """Games in ALFWorld's official layout, listed as ALFWorld lists them (module docstring)."""

    def __init__(
        self, root: str | os.PathLike, *, task_types: Iterable[int | str] | None = None
    ) -> None:
        found = find_official_root(root)
        if found is None:
            raise FileNotFoundError(
                f"{os.fspath(root)!r} is not an ALFWorld data folder: expected "
                f"{OFFICIAL_VERSION_DIR}/{{{','.join(SPLITS)}}}/<task>/<trial>/{GAME_FILE} under it "
                "(as alfworld-download or tools/generate_alfworld.py write)"
            )
        self.root = found.resolve()
        self.task_types = normalise_task_types(task_types)
        self.description = f"official-layout directory {self.root}"
        self._index: dict[str, list[str]] = {}
        self._id_sets: dict[str, frozenset[str]] = {}

    def task_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {list(SPLITS)}")
        if split not in self._index:
            self._index[split] = self._collect(split)
        return list(self._index[split])

    def _collect(self, split: str) -> list[str]:
        split_dir = self.root / split
        if not split_dir.is_dir():
            return []
        allowed = set(self.task_types)
        ids = []
        for dirpath, _dirnames, filenames in os.walk(split_dir):
            if TRAJ_FILE not in filenames:
                continue
            trial = Path(dirpath)
            relative = trial.relative_to(self.root).as_posix()
            if "movable" in relative or "Sliced" in relative:
                continue  # ALFWorld: "Movable & slice trajs not supported"
            if GAME_FILE not in filenames:
                continue
            try:
                traj_data = _read_json(trial / TRAJ_FILE)
                game = _read_json(trial / GAME_FILE)
            except (OSError, ValueError):
                continue  # unreadable: ALFWorld would crash; we leave it out
            if not isinstance(traj_data, dict) or traj_data.get("task_type") not in allowed:
                continue
            if not isinstance(game, dict) or not game.get("solvable"):
                continue  # missing key, None (never checked) or False: skipped as upstream
            ids.append(f"{relative}/{GAME_FILE}")
        return sorted(ids)

    def split_of(self, task_id: str) -> str | None:
        split = task_id.split("/", 1)[0] if isinstance(task_id, str) else ""
        if split not in SPLITS:
            return None
        if split not in self._id_sets:
            self._id_sets[split] = frozenset(self.task_ids(split))
        return split if task_id in self._id_sets[split] else None

    def load(self, task_id: str) -> GameRecord:
        split = self.split_of(task_id)
        if split is None:
            raise KeyError(task_id)
        game_path = self.root / task_id
        try:
            game = _read_json(game_path)
            traj_data = _read_json(game_path.parent / TRAJ_FILE)
        except (OSError, ValueError) as error:
            raise OSError(f"cannot read ALFWorld game {game_path}: {error}") from error
        return GameRecord(task_id=task_id, split=split, game=game, traj_data=traj_data)


class ShippedGames(GameSource):
    """The generated games packed into one JSON file (see :func:`pack_directory`)."""

    def __init__(
        self,
        path: str | os.PathLike = SHIPPED_GAMES,
        *,
        task_types: Iterable[int | str] | None = None,
    ) -> None:
        self.path = Path(path)
        try:
            pack = _read_json(self.path)
        except OSError as error:
            raise FileNotFoundError(
                f"the shipped ALFWorld games are missing ({self.path}): reinstall the package, "
                "or pass data_dir= an official-layout folder"
            ) from error
        if not isinstance(pack, dict) or pack.get("format") != PACK_FORMAT:
            raise ValueError(f"{self.path} is not a {PACK_FORMAT} file")
        self.task_types = normalise_task_types(task_types)
        self.description = f"shipped generated games {self.path.name}"
        self.generator = pack.get("generator", {})
        self._domain: str = pack["pddl_domain"]
        self._grammar: str = pack["grammar"]
        allowed = set(self.task_types)
        self._entries: dict[str, dict[str, Any]] = {}
        self._by_split: dict[str, list[str]] = {split: [] for split in SPLITS}
        for entry in pack["games"]:
            if entry["traj_data"].get("task_type") not in allowed:
                continue
            split = entry["task_id"].split("/", 1)[0]
            self._entries[entry["task_id"]] = entry
            self._by_split.setdefault(split, []).append(entry["task_id"])
        for ids in self._by_split.values():
            ids.sort()

    def task_ids(self, split: str) -> list[str]:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; ALFWorld's splits are {list(SPLITS)}")
        return list(self._by_split.get(split, []))

    def split_of(self, task_id: str) -> str | None:
        return task_id.split("/", 1)[0] if task_id in self._entries else None

    def load(self, task_id: str) -> GameRecord:
        entry = self._entries[task_id]
        grammar = entry.get("grammar") or self._grammar.replace(TASK_SLOT, entry["task_rule"])
        game = {
            "pddl_domain": self._domain,
            "grammar": grammar,
            "pddl_problem": entry["pddl_problem"],
            "solvable": True,
            "walkthrough": list(entry["walkthrough"]),
        }
        return GameRecord(
            task_id=task_id,
            split=self.split_of(task_id) or "",
            game=game,
            traj_data=entry["traj_data"],
        )


def split_task_rule(grammar: str) -> tuple[str, str] | None:
    """``(template, task_text)``: the grammar with its goal sentence cut out, and that sentence.

    ALFWorld games carry the domain's grammar with one change, the text of the
    ``task`` rule (``"Your task is to: ..."``). ``task_text`` is the raw
    (JSON-escaped) text, and ``template.replace(TASK_SLOT, task_text)`` gives
    the grammar back exactly. ``None`` if the grammar has no single task rule.
    """
    matches = list(_TASK_RULE.finditer(grammar))
    if len(matches) != 1 or TASK_SLOT in grammar:
        return None
    match = matches[0]
    return grammar[: match.start(2)] + TASK_SLOT + grammar[match.end(2) :], match.group(2)


def pack_directory(
    root: str | os.PathLike, *, generator: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Pack every listed game of an official-layout folder into one dict (the shipped format).

    The domain and the grammar (without its goal sentence) are stored once; a
    game with another grammar keeps its own.
    """
    source = OfficialDirectory(root)
    domain = template = None
    games = []
    for split in SPLITS:
        for task_id in source.task_ids(split):
            record = source.load(task_id)
            game = record.game
            parts = split_task_rule(game["grammar"])
            if domain is None:
                domain = game["pddl_domain"]
                template = parts[0] if parts else None
            if game["pddl_domain"] != domain:
                raise ValueError(
                    f"{task_id}: a different PDDL domain; a pack holds games of one domain"
                )
            entry = {
                "task_id": task_id,
                "pddl_problem": game["pddl_problem"],
                "walkthrough": list(game.get("walkthrough") or []),
                "traj_data": record.traj_data,
            }
            if parts is not None and parts[0] == template:
                entry["task_rule"] = parts[1]
            else:
                entry["grammar"] = game["grammar"]
            games.append(entry)
    if not games:
        raise ValueError(f"no solvable games under {os.fspath(root)}")
    return {
        "format": PACK_FORMAT,
        "generator": dict(generator or {}),
        "pddl_domain": domain,
        "grammar": template or "",
        "games": games,
    }


_warned_about: set[str] = set()


def resolve_source(
    data_dir: str | os.PathLike | None, *, task_types: Iterable[int | str] | None = None
) -> GameSource:
    """The games an env plays: ``data_dir``, else ``$ALFWORLD_DATA``, else the shipped set.

    An explicit ``data_dir`` must be an official-layout folder. A user-set
    ``ALFWORLD_DATA`` without ``json_2.1.1`` (it is also ALFWorld's cache
    folder) falls back to the shipped set with a one-time warning.
    """
    if data_dir is not None:
        return OfficialDirectory(data_dir, task_types=task_types)
    user_dir = user_alfworld_data()
    if user_dir is not None:
        if find_official_root(user_dir) is not None:
            return OfficialDirectory(user_dir, task_types=task_types)
        if str(user_dir) not in _warned_about:
            _warned_about.add(str(user_dir))
            warnings.warn(
                f"ALFWORLD_DATA={user_dir} has no {OFFICIAL_VERSION_DIR}/ games; "
                "ALFWorld-v0 plays the shipped generated games instead",
                stacklevel=3,
            )
    return ShippedGames(task_types=task_types)
