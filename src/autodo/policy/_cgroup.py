"""A pids cgroup per sandboxed command: a process cap that binds root, and a clean kill at the end.

``RLIMIT_NPROC`` is never enforced for uid 0, not even inside a user namespace that maps to it,
so a worker running as root needs a cgroup to stop a fork bomb. The cgroup also finds every
process the command left behind, including daemons that called ``setsid`` and so escaped the
process group. Creating cgroups needs root (or a delegated subtree, which this does not try);
without one the rlimits and the process-group kill are what remains.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path

_PARENT = "autodo-sandbox"
_KILL_SECONDS = 5.0
_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class Hierarchy:
    """Where the pids controller is mounted, and which cgroup version it speaks."""

    root: Path
    version: int


def pids_hierarchy() -> Hierarchy | None:
    """The pids controller this process could use, or None (not root, or no controller mounted)."""
    if os.geteuid() != 0:
        return None
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            lines = [line.split() for line in mounts]
    except OSError:
        return None
    for _, where, kind, options, *_ in lines:
        if kind == "cgroup" and "pids" in options.split(",") and os.access(where, os.W_OK):
            return Hierarchy(Path(where), 1)
    for _, where, kind, *_ in lines:
        if (
            kind == "cgroup2"
            and "pids" in _read(Path(where, "cgroup.controllers")).split()
            and os.access(where, os.W_OK)
        ):
            return Hierarchy(Path(where), 2)
    return None


@dataclass(frozen=True)
class PidsCgroup:
    """One command's cgroup: join it in the child, kill and remove it when the command ends."""

    path: Path
    version: int

    def open_procs(self) -> int:
        """A descriptor on ``cgroup.procs``; the child writes its pid there to join."""
        return os.open(self.path / "cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)

    def close(self) -> None:
        """SIGKILL everything still inside, then remove the cgroup."""
        deadline = time.monotonic() + _KILL_SECONDS
        while self._kill_members() and time.monotonic() < deadline:
            time.sleep(_POLL_SECONDS)
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(_POLL_SECONDS)  # the last members are still exiting

    def _kill_members(self) -> bool:
        """Signal every member; True while there were any."""
        if self.version == 2 and (self.path / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                (self.path / "cgroup.kill").write_text("1")
        members = [int(pid) for pid in _read(self.path / "cgroup.procs").split()]
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return bool(members)


def create(hierarchy: Hierarchy, max_processes: int) -> PidsCgroup:
    """A fresh cgroup under ``autodo-sandbox`` allowing at most ``max_processes`` tasks."""
    parent = hierarchy.root / _PARENT
    parent.mkdir(exist_ok=True)
    if hierarchy.version == 2:
        _enable_pids(hierarchy.root)
        _enable_pids(parent)
    path = parent / secrets.token_hex(8)
    path.mkdir()
    try:
        (path / "pids.max").write_text(str(max_processes))
    except OSError:
        path.rmdir()
        raise
    return PidsCgroup(path, hierarchy.version)


def _enable_pids(cgroup: Path) -> None:
    control = cgroup / "cgroup.subtree_control"
    if "pids" not in _read(control).split():
        control.write_text("+pids")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
