"""The environment contract, as a checker any env author can run on their own env.

    import envs
    envs.check_env_contract("MyEnv-v0")          # raises ContractError listing what failed

or from a shell: ``python -m envs.contract --import mypackage.envs MyEnv-v0``.

Every registered id of this project passes it (``tests/test_contract.py`` runs
it on each); an env you register yourself should too before you benchmark or
distill on it (docs/writing-an-env.md). The checks, each callable alone
through ``run_check``:

* ``check_env``: Gymnasium's own ``check_env`` on the unwrapped env;
* ``info``: ``reset`` and ``step`` return an ``info`` with every key of
  ``envs.core.INFO_KEYS``, each of its type, the score in [0, 1];
* ``hostile``: the actions of ``HOSTILE_ACTIONS`` (empty, 1 MB, binary, control
  characters, non-strings ...) never raise; they return a text observation the
  observation space contains, JSON-serialisable valid UTF-8 whatever the
  action (lone surrogates included); the plainly invalid ones, and in a tool
  env every tool-call bomb (nesting 10 to 5,000 deep, surrogate escapes, huge
  numbers), are ``invalid_action=True`` steps with no reward and no change of
  score, never env failures;
* ``reset``: ``env.unwrapped.task_ids`` lists the split's tasks, a reset with
  ``options={"task_id": ...}`` is deterministic, and an unknown task id is a
  ``ValueError`` saying so;
* ``bad_reset``: a failed first reset leaves the env usable, and malformed
  ``options`` (not a dict, an unknown key, a task id that is not a string) are
  each a ``ValueError``;
* ``reward_sum``: an episode's rewards add up to its final score (played by
  the expert when the env has one, else by ``"look"``);
* ``truncation``: once an episode is truncated at its turn cap, the env
  refuses further actions as after termination (no reward, no change);
* ``vector``: ``gym.make_vec(id, num_envs=2, vectorization_mode="async")`` resets
  and steps, and every hostile text action in one slot leaves it working (only
  for a registered id).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym

from envs.core import INFO_KEYS

__all__ = [
    "CHECKS",
    "HOSTILE_ACTIONS",
    "HOSTILE_TEXT_ACTIONS",
    "INVALID_HOSTILE_ACTIONS",
    "TOOL_CALL_BOMBS",
    "ContractError",
    "check_clean_output",
    "check_env_contract",
    "check_info",
    "run_check",
]

NESTING_DEPTHS = (10, 100, 450, 990, 1000, 5000)
LONE_SURROGATES = ("\\ud800", "\\udfff", "x\\udc80y")


def _call(body: str) -> str:
    return f"<tool_call>{body}</tool_call>"


def _tool_call_bombs() -> list[tuple[str, str]]:
    """Tool calls built to break a parser or what handles the parsed value: nesting from 10
    to 5,000 levels, lone-surrogate escapes (valid JSON, not valid UTF-8) in every string
    field, numbers too large for a float. For envs without tools they are odd text."""
    bombs = []
    for depth in NESTING_DEPTHS:
        nested = "[" * depth + "]" * depth
        arguments = '{"name": "add", "arguments": {"a": ' + nested + ', "b": 1}}'
        bombs.append((f"nested-argument-{depth}", _call(arguments)))
        bombs.append((f"nested-call-{depth}", _call(nested)))
        objects = '{"k": ' * depth + "1" + "}" * depth
        bombs.append(
            (f"nested-objects-{depth}", _call('{"name": "add", "arguments": ' + objects + "}"))
        )
    for escape in LONE_SURROGATES:
        for field, body in (
            ("name", '{"name": "%s", "arguments": {}}'),
            ("key", '{"name": "add", "arguments": {"%s": 1, "b": 2}}'),
            ("value", '{"name": "add", "arguments": {"a": "%s", "b": 2}}'),
            ("answer", '{"name": "answer", "arguments": {"answer": "%s"}}'),
            ("nested", '{"name": "add", "arguments": {"a": [{"x": ["%s"]}], "b": 2}}'),
            ("outer-key", '{"name": "add", "arguments": {"a": 1, "b": 2}, "%s": 0}'),
            ("string-arguments", '{"name": "add", "arguments": "{\\"a\\": \\"%s\\"}"}'),
        ):
            bombs.append((f"surrogate-{field}-{escape}", _call(body % escape)))
    bombs.append(("huge-float", _call('{"name": "add", "arguments": {"a": 1e999, "b": 1}}')))
    huge = '{"name": "add", "arguments": {"a": ' + "9" * 5000 + ', "b": 1}}'
    bombs.append(("huge-int", _call(huge)))
    return bombs


#: Tool calls every tool env must refuse as invalid (and every env must survive).
TOOL_CALL_BOMBS: list[tuple[str, str]] = _tool_call_bombs()

#: Hostile actions every environment must survive (DESIGN: bad actions never crash an env).
HOSTILE_ACTIONS: list[tuple[str, object]] = [
    ("empty", ""),
    ("whitespace", "   \t "),
    ("one-megabyte", "go to " + "x" * (1 << 20)),
    ("binary-bytes", b"\x00\xff\xfe"),
    ("nul-and-controls", "go\x00to\x1b[31m desk"),
    ("lone-surrogate", "take \udc80 apple"),
    ("none", None),
    ("integer", 42),
    ("list", ["go to desk 1"]),
    ("nonsense", "xyzzy plugh frobnicate the quux"),
    ("brackets", "click[ search[ ]]] [[["),
    ("unicode", "ouvrir la porte \u2192 \U0001f600 \u00e9t\u00e9"),
    ("json", '{"name": "add", "arguments": {"a": 1}}'),
    ("newlines", "go to\n\n\ndesk 1\n"),
    ("long-words", " ".join(["supercalifragilistic"] * 300)),
    *TOOL_CALL_BOMBS,
]
#: The string actions (what a vector env or a pool can carry).
HOSTILE_TEXT_ACTIONS: list[tuple[str, str]] = [
    (name, action) for name, action in HOSTILE_ACTIONS if isinstance(action, str)
]
#: Those no env may take as a valid action.
INVALID_HOSTILE_ACTIONS = frozenset(
    {"empty", "one-megabyte", "binary-bytes", "nul-and-controls", "none", "integer"}
)

_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "task_id": str,
    "task": str,
    "admissible_actions": list,
    "score": float,
    "won": bool,
    "invalid_action": bool,
    "action_type": str,
    "turn": int,
}

Maker = Callable[..., gym.Env]


class ContractError(AssertionError):
    """One or more contract checks failed; ``failures`` maps each check to its message."""

    def __init__(self, name: str, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        lines = [f"{name} breaks the env contract in {len(failures)} check(s):"]
        lines += [f"  {check}: {message}" for check, message in failures.items()]
        super().__init__("\n".join(lines))


class _Broken(Exception):
    """A check's failure, with the sentence to report."""


