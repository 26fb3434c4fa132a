#!/usr/bin/env python
"""Fuzz every registered env with random hostile actions and count crashes, hangs and breaches.

Each try is one ``env.step`` with an action drawn from a seeded mix: random
unicode and control characters, values that are not strings, oversized text,
the env's own commands with junk inside, admissible actions cut or doubled,
and tool calls built to hurt (nesting up to 5,000 levels, lone-surrogate
escapes in any field, numbers JSON cannot hold, hundreds of calls, unclosed
blocks, final answers of junk); one try in fifty is a ``reset`` with
malformed options instead. It counts

* crashes: ``step`` raised, or ``reset`` raised anything but a ``ValueError``;
* hangs: a try that took longer than ``--hang-s`` (the try is interrupted);
* breaches of the contract: an observation that is not printable text within
  the observation space, or an ``info`` that is not JSON with valid UTF-8.

Usage::

    python tools/fuzz_envs.py                        # every env, 10,000 tries each
    python tools/fuzz_envs.py --env ToolMath-v0 --tries 500 --seed 3
    python tools/fuzz_envs.py --import mypkg.envs --env MyEnv-v0   # an env of your own

Prints a table per env; the last line is the headline. Exits 1 when any
crash, hang or breach was found.
"""

from __future__ import annotations

import argparse
import importlib
import json
import random
import shutil
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# The checkout first, ahead of tools/ itself (whose distill.py would shadow the package),
# even when PYTHONPATH already names it: runnable as a plain script from a checkout.
sys.path.insert(0, str(ROOT))

import gymnasium as gym  # noqa: E402

import envs  # noqa: E402
from envs.core import MAX_ACTION_LENGTH  # noqa: E402
from envs.registration import ENV_ENTRIES  # noqa: E402

gym.register_envs(envs)

_WORDS = (
    "go", "to", "take", "put", "open", "look", "around", "search", "click", "buy", "now",
    "focus", "on", "the", "door", "1", "answer", "add", "multiply", "power", "x", "inventory",
)  # fmt: skip
_ESCAPES = ("\\ud800", "\\udfff", "\\udc80x", "\\u0000", "\\ud83d", "\\ude00")
_NUMBERS = ("1e999", "-1e999", "NaN", "Infinity", "9" * 5000, "-0", "1e-400", "0x10", "1_000")


class _Hang(Exception):
    pass


@dataclass
class Tally:
    """What one env's fuzzing found."""

    env_id: str
    tries: int = 0
    resets: int = 0
    crashes: int = 0
    hangs: int = 0
    breaches: int = 0
    invalid: int = 0
    seconds: float = 0.0
    slowest_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    def note(self, kind: str, action: Any, detail: str) -> None:
        if len(self.examples) < 5:
            self.examples.append(f"{kind}: {detail} (action {repr(action)[:120]})")


def _junk(rng: random.Random, length: int) -> str:
    pools = (
        lambda: chr(rng.randrange(32, 127)),
        lambda: chr(rng.randrange(0, 32)),
        lambda: chr(rng.randrange(0x80, 0x3000)),
        lambda: chr(rng.randrange(0xD800, 0xE000)),  # lone surrogates, raw
        lambda: chr(rng.randrange(0x1F300, 0x1FAFF)),
        lambda: rng.choice(" \n\t[]{}<>\"'\\/:,"),
    )
    return "".join(rng.choice(pools)() for _ in range(length))


