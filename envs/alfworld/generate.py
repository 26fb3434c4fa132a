"""Procedural ALFWorld games in the official layout, built offline from what alfworld ships.

The official ALFWorld games come from a download that is often unreachable.
This generator writes new games in the same layout and format
(``json_2.1.1/<split>/<task>/<trial>/{traj_data.json, initial_state.pddl,
game.tw-pddl}``) from what the ``alfworld`` package ships:

* the PDDL domain ``alfred.pddl`` and the TextWorld grammar ``alfred.twl2``;
* the goal library (``alfworld.gen.goal_library``: each task type's PDDL goal
  and its templated task sentences);
* the object and receptacle constants (``alfworld.gen.constants``: what fits
  where, what can be heated, cooled, cleaned, toggled);
* the AI2-THOR floor plans (``alfworld/gen/layouts``): ``FloorPlan<N>-openable.json``
  gives each receptacle's id and the pose it is used from, ``-objects.json``
  the object types present, ``-layout.npy`` the reachable floor points.

A game: a floor plan's receptacles (plus receptacle types the scene lists
without a pose, such as a stove burner, placed at a reachable point), objects
of the scene's types placed in receptacles that can hold them, closed
openable receptacles, the agent at a reachable point, and a goal of one of the
six task types. A game is kept only when Fast Downward finds a plan and the
plan wins; with ``verify="both"`` (the default) ALFWorld's hand-coded expert
must also win within ``max_steps``, so both experts solve every game. The
check runs in a child process under a memory cap (:class:`GuardedVerifier`):
the planner is a breadth-first search that can grow to gigabytes on a few
scenes, and such a draw is dropped.

Splits follow ALFRED: ``train`` and ``valid_seen`` use the same (seen) floor
plans, ``valid_unseen`` uses held-out floor plans (:data:`UNSEEN_FLOOR_PLANS`,
one per room type). ``dev``, this project's addition, uses the seen floor plans
too: games to stop a training run on, apart from the validation panels. Every
random draw comes from a stream seeded by ``(seed, split, task type, index,
attempt)``, so the same arguments give the same files, whatever the number of
worker processes, and one split's games do not depend on the other splits' counts.

:func:`compile_directory` is the counterpart of ``alfworld-generate``: it
builds ``game.tw-pddl`` files for trials that have ``traj_data.json`` and
``initial_state.pddl``; unlike upstream, whose default ``--end -1`` drops the
last trial, it processes every trial.
"""

from __future__ import annotations

import atexit
import json
import os
import random
import re
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envs.alfworld.data import (
    GAME_FILE,
    PDDL_FILE,
    SPLITS,
    TASK_TYPES,
    TRAJ_FILE,
    GameRecord,
    normalise_task_types,
)
from envs.alfworld.paths import OFFICIAL_VERSION_DIR, configure_alfworld_data
from envs.fileio import atomic_write_text

configure_alfworld_data()

import numpy as np  # noqa: E402
from alfworld.gen import constants as C  # noqa: E402
from alfworld.gen import goal_library  # noqa: E402
from alfworld.info import ALFRED_PDDL_PATH, ALFRED_TWL2_PATH  # noqa: E402

__all__ = [
    "GENERATOR_VERSION",
    "PLANNER_MEMORY_MB",
    "UNSEEN_FLOOR_PLANS",
    "FloorPlan",
    "GeneratedGame",
    "GuardedVerifier",
    "Scene",
    "close_verifiers",
    "compile_directory",
    "default_floor_plans",
    "eligible_floor_plans",
    "floor_plan_numbers",
    "generate_dataset",
    "generate_game",
    "load_floor_plan",
    "sample_scene",
    "scene_problem",
    "verify_game",
    "write_public_text",
]

#: Bumped whenever the same arguments would give different games.
GENERATOR_VERSION = 1
#: Held-out floor plans for ``valid_unseen``: one kitchen, living room, bedroom and bathroom.
UNSEEN_FLOOR_PLANS: tuple[int, ...] = (10, 219, 308, 424)
LAYOUT_DIR = Path(C.__file__).resolve().parent / "layouts"

ROOM_OF_RANGE = {
    range(1, 31): "Kitchen",
    range(201, 231): "LivingRoom",
    range(301, 331): "Bedroom",
    range(401, 431): "Bathroom",
}
# Static receptacle types (the movable ones, bowls and mugs, are objects here).
STATIC_RECEPTACLES = frozenset(C.RECEPTACLES) - frozenset(C.MOVABLE_RECEPTACLES)
# Objects an agent can pick up and put somewhere (no sliced variants: slicing tasks are out).
PICKUPABLE = (
    frozenset(o for objs in C.VAL_RECEPTACLE_OBJECTS.values() for o in objs if o in C.OBJECTS)
    - STATIC_RECEPTACLES
)
# Where a desk lamp stands (the constants list no receptacle for lamps).
LAMP_HOSTS = ("Desk", "SideTable", "Dresser", "Shelf", "DiningTable", "CoffeeTable", "TVStand")
# Receptacle types a scene lists in objects.json without a pose in openable.json get
# this many instances at reachable points.
SYNTHETIC_COUNTS = {"StoveBurner": 4}
# Object instances per type: distractors, the target, and the target of two-object tasks.
DISTRACTOR_COUNT = (1, 2)
TARGET_COUNT = (1, 3)
TWO_OBJECT_TARGET_COUNT = (2, 3)
# At most this many distractor types per game (fewer objects: faster planning and steps).
MAX_DISTRACTOR_TYPES = 14
AGENT_HORIZON = 30
STEP_SIZE = C.AGENT_STEP_SIZE

