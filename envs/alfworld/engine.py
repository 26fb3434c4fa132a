"""TextWorld's PDDL engine for ALFWorld games, with a reset cache and a fast grammar.

TextWorld's ``PddlEnv`` plays a game dict (``pddl_domain``, ``grammar``,
``pddl_problem``) by translating the PDDL task to Fast Downward's SAS format,
loading it into Fast Downward's search library, and deriving every text from
the TextWorld grammar. ALFWorld's ``AlfredDemangler`` then renames entities
(``Apple_bar__plus_01...`` becomes ``apple 1``). Upstream, ``load`` and every
``reset`` translate the task twice (once plain, once optimised for the
planner) and parse the grammar: 1 to 5 s per reset. Every step derives each
admissible command's text with a grammar that re-parses its strings with
TatSu and deep-copies its contexts: 10 to 20 steps/s.

:class:`CachedPddlEnv` is ``PddlEnv`` with three caches, keyed by content so
they are shared by every env in the process:

* the plain translation of each problem (and the initial facts it yields), so
  replaying a game does not recompile it; translations are also kept on disk
  (:mod:`envs.alfworld.disk_cache`), so a game another process has played or
  generated loads in milliseconds;
* the planner's optimised translation, computed only when a planner is used;
* the parsed grammar of each domain/grammar pair; games that differ only by
  their goal sentence (ALFWorld's ``add_task_to_grammar``) share one parse.

Its grammar is :class:`_FastGrammar`, the same derivation without re-parsing
or copying. The state transitions, the admissible commands and every text are
the engine's; tests compare them with the original engine step by step.

:class:`AlfredEngine` is the small facade the environment, the generator and
the benchmark use: ``load(game)``, ``reset()``, ``step(command)``,
``plan()`` and ``close()``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import sys
import threading
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from envs.alfworld import disk_cache
from envs.alfworld.data import split_task_rule
from envs.alfworld.paths import configure_alfworld_data

configure_alfworld_data()

import fast_downward  # noqa: E402
import textworld  # noqa: E402
import textworld.logic  # noqa: E402
from alfworld.agents.environment.alfred_tw_env import AlfredDemangler  # noqa: E402
from textworld.core import GameState  # noqa: E402
from textworld.envs import PddlEnv  # noqa: E402
from textworld.envs.pddl import logic as pddl_logic  # noqa: E402
from textworld.envs.pddl import textgen as _textgen  # noqa: E402
from textworld.envs.pddl.textgen import (  # noqa: E402
    ConditionalSymbol,
    ContextSensitiveGrammar,
    CSGUnknownSymbolError,
    EvalSymbol,
    ListSymbol,
    NonterminalSymbol,
    TerminalSymbol,
)
from textworld.logic import Proposition, Variable  # noqa: E402

__all__ = [
    "AlfredEngine",
    "CachedPddlEnv",
    "CacheStats",
    "EngineError",
    "cache_stats",
    "clear_caches",
    "game_key",
    "set_cache_size",
    "translate",
]

#: Default number of games whose translation the process keeps (``MENTORGYM_ALFWORLD_CACHE``);
#: a kitchen game takes about 1.5 MB (mostly its SAS text).
DEFAULT_CACHE_SIZE = 64

K = TypeVar("K")
V = TypeVar("V")


class EngineError(RuntimeError):
    """The engine could not load or play a game (bad PDDL, unknown grammar symbol...)."""


# -- small LRU cache ----------------------------------------------------------


class _LRU(Generic[K, V]):
    """A thread-safe least-recently-used map with hit/miss counters."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get_or_create(self, key: K, create: Callable[[], V]) -> V:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                self.hits += 1
                return self._data[key]
            self.misses += 1
        value = create()  # outside the lock: translation takes seconds
        with self._lock:
            if self.maxsize > 0:
                self._data[key] = value
                self._data.move_to_end(key)
                while len(self._data) > self.maxsize:
                    self._data.popitem(last=False)
        return value

    def resize(self, maxsize: int) -> None:
        with self._lock:
            self.maxsize = maxsize
            while len(self._data) > max(maxsize, 0):
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


