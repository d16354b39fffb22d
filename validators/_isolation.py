"""Operating-system isolation for sandboxed processes (Linux; stdlib and ctypes only).

Each helper is best effort and says what it achieved, so the sandbox can
report the isolation it really got: user/network/PID namespaces via
``unshare``, a Landlock filesystem/network/signal ruleset, resource limits,
and dropping root to ``nobody``.  None of these can be undone by the process
afterwards.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "Limits",
    "apply_rlimits",
    "drop_root",
    "landlock",
    "landlock_abi",
    "set_dumpable",
    "set_no_new_privs",
    "set_parent_death_signal",
    "unshare_namespaces",
]

NOBODY = 65534

_CLONE_NEWNS = 0x00020000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38

# Landlock: the syscall numbers are shared by every architecture (added after 5.x unification).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

_FS_EXECUTE = 1 << 0
_FS_WRITE_FILE = 1 << 1
_FS_READ_FILE = 1 << 2
_FS_READ_DIR = 1 << 3
_FS_ALL_V1 = (1 << 13) - 1
_FS_REFER = 1 << 13  # ABI 2
_FS_TRUNCATE = 1 << 14  # ABI 3
_FS_IOCTL_DEV = 1 << 15  # ABI 5
_NET_ALL = (1 << 0) | (1 << 1)  # bind/connect TCP, ABI 4
_SCOPE_ALL = (1 << 0) | (1 << 1)  # abstract unix sockets, signals; ABI 6


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource caps for one sandboxed process."""

    cpu_s: int
    memory_bytes: int
    file_bytes: int
    #: RLIMIT_NPROC; None leaves it alone.
    processes: int | None
    open_files: int = 64


_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    return _libc


def _prctl(option: int, value: int) -> bool:
    prctl = _lib().prctl
    return int(prctl(ctypes.c_int(option), ctypes.c_ulong(value), ctypes.c_ulong(0),
                     ctypes.c_ulong(0), ctypes.c_ulong(0))) == 0  # fmt: skip


def set_no_new_privs() -> bool:
    return _prctl(_PR_SET_NO_NEW_PRIVS, 1)


def set_dumpable(dumpable: bool) -> bool:
    """A non-dumpable process cannot be ptraced or have its /proc/<pid>/mem opened by its peers."""
    return _prctl(_PR_SET_DUMPABLE, 1 if dumpable else 0)


def set_parent_death_signal(sig: int = signal.SIGKILL) -> bool:
    return _prctl(_PR_SET_PDEATHSIG, sig)


def unshare_namespaces(network: bool = True, pid: bool = True) -> dict[str, bool]:
    """New user, PID, IPC and network namespaces, as many as the kernel allows.

    Returns which namespaces the process got.  PID namespaces apply to the
    children forked afterwards, not to the caller.
    """
    # After a PID unshare the caller cannot start threads, so callers that exec (not fork) skip it.
    base = (_CLONE_NEWPID if pid else 0) | _CLONE_NEWIPC | (_CLONE_NEWNET if network else 0)
    # A user namespace strips root of its capabilities outside it; plain root can also do without one.
    attempts = [_CLONE_NEWUSER | base, _CLONE_NEWUSER | _CLONE_NEWNET]
    if os.geteuid() == 0:
        attempts.append(base)
    unshare = _lib().unshare
    for flags in attempts:
        if int(unshare(ctypes.c_int(flags))) == 0:
            return {
                "user": bool(flags & _CLONE_NEWUSER),
                "pid": bool(flags & _CLONE_NEWPID),
                "net": bool(flags & _CLONE_NEWNET),
            }
    return {"user": False, "pid": False, "net": False}


def drop_root(uid: int = NOBODY, gid: int = NOBODY) -> bool:
    """Become ``nobody`` when running as root; a no-op (False) otherwise."""
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    return True


def apply_rlimits(limits: Limits) -> None:
    cpu = max(1, limits.cpu_s)
    caps = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at the soft cap, SIGKILL at the hard one
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
    ]
    if limits.processes is not None:
        caps.append((resource.RLIMIT_NPROC, limits.processes, limits.processes))
    for which, soft, hard in caps:
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))
    # A write past RLIMIT_FSIZE then fails with EFBIG instead of killing the process unannounced.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is unavailable."""
    if not sys.platform.startswith("linux"):
        return 0
    version = int(_lib().syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                                 ctypes.c_uint32(_LANDLOCK_CREATE_RULESET_VERSION)))  # fmt: skip
    return max(0, version)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _handled_fs(abi: int) -> int:
    handled = _FS_ALL_V1
    if abi >= 2:
        handled |= _FS_REFER
    if abi >= 3:
        handled |= _FS_TRUNCATE
    if abi >= 5:
        handled |= _FS_IOCTL_DEV
    return handled


def landlock(read_only: Iterable[str], read_write: Iterable[str], executable: Iterable[str] = ()) -> int:
    """Restrict this process and its children to the given paths; returns the ABI used (0 = none).

    Paths that do not exist are skipped.  Every other filesystem access is
    denied, TCP bind/connect is denied (ABI >= 4), and signals and abstract
    unix sockets cannot reach processes outside the domain (ABI >= 6).
    """
    abi = landlock_abi()
    if abi <= 0:
        return 0
    handled = _handled_fs(abi)
    attr = _RulesetAttr(handled, _NET_ALL if abi >= 4 else 0, _SCOPE_ALL if abi >= 6 else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    lib = _lib()
    ruleset = int(lib.syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                              ctypes.c_uint32(0)))  # fmt: skip
    if ruleset < 0:
        return 0
    try:
        read = _FS_READ_FILE | _FS_READ_DIR
        for paths, access in (
            (read_only, read),
            (executable, read | _FS_EXECUTE),
            (read_write, handled & ~_FS_EXECUTE),
        ):
            for path in paths:
                _add_path_rule(lib, ruleset, path, access, handled)
        if not set_no_new_privs():
            return 0
        if int(lib.syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0))) != 0:
            return 0
    finally:
        os.close(ruleset)
    return abi


def _add_path_rule(lib: ctypes.CDLL, ruleset: int, path: str, access: int, handled: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return
    try:
        if not os.path.isdir(path):
            # Directory-only rights are refused on a file rule.
            access &= _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
        rule = _PathBeneath(access & handled, fd)
        lib.syscall(_SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_LANDLOCK_RULE_PATH_BENEATH),
                    ctypes.byref(rule), ctypes.c_uint32(0))  # fmt: skip
    finally:
        os.close(fd)
