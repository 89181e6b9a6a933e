"""Landlock through ctypes: build a ruleset in the parent, enforce it in the child before exec.

Landlock is three syscalls with the same numbers on every architecture, so ctypes over libc is
all it takes. The ruleset is built in the worker (the parent), where opening paths and
allocating is safe; the child only calls ``landlock_restrict_self`` on the ready file descriptor.

Rights are hierarchical: a right granted on a directory holds for everything beneath it, and no
rule can take a right away again. That is why the caller grants ``/etc`` file by file (see
``_system``) and why ``.git`` inside the workspace needs a read-only bind mount on top.
"""

from __future__ import annotations

import ctypes
import os
import stat
from dataclasses import dataclass
from pathlib import Path

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

_NET_BIND_TCP = 1 << 0  # ABI 4
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
_SCOPE_SIGNAL = 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the only rights a rule on a file may carry
_ALL_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1}


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # the kernel declares it packed
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    result = _syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(int(result), 0)


def all_rights(abi: int) -> int:
    """Every filesystem right this ABI knows: the set a ruleset handles, so the rest is denied."""
    return _ALL_BY_ABI.get(abi, (1 << 16) - 1)


@dataclass(frozen=True)
class PathRule:
    """Grant ``rights`` on ``path`` and, for a directory, everything beneath it."""

    path: Path
    rights: int


def build_ruleset(rules: list[PathRule], abi: int) -> int:
    """A ruleset file descriptor that denies everything the rules do not grant; the caller closes it.

    From ABI 4 every TCP bind and connect is denied as well (no rule grants a port), and from
    ABI 6 signals and abstract Unix sockets cannot reach processes outside the sandbox.
    """
    handled = all_rights(abi)
    attr = _RulesetAttr(
        handled_access_fs=handled,
        handled_access_net=(_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    fd = _check(_syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.sizeof(attr), ctypes.c_uint32(0)))
    try:
        for rule in rules:
            add_rule(fd, rule.path, rule.rights & handled)
    except BaseException:
        os.close(fd)
        raise
    return fd


def add_rule(ruleset_fd: int, path: Path, rights: int) -> None:
    """Grant ``rights`` beneath ``path``; a missing path is skipped (not every system has ``/lib32``)."""
    try:
        path_fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(path_fd).st_mode):
            rights &= FILE_RIGHTS
        attr = _PathBeneathAttr(allowed_access=rights, parent_fd=path_fd)
        _check(
            _syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(_RULE_PATH_BENEATH), ctypes.byref(attr), 0)
        )
    finally:
        os.close(path_fd)


def restrict_self(ruleset_fd: int) -> None:
    """Enforce the ruleset on this process and every process it starts (needs no_new_privs first)."""
    _check(_syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset_fd), ctypes.c_uint32(0)))


def _check(result: int) -> int:
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result