def _initial_cache_size() -> int:
    value = os.environ.get("MENTORGYM_ALFWORLD_CACHE", "")
    try:
        return max(0, int(value)) if value else DEFAULT_CACHE_SIZE
    except ValueError:
        return DEFAULT_CACHE_SIZE


_PROBLEMS: _LRU[str, CompiledProblem] = _LRU(_initial_cache_size())
_LOGICS: _LRU[str, pddl_logic.GameLogic] = _LRU(64)


@dataclass(frozen=True)
class CacheStats:
    """Hit and miss counts of the process-wide caches (see :func:`cache_stats`)."""

    problems: int
    problem_hits: int
    problem_misses: int
    logics: int
    logic_hits: int
    logic_misses: int


def cache_stats() -> CacheStats:
    """How often a reset found its translation (and grammar) already in the cache."""
    return CacheStats(
        problems=len(_PROBLEMS),
        problem_hits=_PROBLEMS.hits,
        problem_misses=_PROBLEMS.misses,
        logics=len(_LOGICS),
        logic_hits=_LOGICS.hits,
        logic_misses=_LOGICS.misses,
    )


def clear_caches() -> None:
    """Forget every translation and grammar held in memory (the next reset of each game
    reads the disk cache, or translates again when it is off)."""
    _PROBLEMS.clear()
    _LOGICS.clear()


def set_cache_size(games: int) -> None:
    """Keep at most ``games`` translated problems (0 disables the reset cache)."""
    if not isinstance(games, int) or games < 0:
        raise ValueError(f"cache size must be a non-negative int, not {games!r}")
    _PROBLEMS.resize(games)


def _digest(*parts: str) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode("utf-8"))
        sha.update(b"\x00")
    return sha.hexdigest()


def check_game(game: Any) -> None:
    """Raise :class:`EngineError` unless ``game`` has the three texts a game needs."""
    if not isinstance(game, Mapping):
        raise EngineError(
            f"a game is a dict (the content of a game.tw-pddl), not {type(game).__name__}"
        )
    missing = [
        k for k in ("pddl_domain", "grammar", "pddl_problem") if not isinstance(game.get(k), str)
    ]
    if missing:
        raise EngineError(
            f"game lacks {missing} (a game.tw-pddl holds pddl_domain, grammar, pddl_problem)"
        )


def game_key(game: Mapping[str, Any]) -> str:
    """Content hash of a game dict (domain, grammar and problem)."""
    check_game(game)
    return _digest(game["pddl_domain"], game["grammar"], game["pddl_problem"])


# -- translation ---------------------------------------------------------------

_TRANSLATE_LOCK = threading.Lock()


def translate(domain: str, problem: str, *, optimize: bool = False) -> tuple[Any, str]:
    """Fast Downward's translation of a PDDL task: ``(task, sas_text)``.

    ``fast_downward.pddl2sas`` overwrites ``sys.argv`` (its option module
    parses the command line) and sets module-level options; this wrapper
    restores ``sys.argv`` and serialises calls.
    """
    with _TRANSLATE_LOCK:
        saved_argv = list(sys.argv)
        try:
            return fast_downward.pddl2sas(domain, problem, optimize=optimize)
        except Exception as error:  # the translator raises bare SystemExit/ValueError/...
            raise EngineError(
                f"Fast Downward could not translate the PDDL problem: {error}"
            ) from error
        except SystemExit as error:  # its parser exits on malformed PDDL
            raise EngineError(f"Fast Downward rejected the PDDL problem: {error}") from None
        finally:
            sys.argv = saved_argv


