"""The tool sandbox's worker process (started by :class:`envs.tooluse.sandbox.Sandbox`).

Run as a script, never imported by the environments. It reads one JSON request
per line on its standard input and writes one JSON reply per line on its
standard output. Before it accepts requests it confines itself, in this order
(``_confine.py`` holds the kernel layers; each is skipped, and left out of the
reported ``isolation``, where the kernel does not permit it):

1. new user, PID, network and mount namespaces; the worker continues as
   process 2 of its PID namespace, with a ``/proc`` of its own;
2. resource limits: address space (memory), no file may grow, no core files;
   a CPU-time limit is set afresh before every call;
3. the toolsets named in the configuration are imported (heavy imports happen
   here, before the file system is narrowed);
4. Landlock: reading only the Python installation, the system libraries, the
   packages imported so far and the toolsets' data paths; writing nowhere;
5. a seccomp filter refusing new processes (threads may run), exec, signals and
   ``prlimit`` to other processes, ``pidfd_*``, sockets, mounts and every
   file-system write (``mkfifo``, ``mknod``, ``setxattr`` ...);
6. an audit hook (PEP 578) refusing the same operations at the Python level,
   with the same read allow-list, for systems where 4 and 5 are missing.

The parent enforces the wall-clock limit: it kills the worker's process group
when a reply is late and starts a fresh worker. A request is::

    {"id": 7, "factory": "module:function", "kwargs": {...}, "name": "add", "arguments": {...}}

and a reply is ``{"id": 7, "ok": bool, "content": str, "kind": str | None, "restart": bool}``,
ASCII-only JSON (any text, lone surrogates included, travels as escapes).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import resource
import signal
import sys
import sysconfig
from typing import Any

# The script's own folder must not shadow standard modules (it is sys.path[0] when run as a script).
_HERE = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or ".") == _HERE:
    del sys.path[0]

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
    "os.chflags",
    "os.utime",
    "os.setxattr",
    "os.removexattr",
    "os.chroot",
    "os.putenv",
    "os.unsetenv",
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
    "signal.pthread_kill",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys.addaudithook",
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_READABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


class SandboxViolation(PermissionError):
    """What the audit hook raises for a refused operation."""


def _make_audit_hook(read_roots: tuple[str, ...], own_pid: int) -> Any:
    """The hook, closed over the read allow-list (folders end with a separator)."""
    folders = tuple(root for root in read_roots if root.endswith(os.sep))
    files = frozenset(root for root in read_roots if not root.endswith(os.sep))

    def readable(path: Any) -> bool:
        if isinstance(path, int):  # an open descriptor: opening it was judged already
            return True
        try:
            name = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return name in files or (name + os.sep).startswith(folders)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            mode = args[1] if len(args) > 1 else None
            flags = args[2] if len(args) > 2 else 0
            writes = isinstance(mode, str) and any(c in mode for c in "wax+")
            if writes or (isinstance(flags, int) and flags & _WRITE_FLAGS):
                raise SandboxViolation(
                    f"writing files is not allowed in the tool sandbox ({args[0]!r})"
                )
            if args and args[0] is not None and not readable(args[0]):
                raise SandboxViolation(f"the tool sandbox does not allow reading {args[0]!r}")
            return
        if event in ("os.listdir", "os.scandir"):
            if args and args[0] is not None and not readable(args[0]):
                raise SandboxViolation(f"the tool sandbox does not allow listing {args[0]!r}")
            return
        if event == "resource.setrlimit":
            if args[0] != resource.RLIMIT_CPU:
                raise SandboxViolation("the tool sandbox does not allow changing resource limits")
            return
        if event == "resource.prlimit":
            if args[0] not in (0, own_pid) or (
                args[2] is not None and args[1] != resource.RLIMIT_CPU
            ):
                raise SandboxViolation("the tool sandbox does not allow changing resource limits")
            return
        if event == "sqlite3.connect":
            if args and args[0] not in (":memory:", b":memory:"):
                raise SandboxViolation("the tool sandbox does not allow database files")
            return
        if event.startswith(_DENIED_PREFIXES):
            raise SandboxViolation(f"the tool sandbox does not allow {event}")

    return hook


def _load_confine() -> Any:
    """``_confine.py`` (Linux only), loaded once by path: importing it as
    ``envs.tooluse._confine`` would run the whole envs package before the namespaces."""
    if not sys.platform.startswith("linux"):
        return None
    module = sys.modules.get("_mentorgym_confine")
    if module is None:
        spec = importlib.util.spec_from_file_location("_mentorgym_confine", f"{_HERE}/_confine.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["_mentorgym_confine"] = module
    return module


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


def _disarm_timers() -> None:
    # A tool's alarm must not fire between calls (its handler could read our requests).
    signal.alarm(0)
    for timer in (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF):
        signal.setitimer(timer, 0)


def _read_roots(config: dict[str, Any]) -> tuple[str, ...]:
    """What the tools may read: Python, system libraries, the imported packages, their data.

    Folders end with ``os.sep``. A package counts when a module of it is
    imported by now (the preloaded toolsets and what they import): its
    top-level folder becomes readable, and the rest of the folder it lies in (a
    project's configs, runs, secrets) stays unreadable.
    """
    folders: set[str] = set()
    files: set[str] = set(_READABLE_DEVICES)
    paths = sysconfig.get_paths()
    python_roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    python_roots |= {sys.prefix, sys.exec_prefix}
    for root in python_roots:
        folders.add(os.path.realpath(root))
    for root in ("/lib", "/lib32", "/lib64", "/usr/lib", "/usr/lib32", "/usr/lib64"):
        if os.path.isdir(root):
            folders.add(os.path.realpath(root))  # shared libraries an extension may load late
    files.add("/etc/ld.so.cache")
    covered = tuple(folder + os.sep for folder in folders)
    for name, module in list(sys.modules.items()):
        origin = getattr(module, "__file__", None)
        if not isinstance(origin, str) or not isinstance(name, str):
            continue
        origin = os.path.realpath(origin)
        if origin.startswith(covered) or not os.path.exists(origin):
            continue
        # The top-level package's folder, found from the module's dotted name (never by
        # sys.path, which may hold "/" or a home folder).
        levels = name.count(".") + (os.path.basename(origin).startswith("__init__.") - 1)
        if levels < 0:
            files.add(origin)  # a top-level module: that file only
            continue
        folder = os.path.dirname(origin)
        for _ in range(levels):
            folder = os.path.dirname(folder)
        folders.add(folder)
    for _, kwargs in config.get("preload", []):
        for value in (kwargs or {}).values():
            if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
                target = os.path.realpath(value)
                (folders if os.path.isdir(target) else files).add(target)
    return tuple(sorted(folder.rstrip(os.sep) + os.sep for folder in folders)) + tuple(
        sorted(files)
    )


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
    except PermissionError as error:  # refused by the kernel (Landlock, seccomp)
        return {"ok": False, "kind": "forbidden", "content": f"not allowed: {error}"[:500]}
    except Exception as error:
        message = str(error)[:500] or type(error).__name__
        return {"ok": False, "kind": "tool_error", "content": message}
    finally:
        _disarm_timers()
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


def _confine_process(config: dict[str, Any], requests_fd: int, replies_fd: int) -> list[str]:
    """Layers 1 and 2 (see the module docstring); returns the isolation labels applied."""
    isolation: list[str] = []
    confine = _load_confine()
    if confine is not None and config.get("namespaces", True):
        labels, pid_namespace = confine.enter_namespaces()
        isolation += labels
        if pid_namespace:
            confine.fork_into_pid_namespace(isolation, keep=(requests_fd, replies_fd))
    isolation += _set_limits(int(config["memory_mb"]))
    return isolation


def main() -> None:
    """Confine this process, then serve requests until standard input closes."""
    config = json.loads(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # no process of the sandbox leaves a core
    requests_fd, replies_fd = os.dup(0), os.dup(1)
    # Tools must not write into the protocol stream: stdin/stdout/stderr go nowhere.
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (lives as long as the process)
    requests = os.fdopen(requests_fd, "rb", buffering=0)
    replies = os.fdopen(replies_fd, "wb", buffering=0)

    isolation = _confine_process(config, requests_fd, replies_fd)
    sys.dont_write_bytecode = True
    sys.set_int_max_str_digits(int(config.get("max_int_digits", 4300)))
    startup_error = None
    for factory, kwargs in config.get("preload", []):
        try:
            _toolset(factory, kwargs)
        except Exception as error:
            startup_error = f"cannot load toolset {factory}: {type(error).__name__}: {error}"
            break
    read_roots = _read_roots(config)
    confine = _load_confine()
    if confine is not None:
        for layer in (confine.restrict_filesystem(list(read_roots)), confine.install_seccomp()):
            if layer:
                isolation.append(layer)
    sys.addaudithook(_make_audit_hook(read_roots, os.getpid()))
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
            request_id = None
            try:
                request = json.loads(line)
                request_id = request.get("id")
                reply = _run(request, config)
            except MemoryError:
                reply = {"ok": False, "kind": "memory", "restart": True, "content": "out of memory"}
            except Exception as error:  # a malformed request is the parent's bug; say so
                reply = {"ok": False, "kind": "sandbox", "content": f"bad request: {error}"}
            reply["id"] = request_id
            replies.write((json.dumps(reply) + "\n").encode("ascii"))


if __name__ == "__main__":
    main()