def _json_value(rng: random.Random, depth: int = 0) -> str:
    kind = rng.randrange(8)
    if kind == 0 or depth > 3:
        return rng.choice(_NUMBERS + ("1", "2.5", "true", "null"))
    if kind == 1:
        return '"' + "".join(rng.choice(_ESCAPES + ("a", "b", " ")) for _ in range(4)) + '"'
    if kind == 2:
        nesting = rng.choice((5, 50, 500, 990, 1000, 3000, 5000))
        return "[" * nesting + "]" * nesting
    if kind == 3:
        nesting = rng.choice((5, 50, 500, 1500))
        return '{"k": ' * nesting + "1" + "}" * nesting
    if kind == 4:
        return "[" + ", ".join(_json_value(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    if kind == 5:
        return json.dumps(_junk(rng, rng.randrange(1, 20)))
    if kind == 6:
        return '"' + _junk(rng, 5).replace('"', "") + '"'  # raw control characters inside
    return "{" + f'"{rng.choice(_ESCAPES)}": {_json_value(rng, depth + 1)}' + "}"


def _tool_call(rng: random.Random, tool_names: list[str]) -> str:
    name = rng.choice(tool_names + ["answer", "no_such_tool", rng.choice(_ESCAPES), ""])
    arguments = ", ".join(
        f'"{rng.choice(["a", "b", "query", "answer", "top_k", rng.choice(_ESCAPES)])}": '
        f"{_json_value(rng)}"
        for _ in range(rng.randrange(4))
    )
    body = rng.choice(
        (
            f'{{"name": "{name}", "arguments": {{{arguments}}}}}',
            f'{{"name": "{name}", "arguments": "{{{arguments}}}"}}',
            f'{{"name": "{name}", "parameters": {{{arguments}}}, "extra": 1}}',
            _json_value(rng),
            _junk(rng, 30),
        )
    )
    return f"<tool_call>{body}</tool_call>"


def hostile_action(rng: random.Random, info: dict[str, Any]) -> Any:
    """One action from the hostile mix (see the module docstring)."""
    admissible = [a for a in info.get("admissible_actions") or [] if isinstance(a, str)]
    tools = [t.get("function", t).get("name", "") for t in info.get("tools") or []]
    kind = rng.randrange(12)
    if kind == 0:
        return rng.choice((None, 0, -1, 3.5, float("nan"), b"go", ["look"], {"a": 1}, True))
    if kind == 1:
        return _junk(rng, rng.choice((0, 1, 10, 200, 5000)))
    if kind == 2:
        return "x" * rng.choice((MAX_ACTION_LENGTH, MAX_ACTION_LENGTH + 1, 1 << 20))
    if kind == 3:
        words = [rng.choice(_WORDS) for _ in range(rng.randrange(1, 8))]
        return " ".join(words)
    if kind == 4 and admissible:
        action = rng.choice(admissible)
        cut = rng.randrange(len(action) + 1)
        return rng.choice((action[:cut], action + action, action.upper(), f"{action}\n{action}"))
    if kind == 5:
        verb = rng.choice(("search", "click", "go to", "take", "open", "focus on", "use"))
        inside = _junk(rng, rng.randrange(0, 40))
        return rng.choice((f"{verb}[{inside}]", f"{verb} {inside}", f"{verb}[{verb}[{inside}]]"))
    if kind in (6, 7, 8):
        calls = [_tool_call(rng, tools or ["add"]) for _ in range(rng.choice((1, 1, 2, 9, 300)))]
        text = "\n".join(calls)
        if rng.random() < 0.1:
            text = text[: rng.randrange(len(text))]  # unclosed
        return text[:MAX_ACTION_LENGTH] if rng.random() < 0.9 else text
    if kind == 9:
        if rng.random() < 0.02:  # rare: it takes the checker's whole 5 s limit every time
            return "\\boxed{9^{9^{9^{9}}}}"
        return rng.choice(
            (
                f"<answer>{_junk(rng, 20)}</answer>",
                "\\boxed{" + "{" * 500 + "}",
                f"\\boxed{{{_junk(rng, 10)}}}",
                "<answer>" * 50,
            )
        )
    if kind == 10:
        return (
            _junk(rng, 20).replace("\x00", "")
            + " "
            + (rng.choice(admissible) if admissible else "")
        )
    return rng.choice(admissible) if admissible else "look"


_BAD_OPTIONS = (
    5,
    "task_id",
    [("task_id", "x")],
    {"task_id": 3},
    {"task": "x"},
    {"task_id": "\ud800"},
)


def _clean(observation: Any, info: dict[str, Any], env: gym.Env) -> str | None:
    """Why the step's output breaks the contract, or None."""
    if not isinstance(observation, str) or not env.observation_space.contains(observation):
        return "the observation is not printable text within the space"
    try:
        json.dumps(info, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as error:
        return f"info is not JSON with valid UTF-8 ({type(error).__name__}: {error})"
    return None


def _on_alarm(*_: Any) -> None:
    raise _Hang


class _Unplayable(Exception):
    pass


def _reset(env: gym.Env, rng: random.Random, tally: Tally) -> dict[str, Any]:
    """A fresh episode with a random seed; a reset that raises counts as a crash."""
    for _ in range(10):
        try:
            return env.reset(seed=rng.randrange(1 << 30))[1]
        except _Hang:
            raise
        except Exception as error:
            tally.crashes += 1
            tally.note("crash", "reset", f"{type(error).__name__}: {error}"[:300])
    raise _Unplayable(f"{tally.env_id}: ten resets in a row failed")


def fuzz_env(
    env_id: str, tries: int, seed: int, hang_s: float, env_kwargs: dict[str, Any] | None = None
) -> Tally:
    """``tries`` hostile steps (and malformed resets) on a fresh ``env_id``."""
    rng = random.Random(f"{env_id}|{seed}")
    tally = Tally(env_id)
    kwargs = {"admissible_actions": "compact", **(env_kwargs or {})}
    env = gym.make(env_id, **kwargs)
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        info = _reset(env, rng, tally)
        started = time.perf_counter()
        for _ in range(tries):
            action: Any = None
            signal.setitimer(signal.ITIMER_REAL, hang_s)
            try_started = time.perf_counter()
            try:
                if rng.random() < 0.02:
                    options = rng.choice(_BAD_OPTIONS)
                    action = ("reset", options)
                    tally.resets += 1
                    try:
                        env.reset(options=options)
                    except ValueError:
                        pass
                    info = _reset(env, rng, tally)
                else:
                    action = hostile_action(rng, info)
                    observation, _, terminated, truncated, info = env.step(action)
                    tally.invalid += bool(info.get("invalid_action"))
                    breach = _clean(observation, info, env)
                    if breach is not None:
                        tally.breaches += 1
                        tally.note("breach", action, breach)
                    if terminated or truncated:
                        info = _reset(env, rng, tally)
            except _Hang:
                tally.hangs += 1
                tally.note("hang", action, f"no answer within {hang_s:g} s")
                info = _reset(env, rng, tally)
            except _Unplayable:
                raise
            except Exception as error:
                tally.crashes += 1
                tally.note("crash", action, f"{type(error).__name__}: {error}"[:300])
                if tally.crashes == 1:
                    traceback.print_exc()
                info = _reset(env, rng, tally)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            tally.tries += 1
            tally.slowest_s = max(tally.slowest_s, time.perf_counter() - try_started)
        tally.seconds = time.perf_counter() - started
    except _Unplayable as error:
        tally.note("gave up", None, str(error))
    finally:
        signal.signal(signal.SIGALRM, previous)
        env.close()
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", action="append", metavar="ID", help="env id (repeatable)")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable), e.g. one that registers your own env ids",
    )
    parser.add_argument("--tries", type=int, default=10_000, help="tries per env")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang-s", type=float, default=30.0, help="a try longer than this hangs")
    parser.add_argument(
        "--env-kwargs", default="{}", metavar="JSON", help="extra gym.make keyword arguments"
    )
    args = parser.parse_args(argv)
    if args.tries < 1:
        parser.error("--tries must be at least 1")
    try:
        env_kwargs = json.loads(args.env_kwargs)
        if not isinstance(env_kwargs, dict):
            raise ValueError
    except ValueError:
        parser.error(f"--env-kwargs must be a JSON object, got {args.env_kwargs!r}")
    for module in args.imports:
        try:
            importlib.import_module(module)
        except ImportError as error:
            parser.error(f"--import {module}: {error}")
    ids = args.env or [e.id for e in ENV_ENTRIES]
    for env_id in ids:
        if env_id not in gym.registry:
            parser.error(f"unknown env id {env_id!r}")
    needs = {entry.id: entry.needs for entry in ENV_ENTRIES}
    tallies = []
    for env_id in ids:
        if "java" in needs.get(env_id, ()) and shutil.which("java") is None:
            print(f"skipped {env_id}: no Java runtime", file=sys.stderr)
            continue
        tallies.append(fuzz_env(env_id, args.tries, args.seed, args.hang_s, env_kwargs))
    print(
        f"{'env':<16} {'tries':>7} {'resets':>6} {'crashes':>7} {'hangs':>5} {'breaches':>8} "
        f"{'invalid %':>9} {'tries/s':>8} {'slowest s':>9}"
    )
    for t in tallies:
        print(
            f"{t.env_id:<16} {t.tries:>7} {t.resets:>6} {t.crashes:>7} {t.hangs:>5} "
            f"{t.breaches:>8} {100 * t.invalid / max(t.tries, 1):>9.1f} "
            f"{t.tries / max(t.seconds, 1e-9):>8.0f} {t.slowest_s:>9.2f}"
        )
        for example in t.examples:
            print(f"    {example}")
    total = sum(t.tries for t in tallies)
    bad = {k: sum(getattr(t, k) for t in tallies) for k in ("crashes", "hangs", "breaches")}
    print(
        f"{total} tries over {len(tallies)} envs (seed {args.seed}): {bad['crashes']} crashes, "
        f"{bad['hangs']} hangs, {bad['breaches']} contract breaches"
    )
    return 1 if any(bad.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
