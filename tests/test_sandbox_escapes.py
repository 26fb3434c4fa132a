"""Tools that try to get out of the sandbox: each attempt fails and the sandbox contains it.

Every case asserts containment, not just an error message: the process it
aimed at is alive with its limits unchanged, no file or process appears, the
next call gets its own result, and the wall limit holds. The worker imports
``tests.test_sandbox_escapes:escape_tools`` by name. Cases that rely on a
kernel layer (``seccomp``, ``landlock``, namespaces) are skipped where the
machine does not offer it (``Sandbox.isolation`` says which applied).
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from envs.tooluse.sandbox import Sandbox, SandboxLimits, Toolset

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux sandbox")

WALL_S = 1.0
LIMITS = SandboxLimits(wall_time_s=WALL_S, cpu_time_s=2, memory_mb=768, max_output_chars=2000)
# The bound: the wall limit holds to within 10% or 0.5 s, whichever is larger.
WALL_SLACK_S = max(0.1 * WALL_S, 0.5)


def escape_tools(data_path: str = "") -> dict[str, Callable[..., Any]]:
    """Tools that attack the sandbox (the worker's toolset factory for these tests)."""
    import _posixsubprocess

    def pidfd_kill(pid: int) -> str:
        signal.pidfd_send_signal(os.pidfd_open(pid), signal.SIGKILL)
        return "sent"

    def pidfd_kill_parent() -> str:
        return pidfd_kill(os.getppid())

    def raw_spawn(argv: list[str]) -> int:
        # What subprocess does, minus its audit event (the bypass).
        executable = [os.fsencode(argv[0])]
        return _posixsubprocess.fork_exec(
            [os.fsencode(a) for a in argv], executable, True, (), None, None,
            -1, -1, -1, -1, -1, -1, -1, -1, True, True, -1, None, None, None, -1, None, False,
        )  # fmt: skip

    def forge_reply(content: str) -> str:
        reply = {"id": 0, "ok": True, "kind": None, "content": content}
        line = (json.dumps(reply) + "\n").encode()
        written = []
        for fd in range(3, 64):
            try:
                os.write(fd, line)
                written.append(fd)
            except OSError:
                pass
        return f"wrote to {written}"

    def close_replies_and_sleep(seconds: float) -> str:
        for fd in range(3, 64):
            try:
                os.close(fd)
            except OSError:
                pass
        time.sleep(seconds)
        return "slept"

    def start_forger() -> str:
        # A thread that outlives its call and keeps writing fake replies.
        def forge_forever() -> None:
            while True:
                time.sleep(0.05)
                forge_reply("from a thread")

        threading.Thread(target=forge_forever, daemon=True).start()
        return "started"

    def arm_alarm(seconds: int) -> str:
        def handler(*_: object) -> None:
            forge_reply("from an alarm")

        signal.signal(signal.SIGALRM, handler)
        signal.alarm(seconds)
        return "armed"

    def read_text(path: str) -> str:
        with open(path, "rb") as handle:
            return handle.read(200).decode("utf-8", "replace")

    def sqlite_write(path: str) -> str:
        with sqlite3.connect(path) as connection:
            connection.execute("create table t (x)")
        return "written"

    return {
        "kill": lambda pid: os.kill(pid, signal.SIGKILL),
        "pidfd_kill": pidfd_kill,
        "pidfd_kill_parent": pidfd_kill_parent,
        "prlimit": lambda pid: resource.prlimit(pid, resource.RLIMIT_CPU, (1, 1)),
        "raise_memory_limit": lambda: resource.setrlimit(
            resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        ),
        "raw_spawn": raw_spawn,
        "mkfifo": lambda path: os.mkfifo(path),
        "mknod": lambda path: os.mknod(path),
        "setxattr": lambda path: os.setxattr(path, "user.escaped", b"1"),
        "sqlite_write": sqlite_write,
        "read_text": read_text,
        "read_own_data": lambda: read_text(data_path),
        "listdir": lambda path: sorted(os.listdir(path))[:5],
        "environ": lambda: dict(os.environ),
        "forge_reply": forge_reply,
        "close_replies_and_sleep": close_replies_and_sleep,
        "start_forger": start_forger,
        "arm_alarm": arm_alarm,
        "sleep": lambda seconds: time.sleep(seconds),
        "echo": lambda value: value,
    }


@pytest.fixture(scope="module")
def data_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tool-data") / "data.txt"
    path.write_text("the tool's own data")
    return path


@pytest.fixture(scope="module")
def escapes(data_file: Path) -> Toolset:
    return Toolset("tests.test_sandbox_escapes:escape_tools", {"data_path": str(data_file)})


@pytest.fixture(scope="module")
def sandbox(escapes: Toolset) -> Iterator[Sandbox]:
    with Sandbox(LIMITS, preload=(escapes,)) as box:
        assert box.call(escapes, "echo", {"value": 1}).ok  # started, isolation known
        yield box


@pytest.fixture
def victim() -> Iterator[subprocess.Popen]:
    """A process of ours that a tool tries to harm (it must live on, untouched)."""
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def needs(box: Sandbox, *layers: str) -> None:
    """Skip unless one of ``layers`` (prefixes of isolation labels) applied on this machine."""
    if not any(label.startswith(layers) for label in box.isolation):
        pytest.skip(f"this kernel offers none of {layers} (applied: {box.isolation})")


def assert_next_call_is_its_own(box: Sandbox, escapes: Toolset) -> None:
    token = uuid.uuid4().hex
    outcome = box.call(escapes, "echo", {"value": token})
    assert outcome.ok and outcome.content == token, outcome


def live_group_members(pgid: int) -> list[int]:
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] not in (b"Z", b"X") and int(fields[2]) == pgid:
            members.append(int(name))
    return members


