"""A sandbox that runs tool calls with hostile arguments in a separate, confined process.

:class:`Sandbox` keeps one persistent worker process (``_worker.py``) and sends
it one call at a time. Every call runs under these limits (see
:class:`SandboxLimits`):

* wall clock: the parent waits ``wall_time_s`` for the reply, then kills the
  worker's whole process group and starts a fresh worker for the next call;
* CPU time: the worker's ``RLIMIT_CPU`` is re-armed to ``cpu_time_s`` more
  seconds before each call (the kernel kills it past that);
* memory: ``RLIMIT_AS`` of ``memory_mb`` (a ``MemoryError`` in the tool);
* output size: a result longer than ``max_output_chars`` is cut.

and the worker confines itself before its first call (``_worker.py`` lists the
layers: namespaces, Landlock, seccomp, an audit hook): no network, no new
processes or threads, no file writes, no signals or limits aimed at other
processes, reads only of its own code and data, and an environment without
the parent's variables. Every reply carries its request's id: a reply that
does not (a tool wrote into the protocol) fails that call and replaces the
worker. ``close()`` kills the worker's process group, so nothing it started
outlives it. ``docs/tool-tasks.md`` states what this does and does not guarantee.

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


# Variables the worker gets from this process: locale and nothing else. Keys, tokens and
# credentials in the parent's environment never reach a tool.
_INHERITED_VARIABLES = ("LANG", "LC_ALL", "LC_CTYPE")
# A reply line longer than this is not one the worker wrote (it cuts results to max_output_chars).
_REPLY_OVERHEAD = 64 * 1024
# How long close() waits for the rest of a killed process group (the namespace's reaper) to go.
_GROUP_EXIT_S = 1.0


def _valid_unicode(text: str) -> str:
    """``text`` with unpaired surrogates replaced by U+FFFD (they are not valid UTF-8)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still counts for kill(0); only live members matter here.
    return any(_is_live_member(pid, pgid) for pid in _pids())


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _is_live_member(pid: int, pgid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return len(fields) > 2 and fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(child) for child in handle.read().split()]
    except (OSError, ValueError):
        return []


def _kill(process: subprocess.Popen | None) -> None:
    """Kill the worker's process group (the worker leads it) and wait until it is gone.

    The namespace's first process is killed before the rest, so that the worker's
    launcher (our child) reaps it: a group killed all at once would leave it to the
    system's init, which in some containers never reaps (a zombie per restart).
    """
    if process is None:
        return
    for child in _children(process.pid):
        try:
            os.kill(child, signal.SIGKILL)
        except OSError:
            pass
    try:
        process.wait(timeout=0.5)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if process.poll() is None:
            process.kill()
    process.wait()
    deadline = time.monotonic() + _GROUP_EXIT_S
    while sys.platform.startswith("linux") and time.monotonic() < deadline:
        if not _group_alive(process.pid):
            break
        time.sleep(0.005)