# ALFRED's name mangling of ids in PDDL (planned_game_state.fix_pddl_str_chars).
_MANGLE = {"-": "_minus_", "#": "-", "|": "_bar_", "+": "_plus_", ".": "_dot_", ",": "_comma_"}
_MANGLE_RE = re.compile("|".join(re.escape(k) for k in _MANGLE))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# envs.fileio writes through mkstemp, whose files are private (0600); generated games are
# data to share, so they get the usual mode for new files.
_FILE_MODE = 0o666 & ~_umask()


def write_public_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically, readable as any new file would be (umask applies)."""
    path = atomic_write_text(path, text)
    os.chmod(path, _FILE_MODE)
    return path


def mangle(text: str) -> str:
    """ALFRED's PDDL spelling of ids (``Apple|+01.00`` -> ``Apple_bar__plus_01_dot_00``)."""
    return _MANGLE_RE.sub(lambda m: _MANGLE[m.group(0)], text)


# -- floor plans ---------------------------------------------------------------


@dataclass(frozen=True)
class FloorPlan:
    """One AI2-THOR scene as the layout files describe it."""

    number: int
    room: str
    receptacles: dict[str, tuple[float, float, int, int]]  # id -> pose (x, z, rotation, horizon)
    object_types: tuple[str, ...]
    reachable: tuple[tuple[float, float], ...]

    @property
    def name(self) -> str:
        return f"FloorPlan{self.number}"


def floor_plan_numbers() -> list[int]:
    """Every floor plan with layout files, sorted."""
    numbers = set()
    for path in LAYOUT_DIR.glob("FloorPlan*-openable.json"):
        match = re.fullmatch(r"FloorPlan(\d+)-openable\.json", path.name)
        if match:
            numbers.add(int(match.group(1)))
    return sorted(numbers)


def _room(number: int) -> str:
    for numbers, room in ROOM_OF_RANGE.items():
        if number in numbers:
            return room
    raise ValueError(f"FloorPlan{number} is not an ALFRED scene")


_FLOOR_PLANS: dict[int, FloorPlan] = {}


def load_floor_plan(number: int) -> FloorPlan:
    """Read ``FloorPlan<number>``'s layout files (cached)."""
    if number not in _FLOOR_PLANS:
        stem = LAYOUT_DIR / f"FloorPlan{number}"
        try:
            with open(f"{stem}-openable.json", encoding="utf-8") as handle:
                openable = json.load(handle)
            with open(f"{stem}-objects.json", encoding="utf-8") as handle:
                objects = json.load(handle)
            points = np.load(f"{stem}-layout.npy")
        except OSError as error:
            raise FileNotFoundError(
                f"no layout files for FloorPlan{number} in {LAYOUT_DIR}"
            ) from error
        receptacles = {
            rid: (float(p[0]), float(p[1]), int(p[2]), int(p[3]))
            for rid, p in sorted(openable.items())
        }
        reachable = tuple((float(x), float(z)) for x, z in points.tolist())
        _FLOOR_PLANS[number] = FloorPlan(
            number, _room(number), receptacles, tuple(sorted(set(objects))), reachable
        )
    return _FLOOR_PLANS[number]


def receptacle_type(receptacle_id: str) -> str:
    """``Sink|...|SinkBasin`` -> ``SinkBasin``; ``Cabinet|...`` -> ``Cabinet``."""
    parts = receptacle_id.split("|")
    return parts[-1] if parts[-1].endswith("Basin") else parts[0]


def _position(entity_id: str) -> tuple[float, float, float]:
    numbers = entity_id.split("|")[1:4]
    try:
        x, y, z = (float(n) for n in numbers)
    except ValueError:
        return 0.0, 0.9, 0.0
    return x, y, z


def _format_id(kind: str, x: float, y: float, z: float) -> str:
    return f"{kind}|{x:+06.2f}|{y:+06.2f}|{z:+06.2f}"


def _location(x: float, z: float, rotation: int, horizon: int) -> str:
    # ALFRED's pose: grid coordinates, quarter turns, camera horizon.
    return f"loc|{int(round(x / STEP_SIZE))}|{int(round(z / STEP_SIZE))}|{int(round(rotation / 90)) % 4}|{int(horizon)}"


# -- scenes --------------------------------------------------------------------


class SceneError(ValueError):
    """This floor plan cannot host this task type (or the draw failed); try another."""