def _atom_fact(atom: Any, name2type: Mapping[str, str]) -> Proposition | None:
    """The proposition of one ``task.init`` entry (``None`` for numeric fluents)."""
    translate_pkg = fast_downward.translate
    if isinstance(atom, translate_pkg.pddl.conditions.Atom):
        if atom.predicate == "=":
            return None
        return Proposition(atom.predicate, [Variable(arg, name2type[arg]) for arg in atom.args])
    if isinstance(atom, translate_pkg.pddl.f_expression.Assign):
        if atom.fluent.symbol == "total-cost":
            return None
        name = f"{atom.expression.value}"
        if name.isdigit():  # distances between locations
            return None
        return Proposition(name, [Variable(arg, name2type[arg]) for arg in atom.fluent.args])
    return None


#: What a translation keeps (and the disk cache stores), as plain data: strings, tuples and the
#: SAS bytes. Not the translator's or TextWorld's objects: they cache string hashes, which
#: differ from one process to the next, so they must be rebuilt in the process that uses them.
_PARTS = ("sas", "actions", "types", "name2type", "init_facts")


def _translated_parts(domain: str, problem: str) -> dict[str, Any]:
    task, sas = translate(domain, problem)
    name2type = {o.name: o.type_name for o in task.objects}
    init_facts = (_atom_fact(atom, name2type) for atom in task.init)
    return {
        "sas": sas.encode("utf-8"),
        # PddlState reads only each action's parameters (name and type) from the task.
        "actions": {
            action.name: tuple((p.name, p.type_name) for p in action.parameters)
            for action in task.actions
        },
        "types": tuple((t.name, tuple(t.supertype_names)) for t in task.types),
        "name2type": name2type,
        "init_facts": tuple(
            (fact.name, tuple((v.name, v.type) for v in fact.arguments))
            for fact in init_facts
            if fact is not None
        ),
    }


@dataclass(frozen=True)
class _Parameter:
    """What ``PddlState`` reads of a translated action's parameter."""

    name: str
    type_name: str


@dataclass(frozen=True)
class _ActionParameters:
    """What ``PddlState`` reads of a translated action: its name and parameters."""

    name: str
    parameters: tuple[_Parameter, ...]


class CompiledProblem:
    """Everything a reset needs from one problem's translation (immutable once built).

    ``parts`` (as :meth:`parts` returns them) skips the translation: the disk cache's way in.
    """

    def __init__(self, domain: str, problem: str, parts: Mapping[str, Any] | None = None) -> None:
        self.domain = domain
        self.problem = problem
        if parts is None:
            parts = _translated_parts(domain, problem)
        self._parts = {name: parts[name] for name in _PARTS}
        self.sas: bytes = parts["sas"]
        self.actions = {
            name: _ActionParameters(name, tuple(_Parameter(p, t) for p, t in params))
            for name, params in parts["actions"].items()
        }
        self.types = tuple((name, tuple(supertypes)) for name, supertypes in parts["types"])
        self.name2type: dict[str, str] = dict(parts["name2type"])
        self.init_facts = tuple(
            Proposition(name, [Variable(var, kind) for var, kind in arguments])
            for name, arguments in parts["init_facts"]
        )
        self._state_facts: tuple[Proposition, ...] | None = None
        self._replan_sas: bytes | None = None
        self._lock = threading.Lock()

    def parts(self) -> dict[str, Any]:
        """The translation as plain data, for :mod:`envs.alfworld.disk_cache`."""
        return dict(self._parts)

    def state_facts(self, downward_lib: Any) -> tuple[Proposition, ...]:
        """The facts of the search library's initial state (read once, then reused)."""
        if self._state_facts is None:
            size = downward_lib.get_state_size()
            atoms = (pddl_logic.Atom * size)()
            downward_lib.get_state(atoms)
            facts = (atom.get_fact(self.name2type) for atom in atoms)
            self._state_facts = tuple(f for f in facts if not f.is_negation)
        return self._state_facts

    def replan_sas(self) -> bytes:
        """The planner's optimised translation (computed on first use)."""
        with self._lock:
            if self._replan_sas is None:
                _, sas = translate(self.domain, self.problem, optimize=True)
                self._replan_sas = sas.encode("utf-8")
            return self._replan_sas


