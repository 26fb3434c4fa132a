"""Kernel confinement of the tool sandbox's worker (loaded by ``_worker.py`` by path, Linux only).

Each function applies one layer and returns a label saying what it applied,
or ``None`` when this kernel, architecture or container does not permit it;
the worker reports the labels (``Sandbox.isolation``) and the layers that
did apply still hold. Layers, in the order the worker applies them:

* :func:`enter_namespaces`: new user, PID, network and mount namespaces
  (``unshare``); the worker then runs as process 2 of its own PID namespace
  (:func:`fork_into_pid_namespace`), with a fresh ``/proc`` that shows only
  the sandbox's processes. Other processes have no PID it could name, and
  killing the namespace's first process ends every process in it.
* :func:`restrict_filesystem`: Landlock (Linux >= 5.13): reading only under
  the given roots; no file may be written, created, removed, renamed or
  truncated anywhere; no TCP (ABI >= 4); no signals to, and no abstract Unix
  sockets of, processes outside the sandbox (ABI >= 6).
* :func:`install_seccomp`: a seccomp filter that refuses (``EPERM``) every
  system call a tool has no business making: new processes (threads are
  allowed: they die with the worker), ``exec``, signals and ``prlimit`` to other processes, ``pidfd_*``,
  ``ptrace``, sockets, namespaces and mounts, and every call that writes to
  the file system (opens for writing, ``mkfifo``/``mknod``, ``setxattr``,
  links, renames, ``chmod``, ...).

Nothing here can be undone by the confined process: namespaces, Landlock
domains and seccomp filters only ever narrow.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import signal
import struct
import sys

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_SET_DUMPABLE = 1, 38, 4


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


# -- namespaces --------------------------------------------------------------------------


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def enter_namespaces() -> tuple[list[str], bool]:
    """Move into new namespaces; returns (labels, whether a PID namespace was made).

    A user namespace comes first where the kernel allows one: it grants the
    capabilities the other namespaces need without any privilege outside,
    and takes the privileges a root caller had (raising hard limits,
    touching other users' resources) away from the worker.
    """
    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    attempts = (
        (
            _CLONE_NEWUSER | _CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWNS,
            ["userns", "pidns", "netns"],
        ),
        (_CLONE_NEWPID | _CLONE_NEWNET | _CLONE_NEWNS, ["pidns", "netns"]),
        (_CLONE_NEWUSER | _CLONE_NEWNET, ["userns", "netns"]),
        (_CLONE_NEWNET, ["netns"]),
    )
    for flags, labels in attempts:
        if libc.unshare(flags) != 0:
            continue
        if flags & _CLONE_NEWUSER:
            # Our own ids, mapped to themselves: file permissions stay as they were.
            try:
                _write("/proc/self/setgroups", "deny")
                _write("/proc/self/uid_map", f"{uid} {uid} 1")
                _write("/proc/self/gid_map", f"{gid} {gid} 1")
            except OSError:
                pass
        return labels, bool(flags & _CLONE_NEWPID)
    return [], False


def _mount_private_proc(libc: ctypes.CDLL) -> bool:
    """Give this mount namespace a /proc of the new PID namespace (True when it worked)."""
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    if libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0:
        return True
    # A container that masks parts of /proc refuses a fresh one: hide it instead.
    return libc.mount(b"tmpfs", b"/proc", b"tmpfs", flags, b"size=4k,mode=555") == 0


def _exit_like(status: int) -> None:
    """Leave this process the way the child whose wait status is ``status`` left.

    Process 1 of a namespace cannot signal itself, so it exits with 128 + the
    signal's number; the launcher turns that back into the signal.
    """
    number = 0
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
    elif os.WIFEXITED(status) and 128 < os.WEXITSTATUS(status) < 128 + 65:
        number = os.WEXITSTATUS(status) - 128
    if number:
        try:
            signal.signal(number, signal.SIG_DFL)
            os.kill(os.getpid(), number)
        except (OSError, ValueError):
            pass
        os._exit(128 + number)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _let_go(fds: tuple[int, ...]) -> None:
    # The protocol's pipes must close when the worker dies, so nobody else may hold them.
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def fork_into_pid_namespace(labels: list[str], keep: tuple[int, ...]) -> None:
    """Continue as process 2 of the new PID namespace; returns only in that process.

    The caller (outside the namespace) and process 1 (the namespace's
    reaper) close ``keep`` (the protocol's pipes), wait, and then exit the way the worker did, so a worker killed by
    ``SIGXCPU`` reads as killed by ``SIGXCPU`` to the sandbox. Process 1
    dies with its parent (``PR_SET_PDEATHSIG``) and takes the namespace with it.
    """
    libc = _libc()
    reaper = os.fork()
    if reaper:
        _let_go(keep)
        _, status = os.waitpid(reaper, 0)
        _exit_like(status)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if _mount_private_proc(libc):
        labels.append("private-proc")
    worker = os.fork()
    if worker:
        _let_go(keep)
        while True:  # as process 1, reap every orphan until the worker itself ends
            pid, status = os.wait()
            if pid == worker:
                _exit_like(status)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


# -- Landlock ----------------------------------------------------------------------------

_LANDLOCK_CREATE_RULESET, _LANDLOCK_ADD_RULE, _LANDLOCK_RESTRICT_SELF = 444, 445, 446
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ALL_V1 = (1 << 13) - 1  # execute .. make_sym
_FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    try:
        version = _libc().syscall(_LANDLOCK_CREATE_RULESET, None, 0, 1)
    except (OSError, AttributeError):
        return 0
    return max(0, int(version))


def restrict_filesystem(read_roots: list[str]) -> str | None:
    """Landlock: read only under ``read_roots`` (files or folders), write nowhere."""
    if platform.system() != "Linux":
        return None
    abi = landlock_abi()
    if abi < 1:
        return None
    libc = _libc()
    handled = _FS_ALL_V1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    attr = struct.pack("<Q", handled)
    if abi >= 4:
        attr += struct.pack("<Q", _NET_BIND_TCP | _NET_CONNECT_TCP)
    if abi >= 6:
        attr += struct.pack("<Q", _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL)
    buffer = ctypes.create_string_buffer(attr, len(attr))
    ruleset = libc.syscall(_LANDLOCK_CREATE_RULESET, buffer, len(attr), 0)
    if ruleset < 0:
        return None
    try:
        for root in read_roots:
            try:
                fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                is_dir = os.path.isdir(root)
                access = _FS_READ_FILE | _FS_EXECUTE | (_FS_READ_DIR if is_dir else 0)
                rule = ctypes.create_string_buffer(struct.pack("<Qi", access, fd), 12)
                libc.syscall(_LANDLOCK_ADD_RULE, ruleset, 1, rule, 0)
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            return None
        if libc.syscall(_LANDLOCK_RESTRICT_SELF, ruleset, 0) != 0:
            return None
    finally:
        os.close(ruleset)
    return f"landlock-v{abi}"


# -- seccomp -----------------------------------------------------------------------------

# System call numbers: x86_64 from asm/unistd_64.h, aarch64 from asm-generic/unistd.h.
# Calls added since Linux 5.1 share one number on every architecture (_COMMON).
_COMMON = {
    "pidfd_send_signal": 424, "io_uring_setup": 425, "io_uring_enter": 426,
    "io_uring_register": 427, "open_tree": 428, "move_mount": 429, "fsopen": 430,
    "fsconfig": 431, "fsmount": 432, "fspick": 433, "pidfd_open": 434, "clone3": 435,
    "openat2": 437, "pidfd_getfd": 438, "process_madvise": 440, "mount_setattr": 442,
    "quotactl_fd": 443, "memfd_secret": 447, "process_mrelease": 448, "fchmodat2": 452,
    "setxattrat": 463, "removexattrat": 466, "open_tree_attr": 467, "file_setattr": 469,
}  # fmt: skip
_X86_64 = {
    "fork": 57, "vfork": 58, "clone": 56, "execve": 59, "execveat": 322, "kill": 62,
    "tkill": 200, "tgkill": 234, "rt_sigqueueinfo": 129, "rt_tgsigqueueinfo": 297,
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312,
    "prlimit64": 302, "setpriority": 141, "sched_setaffinity": 203,
    "sched_setscheduler": 144, "sched_setparam": 142, "sched_setattr": 314, "ioprio_set": 251,
    "migrate_pages": 256, "move_pages": 279, "setsid": 112, "setpgid": 109, "unshare": 272,
    "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "open": 2,
    "openat": 257, "creat": 85, "name_to_handle_at": 303, "open_by_handle_at": 304,
    "mknod": 133, "mknodat": 259, "mkdir": 83, "mkdirat": 258, "rmdir": 84, "unlink": 87,
    "unlinkat": 263, "rename": 82, "renameat": 264, "renameat2": 316, "link": 86,
    "linkat": 265, "symlink": 88, "symlinkat": 266, "chmod": 90, "fchmod": 91,
    "fchmodat": 268, "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260,
    "truncate": 76, "ftruncate": 77, "fallocate": 285, "utime": 132, "utimes": 235,
    "futimesat": 261, "utimensat": 280, "setxattr": 188, "lsetxattr": 189, "fsetxattr": 190,
    "removexattr": 197, "lremovexattr": 198, "fremovexattr": 199, "acct": 163, "swapon": 167,
    "swapoff": 168, "quotactl": 179, "socket": 41, "socketpair": 53, "bpf": 321,
    "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248,
    "request_key": 249, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "kexec_load": 246, "kexec_file_load": 320, "reboot": 169, "sethostname": 170,
    "setdomainname": 171, "settimeofday": 164, "clock_settime": 227, "clock_adjtime": 305,
    "adjtimex": 159, "syslog": 103, "iopl": 172, "ioperm": 173, "memfd_create": 319,
    "fanotify_init": 300, "fanotify_mark": 301, "setuid": 105, "setgid": 106,
    "setreuid": 113, "setregid": 114, "setresuid": 117, "setresgid": 119, "setgroups": 116,
    "setfsuid": 122, "setfsgid": 123, "capset": 126,
}  # fmt: skip
_AARCH64 = {
    "clone": 220, "execve": 221, "execveat": 281, "kill": 129, "tkill": 130, "tgkill": 131,
    "rt_sigqueueinfo": 138, "rt_tgsigqueueinfo": 240, "ptrace": 117, "process_vm_readv": 270,
    "process_vm_writev": 271, "kcmp": 272, "prlimit64": 261, "setpriority": 140,
    "sched_setaffinity": 122, "sched_setscheduler": 119, "sched_setparam": 118,
    "sched_setattr": 274, "ioprio_set": 30, "migrate_pages": 238, "move_pages": 239,
    "setsid": 157, "setpgid": 154, "unshare": 97, "setns": 268, "mount": 40, "umount2": 39,
    "pivot_root": 41, "chroot": 51, "openat": 56, "name_to_handle_at": 264,
    "open_by_handle_at": 265, "mknodat": 33, "mkdirat": 34, "unlinkat": 35, "renameat": 38,
    "renameat2": 276, "linkat": 37, "symlinkat": 36, "fchmod": 52, "fchmodat": 53,
    "fchown": 55, "fchownat": 54, "truncate": 45, "ftruncate": 46, "fallocate": 47,
    "utimensat": 88, "setxattr": 5, "lsetxattr": 6, "fsetxattr": 7, "removexattr": 14,
    "lremovexattr": 15, "fremovexattr": 16, "acct": 89, "swapon": 224, "swapoff": 225,
    "quotactl": 60, "socket": 198, "socketpair": 199, "bpf": 280, "perf_event_open": 241,
    "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
    "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
    "kexec_file_load": 294, "reboot": 142, "sethostname": 161, "setdomainname": 162,
    "settimeofday": 170, "clock_settime": 112, "clock_adjtime": 266, "adjtimex": 171,
    "syslog": 116, "memfd_create": 279, "fanotify_init": 262, "fanotify_mark": 263,
    "setuid": 146, "setgid": 144, "setreuid": 145, "setregid": 143, "setresuid": 147,
    "setresgid": 149, "setgroups": 159, "setfsuid": 151, "setfsgid": 152, "capset": 91,
}  # fmt: skip
_ARCHES = {"x86_64": (0xC000003E, _X86_64, 317), "aarch64": (0xC00000B7, _AARCH64, 277)}

#: Refused outright (EPERM).
_DENIED = (
    # new processes (clone is judged below: threads only), exec
    "fork", "vfork", "execve", "execveat",
    # other processes
    "tkill", "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "setpriority", "sched_setaffinity", "sched_setscheduler",
    "sched_setparam", "sched_setattr", "ioprio_set", "migrate_pages", "move_pages",
    "process_madvise", "process_mrelease", "setsid", "setpgid",
    # namespaces and mounts
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "open_tree",
    "open_tree_attr", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    # writes to the file system
    "creat", "name_to_handle_at", "open_by_handle_at", "mknod", "mknodat", "mkdir", "mkdirat",
    "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link", "linkat",
    "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown",
    "lchown", "fchownat", "truncate", "ftruncate", "fallocate", "utime", "utimes", "futimesat",
    "utimensat", "setxattr", "lsetxattr", "fsetxattr", "setxattrat", "removexattr",
    "lremovexattr", "fremovexattr", "removexattrat", "file_setattr", "acct", "swapon",
    "swapoff", "quotactl", "quotactl_fd", "memfd_create", "memfd_secret",
    # network
    "socket", "socketpair",
    # the kernel and the machine
    "bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter",
    "io_uring_register", "keyctl", "add_key", "request_key", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "sethostname", "setdomainname",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "iopl", "ioperm",
    "fanotify_init", "fanotify_mark", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "setfsuid", "setfsgid", "capset",
)  # fmt: skip
#: Refused with ENOSYS, so that the C library falls back to a call the filter judges.
_UNSUPPORTED = ("clone3", "openat2")
#: Allowed only when the process-id argument (0-based index) is this process's own id
#: (or 0, where 0 means "this process" rather than "my process group").
_SELF_ONLY = {
    "kill": (0, False),
    "tgkill": (0, False),
    "rt_sigqueueinfo": (0, False),
    "rt_tgsigqueueinfo": (0, False),
    "prlimit64": (0, True),
}
#: Allowed only when the flags argument asks for no writing.
_OPEN_FLAGS = {"open": 1, "openat": 2}
#: clone makes threads (CLONE_THREAD set) or processes; only threads pass.
_CLONE_THREAD = 0x00010000
_WRITE_OPEN_FLAGS = (
    os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_TMPFILE", 0)
)

_LD_W_ABS, _JEQ, _JSET, _JGE, _RET = 0x20, 0x15, 0x45, 0x35, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_SYSCALL_BIT = 0x40000000


def _instruction(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k & 0xFFFFFFFF)


def _argument_offset(index: int) -> int:
    # struct seccomp_data: int nr; u32 arch; u64 ip; u64 args[6]. Low half first (little endian).
    return 16 + 8 * index


def seccomp_program(machine: str, own_pid: int) -> bytes | None:
    """The BPF filter for ``machine`` (``platform.machine()``), or None when unknown."""
    if machine not in _ARCHES or sys.byteorder != "little":
        return None
    arch, table, _ = _ARCHES[machine]
    numbers = {**table, **_COMMON}
    deny = _RET_ERRNO | errno.EPERM
    code = [
        _instruction(_LD_W_ABS, 0, 0, 4),  # arch
        _instruction(_JEQ, 1, 0, arch),
        _instruction(_RET, 0, 0, deny),
        _instruction(_LD_W_ABS, 0, 0, 0),  # syscall number
    ]
    if machine == "x86_64":  # the x32 ABI: another numbering, refused as a whole
        code += [_instruction(_JGE, 0, 1, _X32_SYSCALL_BIT), _instruction(_RET, 0, 0, deny)]
    for name in _DENIED:
        if name in numbers:
            code += [_instruction(_JEQ, 0, 1, numbers[name]), _instruction(_RET, 0, 0, deny)]
    for name in _UNSUPPORTED:
        code += [
            _instruction(_JEQ, 0, 1, numbers[name]),
            _instruction(_RET, 0, 0, _RET_ERRNO | errno.ENOSYS),
        ]
    for name, (index, zero_is_self) in _SELF_ONLY.items():
        code += [
            _instruction(_JEQ, 0, 5, numbers[name]),
            _instruction(_LD_W_ABS, 0, 0, _argument_offset(index)),
            _instruction(_JEQ, 2, 0, 0 if zero_is_self else own_pid),
            _instruction(_JEQ, 1, 0, own_pid),
            _instruction(_RET, 0, 0, deny),
            _instruction(_RET, 0, 0, _RET_ALLOW),
        ]
    for name, index in _OPEN_FLAGS.items():
        if name in numbers:
            code += [
                _instruction(_JEQ, 0, 4, numbers[name]),
                _instruction(_LD_W_ABS, 0, 0, _argument_offset(index)),
                _instruction(_JSET, 0, 1, _WRITE_OPEN_FLAGS),
                _instruction(_RET, 0, 0, deny),
                _instruction(_RET, 0, 0, _RET_ALLOW),
            ]
    code += [
        _instruction(_JEQ, 0, 4, numbers["clone"]),
        _instruction(_LD_W_ABS, 0, 0, _argument_offset(0)),
        _instruction(_JSET, 1, 0, _CLONE_THREAD),
        _instruction(_RET, 0, 0, deny),
        _instruction(_RET, 0, 0, _RET_ALLOW),
    ]
    code.append(_instruction(_RET, 0, 0, _RET_ALLOW))
    return b"".join(code)


def install_seccomp() -> str | None:
    """Install the filter on every thread of this process (see the module docstring)."""
    machine = platform.machine()
    program = seccomp_program(machine, os.getpid()) if platform.system() == "Linux" else None
    if program is None:
        return None
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return None
    filters = ctypes.create_string_buffer(program, len(program))

    class _Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = _Program(len(program) // 8, ctypes.cast(filters, ctypes.c_void_p))
    set_mode_filter, tsync = 1, 1
    if libc.syscall(_ARCHES[machine][2], set_mode_filter, tsync, ctypes.byref(fprog)) != 0:
        return None
    return "seccomp"