@dataclass
class Scene:
    """A sampled game before it is written: task, receptacles, objects, agent."""

    task_type: str
    floor_plan: int
    object_target: str
    parent_target: str
    toggle_target: str
    task_desc: str
    receptacles: dict[str, tuple[str, str]]  # id -> (type, location)
    objects: dict[str, tuple[str, str]]  # id -> (type, receptacle id)
    agent_location: str
    random_seed: int

    @property
    def pddl_params(self) -> dict[str, Any]:
        return {
            "object_target": self.object_target,
            "parent_target": self.parent_target,
            "toggle_target": self.toggle_target,
            "mrecep_target": "",
            "object_sliced": False,
        }

    @property
    def task_dir(self) -> str:
        """ALFRED's task folder name: ``<type>-<object>-<mrecep>-<parent or toggle>-<scene>``."""
        parent = self.parent_target or self.toggle_target or "None"
        return f"{self.task_type}-{self.object_target}-None-{parent}-{self.floor_plan}"


def _receptacles_of(plan: FloorPlan, rng: random.Random) -> dict[str, tuple[str, str]]:
    receptacles: dict[str, tuple[str, str]] = {}
    for rid, (x, z, rotation, horizon) in plan.receptacles.items():
        kind = receptacle_type(rid)
        if kind in STATIC_RECEPTACLES and kind in C.VAL_RECEPTACLE_OBJECTS:
            receptacles[rid] = (kind, _location(x, z, rotation, horizon))
    present = {kind for kind, _ in receptacles.values()}
    for kind in plan.object_types:
        if kind in STATIC_RECEPTACLES and kind in C.VAL_RECEPTACLE_OBJECTS and kind not in present:
            for _ in range(SYNTHETIC_COUNTS.get(kind, 1)):
                x, z = rng.choice(plan.reachable)
                for _attempt in range(100):
                    rid = _format_id(
                        kind,
                        x + rng.uniform(-0.5, 0.5),
                        rng.uniform(0.0, 1.0),
                        z + rng.uniform(-0.5, 0.5),
                    )
                    if rid not in receptacles:
                        break
                receptacles[rid] = (kind, _location(x, z, 90 * rng.randrange(4), AGENT_HORIZON))
    return dict(sorted(receptacles.items()))


def _holders(receptacles: Mapping[str, tuple[str, str]], object_type: str) -> list[str]:
    return [
        rid
        for rid, (kind, _) in receptacles.items()
        if object_type in C.VAL_RECEPTACLE_OBJECTS[kind]
    ]


