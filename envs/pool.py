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

An env that raises, a worker that dies, and a command not answered within
``timeout_s`` are failures of that env alone: the other envs' results stand,
and the call raises :class:`EnvPoolError` or, with ``errors="return"``, puts
an :class:`EnvFailure` in place of the failed env's result. A worker that
died or hung is killed at once and replaced by a fresh one when its env is
next used (``restarts`` counts them); an env that raised keeps its worker
(its next ``reset`` starts afresh).
"""

from __future__ import annotations

import multiprocessing as mp
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from envs.registration import resolve_spec

__all__ = ["EnvFailure", "EnvPool", "EnvPoolError"]

#: Seconds a worker may take to make its env or to answer one command, by default.
DEFAULT_TIMEOUT_S = 600.0


class EnvPoolError(RuntimeError):
    """An env in the pool failed; the message carries the worker's traceback.

    ``failures`` holds every failure of the call, ``results`` the results of
    the envs that did not fail.
    """

    def __init__(
        self,
        message: str,
        failures: dict[int, EnvFailure] | None = None,
        results: dict[int, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.failures = failures or {}
        self.results = results or {}


@dataclass
class EnvFailure:
    """Why env ``index`` gave no result: ``message`` in one line, ``detail`` (a traceback, if
    any), and whether its worker ``died`` (crashed, killed, or stopped answering)."""

    index: int
    message: str
    detail: str = ""
    died: bool = False

    def __str__(self) -> str:
        return self.message


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


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text.strip()


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
        timeout_s: float | None = DEFAULT_TIMEOUT_S,
    ) -> None:
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        if mode not in ("async", "sync"):
            raise ValueError(f"mode must be 'async' or 'sync', got {mode!r}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s}")
        self.env_id, self.num_envs, self.mode = env_id, num_envs, mode
        self.env_kwargs = dict(env_kwargs or {})
        self.spec = resolve_spec(env_id)
        self.timeout_s = timeout_s
        #: Workers started to replace ones that died or hung.
        self.restarts = 0
        self._envs: list[gym.Env] = []
        self._pipes: list[Any] = []
        self._processes: list[Any] = []
        self._broken: set[int] = set()  # workers discarded after a failure, respawned on next use
        self._closed = False
        if mode == "sync":
            self._envs = [_make(self.spec, self.env_kwargs) for _ in range(num_envs)]
            return
        self._ctx = mp.get_context(context)
        for _ in range(num_envs):
            pipe, process = self._spawn()
            self._pipes.append(pipe)
            self._processes.append(process)
        try:
            for index in range(num_envs):
                self._expect_ready(index)
        except BaseException:
            self.close()
            raise

    def reset(
        self, requests: Mapping[int, Mapping[str, Any]], *, errors: str = "raise"
    ) -> dict[int, Any]:
        """Reset the envs named by ``requests`` ({index: reset kwargs}); returns {index: (obs, info)}
        (an :class:`EnvFailure` for a failed env with ``errors="return"``)."""
        return self._run("reset", {i: dict(kwargs) for i, kwargs in requests.items()}, errors)

    def step(self, actions: Mapping[int, Any], *, errors: str = "raise") -> dict[int, Any]:
        """Step the envs named by ``actions`` ({index: action}) together; returns
        {index: (obs, reward, terminated, truncated, info)} (or :class:`EnvFailure`, as for reset)."""
        return self._run("step", dict(actions), errors)

    def get_attr(self, name: str) -> list[Any]:
        """``env.unwrapped.<name>`` of every env (e.g. ``"task_ids"``)."""
        return list(self._run("attr", dict.fromkeys(range(self.num_envs), name), "raise").values())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for env in self._envs:
            env.close()
        for index, pipe in enumerate(self._pipes):
            if index in self._broken:
                continue
            try:
                pipe.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
        for index, pipe in enumerate(self._pipes):
            if index not in self._broken:
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

    def _spawn(self) -> tuple[Any, Any]:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker, args=(child, self.spec, self.env_kwargs), daemon=True
        )
        process.start()
        child.close()
        return parent, process

    def _expect_ready(self, index: int) -> None:
        outcome = self._receive(index, self._deadline())
        if isinstance(outcome, EnvFailure) and outcome.died and not outcome.detail:
            # Died before _worker could report: the error happened while the process started
            # (printed on stderr by the worker itself), most often a script without a main guard.
            outcome.detail = (
                "The worker died while starting, before it could make the env; its own "
                "traceback is on stderr above. With the "
                f"'{self._ctx.get_start_method()}' start method each worker imports the "
                "main script again: a script that creates a pool must do so under "
                '`if __name__ == "__main__":`.'
            )
        if isinstance(outcome, EnvFailure):
            raise EnvPoolError(
                f"{self.env_id} worker {index} could not make its env: {outcome.message}"
                + (f"\n{outcome.detail}" if outcome.detail else ""),
                {index: outcome},
            )

    def _deadline(self) -> float | None:
        return None if self.timeout_s is None else time.monotonic() + self.timeout_s

    def _run(self, command: str, payloads: dict[int, Any], errors: str) -> dict[int, Any]:
        if self._closed:
            raise EnvPoolError("the pool is closed")
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', not {errors!r}")
        for index in payloads:
            if not 0 <= index < self.num_envs:
                raise IndexError(f"env index {index} out of range 0..{self.num_envs - 1}")
        for index in sorted(self._broken & set(payloads)):
            self._respawn(index)
        results: dict[int, Any] = {}
        if self.mode == "sync":
            for index, payload in payloads.items():
                results[index] = self._run_here(index, command, payload)
        else:
            sent: dict[int, float | None] = {}
            for index, payload in payloads.items():  # send all first: the envs work in parallel
                try:
                    self._pipes[index].send((command, payload))
                    sent[index] = self._deadline()
                except (BrokenPipeError, OSError) as error:
                    results[index] = EnvFailure(
                        index, f"{self.env_id} worker {index} is gone ({error})", died=True
                    )
            for index, deadline in sent.items():
                results[index] = self._receive(index, deadline)
        failures = {i: r for i, r in results.items() if isinstance(r, EnvFailure)}
        for index, failure in failures.items():
            if failure.died:  # an env that raised keeps its worker: the next reset recovers it
                self._discard(index)
        if failures and errors == "raise":
            first = next(iter(failures.values()))
            detail = f":\n{first.detail}" if first.detail else ""
            raise EnvPoolError(
                f"{self.env_id} worker {first.index} failed: {first.message}{detail}",
                failures,
                {i: r for i, r in results.items() if i not in failures},
            )
        return {index: results[index] for index in payloads}

    def _run_here(self, index: int, command: str, payload: Any) -> Any:
        env = self._envs[index]
        try:
            if command == "reset":
                return env.reset(**payload)
            if command == "step":
                return env.step(payload)
            return getattr(env.unwrapped, payload)
        except Exception as error:
            return EnvFailure(
                index, f"{type(error).__name__}: {error}", traceback.format_exc(), died=False
            )

    def _receive(self, index: int, deadline: float | None) -> Any:
        pipe, process = self._pipes[index], self._processes[index]
        try:
            while not pipe.poll(
                0.5 if deadline is None else min(0.5, max(0.0, deadline - time.monotonic()))
            ):
                if not process.is_alive() and not pipe.poll(0):
                    return EnvFailure(
                        index,
                        f"{self.env_id} worker {index} exited (exit code {process.exitcode})",
                        died=True,
                    )
                if deadline is not None and time.monotonic() >= deadline:
                    return EnvFailure(
                        index,
                        f"{self.env_id} worker {index} gave no answer within {self.timeout_s:g} s",
                        died=True,
                    )
            status, value = pipe.recv()
        except (EOFError, OSError):
            process.join(timeout=5)  # long enough to learn its exit code
            return EnvFailure(
                index,
                f"{self.env_id} worker {index} exited (exit code {process.exitcode})",
                died=True,
            )
        if status != "ok":
            return EnvFailure(index, _last_line(str(value)), str(value), died=False)
        return value

    def _discard(self, index: int) -> None:
        """Stop worker ``index`` now (it died or hangs); a fresh one starts when it is next used."""
        process, pipe = self._processes[index], self._pipes[index]
        if process.is_alive():
            process.kill()  # hung (a frozen simulator): no time for a polite exit
        process.join(timeout=5)
        pipe.close()
        self._broken.add(index)

    def _respawn(self, index: int) -> None:
        self.restarts += 1
        self._pipes[index], self._processes[index] = self._spawn()
        self._broken.discard(index)
        self._expect_ready(index)