def compiled_problem(domain: str, problem: str) -> CompiledProblem:
    """The cached translation of ``problem``: from memory, else from the disk cache, else
    translated (and then stored on disk for the next process)."""
    key = _digest(domain, problem)
    return _PROBLEMS.get_or_create(key, lambda: _load_or_translate(domain, problem))


def _load_or_translate(domain: str, problem: str) -> CompiledProblem:
    parts = disk_cache.load(domain, problem)
    if parts is not None:
        try:
            return CompiledProblem(domain, problem, parts)
        except (KeyError, TypeError, ValueError):  # a malformed entry: translate it again
            pass
    compiled = CompiledProblem(domain, problem)
    disk_cache.store(domain, problem, compiled.parts())
    return compiled


# -- grammar ------------------------------------------------------------------


class _FastGrammar(ContextSensitiveGrammar):
    """TextWorld's grammar, deriving the same text without re-parsing or deep copies.

    ``ContextSensitiveGrammar.derive`` parses its start string with TatSu on
    every call (every admissible command, every step), parses each rule
    condition again when it checks it, and deep-copies every symbol and
    context it touches. Here parses are cached (strings and conditions are the
    grammar's own, a small set) and a context is never modified once built, so
    contexts are shared instead of copied. The derivation order, the rule
    choice (the first applicable one) and the list formatting are upstream's;
    tests compare both derivations step by step.
    """

    def derive(self, start: str, context: Mapping[str, Any] = {}) -> str:  # noqa: B006 - upstream signature
        stack: list[tuple[Any, Mapping[str, Any]]] = [
            (symbol, context) for symbol in reversed(_symbols(start))
        ]
        derived: list[str] = []
        while stack:
            symbol, ctx = stack.pop()
            kind = type(symbol)
            if kind is TerminalSymbol:
                derived.append(str(symbol.symbol))
            elif kind is NonterminalSymbol:
                stack.extend((s, ctx) for s in reversed(self._rhs(symbol, ctx)))
            elif kind is EvalSymbol:
                derived.append(str(_evaluate(symbol.expression, ctx)))
            elif kind is ConditionalSymbol:
                stack.extend((symbol.expression, c) for c in reversed(_contexts(symbol.given, ctx)))
            elif kind is ListSymbol:
                stack.extend(reversed(self._list_items(symbol.symbol, ctx)))
            else:
                raise NotImplementedError(f"Unknown symbol: {kind}")
        return "".join(derived)

    def _rhs(self, symbol: Any, ctx: Mapping[str, Any]) -> list[Any]:
        rules = self._rules.get(str(symbol))
        if not rules:
            raise CSGUnknownSymbolError(symbol)
        for rule in rules:
            if not rule.condition:
                return rule.rhs
            query = _query(rule.condition)
            if next(iter(ctx["state"].all_assignments(query, ctx["mapping"])), None) is not None:
                return rule.rhs
        raise IndexError(f"no rule of '#{symbol}#' applies")  # upstream: rules[0] of an empty list

    def _list_items(
        self, inner: Any, ctx: Mapping[str, Any]
    ) -> list[tuple[Any, Mapping[str, Any]]]:
        # ListSymbol.derive: the inner symbol's derivation, joined by the list separators.
        kind = type(inner)
        if kind is ConditionalSymbol:
            items = [(inner.expression, c) for c in _contexts(inner.given, ctx)]
        elif kind is EvalSymbol:
            items = [(TerminalSymbol(_evaluate(inner.expression, ctx)), ctx)]
        else:
            raise NotImplementedError(f"Unknown list symbol: {kind}")
        if not items:
            return [(NonterminalSymbol("list_empty"), ctx)]
        if len(items) == 1:
            return items
        joined: list[tuple[Any, Mapping[str, Any]]] = []
        for item in items[:-1]:
            joined += [item, (NonterminalSymbol("list_separator"), ctx)]
        joined[-1] = (NonterminalSymbol("list_last_separator"), ctx)
        return joined + [items[-1]]


