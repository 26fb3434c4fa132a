"""A sandbox that runs tool calls with hostile arguments in a separate, confined process.

:class:`Sandbox` keeps one persistent worker process (``_worker.py``) and sends
it one call at a time. Every call runs under these limits (see
:class:`SandboxLimits`):

* wall clock: the parent waits ``wall_time_s`` for the reply, then kills the
  worker and starts a fresh one for the next call;
* CPU time: the worker's ``RLIMIT_CPU`` is re-armed to ``cpu_time_s`` more
  seconds before each call (the kernel kills it past that);
* memory: ``RLIMIT_AS`` of ``memory_mb`` (a ``MemoryError`` in the tool);
* no network: an empty network namespace where the kernel allows one, and an
  audit hook that refuses sockets in any case;
* no file writes, no new processes: ``RLIMIT_FSIZE = 0`` and the audit hook;
* output size: a result longer than ``max_output_chars`` is cut.

A call never raises for anything the tool or its arguments do: the answer is a
:class:`ToolOutcome` with ``ok=False`` and a clear message. Only a worker that
cannot start at all raises :class:`SandboxError`.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Sandbox", "SandboxError", "SandboxLimits", "ToolOutcome", "Toolset"]

_WORKER = Path(__file__).resolve().with_name("_worker.py")


class SandboxError(RuntimeError):
    """The worker process could not be started (a configuration problem, not a tool's)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one tool call. Defaults follow MENTOR's 5 s tool timeout."""

    wall_time_s: float = 5.0  # parent kills the worker after this long without a reply
    cpu_time_s: int = 5  # RLIMIT_CPU granted per call (whole seconds: the kernel's unit)
    memory_mb: int = 1024  # RLIMIT_AS of the worker (imports included: keep >= 512)
    max_output_chars: int = 4000  # longer results are cut, with a note saying so
    startup_timeout_s: float = 60.0  # worker start, toolset imports included

    def __post_init__(self) -> None:
        if not self.wall_time_s > 0 or self.cpu_time_s < 1:
            raise ValueError("SandboxLimits: wall_time_s must be > 0 and cpu_time_s >= 1")
        if self.memory_mb and self.memory_mb < 256:
            raise ValueError("SandboxLimits: memory_mb must be 0 (no limit) or at least 256")
        if self.max_output_chars < 16:
            raise ValueError("SandboxLimits: max_output_chars must be at least 16")


@dataclass(frozen=True)
class Toolset:
    """Where a set of tools comes from: ``factory`` ("module:function") returns {name: callable}.

    ``kwargs`` (JSON values only) are passed to the factory inside the worker.
    """

    factory: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> list[Any]:
        return [self.factory, self.kwargs]


@dataclass
class ToolOutcome:
    """What one call produced: ``content`` is the result text, or the error message when not ``ok``.

    ``kind`` names the failure: ``timeout``, ``cpu``, ``memory``, ``recursion``,
    ``crashed``, ``forbidden``, ``output``, ``bad_arguments``, ``unknown_tool``,
    ``tool_error`` or ``sandbox``; ``None`` when ``ok``.
    """

    ok: bool
    content: str
    kind: str | None = None
    seconds: float = 0.0
    truncated: bool = False


def _kill(process: subprocess.Popen | None) -> None:
    if process is not None and process.poll() is None:
        process.kill()
        process.wait()


class Sandbox:
    """One persistent, confined worker process that runs tool calls (module docstring)."""

    def __init__(
        self, limits: SandboxLimits | None = None, preload: tuple[Toolset, ...] = ()
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.preload = tuple(preload)
        self.isolation: list[str] = []  # what the last worker applied, e.g. ["netns", ...]
        self.restarts = 0  # workers started after the first (after timeouts and crashes)
        self._process: subprocess.Popen | None = None
        self._buffer = b""
        self._eof = False
        self._started = 0
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle ------------------------------------------------------------

    def _start(self) -> None:
        config = {
            "memory_mb": self.limits.memory_mb,
            "cpu_time_s": self.limits.cpu_time_s,
            "max_output_chars": self.limits.max_output_chars,
            "preload": [toolset.as_json() for toolset in self.preload],
        }
        environment = {
            key: value
            for key, value in os.environ.items()
            if key in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "VIRTUAL_ENV")
        }
        # The worker imports our tool modules the way this process does.
        paths = [os.path.abspath(p or ".") for p in sys.path]
        environment.update(
            PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",
            # One thread each: numeric libraries would otherwise reserve memory per core.
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
        )
        try:
            process = subprocess.Popen(
                [sys.executable, str(_WORKER), json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=environment,
                close_fds=True,
                start_new_session=True,  # a terminal's Ctrl-C reaches us, not the worker
            )
        except OSError as error:
            raise SandboxError(f"cannot start the tool sandbox: {error}") from error
        self._process, self._buffer, self._eof = process, b"", False
        self._finalizer = weakref.finalize(self, _kill, process)
        hello = self._read_line(self.limits.startup_timeout_s)
        if hello is None:
            status = process.poll()
            self._discard()
            raise SandboxError(
                "the tool sandbox did not start within "
                f"{self.limits.startup_timeout_s:.0f} s (exit status {status})"
            )
        reply = json.loads(hello)
        if not reply.get("ready"):
            self._discard()
            raise SandboxError(f"the tool sandbox failed to start: {reply.get('error')}")
        self.isolation = list(reply.get("isolation", []))
        if self._started:
            self.restarts += 1
        self._started += 1

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills the process
            self._finalizer = None
        self._process = None
        self._buffer = b""

    def close(self) -> None:
        """Stop the worker (a later call starts a new one)."""
        self._discard()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None when none is running."""
        return self._process.pid if self._process is not None else None

    # -- calls ----------------------------------------------------------------

    def _read_line(self, timeout: float) -> bytes | None:
        """One reply line, or None on timeout or when the worker died (then ``_eof`` is set)."""
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                self._eof = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def call(self, toolset: Toolset, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run ``toolset``'s tool ``name`` on ``arguments`` (JSON values) within the limits."""
        started = time.monotonic()
        try:
            request = json.dumps(
                {
                    "factory": toolset.factory,
                    "kwargs": toolset.kwargs,
                    "name": name,
                    "arguments": arguments,
                },
                ensure_ascii=False,
                allow_nan=False,
            )
        except (TypeError, ValueError) as error:
            return ToolOutcome(
                False, f"the arguments cannot be sent to the tool: {error}", "bad_arguments"
            )
        if self._process is None or self._process.poll() is not None:
            self._discard()
            self._start()
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write((request + "\n").encode())
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            self._discard()
            return ToolOutcome(
                False, "the tool sandbox stopped; it restarts on the next call", "crashed"
            )
        line = self._read_line(self.limits.wall_time_s)
        seconds = time.monotonic() - started
        if line is None:
            return self._failure(seconds)
        reply = json.loads(line)
        if reply.get("restart"):
            self._discard()  # a worker that ran out of memory or stack is not trusted further
        return ToolOutcome(
            ok=bool(reply["ok"]),
            content=str(reply["content"]),
            kind=reply.get("kind"),
            seconds=seconds,
            truncated=bool(reply.get("truncated", False)),
        )

    def _failure(self, seconds: float) -> ToolOutcome:
        """The worker gave no reply: say why, and discard it."""
        assert self._process is not None
        status = self._process.poll()
        if status is None and self._eof:
            # The worker closed its end: it is dying; wait for its exit status to say why.
            try:
                status = self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                status = None
        self._discard()
        if status is None:
            return ToolOutcome(
                False, f"the tool timed out after {self.limits.wall_time_s:g} s", "timeout", seconds
            )
        if status == -signal.SIGXCPU:
            message = f"the tool exceeded its CPU time limit ({self.limits.cpu_time_s} s)"
            return ToolOutcome(False, message, "cpu", seconds)
        if status == -signal.SIGKILL:
            message = "the tool was killed (likely out of memory)"
            return ToolOutcome(False, message, "crashed", seconds)
        reason = f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        return ToolOutcome(False, f"the tool crashed ({reason})", "crashed", seconds)
