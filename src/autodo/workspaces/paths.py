"""Confine model-supplied paths to a task workspace."""

from __future__ import annotations

from pathlib import Path, PurePath

from autodo.errors import InvalidInput, PathOutsideWorkspace

_ROOT_ALIASES = ("", ".")


def resolve_inside(workspace: Path, relative: str) -> Path:
    """Resolve ``relative`` against the workspace root, refusing anything that lands outside it."""
    if "\x00" in relative:
        raise InvalidInput(f"path {relative!r} contains a NUL byte; pass a plain path relative to the workspace root")
    root = workspace.resolve()
    if relative in _ROOT_ALIASES:
        return root
    if PurePath(relative).is_absolute():
        raise PathOutsideWorkspace(
            f"path {relative!r} is absolute; use a path relative to the workspace root (for example 'notes.txt')"
        )
    # resolve() follows symlinks (also dangling ones and those above a not-yet-existing tail),
    # so the containment check sees where a write would really land.
    resolved = (root / relative).resolve()
    if not resolved.is_relative_to(root):
        raise PathOutsideWorkspace(
            f"path {relative!r} is outside the task workspace (via '..' or a symlink); "
            "use a path relative to the workspace root"
        )
    return resolved


def is_git_internal(workspace: Path, path: Path) -> bool:
    """Whether ``path`` (absolute, or relative to the workspace) is ``.git`` or lies inside it."""
    root = workspace.resolve()
    target = (path if path.is_absolute() else root / path).resolve()
    return target.is_relative_to(root / ".git")


def display_path(workspace: Path, path: Path) -> str:
    """``path`` as the model should see it: relative to the workspace root, with forward slashes."""
    root = workspace.resolve()
    return "." if path == root else path.relative_to(root).as_posix()
