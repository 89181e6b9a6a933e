"""Workspace file access that never follows a symlink: how the file tools are confined.

The file tools run inside the worker, so no OS sandbox wraps them. Running each one in a
sandboxed helper process was the other choice; it would cost a process start per read and
put a second copy of the tools' logic behind a wire. Instead the tools keep checking paths as
before (``resolve_inside``: resolved, then required to lie in the workspace) and then reach the
checked path through this module: from a descriptor on the workspace root, one component at
a time, each opened with ``O_NOFOLLOW``. A symlink that appears after the check (a command
swapping a directory for a link to ``/etc`` or to another task's workspace) makes the open fail
instead of leading outside, so the check and the use cannot drift apart.

Opens also carry ``O_NONBLOCK``, so a FIFO planted in the workspace cannot hang the worker.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from autodo.errors import PathOutsideWorkspace

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK


@contextlib.contextmanager
def open_dir(root: Path, directory: Path, create: bool = False) -> Iterator[int]:
    """A descriptor on ``directory`` (inside ``root``), creating missing components when ``create``."""
    fd = _walk(root, _parts(root, directory), create)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(root: Path, target: Path, flags: int = READ_FLAGS) -> int:
    """Open ``target`` (inside ``root``) without following a symlink anywhere below the root."""
    if target == root.resolve():
        return os.open(root, flags | os.O_CLOEXEC)
    with open_dir(root, target.parent) as parent:
        return open_at(parent, target.name, flags)


def open_at(directory_fd: int, name: str, flags: int = READ_FLAGS, mode: int = 0o666) -> int:
    """Open ``name`` in an open directory, refusing a symlink."""
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=directory_fd)
    except OSError as error:
        _refuse_symlink(error, name, directory_fd)
        raise


def _parts(root: Path, directory: Path) -> tuple[str, ...]:
    relative = directory.relative_to(root.resolve())  # ValueError would mean the caller skipped the check
    if any(part in ("..", ".") for part in relative.parts):
        raise PathOutsideWorkspace(f"'{relative}' is not a plain path inside the workspace")
    return relative.parts


def _walk(root: Path, parts: tuple[str, ...], create: bool) -> int:
    fd = os.open(root, _DIRECTORY & ~os.O_NOFOLLOW)  # the root itself may be reached through a link
    try:
        for part in parts:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, dir_fd=fd)
            try:
                child = os.open(part, _DIRECTORY, dir_fd=fd)
            except OSError as error:
                _refuse_symlink(error, part, fd)
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _refuse_symlink(error: OSError, name: str, directory_fd: int) -> None:
    """A symlink stood where the checked path had none (ELOOP, or ENOTDIR when a directory was
    wanted): refuse rather than follow it."""
    if error.errno == errno.ELOOP or (error.errno == errno.ENOTDIR and _is_symlink(name, directory_fd)):
        raise PathOutsideWorkspace(
            f"'{name}' became a symlink after the path was checked; file tools never follow such a link. "
            "Use the path of the real file inside the workspace"
        ) from error


def _is_symlink(name: str, directory_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False
