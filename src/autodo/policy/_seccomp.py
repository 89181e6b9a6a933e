"""A seccomp filter through ctypes over libseccomp: compiled to BPF in the parent, loaded in the child.

libseccomp does the hard part (architecture checks, argument comparisons) and exports the
finished program; the child then needs a single ``prctl`` with a buffer made in advance.

What the filter refuses (EPERM), and why:

* ``socket``/``socketpair`` of any family but ``AF_UNIX``, and ``AF_UNIX`` datagram sockets, and
  every ``connect``: no IP traffic at all, and no way to reach a host daemon's Unix socket
  (Landlock does not mediate those). Unix stream socket pairs still work, so pipes between
  processes do.
* ``io_uring_*``: io_uring can open and connect sockets without the syscalls above.
* Kernel-wide levers (modules, kexec, reboot, swap, mounts, namespaces, keyrings, BPF, perf,
  userfaultfd, ``open_by_handle_at``): dropped capabilities refuse most of them already; this
  is the second lock.

Syscalls of a foreign architecture (the i386 ``socketcall`` door on x86_64) kill the process,
which is libseccomp's default.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os

_ACT_ALLOW = 0x7FFF0000
_ACT_ERRNO_EPERM = 0x00050000 | errno.EPERM
_CMP_NE = 1
_CMP_EQ = 4
_CMP_MASKED_EQ = 7
_AF_UNIX = 1
_SOCK_DGRAM = 2
_SOCK_TYPE_MASK = 0xF  # the type without SOCK_NONBLOCK / SOCK_CLOEXEC
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2

_DENIED = (
    "connect", "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open",
    "userfaultfd", "keyctl", "add_key", "request_key", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "mount", "umount2", "pivot_root",
    "open_by_handle_at", "unshare", "setns", "fsopen", "fsmount", "move_mount", "open_tree",
)  # fmt: skip


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


class Program:
    """A compiled filter, kept alive in memory so a forked child can load it without allocating."""

    def __init__(self, bpf: bytes) -> None:
        self._buffer = ctypes.create_string_buffer(bpf, len(bpf))
        self._fprog = _SockFprog(len(bpf) // 8, ctypes.addressof(self._buffer))

    def load(self) -> None:
        """Install the filter on the calling process (after no_new_privs); it is inherited across exec."""
        if _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(self._fprog), 0, 0) != 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))


_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


@functools.cache
def _library() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        return None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_void_p,
    ]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    return lib


def library_version() -> str | None:
    """libseccomp's version, or None when the library is not installed."""
    lib = _library()
    if lib is None:
        return None
    return ".".join(str(part) for part in lib.seccomp_version().contents)


def kernel_supports_filters() -> bool:
    """Whether this kernel has seccomp filter mode (the ``Seccomp:`` line in /proc/self/status)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            return any(line.startswith("Seccomp:") for line in status)
    except OSError:
        return False


@functools.cache
def no_network_program() -> Program:
    """The filter described in the module docstring, compiled once per process."""
    lib = _library()
    if lib is None:
        raise OSError(errno.ENOENT, "libseccomp is not installed (Debian package libseccomp2)")
    ctx = lib.seccomp_init(_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init failed")
    try:
        _add_rules(lib, ctx)
        return Program(_export(lib, ctx))
    finally:
        lib.seccomp_release(ctx)


def _add_rules(lib: ctypes.CDLL, ctx: int) -> None:
    for call in ("socket", "socketpair"):
        _deny(lib, ctx, call, _ArgCmp(0, _CMP_NE, _AF_UNIX, 0))
        _deny(
            lib, ctx, call, _ArgCmp(0, _CMP_EQ, _AF_UNIX, 0), _ArgCmp(1, _CMP_MASKED_EQ, _SOCK_TYPE_MASK, _SOCK_DGRAM)
        )
    for call in _DENIED:
        _deny(lib, ctx, call)


def _deny(lib: ctypes.CDLL, ctx: int, name: str, *conditions: _ArgCmp) -> None:
    number = lib.seccomp_syscall_resolve_name(name.encode())
    if number < 0:
        return  # this architecture has no such syscall
    array = (_ArgCmp * len(conditions))(*conditions)
    result = lib.seccomp_rule_add_array(ctx, _ACT_ERRNO_EPERM, number, len(conditions), array)
    if result < 0:
        raise OSError(-result, f"seccomp rule for {name}: {os.strerror(-result)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    read_end, write_end = os.pipe()
    try:
        result = lib.seccomp_export_bpf(ctx, write_end)
        os.close(write_end)
        write_end = -1
        if result < 0:
            raise OSError(-result, f"seccomp_export_bpf: {os.strerror(-result)}")
        chunks = []
        while chunk := os.read(read_end, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
