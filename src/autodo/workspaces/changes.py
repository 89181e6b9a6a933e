"""What an agent changed in a task workspace, as unified diffs.

A workspace that is a git checkout is compared with its ``HEAD`` (untracked files count as
added). A plain workspace starts empty when autodo creates it, so every file in it is new.
"""

from __future__ import annotations

import difflib
import subprocess
from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel

MAX_FILES = 200
MAX_DIFF = 100_000  # characters per file; a longer diff is cut with a marker
MAX_READ = 1_000_000  # bytes read from one file


class ChangeKind(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"


class FileChange(BaseModel):
    path: str
    status: ChangeKind
    diff: str


class WorkspaceChanges(BaseModel):
    workspace: str
    files: list[FileChange]
    truncated: bool = False  # more than MAX_FILES files changed


def workspace_changes(workspace: Path) -> WorkspaceChanges:
    """The changed files of a workspace with their diffs (none when it does not exist yet)."""
    if not workspace.is_dir():
        return WorkspaceChanges(workspace=str(workspace), files=[])
    changes = _git_changes(workspace) if (workspace / ".git").exists() else _all_new(workspace)
    return WorkspaceChanges(workspace=str(workspace), files=changes[:MAX_FILES], truncated=len(changes) > MAX_FILES)


def _all_new(workspace: Path) -> list[FileChange]:
    files = sorted(p for p in workspace.rglob("*") if p.is_file() and not p.is_symlink())
    return [_added(workspace, path) for path in files[: MAX_FILES + 1]]


def _added(workspace: Path, path: Path) -> FileChange:
    relative = path.relative_to(workspace).as_posix()
    return FileChange(path=relative, status=ChangeKind.ADDED, diff=_diff("", _read(path), relative))


def _git_changes(workspace: Path) -> list[FileChange]:
    status = _git(workspace, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    changes = []
    for entry in filter(None, status.split("\0")):
        code, relative = entry[:2], entry[3:]
        if "D" in code:
            old = _git(workspace, "show", f"HEAD:{relative}")
            changes.append(FileChange(path=relative, status=ChangeKind.DELETED, diff=_diff(old, "", relative)))
        elif code == "??" or "A" in code:
            changes.append(_added(workspace, workspace / relative))
        else:
            old = _git(workspace, "show", f"HEAD:{relative}")
            diff = _diff(old, _read(workspace / relative), relative)
            changes.append(FileChange(path=relative, status=ChangeKind.MODIFIED, diff=diff))
    return changes


def _git(workspace: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(workspace), *args], capture_output=True, text=True, timeout=30)
    return done.stdout


def _read(path: Path) -> str:
    data = path.read_bytes()[:MAX_READ] if path.is_file() else b""
    if b"\0" in data[:8192]:
        return "(binary file)\n"
    return data.decode("utf-8", errors="replace")


def _diff(old: str, new: str, relative: str) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{relative}", f"b/{relative}"
    )
    diff = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    return diff if len(diff) <= MAX_DIFF else diff[:MAX_DIFF] + "\n… (diff cut here)\n"
