"""The tool sandbox's worker process (started by :class:`envs.tooluse.sandbox.Sandbox`).

Run as a script, never imported by the environments. It reads one JSON request
per line on its standard input and writes one JSON reply per line on its
standard output. Before it accepts requests it confines itself, in this order:

1. a private network namespace (``unshare``), when the kernel allows it, so no
   socket can reach anything;
2. resource limits: address space (memory), no file may grow (so nothing can be
   written), no core files; a CPU-time limit is set afresh before every call;
3. the toolsets named on the command line are imported (heavy imports happen
   here, before the audit hook, so they may read what they need);
4. an audit hook (PEP 578) that refuses sockets, file writes, process creation,
   signals and ``ctypes`` for the rest of the process's life.

The parent enforces the wall-clock limit: it kills this process when a reply is
late and starts a fresh one. A request is::

    {"factory": "module:function", "kwargs": {...}, "name": "add", "arguments": {...}}

and a reply is ``{"ok": bool, "content": str, "kind": str | None, "restart": bool}``.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import signal
import sys
from typing import Any

# The script's own folder must not shadow standard modules (it is sys.path[0] when run as a script).
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000

# Audit events refused once the worker is confined. Prefix match on the event name.
_DENIED_PREFIXES: tuple[str, ...] = (
    "socket.",
    "subprocess.",
    "os.system",
    "os.exec",
    "os.fork",
    "os.forkpty",
    "os.posix_spawn",
    "os.spawn",
    "os.startfile",
    "os.kill",
    "os.killpg",
    "os.remove",
    "os.unlink",
    "os.rename",
    "os.replace",
    "os.rmdir",
    "os.mkdir",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "shutil.",
    "ctypes.",
    "pty.",
    "webbrowser.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "sys.addaudithook",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class SandboxViolation(PermissionError):
    """What the audit hook raises for a refused operation."""


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        mode = args[1] if len(args) > 1 else None
        flags = args[2] if len(args) > 2 else 0
        writes = isinstance(mode, str) and any(c in mode for c in "wax+")
        if writes or (isinstance(flags, int) and flags & _WRITE_FLAGS):
            raise SandboxViolation(
                f"writing files is not allowed in the tool sandbox ({args[0]!r})"
            )
        return
    if event.startswith(_DENIED_PREFIXES):
        raise SandboxViolation(f"the tool sandbox does not allow {event}")


def _enter_network_namespace() -> str | None:
    """Move into an empty network namespace; returns a label, or None when not permitted."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    # Root (or CAP_SYS_ADMIN) can create the namespace directly and keep its identity.
    if libc.unshare(_CLONE_NEWNET) == 0:
        return "netns"
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return None
    # Map our own ids into the new user namespace so file permissions stay as they were.
    try:
        with open("/proc/self/setgroups", "w") as handle:
            handle.write("deny")
        with open("/proc/self/uid_map", "w") as handle:
            handle.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as handle:
            handle.write(f"{gid} {gid} 1")
    except OSError:
        pass
    return "userns+netns"


def _set_limits(memory_mb: int) -> list[str]:
    applied = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Any write that would grow a regular file fails (EFBIG) instead of killing the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    applied.append("no-file-growth")
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        applied.append(f"memory<={memory_mb}MB")
    return applied