def check_info(info: Any, where: str = "info") -> None:
    """Raise ``AssertionError`` with a readable message unless ``info`` keeps the contract."""
    if not isinstance(info, dict):
        raise AssertionError(f"{where} is a {type(info).__name__}, not a dict")
    missing = [key for key in INFO_KEYS if key not in info]
    if missing:
        raise AssertionError(f"{where} lacks the keys {missing}")
    for key, kind in _INFO_TYPES.items():
        if not isinstance(info[key], kind) or (kind is int and isinstance(info[key], bool)):
            raise AssertionError(
                f"{where}[{key!r}] is {type(info[key]).__name__} {info[key]!r}; it must be "
                f"{getattr(kind, '__name__', kind)}"
            )
    bad = [a for a in info["admissible_actions"] if not isinstance(a, str)]
    if bad:
        raise AssertionError(f"{where}['admissible_actions'] holds non-strings, e.g. {bad[0]!r}")
    expert = info["expert_action"]
    if expert is not None and not isinstance(expert, str):
        raise AssertionError(f"{where}['expert_action'] is {type(expert).__name__}, not str|None")
    if not (0.0 <= info["score"] <= 1.0) or math.isnan(info["score"]):
        raise AssertionError(f"{where}['score'] is {info['score']}, outside [0, 1]")