# -- other processes ---------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["kill", "pidfd_kill"])
def test_a_tool_cannot_signal_another_process(
    sandbox: Sandbox, escapes: Toolset, victim: subprocess.Popen, tool: str
) -> None:
    outcome = sandbox.call(escapes, tool, {"pid": victim.pid})
    assert not outcome.ok and outcome.kind in ("forbidden", "tool_error"), outcome
    time.sleep(0.05)
    assert victim.poll() is None, "the victim was killed"
    assert_next_call_is_its_own(sandbox, escapes)


def test_a_tool_cannot_kill_the_env_process_through_its_parent(
    sandbox: Sandbox, escapes: Toolset
) -> None:
    needs(sandbox, "seccomp", "pidns")  # without either, the parent is reachable
    outcome = sandbox.call(escapes, "pidfd_kill_parent", {})
    assert not outcome.ok, outcome
    assert_next_call_is_its_own(sandbox, escapes)  # and we, the env process, are alive


def test_a_tool_cannot_change_another_process_limits(
    sandbox: Sandbox, escapes: Toolset, victim: subprocess.Popen
) -> None:
    needs(sandbox, "seccomp", "pidns")
    before = resource.prlimit(victim.pid, resource.RLIMIT_CPU)
    mine = resource.getrlimit(resource.RLIMIT_CPU)
    outcome = sandbox.call(escapes, "prlimit", {"pid": victim.pid})
    assert not outcome.ok and outcome.kind in ("forbidden", "tool_error"), outcome
    assert resource.prlimit(victim.pid, resource.RLIMIT_CPU) == before
    assert resource.getrlimit(resource.RLIMIT_CPU) == mine
    outcome = sandbox.call(escapes, "raise_memory_limit", {})
    assert not outcome.ok and outcome.kind == "forbidden", outcome


def test_a_process_started_around_the_audit_hook_is_refused_and_nothing_outlives_close(
    escapes: Toolset,
) -> None:
    marker = f"{60 + uuid.uuid4().int % 1000}.{os.getpid()}"  # a unique sleep argument
    box = Sandbox(LIMITS, preload=(escapes,))
    try:
        assert box.call(escapes, "echo", {"value": 0}).ok
        needs(box, "seccomp")
        outcome = box.call(escapes, "raw_spawn", {"argv": ["/bin/sleep", marker]})
        assert not outcome.ok and outcome.kind in ("forbidden", "tool_error"), outcome
        pgid = box.pid
        assert pgid is not None
    finally:
        box.close()
    assert live_group_members(pgid) == []
    leftovers = [
        name for name in os.listdir("/proc") if name.isdigit() and marker.encode() in _cmdline(name)
    ]
    assert leftovers == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def test_close_leaves_no_process_of_the_sandbox(escapes: Toolset) -> None:
    box = Sandbox(LIMITS, preload=(escapes,))
    assert box.call(escapes, "echo", {"value": 0}).ok
    pgid = box.pid
    assert pgid is not None and live_group_members(pgid)
    box.close()
    assert live_group_members(pgid) == []
    assert box.pid is None


# -- the file system ---------------------------------------------------------------------


@pytest.mark.parametrize("tool", ["mkfifo", "mknod", "sqlite_write"])
def test_a_tool_creates_no_file(
    sandbox: Sandbox, escapes: Toolset, tmp_path: Path, tool: str
) -> None:
    needs(sandbox, "seccomp", "landlock")
    target = tmp_path / "escaped"
    outcome = sandbox.call(escapes, tool, {"path": str(target)})
    assert not outcome.ok and outcome.kind in ("forbidden", "tool_error"), outcome
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert_next_call_is_its_own(sandbox, escapes)


def test_a_tool_cannot_set_extended_attributes(
    sandbox: Sandbox, escapes: Toolset, tmp_path: Path
) -> None:
    needs(sandbox, "seccomp")
    target = tmp_path / "file.txt"
    target.write_text("x")
    outcome = sandbox.call(escapes, "setxattr", {"path": str(target)})
    assert not outcome.ok and outcome.kind == "forbidden", outcome
    with pytest.raises(OSError):
        os.getxattr(target, "user.escaped")


