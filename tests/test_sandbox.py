"""The tool sandbox survives hostile tools and arguments, each within its limit.

The hazards below are tools written to misbehave (they have none of the guards
our real tools have), so each limit of the sandbox itself is exercised: the
worker imports this module by name (``tests.test_sandbox:hazard_tools``).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from envs.tooluse.sandbox import Sandbox, SandboxError, SandboxLimits, Toolset

LIMITS = SandboxLimits(wall_time_s=1.0, cpu_time_s=1, memory_mb=768, max_output_chars=500)
HAZARDS = Toolset("tests.test_sandbox:hazard_tools")
MATH = Toolset("envs.tooluse.mathtools:make_tools")
# A call may take its limit plus the time to notice and report (generous on a loaded 2-core box).
SLACK_S = 1.5


def hazard_tools() -> dict[str, Callable[..., Any]]:
    """Tools that break every rule (the sandbox's toolset factory for these tests)."""

    def spin() -> None:
        while True:
            pass

    def burn(seconds: float) -> str:
        end = time.process_time() + seconds
        while time.process_time() < end:
            pass
        return "burnt"

    def recurse(depth: int = 0) -> int:
        return recurse(depth + 1)

    def write_file(path: str) -> str:
        with open(path, "w") as handle:
            handle.write("escaped")
        return "written"

    def write_low_level(path: str) -> str:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT))
        return "written"

    def connect() -> str:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
        return "connected"

    def print_lots() -> str:
        for _ in range(200):
            print("x" * 10_000)
        sys.stderr.write("noise\n")
        return "printed"

    def crash() -> None:
        os.abort()

    return {
        "spin": spin,
        "burn": burn,
        "sleep": lambda seconds: time.sleep(seconds),
        "allocate": lambda n: len([0] * n),
        "recurse": recurse,
        "raw_power": lambda base, exponent: base**exponent,
        "flood": lambda: "x" * 1_000_000,
        "big_int": lambda: 10**5000,
        "nan": lambda: float("nan"),
        "write_file": write_file,
        "write_low_level": write_low_level,
        "connect": connect,
        "spawn": lambda: subprocess.run(["true"], check=False).returncode,
        "fork": lambda: os.fork(),
        "kill_parent": lambda: os.kill(os.getppid(), signal.SIGTERM),
        "exit": lambda: sys.exit(3),
        "print_lots": print_lots,
        "crash": crash,
        "echo": lambda value: value,
    }


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(LIMITS, preload=(HAZARDS, MATH)) as box:
        yield box


# (case, tool, arguments, failure kinds accepted, seconds allowed before the reply)
HOSTILE_TABLE: list[tuple[str, str, dict[str, Any], tuple[str, ...], float]] = [
    ("busy loop", "spin", {}, ("cpu", "timeout"), LIMITS.wall_time_s),
    ("sleeps past the wall clock", "sleep", {"seconds": 30}, ("timeout",), LIMITS.wall_time_s),
    ("gigantic list", "allocate", {"n": 10**10}, ("memory",), 1.0),
    ("deep recursion", "recurse", {}, ("recursion",), 1.0),
    (
        "power(9, 10**9) unguarded",
        "raw_power",
        {"base": 9, "exponent": 10**9},
        ("cpu", "timeout", "memory"),
        LIMITS.wall_time_s,
    ),  # fmt: skip
    ("int too long to print", "big_int", {}, ("output",), 1.0),
    ("not a finite number", "nan", {}, ("output",), 1.0),
    ("network connection", "connect", {}, ("forbidden",), 1.0),
    ("new process", "spawn", {}, ("forbidden",), 1.0),
    ("fork", "fork", {}, ("forbidden",), 1.0),
    ("signal the parent", "kill_parent", {}, ("forbidden",), 1.0),
    ("exit the worker", "exit", {}, ("tool_error",), 1.0),
    ("abort (a crash)", "crash", {}, ("crashed",), 1.0),
    ("unknown tool", "no_such_tool", {}, ("unknown_tool",), 1.0),
    ("wrong keyword", "echo", {"wrong": 1}, ("bad_arguments",), 1.0),
]