def check_clean_output(observation: Any, info: Any, where: str = "the step") -> None:
    """Raise ``AssertionError`` unless the observation and ``info`` are JSON-serialisable
    valid UTF-8 (whatever the action: a lone surrogate must not reach them)."""
    try:
        observation.encode("utf-8")
        json.dumps(info, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (AttributeError, TypeError, ValueError, UnicodeEncodeError) as error:
        raise AssertionError(
            f"{where}: the observation or info is not JSON-serialisable UTF-8 ({error})"
        ) from None


def _info(info: Any, where: str) -> None:
    try:
        check_info(info, where)
    except AssertionError as error:
        raise _Broken(str(error)) from None


def _closing(make: Maker, **kwargs: Any) -> Any:
    import contextlib

    @contextlib.contextmanager
    def env_context():
        env = make(**kwargs)
        try:
            yield env
        finally:
            env.close()

    return env_context()


def _check_env(make: Maker) -> None:
    from gymnasium.utils.env_checker import check_env

    with _closing(make) as env:
        try:
            check_env(env.unwrapped, skip_render_check=True)
        except Exception as error:  # what gymnasium found, in its own words
            raise _Broken(f"gymnasium's check_env: {type(error).__name__}: {error}") from None


def _check_info(make: Maker) -> None:
    with _closing(make) as env:
        _, info = env.reset(seed=0)
        _info(info, "reset's info")
        _, _, _, _, info = env.step("look")
        _info(info, "step's info")


def _check_hostile(make: Maker) -> None:
    bombs = {name for name, _ in TOOL_CALL_BOMBS}
    with _closing(make, admissible_actions="compact") as env:
        _, info = env.reset(seed=0)
        has_tools = bool(info.get("tools"))
        score_before = info["score"]
        for name, action in HOSTILE_ACTIONS:
            try:
                observation, reward, terminated, truncated, info = env.step(action)
            except Exception as error:
                raise _Broken(
                    f"step({name} action) raised {type(error).__name__}: {error}; a bad action "
                    "must be an invalid_action=True step"
                ) from None
            if not isinstance(observation, str) or not observation:
                raise _Broken(f"step({name} action) returned the observation {observation!r}")
            if not env.observation_space.contains(observation):
                raise _Broken(f"step({name} action): the observation space rejects the observation")
            _info(info, f"step({name} action)'s info")
            try:
                check_clean_output(observation, info, f"step({name} action)")
            except AssertionError as error:
                raise _Broken(str(error)) from None
            if "error" in info:
                raise _Broken(
                    f"step({name} action) reported an env failure ({info['error']}); a bad "
                    "action must be refused as invalid, not break the env"
                )
            if has_tools and name in bombs and not (info["invalid_action"] and reward == 0.0):
                raise _Broken(f"step({name} action) was not refused as an invalid tool call")
            if name in INVALID_HOSTILE_ACTIONS:
                if not info["invalid_action"]:
                    raise _Broken(f"step({name} action) is not marked invalid_action")
                if reward != 0.0 or info["score"] != score_before:
                    raise _Broken(f"step({name} action) changed the reward or the score")
            if terminated or truncated:
                _, info = env.reset(seed=0)
            score_before = info["score"]
        try:
            _, info = env.reset(seed=1)
        except Exception as error:
            raise _Broken(f"reset after the hostile actions raised {error!r}") from None
        _info(info, "reset's info after the hostile actions")


def _check_reset(make: Maker) -> None:
    with _closing(make) as env:
        task_ids = getattr(env.unwrapped, "task_ids", None)
        if not isinstance(task_ids, list) or not task_ids:
            raise _Broken("env.unwrapped.task_ids must be the non-empty list of the split's tasks")
        task_id = task_ids[len(task_ids) // 2]
        first, info1 = env.reset(options={"task_id": task_id})
        second, info2 = env.reset(seed=123, options={"task_id": task_id})
        if not info1["task_id"] == info2["task_id"] == task_id:
            raise _Broken(f"reset(options={{'task_id': {task_id!r}}}) played another task")
        if first != second or info1["task"] != info2["task"]:
            raise _Broken(f"two resets on task {task_id!r} gave different observations or goals")
        try:
            env.reset(options={"task_id": "no-such-task/999999"})
        except ValueError as error:
            if "unknown task_id" not in str(error):
                raise _Broken(f"an unknown task id's ValueError does not say so: {error}") from None
        else:
            raise _Broken("reset with an unknown task_id did not raise ValueError")


def _check_bad_reset(make: Maker) -> None:
    with _closing(make) as env:
        try:  # a failed *first* reset must leave the env usable
            env.reset(options={"task_id": "typo/does-not-exist"})
        except ValueError:
            pass
        else:
            raise _Broken("reset with an unknown task_id did not raise ValueError")
        env.reset(seed=0)
        observation, *_ = env.step("look")
        if not isinstance(observation, str) or not observation:
            raise _Broken("after a failed first reset, a reset and a step did not work")
        task_id = env.unwrapped.task_ids[0]
        for options in (5, "task_id", [("task_id", task_id)], {"task_id": 3}, {"task": task_id}):
            try:
                env.reset(options=options)
            except ValueError:
                continue
            except Exception as error:
                raise _Broken(
                    f"reset(options={options!r}) raised {type(error).__name__}, not a ValueError "
                    "naming the bad option"
                ) from None
            raise _Broken(f"reset(options={options!r}) was accepted; it must be a ValueError")
        observation, *_ = env.step("look")  # the episode before the bad resets goes on
        if not isinstance(observation, str) or not observation:
            raise _Broken("after bad reset options the env no longer steps")


def _check_reward_sum(make: Maker) -> None:
    try:
        env = make(expert=True, admissible_actions="none")
    except TypeError:  # an env without an expert: plain actions still obey the sum
        env = make()
    try:
        _, info = env.reset(seed=0)
        total = 0.0
        for _ in range(200):
            _, reward, terminated, truncated, info = env.step(info.get("expert_action") or "look")
            total += float(reward)
            if terminated or truncated:
                break
        if abs(total - info["score"]) > 1e-9:
            raise _Broken(f"the rewards add up to {total}, the final score is {info['score']}")
    finally:
        env.close()


def _check_truncation(make: Maker) -> None:
    with _closing(make) as env:
        cap = getattr(env.spec, "max_episode_steps", None) if env.spec is not None else None
        if not cap or cap < 1:
            return  # no turn cap: nothing truncates
        env.reset(seed=0)
        for _ in range(cap):
            _, _, terminated, truncated, info = env.step("xyzzy plugh")
            if terminated:
                return  # an episode that ends by itself: the cap is not reached this way
        if not truncated:
            raise _Broken(f"the episode was not truncated at its turn cap of {cap}")
        for action in ("look", "look around", "inventory"):
            _, reward, terminated, truncated, after = env.step(action)
            if (
                reward != 0.0
                or after["turn"] != info["turn"]
                or after["score"] != info["score"]
                or not truncated
            ):
                raise _Broken(
                    f"after truncation at turn {cap}, step({action!r}) acted (reward {reward}, "
                    f"turn {after['turn']}); a truncated episode must refuse actions as a "
                    "terminated one does"
                )


def _check_vector(env_id: str, env_kwargs: dict[str, Any]) -> None:
    vector = gym.make_vec(env_id, num_envs=2, vectorization_mode="async", **env_kwargs)
    try:
        observations, _ = vector.reset(seed=7)
        observations, rewards, _, _, _ = vector.step(("look", "look around"))
        if len(observations) != 2 or not all(isinstance(o, str) and o for o in observations):
            raise _Broken(f"an async vector env of 2 returned the observations {observations!r}")
        if getattr(rewards, "shape", None) != (2,):
            raise _Broken("an async vector env of 2 returned rewards that are not 2 numbers")
        # One bad slot must not end the vector env: every hostile text goes to slot 0.
        for name, action in HOSTILE_TEXT_ACTIONS:
            observations, _, _, _, infos = vector.step((action, "look"))
            if not all(isinstance(o, str) and o for o in observations):
                raise _Broken(f"a {name} action in slot 0 broke the async vector env")
            if "error" in infos and infos["_error"].any():
                raise _Broken(f"a {name} action in slot 0 was an env failure, not an invalid step")
    finally:
        vector.close()


#: Every check by name: a function of an env maker (``make(**kwargs) -> env``).
CHECKS: dict[str, Callable[[Maker], None]] = {
    "check_env": _check_env,
    "info": _check_info,
    "hostile": _check_hostile,
    "reset": _check_reset,
    "bad_reset": _check_bad_reset,
    "reward_sum": _check_reward_sum,
    "truncation": _check_truncation,
}


def _maker(env: str | Maker, env_kwargs: dict[str, Any]) -> Maker:
    if isinstance(env, str):
        from envs.registration import check_env_id

        check_env_id(env)
        return lambda **extra: gym.make(env, **{**env_kwargs, **extra})
    return lambda **extra: env(**{**env_kwargs, **extra})


def run_check(env: str | Maker, name: str, **env_kwargs: Any) -> None:
    """Run one check (``CHECKS`` or ``"vector"``); raises ``AssertionError`` saying what broke."""
    try:
        if name == "vector":
            if not isinstance(env, str):
                raise ValueError("the vector check needs a registered env id")
            _check_vector(env, env_kwargs)
        elif name in CHECKS:
            CHECKS[name](_maker(env, env_kwargs))
        else:
            raise ValueError(f"no check {name!r}; the checks are {[*CHECKS, 'vector']}")
    except _Broken as broken:
        raise AssertionError(f"{name}: {broken}") from None


def check_env_contract(
    env: str | Maker, *, checks: Sequence[str] | None = None, **env_kwargs: Any
) -> list[str]:
    """Run the contract's checks on ``env``: a registered id, or a callable that makes the env
    from keyword arguments (the env class itself will do). ``env_kwargs`` go to every env made.
    Returns the names of the checks run; raises :class:`ContractError` naming each failure."""
    if isinstance(env, str):
        from envs.registration import check_env_id

        check_env_id(env)  # an unknown id is one ValueError, not a failure per check
    names = (
        list(checks)
        if checks is not None
        else [*CHECKS, *(["vector"] if isinstance(env, str) else [])]
    )
    failures: dict[str, str] = {}
    for name in names:
        try:
            run_check(env, name, **env_kwargs)
        except AssertionError as error:
            failures[name] = str(error).removeprefix(f"{name}: ")
        except Exception as error:  # a check that could not even run says why
            failures[name] = f"{type(error).__name__}: {error}"
    if failures:
        label = env if isinstance(env, str) else getattr(env, "__name__", repr(env))
        raise ContractError(str(label), failures)
    return names


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import sys

    from envs.imports import import_modules

    parser = argparse.ArgumentParser(
        prog="python -m envs.contract", description="Check that an env keeps mentorgym's contract."
    )
    parser.add_argument("env_id", help="a registered env id")
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="import this module first (repeatable), e.g. the one that registers the id",
    )
    parser.add_argument("--env-kwargs", default="{}", metavar="JSON", help="gym.make kwargs")
    parser.add_argument(
        "--check", action="append", choices=[*CHECKS, "vector"], help="run only these checks"
    )
    args = parser.parse_args(argv)
    try:
        import envs  # noqa: F401  (registers the project's ids)

        import_modules(args.imports)
        env_kwargs = json.loads(args.env_kwargs)
        if not isinstance(env_kwargs, dict):
            raise ValueError("--env-kwargs must be a JSON object")
        names = check_env_contract(args.env_id, checks=args.check, **env_kwargs)
    except ContractError as error:
        print(error, file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.env_id} keeps the env contract ({', '.join(names)})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