def test_a_tool_reads_its_own_data_and_nothing_else(
    sandbox: Sandbox, escapes: Toolset, tmp_path: Path
) -> None:
    assert sandbox.call(escapes, "read_own_data", {}).content == "the tool's own data"
    secret = tmp_path / "api_key.txt"
    secret.write_text("sk-secret")
    for tool, arguments in (
        ("read_text", {"path": str(secret)}),
        ("read_text", {"path": f"/proc/{os.getpid()}/environ"}),
        ("read_text", {"path": "/etc/hostname"}),
        ("listdir", {"path": str(tmp_path)}),
        ("listdir", {"path": str(Path.home())}),
    ):
        outcome = sandbox.call(escapes, tool, arguments)
        assert not outcome.ok and outcome.kind in ("forbidden", "tool_error"), (tool, outcome)
        assert "sk-secret" not in outcome.content
    assert_next_call_is_its_own(sandbox, escapes)


def test_the_worker_environment_holds_no_inherited_secret(
    escapes: Toolset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MENTORGYM_TEST_API_KEY", "sk-secret")
    with Sandbox(LIMITS, preload=(escapes,)) as box:
        outcome = box.call(escapes, "environ", {})
    assert outcome.ok
    assert "sk-secret" not in outcome.content
    assert "MENTORGYM_TEST_API_KEY" not in outcome.content


# -- the protocol and the clock ----------------------------------------------------------


def test_a_forged_reply_fails_only_its_own_call(sandbox: Sandbox, escapes: Toolset) -> None:
    outcome = sandbox.call(escapes, "forge_reply", {"content": "forged"})
    assert not outcome.ok and outcome.kind == "forbidden", outcome
    assert "corrupted" in outcome.content
    for _ in range(3):
        assert_next_call_is_its_own(sandbox, escapes)


def test_an_alarm_set_by_a_tool_never_fires_into_a_later_call(
    sandbox: Sandbox, escapes: Toolset
) -> None:
    assert sandbox.call(escapes, "arm_alarm", {"seconds": 1}).ok
    time.sleep(1.3)
    assert_next_call_is_its_own(sandbox, escapes)


def test_a_thread_left_behind_cannot_shift_later_results(
    sandbox: Sandbox, escapes: Toolset
) -> None:
    assert sandbox.call(escapes, "start_forger", {}).ok
    time.sleep(0.2)  # it has written between calls by now
    for _ in range(3):
        token = uuid.uuid4().hex
        outcome = sandbox.call(escapes, "echo", {"value": token})
        # Each call gets its own result, or fails; never another call's, never a forgery.
        assert outcome.content == token or not outcome.ok, outcome
    assert_next_call_is_its_own(sandbox, escapes)


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("sleep", {"seconds": 30}), ("close_replies_and_sleep", {"seconds": 30})],
)
def test_the_wall_limit_holds(
    sandbox: Sandbox, escapes: Toolset, tool: str, arguments: dict
) -> None:
    assert_next_call_is_its_own(sandbox, escapes)  # warm: no start-up in the timing
    started = time.monotonic()
    outcome = sandbox.call(escapes, tool, arguments)
    elapsed = time.monotonic() - started
    assert not outcome.ok and outcome.kind in ("timeout", "crashed"), outcome
    assert elapsed <= WALL_S + WALL_SLACK_S, elapsed
    assert_next_call_is_its_own(sandbox, escapes)


def _kernel_allows_namespaces() -> bool:
    probe = (
        "import ctypes, sys; libc = ctypes.CDLL(None, use_errno=True); "
        "sys.exit(0 if libc.unshare(0x10000000 | 0x20000000 | 0x40000000 | 0x00020000) == 0 "
        "or libc.unshare(0x20000000 | 0x40000000 | 0x00020000) == 0 else 1)"
    )
    return subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0


def test_the_worker_applies_every_layer_this_kernel_offers(sandbox: Sandbox) -> None:
    """A layer that silently stopped applying would turn the cases above into skips."""
    import platform

    from envs.tooluse import _confine

    expected = ["no-file-growth", "audit-hook"]
    if platform.machine() in ("x86_64", "aarch64"):
        expected.append("seccomp")
    if _confine.landlock_abi() > 0:
        expected.append(f"landlock-v{_confine.landlock_abi()}")
    if _kernel_allows_namespaces():
        expected += ["pidns", "netns"]
    missing = [label for label in expected if label not in sandbox.isolation]
    assert not missing, f"not applied: {missing} (applied: {sandbox.isolation})"


def test_without_namespaces_the_other_layers_still_contain(
    escapes: Toolset, victim: subprocess.Popen
) -> None:
    with Sandbox(LIMITS, preload=(escapes,), namespaces=False) as box:
        assert box.call(escapes, "echo", {"value": 0}).ok
        assert "pidns" not in box.isolation and "netns" not in box.isolation
        needs(box, "seccomp")
        assert not box.call(escapes, "pidfd_kill", {"pid": victim.pid}).ok
        assert not box.call(escapes, "pidfd_kill_parent", {}).ok
        outcome = box.call(escapes, "read_text", {"path": f"/proc/{os.getpid()}/environ"})
        assert not outcome.ok and outcome.kind == "forbidden", outcome
        assert_next_call_is_its_own(box, escapes)
        pgid = box.pid
    assert victim.poll() is None
    assert pgid is not None and live_group_members(pgid) == []