def _task_choices(
    task_type: str, plan: FloorPlan, receptacles: Mapping[str, tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """Every ``(object, parent, toggle)`` this scene supports for ``task_type``."""
    kinds = sorted({kind for kind, _ in receptacles.values()})
    placeable = sorted(t for t in plan.object_types if t in PICKUPABLE and _holders(receptacles, t))
    choices = []
    if task_type == "look_at_obj_in_light":
        if "DeskLamp" in plan.object_types and any(
            k in LAMP_HOSTS and k not in C.OPENABLE_CLASS_SET for k in kinds
        ):
            choices = [(obj, "", "DeskLamp") for obj in placeable]
        return choices
    required = {
        "pick_clean_then_place_in_recep": ("SinkBasin", C.VAL_ACTION_OBJECTS["Cleanable"]),
        "pick_heat_then_place_in_recep": ("Microwave", C.VAL_ACTION_OBJECTS["Heatable"]),
        "pick_cool_then_place_in_recep": ("Fridge", C.VAL_ACTION_OBJECTS["Coolable"]),
    }.get(task_type)
    for obj in placeable:
        if required is not None and (required[0] not in kinds or obj not in required[1]):
            continue
        for parent in kinds:
            if obj not in C.VAL_RECEPTACLE_OBJECTS[parent]:
                continue
            if required is not None and parent == required[0]:
                continue  # "put a hot apple in microwave" is not a task
            # The object must be able to start somewhere else than in the goal receptacle.
            if any(receptacles[r][0] != parent for r in _holders(receptacles, obj)):
                choices.append((obj, parent, ""))
    return choices


def eligible_floor_plans(task_type: str, floor_plans: Iterable[int]) -> tuple[int, ...]:
    """The floor plans that can host ``task_type`` (room type, appliances, a lamp...)."""
    eligible = []
    for number in floor_plans:
        plan = load_floor_plan(number)
        if plan.room not in C.GOALS_VALID[task_type]:
            continue
        # Receptacle types (and so the choices) do not depend on the draw.
        if _task_choices(task_type, plan, _receptacles_of(plan, random.Random(0))):
            eligible.append(number)
    return tuple(eligible)


def sample_scene(task_type: str, floor_plan: int, rng: random.Random) -> Scene:
    """Draw one game of ``task_type`` in ``floor_plan`` (raises :class:`SceneError` if impossible)."""
    if task_type not in TASK_TYPES.values():
        raise ValueError(f"unknown task type {task_type!r}")
    plan = load_floor_plan(floor_plan)
    if plan.room not in C.GOALS_VALID[task_type]:
        raise SceneError(f"{task_type} does not happen in a {plan.room} ({plan.name})")
    receptacles = _receptacles_of(plan, rng)
    choices = _task_choices(task_type, plan, receptacles)
    if not choices:
        raise SceneError(f"{plan.name} has no object/receptacle pair for {task_type}")
    # Object first, then receptacle: every object is as likely, whatever its number of parents.
    obj = rng.choice(sorted({c[0] for c in choices}))
    _, parent, toggle = rng.choice([c for c in choices if c[0] == obj])

    objects: dict[str, tuple[str, str]] = {}

    def place(kind: str, count: int, allowed: list[str]) -> None:
        for _ in range(count):
            holder = rng.choice(allowed)
            x, y, z = _position(holder)
            for _attempt in range(100):
                oid = _format_id(
                    kind,
                    x + rng.uniform(-0.4, 0.4),
                    y + rng.uniform(0.0, 0.2),
                    z + rng.uniform(-0.4, 0.4),
                )
                if oid not in objects and oid not in receptacles:
                    break
            objects[oid] = (kind, holder)

    two = task_type == "pick_two_obj_and_place"
    low, high = TWO_OBJECT_TARGET_COUNT if two else TARGET_COUNT
    target_holders = [r for r in _holders(receptacles, obj) if receptacles[r][0] != parent]
    place(obj, rng.randint(low, high), target_holders)
    if toggle:
        hosts = [
            r
            for r, (k, _) in receptacles.items()
            if k in LAMP_HOSTS and k not in C.OPENABLE_CLASS_SET
        ]
        place(toggle, 1, hosts)
    distractors = sorted(
        t
        for t in plan.object_types
        if t in PICKUPABLE and t not in (obj, toggle) and _holders(receptacles, t)
    )
    if len(distractors) > MAX_DISTRACTOR_TYPES:
        distractors = sorted(rng.sample(distractors, MAX_DISTRACTOR_TYPES))
    for kind in distractors:
        place(kind, rng.randint(*DISTRACTOR_COUNT), _holders(receptacles, kind))

    used_locations = {loc for _, loc in receptacles.values()}
    for _attempt in range(200):
        x, z = rng.choice(plan.reachable)
        agent_location = _location(x, z, 90 * rng.randrange(4), AGENT_HORIZON)
        if agent_location not in used_locations:
            break
    else:
        raise SceneError(f"{plan.name}: no free point to start the agent")

    template = rng.choice(goal_library.gdict[task_type]["templates"])
    task_desc = template.format(
        obj=obj.lower(), recep=parent.lower(), toggle=toggle.lower(), mrecep=""
    )
    return Scene(
        task_type=task_type,
        floor_plan=floor_plan,
        object_target=obj,
        parent_target=parent,
        toggle_target=toggle,
        task_desc=task_desc,
        receptacles=receptacles,
        objects=dict(sorted(objects.items())),
        agent_location=agent_location,
        random_seed=rng.randrange(2**31),
    )


def scene_problem(scene: Scene, problem_name: str) -> str:
    """The scene as an ALFRED ``initial_state.pddl`` (same sections, order and spelling)."""
    otypes = sorted(set(C.OBJECTS) - STATIC_RECEPTACLES)
    rtypes = sorted(STATIC_RECEPTACLES)
    locations = sorted({loc for _, loc in scene.receptacles.values()} | {scene.agent_location})
    object_types = sorted({kind for kind, _ in scene.objects.values()})
    receptacle_types = sorted({kind for kind, _ in scene.receptacles.values()})
    toggleable = {scene.toggle_target} if scene.toggle_target else set()

    lines = [
        f"(define (problem plan_{problem_name})",
        "(:domain alfred)",
        "(:objects",
        "agent1 # agent",
    ]
    lines += [f"        {t}Type # otype" for t in otypes]
    lines += [f"        {t}Type # rtype" for t in rtypes]
    lines += [f"        {oid} # object" for oid in scene.objects]
    lines += [f"        {rid} # receptacle" for rid in scene.receptacles]
    lines += [f"        {loc} # location" for loc in locations]
    lines += ["        )", "", "", "(:init", ""]
    lines += [
        f"        (receptacleType {rid} {kind}Type)" for rid, (kind, _) in scene.receptacles.items()
    ]
    lines += [f"        (objectType {oid} {kind}Type)" for oid, (kind, _) in scene.objects.items()]
    for rkind in receptacle_types:
        holds = sorted(C.VAL_RECEPTACLE_OBJECTS[rkind] & set(object_types))
        lines += [f"        (canContain {rkind}Type {okind}Type)" for okind in holds]
    lines += [
        f"        (pickupable {oid})"
        for oid, (kind, _) in scene.objects.items()
        if kind in PICKUPABLE
    ]
    lines += [
        f"        (isReceptacleObject {oid})"
        for oid, (kind, _) in scene.objects.items()
        if kind in C.MOVABLE_RECEPTACLES
    ]
    lines += [
        f"        (openable {rid})"
        for rid, (kind, _) in scene.receptacles.items()
        if kind in C.OPENABLE_CLASS_SET
    ]
    lines.append(f"        (atLocation agent1 {scene.agent_location})")
    for predicate, kinds in (
        ("cleanable", C.VAL_ACTION_OBJECTS["Cleanable"]),
        ("heatable", C.VAL_ACTION_OBJECTS["Heatable"]),
        ("coolable", C.VAL_ACTION_OBJECTS["Coolable"]),
        ("toggleable", toggleable),
        ("sliceable", C.VAL_ACTION_OBJECTS["Sliceable"]),
    ):
        lines += [
            f"        ({predicate} {oid})"
            for oid, (kind, _) in scene.objects.items()
            if kind in kinds
        ]
    lines += [
        f"        (inReceptacle {oid} {holder})" for oid, (_, holder) in scene.objects.items()
    ]
    lines += [
        f"        (receptacleAtLocation {rid} {loc})" for rid, (_, loc) in scene.receptacles.items()
    ]
    lines += [
        f"        (objectAtLocation {oid} {scene.receptacles[holder][1]})"
        for oid, (_, holder) in scene.objects.items()
    ]
    lines += ["        )", ""]
    goal = goal_library.gdict[scene.task_type]["pddl"].format(
        obj=scene.object_target, recep=scene.parent_target, toggle=scene.toggle_target, mrecep=""
    )
    return mangle("\n".join(lines)) + "\n" + mangle(goal)


# -- games ---------------------------------------------------------------------


def shipped_logic() -> tuple[str, str]:
    """``(domain, grammar)`` text of the installed alfworld package."""
    with open(ALFRED_PDDL_PATH, encoding="utf-8") as handle:
        domain = handle.read()
    with open(ALFRED_TWL2_PATH, encoding="utf-8") as handle:
        grammar = handle.read()
    return domain, grammar


def build_game(problem: str, task_desc: str, domain: str, grammar: str) -> dict[str, Any]:
    """A ``game.tw-pddl`` dict (goal sentence filled in as ``add_task_to_grammar`` does)."""
    return {
        "pddl_domain": domain,
        "grammar": grammar.replace("UNKNOWN GOAL", task_desc),
        "pddl_problem": problem,
        "solvable": None,
        "walkthrough": None,
    }


@dataclass
class Verification:
    """What the experts did on a game."""

    planner_plan: list[str] | None
    planner_won: bool
    handcoded_won: bool | None = None
    handcoded_steps: int | None = None

    def ok(self, verify: str) -> bool:
        return self.planner_won and (verify == "planner" or bool(self.handcoded_won))


def verify_game(
    record: GameRecord, *, verify: str = "both", max_steps: int = 50, engine: Any | None = None
) -> Verification:
    """Run the planner (and the hand-coded expert) on a game, as ``ALFWorld-v0`` would."""
    from envs.alfworld.engine import AlfredEngine, EngineError
    from envs.alfworld.experts import HandcodedExpert, PlannerExpert, play_expert

    own = engine is None
    engine = engine or AlfredEngine(facts=verify == "both")
    try:
        try:
            engine.load(record.game)
            planner = play_expert(engine, PlannerExpert(), record, max_steps=max_steps)
        except EngineError:
            return Verification(None, False)
        result = Verification(planner.actions if planner.won else None, planner.won)
        if verify == "both" and planner.won:
            handcoded = play_expert(engine, HandcodedExpert(), record, max_steps=max_steps)
            result.handcoded_won, result.handcoded_steps = handcoded.won, len(handcoded.actions)
        return result
    finally:
        if own:
            engine.close()


#: Address-space cap of the process that checks a game (MB). Fast Downward's planner is a
#: breadth-first search: on a few scenes (a kitchen with twenty closed cabinets and a two-object
#: goal) it grows to gigabytes. Such a game is dropped, which is deterministic, unlike a timeout.
PLANNER_MEMORY_MB = 1024
#: Wall-clock safety net of one check (seconds); the memory cap normally ends a runaway first.
PLANNER_TIMEOUT_S = 600.0


def verifier_main() -> None:
    """The checking process (``python -m envs.alfworld.generate --verifier MB``).

    Reads one JSON request per line on stdin, answers one JSON line per
    request on the original stdout (anything the libraries print goes to
    stderr). A request that runs out of memory answers ``out_of_memory``.
    """
    import resource

    from envs.alfworld.engine import AlfredEngine

    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints (C or Python) must not corrupt the protocol
    sys.stdout = sys.stderr
    memory_mb = int(sys.argv[sys.argv.index("--verifier") + 1])
    if memory_mb > 0:
        limit = memory_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    engine = AlfredEngine(facts=True)
    for line in sys.stdin:
        request = json.loads(line)
        record = GameRecord(**request["record"])
        try:
            result = verify_game(
                record, verify=request["verify"], max_steps=request["max_steps"], engine=engine
            )
            answer: dict[str, Any] = {"status": "ok", "result": asdict(result)}
        except MemoryError:
            answer = {"status": "out_of_memory"}
        except Exception as error:  # noqa: BLE001 - reported to the parent, which raises
            answer = {"status": "error", "message": f"{type(error).__name__}: {error}"}
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()


class GuardedVerifier:
    """Runs :func:`verify_game` in a child process with a memory cap and a timeout.

    ``verify`` returns ``None`` when the check ran out of memory or time (the
    child is then replaced), and raises ``RuntimeError`` if the check itself
    failed. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self, memory_mb: int = PLANNER_MEMORY_MB, timeout_s: float = PLANNER_TIMEOUT_S
    ) -> None:
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.last_failure = ""
        self._process: subprocess.Popen[str] | None = None

    def _start(self) -> subprocess.Popen[str]:
        package_root = str(Path(__file__).resolve().parents[2])
        environ = dict(os.environ)
        environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, environ.get("PYTHONPATH")) if p
        )
        # The check is single-threaded; a thread pool per core (OpenMP, OpenBLAS) would only
        # reserve address space under the cap, more of it the more cores the machine has.
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            environ[variable] = "1"
        self._process = subprocess.Popen(
            [sys.executable, "-m", "envs.alfworld.generate", "--verifier", str(self.memory_mb)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environ,
        )
        return self._process

    def verify(self, record: GameRecord, *, verify: str, max_steps: int) -> Verification | None:
        process = (
            self._process
            if self._process is not None and self._process.poll() is None
            else self._start()
        )
        request = {
            "record": {
                "task_id": record.task_id,
                "split": record.split,
                "game": dict(record.game),
                "traj_data": dict(record.traj_data),
            },
            "verify": verify,
            "max_steps": max_steps,
        }
        try:
            process.stdin.write(json.dumps(request) + "\n")
            process.stdin.flush()
            ready, _, _ = select.select([process.stdout], [], [], self.timeout_s)
            line = process.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError):
            line = ""
        if not line:  # killed by the memory cap (or the timeout)
            self.last_failure = (
                "timeout" if not ready else f"the check died (exit {process.poll()})"
            )
            self._stop(kill=True)
            return None
        answer = json.loads(line)
        if answer["status"] == "out_of_memory":
            self.last_failure = "out of memory"
            self._stop(kill=True)  # its heap is fragmented; start afresh
            return None
        if answer["status"] == "error":
            raise RuntimeError(f"checking {record.task_id} failed: {answer['message']}")
        return Verification(**answer["result"])

    def _stop(self, *, kill: bool) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if not kill:
                process.stdin.close()
                process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()

    def close(self) -> None:
        self._stop(kill=False)

    def __enter__(self) -> GuardedVerifier:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass
class GeneratedGame:
    """One kept game: where it goes and what it holds."""

    task_id: str  # <split>/<task dir>/<trial>/game.tw-pddl
    traj_data: dict[str, Any]
    problem: str
    game: dict[str, Any]
    attempts: int
    planner_steps: int
    handcoded_steps: int | None

    def write(self, data_root: str | os.PathLike) -> Path:
        """Write the trial folder under ``data_root/json_2.1.1`` (files written atomically)."""
        trial_dir = Path(data_root) / OFFICIAL_VERSION_DIR / Path(self.task_id).parent
        atomic_write_text(
            trial_dir / TRAJ_FILE, json.dumps(self.traj_data, indent=2, sort_keys=True) + "\n"
        )
        atomic_write_text(trial_dir / PDDL_FILE, self.problem)
        atomic_write_text(trial_dir / GAME_FILE, json.dumps(self.game))
        return trial_dir


@dataclass(frozen=True)
class _Job:
    split: str
    task_type: str
    index: int
    seed: int
    floor_plans: tuple[int, ...]
    verify: str
    max_steps: int
    max_attempts: int
    planner_memory_mb: int = PLANNER_MEMORY_MB


def _trial_name(job: _Job) -> str:
    type_id = next(k for k, v in TASK_TYPES.items() if v == job.task_type)
    return f"trial_gen{job.seed}_{job.split}_{type_id}_{job.index:05d}"


_VERIFIERS: dict[int, GuardedVerifier] = {}


def _verifier_for(memory_mb: int) -> GuardedVerifier:
    # One checking process per generating process (and memory cap), reused across games.
    if memory_mb not in _VERIFIERS:
        _VERIFIERS[memory_mb] = GuardedVerifier(memory_mb)
    return _VERIFIERS[memory_mb]


def close_verifiers() -> None:
    """Stop the checking processes this process started (also done at exit)."""
    while _VERIFIERS:
        _VERIFIERS.popitem()[1].close()


atexit.register(close_verifiers)


def generate_game(
    task_type: str,
    *,
    split: str = "train",
    index: int = 0,
    seed: int = 0,
    floor_plans: Sequence[int] | None = None,
    verify: str = "both",
    max_steps: int = 50,
    max_attempts: int = 40,
    planner_memory_mb: int = PLANNER_MEMORY_MB,
) -> GeneratedGame:
    """Generate the ``index``-th game of ``task_type`` for ``split`` (deterministic in the arguments)."""
    if floor_plans is None:
        floor_plans = default_floor_plans(split)
    job = _Job(
        split,
        task_type,
        index,
        seed,
        tuple(floor_plans),
        verify,
        max_steps,
        max_attempts,
        planner_memory_mb,
    )
    return _run_job(job)


def _run_job(job: _Job) -> GeneratedGame:
    domain, grammar = shipped_logic()
    trial = _trial_name(job)
    floor_plans = eligible_floor_plans(job.task_type, job.floor_plans)
    if not floor_plans:
        raise ValueError(
            f"none of the floor plans {list(job.floor_plans)} can host {job.task_type}"
        )
    verifier = _verifier_for(job.planner_memory_mb)
    last_error = "no attempt made"
    for attempt in range(job.max_attempts):
        rng = random.Random(
            f"mentorgym-alfworld/{GENERATOR_VERSION}/{job.seed}/{job.split}/{job.task_type}/{job.index}/{attempt}"
        )
        floor_plan = rng.choice(floor_plans)
        try:
            scene = sample_scene(job.task_type, floor_plan, rng)
        except SceneError as error:
            last_error = str(error)
            continue
        task_id = f"{job.split}/{scene.task_dir}/{trial}/{GAME_FILE}"
        problem = scene_problem(scene, trial)
        traj_data = {
            "task_id": trial,
            "task_type": scene.task_type,
            "pddl_params": scene.pddl_params,
            "scene": {
                "floor_plan": f"FloorPlan{floor_plan}",
                "scene_num": floor_plan,
                "random_seed": scene.random_seed,
            },
            "generator": {
                "name": "mentorgym envs.alfworld.generate",
                "version": GENERATOR_VERSION,
                "seed": job.seed,
                "split": job.split,
                "index": job.index,
                "attempt": attempt,
                "task_desc": scene.task_desc,
            },
        }
        game = build_game(problem, scene.task_desc, domain, grammar)
        record = GameRecord(task_id=task_id, split=job.split, game=game, traj_data=traj_data)
        result = verifier.verify(record, verify=job.verify, max_steps=job.max_steps)
        if result is None or not result.ok(job.verify):
            if result is None:
                why = f"the planner check stopped ({verifier.last_failure}; cap {job.planner_memory_mb} MB)"
            elif not result.planner_won:
                why = "no winning plan"
            else:
                why = "the hand-coded expert did not win"
            last_error = f"{scene.task_dir}: {why}"
            continue
        game["solvable"] = True
        game["walkthrough"] = result.planner_plan
        return GeneratedGame(
            task_id=task_id,
            traj_data=traj_data,
            problem=problem,
            game=game,
            attempts=attempt + 1,
            planner_steps=len(result.planner_plan or []),
            handcoded_steps=result.handcoded_steps,
        )
    raise RuntimeError(
        f"could not generate {job.task_type} #{job.index} for {job.split} in {job.max_attempts} attempts "
        f"(last: {last_error})"
    )


def default_floor_plans(split: str) -> tuple[int, ...]:
    """Seen floor plans for ``train``/``dev``/``valid_seen``, held-out ones for ``valid_unseen``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
    if split == "valid_unseen":
        return UNSEEN_FLOOR_PLANS
    return tuple(n for n in floor_plan_numbers() if n not in UNSEEN_FLOOR_PLANS)


@dataclass
class DatasetReport:
    """What :func:`generate_dataset` wrote."""

    root: Path
    games: list[GeneratedGame] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        table: dict[str, dict[str, int]] = {}
        for game in self.games:
            split = game.task_id.split("/", 1)[0]
            table.setdefault(split, {}).setdefault(game.traj_data["task_type"], 0)
            table[split][game.traj_data["task_type"]] += 1
        return table


def generate_dataset(
    out_dir: str | os.PathLike,
    *,
    games_per_type: Mapping[str, int],
    seed: int = 0,
    task_types: Iterable[int | str] | None = None,
    verify: str = "both",
    max_steps: int = 50,
    max_attempts: int = 40,
    jobs: int = 1,
    overwrite: bool = False,
    planner_memory_mb: int = PLANNER_MEMORY_MB,
    floor_plans: Mapping[str, Sequence[int]] | None = None,
    progress: Callable[[GeneratedGame], None] | None = None,
) -> DatasetReport:
    """Write ``games_per_type[split]`` games of each task type per split under ``out_dir``.

    ``out_dir`` becomes an ``ALFWORLD_DATA`` folder (``out_dir/json_2.1.1/...``).
    The games are the same for the same arguments whatever ``jobs`` is. A draw
    whose planner check needs more than ``planner_memory_mb`` is dropped.
    ``floor_plans`` replaces a split's floor plans (default: :func:`default_floor_plans`).
    """
    if verify not in ("planner", "both"):
        raise ValueError(f"verify must be 'planner' or 'both', not {verify!r}")
    unknown = sorted(set(games_per_type) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown splits {unknown}; choose from {list(SPLITS)}")
    if any((not isinstance(n, int)) or n < 0 for n in games_per_type.values()):
        raise ValueError(f"game counts must be non-negative ints: {dict(games_per_type)}")
    if max_steps < 1 or max_attempts < 1 or jobs < 1:
        raise ValueError("max_steps, max_attempts and jobs must be at least 1")
    types = normalise_task_types(task_types)
    plans = {
        split: tuple((floor_plans or {}).get(split) or default_floor_plans(split))
        for split in SPLITS
    }
    known = set(floor_plan_numbers())
    for split, numbers in plans.items():
        if not set(numbers) <= known:
            raise ValueError(f"unknown floor plans for {split}: {sorted(set(numbers) - known)}")
    root = Path(out_dir)
    target = root / OFFICIAL_VERSION_DIR
    if target.exists() and any(target.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{target} is not empty; pass overwrite=True (--overwrite) to replace it"
            )
        shutil.rmtree(target)
    job_list = [
        _Job(
            split,
            task_type,
            index,
            seed,
            plans[split],
            verify,
            max_steps,
            max_attempts,
            planner_memory_mb,
        )
        for split in SPLITS
        for task_type in types
        for index in range(games_per_type.get(split, 0))
    ]
    report = DatasetReport(
        root=root,
        config={
            "generator_version": GENERATOR_VERSION,
            "seed": seed,
            "games_per_type": {s: games_per_type.get(s, 0) for s in SPLITS},
            "task_types": list(types),
            "verify": verify,
            "max_steps": max_steps,
            "planner_memory_mb": planner_memory_mb,
            "unseen_floor_plans": list(plans["valid_unseen"]),
        },
    )
    if floor_plans and any(floor_plans.get(split) for split in SPLITS):
        report.config["floor_plans"] = {split: list(numbers) for split, numbers in plans.items()}
    if jobs == 1:
        results: Iterable[GeneratedGame] = map(_run_job, job_list)
    else:
        pool = ProcessPoolExecutor(max_workers=jobs)
        results = pool.map(_run_job, job_list)
    try:
        for game in results:
            game.write(root)
            report.games.append(game)
            if progress is not None:
                progress(game)
    finally:
        if jobs != 1:
            pool.shutdown(cancel_futures=True)
    return report


# -- alfworld-generate's job: game.tw-pddl from traj_data.json + initial_state.pddl ----


@dataclass
class CompiledTrial:
    """One trial :func:`compile_directory` looked at."""

    trial_dir: str
    status: str  # "solvable", "unsolvable", "skipped: <why>"
    walkthrough: list[str] | None = None


def compile_directory(
    data_path: str | os.PathLike,
    *,
    start: int = 0,
    end: int | None = None,
    seed: int = 20240229,
    overwrite: bool = False,
    domain: str | None = None,
    grammar: str | None = None,
    planner_memory_mb: int = PLANNER_MEMORY_MB,
) -> list[CompiledTrial]:
    """Write ``game.tw-pddl`` next to each ``traj_data.json`` + ``initial_state.pddl``.

    The counterpart of ``alfworld-generate --expert_type planner``: trials are
    taken in sorted order, ``[start:end]`` (``end=None``: to the last one,
    which upstream's default ``--end -1`` leaves out); movable/sliced trials
    and unknown task types are skipped; the goal sentence is one of the task
    type's templates (drawn from a stream seeded by ``seed`` and the trial's
    path); Fast Downward decides ``solvable`` and gives the ``walkthrough``.
    Existing game files are kept unless ``overwrite``. A trial whose planner
    check runs out of memory (``planner_memory_mb``) is written as unsolvable.
    """
    if domain is None or grammar is None:
        shipped_domain, shipped_grammar = shipped_logic()
        domain = domain or shipped_domain
        grammar = grammar or shipped_grammar
    root = Path(data_path)
    trajs = sorted(root.rglob(TRAJ_FILE))[start:end]
    results = []
    verifier = GuardedVerifier(planner_memory_mb)
    try:
        for traj_path in trajs:
            trial_dir = traj_path.parent
            relative = trial_dir.relative_to(root).as_posix()
            game_path = trial_dir / GAME_FILE
            if "movable" in relative or "Sliced" in relative:
                results.append(CompiledTrial(relative, "skipped: movable or sliced trial"))
                continue
            if not (trial_dir / PDDL_FILE).is_file():
                results.append(CompiledTrial(relative, f"skipped: no {PDDL_FILE}"))
                continue
            if game_path.exists() and not overwrite:
                results.append(CompiledTrial(relative, "skipped: game file exists"))
                continue
            with open(traj_path, encoding="utf-8") as handle:
                traj_data = json.load(handle)
            task_type = traj_data.get("task_type")
            if task_type not in TASK_TYPES.values():
                results.append(CompiledTrial(relative, f"skipped: task type {task_type!r}"))
                continue
            rng = random.Random(f"{seed}/{relative}")
            params = traj_data.get("pddl_params", {})
            template = rng.choice(goal_library.gdict[task_type]["templates"])
            task_desc = template.format(
                obj=str(params.get("object_target", "")).lower(),
                recep=str(params.get("parent_target", "")).lower(),
                toggle=str(params.get("toggle_target", "")).lower(),
                mrecep=str(params.get("mrecep_target", "")).lower(),
            )
            problem = (trial_dir / PDDL_FILE).read_text(encoding="utf-8")
            game = build_game(problem, task_desc, domain, grammar)
            record = GameRecord(task_id=relative, split="", game=game, traj_data=traj_data)
            result = verifier.verify(record, verify="planner", max_steps=10_000)
            solvable = result is not None and result.planner_won
            game["solvable"] = solvable
            game["walkthrough"] = result.planner_plan if solvable else None
            write_public_text(game_path, json.dumps(game))
            status = "solvable" if solvable else "unsolvable"
            results.append(CompiledTrial(relative, status, game["walkthrough"]))
    finally:
        verifier.close()
    return results


if __name__ == "__main__":
    if "--verifier" in sys.argv:
        verifier_main()
    else:
        print("usage: tools/generate_alfworld.py --help", file=sys.stderr)
        sys.exit(2)