_PARSE_CACHE_LIMIT = 4096
_SYMBOLS: dict[str, tuple[Any, ...]] = {}
_QUERIES: dict[str, Any] = {}


def _symbols(text: str) -> tuple[Any, ...]:
    symbols = _SYMBOLS.get(text)
    if symbols is None:
        if len(_SYMBOLS) > _PARSE_CACHE_LIMIT:
            _SYMBOLS.clear()
        symbols = _SYMBOLS[text] = tuple(_textgen._parse_and_convert(text, rule_name="symbols"))
    return symbols


def _query(expression: str) -> Any:
    rule = _QUERIES.get(expression)
    if rule is None:
        if len(_QUERIES) > _PARSE_CACHE_LIMIT:
            _QUERIES.clear()
        rule = _QUERIES[expression] = textworld.logic.Rule.parse_conjunctive_query(expression)
    return rule


def _contexts(given: str, ctx: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """textgen.query: one context per way the condition holds (the context itself if none)."""
    if not given:
        return [ctx]
    contexts = []
    infos = ctx["entity_infos"]
    for mapping in ctx["state"].all_assignments(_query(given), ctx["mapping"]):
        contexts.append(
            {
                **ctx,
                "variables": {
                    **ctx["variables"],
                    **{ph.name: infos[var.name] for ph, var in mapping.items()},
                },
                "mapping": {**ctx["mapping"], **mapping},
            }
        )
    return contexts


def _evaluate(expression: str, ctx: Mapping[str, Any]) -> Any:
    # EvalSymbol.derive evaluates in textgen's namespace with the variables as locals.
    return eval(expression, vars(_textgen), dict(ctx["variables"]))  # noqa: S307 - the game's own grammar


def _fast(
    logic: pddl_logic.GameLogic, rules: Mapping[str, list[Any]] | None = None
) -> pddl_logic.GameLogic:
    """A copy of ``logic`` sharing its actions and types, with a :class:`_FastGrammar`."""
    fast = copy.copy(logic)
    fast.grammar = _FastGrammar()
    source = logic.grammar._rules if rules is None else rules
    fast.grammar._rules = defaultdict(list, {k: list(v) for k, v in source.items()})
    return fast


def _parse_logic(domain: str, grammar: str) -> pddl_logic.GameLogic:
    try:
        return _fast(pddl_logic.GameLogic(domain=domain, grammar=grammar))
    except Exception as error:
        raise EngineError(f"TextWorld could not parse the game's grammar: {error}") from error


def game_logic(domain: str, grammar: str) -> pddl_logic.GameLogic:
    """The parsed grammar of a game; games that differ only by their goal share one parse."""
    parts = split_task_rule(grammar)
    if parts is None:
        return _LOGICS.get_or_create(
            _digest(domain, grammar), lambda: _parse_logic(domain, grammar)
        )
    template, task_text = parts
    base = _LOGICS.get_or_create(_digest(domain, template), lambda: _parse_logic(domain, template))
    task_rhs = json.loads(f'"{task_text}"')
    task_rules = ContextSensitiveGrammar.parse(json.dumps({"task": [{"rhs": task_rhs}]}))
    return _fast(base, {**base.grammar._rules, "task": task_rules._rules["task"]})


# -- the engine ---------------------------------------------------------------


class _CachedPddlState(pddl_logic.PddlState):
    """``PddlState`` built from a cached translation instead of translating again.

    It sets the same attributes as ``PddlState.__init__`` and loads the same
    SAS task into the search library; the planner's translation is loaded
    only when ``replan`` is first called.
    """

    def __init__(
        self, downward_lib: Any, compiled: CompiledProblem, logic: pddl_logic.GameLogic
    ) -> None:
        self._facts = defaultdict(set)
        self._vars_by_name = {}
        self._vars_by_type = defaultdict(set)
        self._var_counts = Counter()
        self._logic = logic
        self.downward_lib = downward_lib
        self.pddl_problem = compiled.problem
        self.task = None  # PddlState keeps the translated task; nothing reads it after __init__
        self.sas = compiled.sas
        self._compiled = compiled
        self._replan_loaded = False
        self._actions = compiled.actions
        for name, supertypes in compiled.types:
            try:
                logic.types.add(textworld.logic.Type(name, list(supertypes)))
            except ValueError:  # already known to this (shared) logic
                pass
        downward_lib.load_sas(compiled.sas)
        self.name2type = compiled.name2type
        self.add_facts(compiled.init_facts)
        self.add_facts(compiled.state_facts(downward_lib))

    def replan(self, infos: Mapping[str, Any]) -> list[str]:
        if not self._replan_loaded:
            self.downward_lib.load_sas_replan(self._compiled.replan_sas())
            self._replan_loaded = True
        return super().replan(infos)


# Fast Downward's search library keeps one task in global state, so every engine needs its
# own copy (``fast_downward.load_lib`` copies the 33 MB .so to a temporary file and dlopens
# it). Unloading a copy with dlclose can crash the process at exit (the library leaves
# handlers behind), so closed engines hand their copy back here for the next engine.
_LIB_POOL: list[Any] = []
_LIB_POOL_LOCK = threading.Lock()


def _acquire_lib() -> Any:
    with _LIB_POOL_LOCK:
        if _LIB_POOL:
            return _LIB_POOL.pop()
    return fast_downward.load_lib()


def _release_lib(lib: Any) -> None:
    lib.cleanup()  # frees the loaded task; load_sas starts from scratch anyway
    with _LIB_POOL_LOCK:
        _LIB_POOL.append(lib)


class CachedPddlEnv(PddlEnv):
    """TextWorld's ``PddlEnv`` whose ``load`` and ``reset`` reuse cached translations.

    ``load`` takes a game dict (as in a ``game.tw-pddl`` file) or a path.
    Everything else (texts, admissible commands, transitions) is ``PddlEnv``'s.
    The search library comes from a per-process pool (``close`` returns it).
    """

    def __init__(self, infos: textworld.EnvInfos | None = None) -> None:
        # PddlEnv.__init__ minus its fresh library copy.
        textworld.Environment.__init__(self, infos)
        self.downward_lib = _acquire_lib()
        self._state_is_initial = False

    def step(self, command: str) -> tuple[GameState, float, bool]:
        self._state_is_initial = False  # a step changes the state, so a reset rebuilds it
        return super().step(command)

    def load(self, filename_or_data: str | os.PathLike | Mapping[str, Any]) -> None:
        if isinstance(filename_or_data, Mapping):
            data, self._game_file = filename_or_data, None
        else:
            with open(filename_or_data, encoding="utf-8") as handle:
                data = json.load(handle)
            self._game_file = os.fspath(filename_or_data)
        missing = [
            k
            for k in ("pddl_domain", "grammar", "pddl_problem")
            if not isinstance(data.get(k), str)
        ]
        if missing:
            raise EngineError(
                f"game lacks {missing} (a game.tw-pddl holds pddl_domain, grammar, pddl_problem)"
            )
        self._game_data = data
        self.walkthrough = data.get("walkthrough")
        self._compiled = compiled_problem(data["pddl_domain"], data["pddl_problem"])
        self._logic = game_logic(data["pddl_domain"], data["grammar"])
        self._pddl_state = _CachedPddlState(self.downward_lib, self._compiled, self._logic)
        self._state_is_initial = True  # nothing has stepped it: the first reset can reuse it
        self._entity_infos = self._get_entity_infos()

    def reset(self) -> GameState:
        # PddlEnv.reset, except that the state comes from the cached translation, and the
        # first reset after a load reuses the state load built instead of building another.
        if not self._state_is_initial:
            self._pddl_state = _CachedPddlState(self.downward_lib, self._compiled, self._logic)
        self._state_is_initial = False
        self.prev_state = None
        self.state = GameState()
        self._last_action = None
        self._moves = 0
        context = {
            "state": self._pddl_state,
            "facts": list(self._pddl_state.facts),
            "variables": {},
            "mapping": {},
            "entity_infos": self._entity_infos,
        }
        self.state.feedback = self._logic.grammar.derive("#intro#", context)
        self.state.raw = self.state.feedback
        self._gather_infos()
        if "walkthrough" in self.request_infos.extras:
            self.state["extra.walkthrough"] = self.walkthrough or self._pddl_state.replan(
                self._entity_infos
            )
        return self.state

    def close(self) -> None:
        lib = getattr(self, "downward_lib", None)
        if lib is not None:
            self.downward_lib = None
            _release_lib(lib)


class AlfredEngine:
    """One ALFWorld game in play: ``CachedPddlEnv`` behind ALFWorld's demangler.

    ``facts=True`` asks the engine for the state's facts every step (the
    hand-coded expert reads them). ``plan()`` asks Fast Downward for a plan
    from the current state, as ALFWorld's planner expert does.
    """

    def __init__(self, *, facts: bool = False) -> None:
        infos = textworld.EnvInfos(admissible_commands=True, won=True, facts=facts)
        self._pddl = CachedPddlEnv(infos)
        self._env = AlfredDemangler(self._pddl, shuffle=False)
        self.state: GameState | None = None
        self._loaded_key: str | None = None

    def load(self, game: Mapping[str, Any]) -> None:
        """Load a game dict unless it is the one already loaded."""
        key = game_key(game)
        if key != self._loaded_key:
            self._loaded_key = None
            self._env.load(game)
            self._loaded_key = key

    def reset(self) -> GameState:
        """Start the loaded game over; returns the engine's state (``feedback`` is the intro)."""
        if self._loaded_key is None:
            raise EngineError("no game loaded; call load(game) first")
        self.state = self._env.reset()
        return self.state

    def step(self, command: str) -> tuple[GameState, bool]:
        """Play ``command``; returns ``(state, accepted)``.

        ``accepted`` is False when the command is not one of the admissible
        commands: the engine then answers "Nothing happens." and nothing changes.
        """
        if self.state is None:
            raise EngineError("call reset() before step()")
        self.state, _score, _done = self._env.step(command)
        return self.state, self._pddl._last_action is not None

    @property
    def admissible_commands(self) -> list[str]:
        """The engine's admissible commands in the current state (sorted)."""
        return list(self.state["admissible_commands"]) if self.state is not None else []

    @property
    def won(self) -> bool:
        return bool(self.state is not None and self.state["won"])

    @property
    def executed_template(self) -> str | None:
        """Command template of the last accepted command (e.g. ``take {o} from {r}``)."""
        action = self._pddl._last_action
        if action is None:
            return None
        return self._pddl._logic.actions[action.name].template

    def plan(self) -> list[str]:
        """Fast Downward's plan from the current state, as commands (empty if none)."""
        if self.state is None:
            raise EngineError("call reset() before plan()")
        return list(self._pddl._pddl_state.replan(self._pddl._entity_infos))

    def facts(self) -> list[Proposition]:
        """The current state's facts with demangled names (needs ``facts=True``)."""
        return list(self.state["facts"]) if self.state is not None and "facts" in self.state else []

    def close(self) -> None:
        """Hand the engine's copy of Fast Downward's library back to the pool."""
        self._pddl.close()
        self.state = None
        self._loaded_key = None
