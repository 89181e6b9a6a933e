"""What the child does between fork and exec: join the cgroup, set limits, confine itself.

This runs as ``preexec_fn`` in a fork of a threaded worker, where taking a lock another thread
held at fork time would hang forever. So everything is prepared in the parent (open
descriptors, compiled filters, computed flags) and the child only makes syscalls. If a step
fails the child writes why to its stderr and exits 126 without running the command: a
sandbox that cannot be set up never degrades into no sandbox.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from dataclasses import dataclass, field
from pathlib import Path

from autodo.policy import _landlock
from autodo.policy._seccomp import Program

SETUP_FAILED = 126

_PR_SET_PDEATHSIG = 1
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# NOROOT, NO_SETUID_FIXUP and NO_CAP_AMBIENT_RAISE set, KEEP_CAPS cleared, all four locked: uid 0
# gets no capabilities back on exec.
_SECUREBITS_LOCKED_DOWN = 0b11101111
_CAPABILITY_VERSION_3 = 0x20080522
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_mount = _libc.mount
_mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


@dataclass(frozen=True)
class ReadOnlyBind:
    """Bind ``path`` read-only over itself in a private mount namespace (``.git`` in the workspace)."""

    path: bytes
    keep_flags: int  # nosuid/nodev/noexec/atime flags the original mount has; a remount must keep them
    new_user_namespace: bool  # not root: a user namespace is what allows the mount
    uid: int
    gid: int


@dataclass
class ChildSetup:
    """The steps, prepared in the parent; calling it performs them in the child."""

    rlimits: list[tuple[int, int, int]] = field(default_factory=list)
    cgroup_procs_fd: int | None = None
    read_only_bind: ReadOnlyBind | None = None
    ruleset_fd: int | None = None
    seccomp: Program | None = None
    drop_capabilities: bool = False
    last_capability: int = 40
    _step: str = "start"

    def __call__(self) -> None:
        try:
            self._run()
        except BaseException as error:
            message = f"autodo sandbox: could not confine the command ({self._step}: {error}); nothing ran\n"
            os.write(2, message.encode(errors="replace"))
            os._exit(SETUP_FAILED)

    def _run(self) -> None:
        self._step = "parent-death signal"
        _call(_prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0))
        if self.cgroup_procs_fd is not None:
            self._step = "join the pids cgroup"
            os.write(self.cgroup_procs_fd, str(os.getpid()).encode())
            os.close(self.cgroup_procs_fd)
        self._step = "resource limits"
        for which, soft, hard in self.rlimits:
            resource.setrlimit(which, (soft, hard))
        if self.read_only_bind is not None:
            self._step = "read-only .git mount"
            _bind_read_only(self.read_only_bind)
        self._step = "no_new_privs"
        _call(_prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        if self.ruleset_fd is not None:
            self._step = "landlock"
            _landlock.restrict_self(self.ruleset_fd)
            os.close(self.ruleset_fd)
        if self.drop_capabilities:
            self._step = "drop capabilities"
            _drop_capabilities(self.last_capability)
        if self.seccomp is not None:
            self._step = "seccomp"
            self.seccomp.load()


def _bind_read_only(bind: ReadOnlyBind) -> None:
    if bind.new_user_namespace:
        _call(_libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS))
        _write_file(b"/proc/self/setgroups", b"deny")
        _write_file(b"/proc/self/uid_map", f"{bind.uid} {bind.uid} 1".encode())
        _write_file(b"/proc/self/gid_map", f"{bind.gid} {bind.gid} 1".encode())
    else:
        _call(_libc.unshare(_CLONE_NEWNS))
    # Private first: otherwise the bind would propagate back to the host's mount table.
    _call(_mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None))
    _call(_mount(bind.path, bind.path, None, _MS_BIND | _MS_REC, None))
    _call(_mount(None, bind.path, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY | bind.keep_flags, None))


def _drop_capabilities(last_capability: int) -> None:
    """Leave no capability now or after exec, even for uid 0."""
    for capability in range(last_capability + 1):
        _call(_prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0))
    _call(_prctl(_PR_SET_SECUREBITS, _SECUREBITS_LOCKED_DOWN, 0, 0, 0))
    _call(_prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0))
    header = _CapHeader(_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _call(_libc.capset(ctypes.byref(header), ctypes.byref(data)))


def _write_file(path: bytes, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _call(result: int) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def mount_flags_to_keep(path: Path) -> int:
    """The flags of the mount holding ``path`` that a read-only remount inside a user namespace must repeat."""
    flags = os.statvfs(path).f_flag
    # statvfs's ST_* bits equal the MS_* bits for these five; relatime is the exception.
    keep = flags & (os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC | os.ST_NOATIME | os.ST_NODIRATIME)
    if flags & os.ST_RELATIME:
        keep |= 1 << 21  # MS_RELATIME
    return keep