class Sandbox:
    """One persistent, confined worker process that runs tool calls (module docstring)."""

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        preload: tuple[Toolset, ...] = (),
        *,
        namespaces: bool = True,
    ) -> None:
        """``preload``: toolsets the worker imports before it confines itself (their data
        paths, string kwargs naming files or folders, become readable). ``namespaces=False``
        skips the namespace layer (for hosts whose policy forbids ``unshare``); the other
        layers still apply."""
        self.limits = limits or SandboxLimits()
        self.preload = tuple(preload)
        self.namespaces = bool(namespaces)
        self.isolation: list[str] = []  # what the last worker applied, e.g. ["pidns", ...]
        self.restarts = 0  # workers started after the first (after timeouts and crashes)
        self._process: subprocess.Popen | None = None
        self._buffer = b""
        self._eof = False
        self._started = 0
        self._next_id = 0
        self._finalizer: weakref.finalize | None = None

    # -- lifecycle ------------------------------------------------------------

    def _start(self) -> None:
        config = {
            "memory_mb": self.limits.memory_mb,
            "cpu_time_s": self.limits.cpu_time_s,
            "max_output_chars": self.limits.max_output_chars,
            "preload": [toolset.as_json() for toolset in self.preload],
            "namespaces": self.namespaces,
        }
        environment = {key: os.environ[key] for key in _INHERITED_VARIABLES if key in os.environ}
        # The worker imports our tool modules the way this process does.
        paths = [os.path.abspath(p or ".") for p in sys.path]
        environment.update(
            PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)),
            PYTHONDONTWRITEBYTECODE="1",
            PYTHONHASHSEED="0",
            PYTHONNOUSERSITE="1",
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
                # Its own session and process group: a terminal's Ctrl-C reaches us, not the
                # worker, and killing the group kills everything the worker is.
                start_new_session=True,
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
        try:
            reply = json.loads(hello)
        except ValueError:
            reply = {"error": f"an unreadable greeting {hello[:80]!r}"}
        if not reply.get("ready"):
            self._discard()
            raise SandboxError(f"the tool sandbox failed to start: {reply.get('error')}")
        self.isolation = list(reply.get("isolation", []))
        if self._started:
            self.restarts += 1
        self._started += 1

    def _discard(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # kills the process group
            self._finalizer = None
        if self._process is not None:
            for stream in (self._process.stdin, self._process.stdout):
                try:
                    if stream is not None:
                        stream.close()
                except OSError:
                    pass
        self._process = None
        self._buffer = b""

    def close(self) -> None:
        """Stop the worker and every process of its group (a later call starts a new one)."""
        self._discard()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The worker's process id (its process group's too), or None when none is running."""
        return self._process.pid if self._process is not None else None

    # -- calls ----------------------------------------------------------------

    def _read_line(self, timeout: float) -> bytes | None:
        """One reply line, or None on timeout, on a line too long to be a reply, or when the
        worker died (then ``_eof`` is set)."""
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        deadline = time.monotonic() + timeout
        limit = self.limits.max_output_chars * 12 + _REPLY_OVERHEAD  # \uXXXX escapes and all
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or len(self._buffer) > limit:
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

    def _has_stray_output(self) -> bool:
        """Whether the idle worker wrote something nobody asked for (a tool's leftover)."""
        assert self._process is not None and self._process.stdout is not None
        if self._buffer:
            return True
        ready, _, _ = select.select([self._process.stdout.fileno()], [], [], 0)
        return bool(ready)

    def _send(self, data: bytes, deadline: float) -> bool:
        """Write ``data`` to the worker by ``deadline``; False when it does not take it."""
        assert self._process is not None and self._process.stdin is not None
        fd = self._process.stdin.fileno()
        view = memoryview(data)
        try:
            while view:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                _, ready, _ = select.select([], [fd], [], remaining)
                if not ready:
                    return False
                written = os.write(fd, view[: select.PIPE_BUF])
                view = view[written:]
        except OSError:  # BrokenPipeError: the worker is gone
            return False
        return True

    def call(self, toolset: Toolset, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        """Run ``toolset``'s tool ``name`` on ``arguments`` (JSON values) within the limits."""
        self._next_id += 1
        request_id = self._next_id
        try:
            # ASCII JSON: any str, even one holding a lone surrogate, has a form the pipe takes.
            request = json.dumps(
                {
                    "id": request_id,
                    "factory": toolset.factory,
                    "kwargs": toolset.kwargs,
                    "name": name,
                    "arguments": arguments,
                },
                ensure_ascii=True,
                allow_nan=False,
            )
        except (TypeError, ValueError, RecursionError) as error:
            return ToolOutcome(
                False, f"the arguments cannot be sent to the tool: {error}", "bad_arguments"
            )
        if self._process is not None and (
            self._process.poll() is not None or self._has_stray_output()
        ):
            self._discard()  # dead, or written to by a tool after its reply: start afresh
        if self._process is None:
            self._start()
        started = time.monotonic()
        deadline = started + self.limits.wall_time_s
        if not self._send((request + "\n").encode("ascii"), deadline):
            return self._failure(time.monotonic() - started, deadline)
        line = self._read_line(max(0.0, deadline - time.monotonic()))
        seconds = time.monotonic() - started
        if line is None:
            return self._failure(seconds, deadline)
        try:
            reply = json.loads(line)
            valid = isinstance(reply, dict) and reply.get("id") == request_id
        except ValueError:
            valid = False
        if not valid:
            self._discard()
            return ToolOutcome(
                False,
                "the tool's reply was corrupted (something wrote into the sandbox's reply "
                "channel); the worker was replaced",
                "forbidden",
                seconds,
            )
        if reply.get("restart"):
            self._discard()  # a worker that ran out of memory or stack is not trusted further
        return ToolOutcome(
            ok=bool(reply.get("ok")),
            content=_valid_unicode(str(reply.get("content", ""))),
            kind=reply.get("kind"),
            seconds=seconds,
            truncated=bool(reply.get("truncated", False)),
        )

    def _failure(self, seconds: float, deadline: float) -> ToolOutcome:
        """The worker gave no reply by ``deadline``: say why, and discard it."""
        assert self._process is not None
        status = self._process.poll()
        if status is None and self._eof:
            # The worker closed its end: it is dying (or a tool closed it); its exit status
            # says why, if it comes before the call's own deadline.
            try:
                status = self._process.wait(timeout=max(0.0, deadline - time.monotonic()))
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