@pytest.mark.parametrize(
    ("case", "tool", "arguments", "kinds", "allowed_s"),
    HOSTILE_TABLE,
    ids=[row[0] for row in HOSTILE_TABLE],
)
def test_hostile_tool_gives_a_clear_error_within_its_limit(
    sandbox: Sandbox,
    case: str,
    tool: str,
    arguments: dict,
    kinds: tuple[str, ...],
    allowed_s: float,
) -> None:
    assert (
        sandbox.call(MATH, "add", {"a": 1, "b": 2}).content == "3"
    )  # warm: no start-up in the timing
    started = time.monotonic()
    outcome = sandbox.call(HAZARDS, tool, arguments)
    elapsed = time.monotonic() - started
    assert not outcome.ok, case
    assert outcome.kind in kinds, (case, outcome)
    assert outcome.content and len(outcome.content) < 600, case
    assert elapsed < allowed_s + SLACK_S, (case, elapsed)
    # and the sandbox keeps working
    assert sandbox.call(MATH, "multiply", {"a": 6, "b": 7}).content == "42", case


@pytest.mark.parametrize("tool", ["write_file", "write_low_level"])
def test_tools_cannot_write_files(sandbox: Sandbox, tmp_path: Path, tool: str) -> None:
    target = tmp_path / "escaped.txt"
    outcome = sandbox.call(HAZARDS, tool, {"path": str(target)})
    assert not outcome.ok and outcome.kind == "forbidden"
    assert "writing files is not allowed" in outcome.content
    assert not target.exists()


def test_output_is_cut_to_the_cap(sandbox: Sandbox) -> None:
    outcome = sandbox.call(HAZARDS, "flood", {})
    assert outcome.ok and outcome.truncated
    assert outcome.content.startswith("x" * 100)
    assert len(outcome.content) < LIMITS.max_output_chars + 100
    assert "truncated: 1000000 characters in all" in outcome.content


def test_printing_does_not_corrupt_the_protocol(sandbox: Sandbox) -> None:
    outcome = sandbox.call(HAZARDS, "print_lots", {})
    assert outcome.ok and outcome.content == "printed"
    assert sandbox.call(HAZARDS, "echo", {"value": [1, "two"]}).content == '[1, "two"]'


def test_cpu_limit_is_per_call_not_cumulative(sandbox: Sandbox) -> None:
    # Three calls of 0.4 s CPU each exceed the 1 s limit together but not one by one.
    for _ in range(3):
        outcome = sandbox.call(HAZARDS, "burn", {"seconds": 0.4})
        assert outcome.ok, outcome


def test_timeouts_restart_the_worker(sandbox: Sandbox) -> None:
    sandbox.call(MATH, "add", {"a": 1, "b": 1})
    before, pid = sandbox.restarts, sandbox.pid
    assert sandbox.call(HAZARDS, "sleep", {"seconds": 30}).kind == "timeout"
    assert sandbox.pid is None  # the stuck worker is gone
    assert sandbox.call(MATH, "add", {"a": 2, "b": 2}).content == "4"
    assert sandbox.restarts == before + 1 and sandbox.pid != pid


def test_isolation_is_reported(sandbox: Sandbox) -> None:
    sandbox.call(MATH, "add", {"a": 1, "b": 1})
    assert "audit-hook" in sandbox.isolation
    assert "no-file-growth" in sandbox.isolation
    assert any(item.startswith("memory<=") for item in sandbox.isolation)


def test_a_toolset_that_cannot_load_is_a_clear_error(sandbox: Sandbox) -> None:
    outcome = sandbox.call(Toolset("envs.tooluse.no_such_module:make"), "x", {})
    assert not outcome.ok and outcome.kind == "sandbox"
    assert "cannot load toolset" in outcome.content


def test_a_worker_that_cannot_start_raises_sandbox_error() -> None:
    box = Sandbox(
        SandboxLimits(startup_timeout_s=30), preload=(Toolset("no_such_package.tools:make"),)
    )
    with pytest.raises(SandboxError, match="cannot load toolset no_such_package.tools:make"):
        box.call(MATH, "add", {"a": 1, "b": 2})
    box.close()


def test_arguments_json_cannot_hold_are_refused_before_the_worker() -> None:
    box = Sandbox(LIMITS)
    outcome = box.call(MATH, "add", {"a": float("nan"), "b": 1})
    assert not outcome.ok and outcome.kind == "bad_arguments"
    assert box.pid is None  # nothing was started for it


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="wall_time_s"):
        SandboxLimits(wall_time_s=0)
    with pytest.raises(ValueError, match="memory_mb"):
        SandboxLimits(memory_mb=10)
    with pytest.raises(ValueError, match="max_output_chars"):
        SandboxLimits(max_output_chars=3)


def test_close_stops_the_worker() -> None:
    box = Sandbox(LIMITS, preload=(MATH,))
    assert box.call(MATH, "add", {"a": 1, "b": 2}).ok
    pid = box.pid
    assert pid is not None
    box.close()
    assert box.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