def _arm_cpu_limit(seconds: int) -> None:
    """Let the next call use at most ``seconds`` more CPU seconds (SIGXCPU kills us after)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = usage.ru_utime + usage.ru_stime
    soft = int(math.ceil(used)) + max(1, int(seconds))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY and soft > hard:
        soft = hard
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


_TOOLSETS: dict[str, dict[str, Any]] = {}


def _toolset(factory: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    key = json.dumps([factory, kwargs], sort_keys=True)
    tools = _TOOLSETS.get(key)
    if tools is None:
        module_name, _, function_name = factory.partition(":")
        module = importlib.import_module(module_name)
        tools = dict(getattr(module, function_name)(**kwargs))
        _TOOLSETS[key] = tools
    return tools


def _render(result: Any, max_chars: int) -> tuple[str, bool]:
    """The result as text, cut to ``max_chars``; also whether it was cut."""
    if isinstance(result, float) and not math.isfinite(result):
        raise ValueError("the result is not a finite number")
    text = (
        result
        if isinstance(result, str)
        else json.dumps(result, ensure_ascii=False, allow_nan=False)
    )
    if len(text) > max_chars:
        return text[:max_chars] + f" ... [output truncated: {len(text)} characters in all]", True
    return text, False


def _run(request: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    max_chars = int(config["max_output_chars"])
    try:
        tools = _toolset(request["factory"], request.get("kwargs") or {})
    except Exception as error:  # a broken toolset is a configuration error the caller must see
        return {"ok": False, "kind": "sandbox", "content": f"cannot load toolset: {error}"}
    function = tools.get(request["name"])
    if function is None:
        return {"ok": False, "kind": "unknown_tool", "content": f"unknown tool {request['name']!r}"}
    _arm_cpu_limit(int(config["cpu_time_s"]))
    try:
        result = function(**request["arguments"])
    except MemoryError:
        return {
            "ok": False,
            "kind": "memory",
            "restart": True,
            "content": f"the tool ran out of memory (limit {config['memory_mb']} MB)",
        }
    except RecursionError:
        return {"ok": False, "kind": "recursion", "restart": True, "content": "recursion too deep"}
    except SandboxViolation as error:
        return {"ok": False, "kind": "forbidden", "content": str(error)}
    except TypeError as error:
        return {"ok": False, "kind": "bad_arguments", "content": str(error)[:500]}
    except (SystemExit, KeyboardInterrupt, GeneratorExit):
        return {
            "ok": False,
            "kind": "tool_error",
            "restart": True,
            "content": "the tool tried to exit",
        }
    except Exception as error:
        message = str(error)[:500] or type(error).__name__
        return {"ok": False, "kind": "tool_error", "content": message}
    try:
        content, truncated = _render(result, max_chars)
    except MemoryError:
        return {
            "ok": False,
            "kind": "memory",
            "restart": True,
            "content": "the result is too large",
        }
    except (ValueError, TypeError, OverflowError) as error:
        # int->str conversion limit, non-finite floats, objects JSON cannot hold
        reason = str(error)[:200]
        return {
            "ok": False,
            "kind": "output",
            "content": f"the result cannot be returned: {reason}",
        }
    return {"ok": True, "kind": None, "content": content, "truncated": truncated}


def main() -> None:
    """Confine this process, then serve requests until standard input closes."""
    config = json.loads(sys.argv[1])
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    # Tools must not write into the protocol stream: stdin/stdout/stderr go nowhere.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)

    isolation = []
    network = _enter_network_namespace()
    if network:
        isolation.append(network)
    isolation += _set_limits(int(config["memory_mb"]))
    sys.dont_write_bytecode = True
    sys.set_int_max_str_digits(int(config.get("max_int_digits", 4300)))
    startup_error = None
    for factory, kwargs in config.get("preload", []):
        try:
            _toolset(factory, kwargs)
        except Exception as error:
            startup_error = f"cannot load toolset {factory}: {type(error).__name__}: {error}"
            break
    sys.addaudithook(_audit_hook)
    isolation.append("audit-hook")
    hello = {"ready": startup_error is None, "isolation": isolation, "error": startup_error}
    replies.write((json.dumps(hello) + "\n").encode())

    buffer = b""
    while True:
        chunk = requests.read(65536)
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                request = json.loads(line)
                reply = _run(request, config)
            except MemoryError:
                reply = {"ok": False, "kind": "memory", "restart": True, "content": "out of memory"}
            except Exception as error:  # a malformed request is the parent's bug; say so
                reply = {"ok": False, "kind": "sandbox", "content": f"bad request: {error}"}
            replies.write((json.dumps(reply, ensure_ascii=False) + "\n").encode())


if __name__ == "__main__":
    main()
