"""``EnvPool``: N environments of one id, each reset and stepped on its own, side by side.

Gymnasium's vector envs step every sub-env together and auto-reset finished
ones, which suits fixed-length RL batches. Agent rollouts need something
else: each env plays its own task, finishes at its own turn, and the live
ones are stepped together while a batched policy acts for all of them. With
``mode="async"`` every env lives in its own process (``spawn``ed, so a parent
holding torch threads or JVMs is safe), so N ScienceWorld JVMs or TextWorld
engines really run in parallel; ``mode="sync"`` keeps them in-process.

    pool = EnvPool("ScienceWorld-v0", 4, env_kwargs={"split": "test"})
    results = pool.reset({0: {"options": {"task_id": "boil/21"}}, 1: {"seed": 3}})
    steps = pool.step({0: "look around", 1: "inventory"})   # {index: (obs, r, term, trunc, info)}
    pool.close()
"""

from __future__ import annotations

import multiprocessing as mp
import traceback
from collections.abc import Mapping
from typing import Any

import gymnasium as gym

__all__ = ["EnvPool", "EnvPoolError"]


class EnvPoolError(RuntimeError):
    """An env in the pool raised; the message carries the worker's traceback."""


def _make(spec: gym.envs.registration.EnvSpec, env_kwargs: dict[str, Any]) -> gym.Env:
    import envs  # noqa: F401  (the project's entry points in a spawned process)

    # The parent's spec, not its id: an id a user registered in the parent (``--import``)
    # is unknown to a spawned process, but its spec names the entry point to import.
    return gym.make(spec, **env_kwargs)


def _worker(pipe: Any, spec: gym.envs.registration.EnvSpec, env_kwargs: dict[str, Any]) -> None:
    env = None
    try:
        env = _make(spec, env_kwargs)
        pipe.send(("ok", None))
        while True:
            command, payload = pipe.recv()
            if command == "close":
                break
            try:
                if command == "reset":
                    pipe.send(("ok", env.reset(**payload)))
                elif command == "step":
                    pipe.send(("ok", env.step(payload)))
                elif command == "attr":
                    pipe.send(("ok", getattr(env.unwrapped, payload)))
                else:
                    pipe.send(("error", f"unknown command {command!r}"))
            except Exception:
                pipe.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception:
        pipe.send(("error", traceback.format_exc()))
    finally:
        if env is not None:
            env.close()
        pipe.close()


class EnvPool:
    """``num_envs`` copies of ``env_id``; reset and step any subset of them at once."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        *,
        env_kwargs: Mapping[str, Any] | None = None,
        mode: str = "async",
        context: str = "spawn",
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        self.env_id, self.num_envs, self.mode = env_id, num_envs, mode
        self.env_kwargs = dict(env_kwargs or {})
        self.spec = gym.spec(env_id)
        self._envs: list[gym.Env] = []
        self._pipes: list[Any] = []
        self._processes: list[Any] = []
        self._closed = False
        if mode == "sync":
            self._envs = [_make(self.spec, self.env_kwargs) for _ in range(num_envs)]
            return
        ctx = mp.get_context(context)
        for _ in range(num_envs):
            parent, child = ctx.Pipe()
            process = ctx.Process(
                target=_worker, args=(child, self.spec, self.env_kwargs), daemon=True
            )
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        try:
            for index in range(num_envs):
                self._receive(index)  # each worker reports that its env was made
        except BaseException:
            self.close()
            raise

    def reset(self, requests: Mapping[int, Mapping[str, Any]]) -> dict[int, tuple[str, dict]]:
        """Reset the envs named by ``requests`` ({index: reset kwargs}); returns {index: (obs, info)}."""
        return self._run("reset", {i: dict(kwargs) for i, kwargs in requests.items()})

    def step(self, actions: Mapping[int, Any]) -> dict[int, tuple[str, float, bool, bool, dict]]:
        """Step the envs named by ``actions`` ({index: action}) together."""
        return self._run("step", dict(actions))

    def get_attr(self, name: str) -> list[Any]:
        """``env.unwrapped.<name>`` of every env (e.g. ``"task_ids"``)."""
        return list(self._run("attr", dict.fromkeys(range(self.num_envs), name)).values())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for env in self._envs:
            env.close()
        for pipe in self._pipes:
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        for pipe in self._pipes:
            pipe.close()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing sensible left to do
            pass

    # -- internals ------------------------------------------------------------

    def _run(self, command: str, payloads: dict[int, Any]) -> dict[int, Any]:
        if self._closed:
            raise EnvPoolError("the pool is closed")
        for index in payloads:
            if not 0 <= index < self.num_envs:
                raise IndexError(f"env index {index} out of range 0..{self.num_envs - 1}")
        if self.mode == "sync":
            results = {}
            for index, payload in payloads.items():
                env = self._envs[index]
                if command == "reset":
                    results[index] = env.reset(**payload)
                elif command == "step":
                    results[index] = env.step(payload)
                else:
                    results[index] = getattr(env.unwrapped, payload)
            return results
        for index, payload in payloads.items():  # send all first: the envs work in parallel
            self._pipes[index].send((command, payload))
        return {index: self._receive(index) for index in payloads}

    def _receive(self, index: int) -> Any:
        try:
            status, value = self._pipes[index].recv()
        except EOFError:
            raise EnvPoolError(
                f"{self.env_id} worker {index} exited (exit code {self._processes[index].exitcode})"
            ) from None
        if status != "ok":
            raise EnvPoolError(f"{self.env_id} worker {index} failed:\n{value}")
        return value
